"""`python -m bot` and the `minevoice` console script."""

from __future__ import annotations

import asyncio
import sys

from aiogram.exceptions import TelegramUnauthorizedError

from bot.config import SettingsError, load_settings
from bot.logs import configure_logging


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"MineVoice cannot start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    configure_logging(settings.log_level, settings.bot_token.get_secret_value())
    from bot.app import run_polling  # after logging is set up, so import-time messages are formatted too

    try:
        asyncio.run(run_polling(settings))
    except TelegramUnauthorizedError:
        print("MineVoice cannot start: Telegram rejected BOT_TOKEN. Check the token @BotFather gave you "
              "and put it in .env (see README.md).", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
