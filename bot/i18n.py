"""gettext catalogs (Babel) and choosing the language of each update."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiogram.types import TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware

from bot.config import LOCALES

LOCALES_DIR = Path(__file__).resolve().parent.parent / "locales"
DOMAIN = "messages"


def build_i18n(default_locale: str) -> I18n:
    i18n = I18n(path=LOCALES_DIR, default_locale=default_locale, domain=DOMAIN)
    missing = set(LOCALES) - set(i18n.available_locales)
    if missing:
        raise RuntimeError(
            f"Translations for {', '.join(sorted(missing))} are not compiled: run `make translations`."
        )
    return i18n


def guess_locale(user: User | None, default_locale: str) -> str:
    """Only for someone who has not chosen a language yet."""
    code = (user.language_code or "")[:2].lower() if user else ""
    return code if code in LOCALES else default_locale


class UserLanguageMiddleware(I18nMiddleware):
    """The language the user chose (stored); before they choose, Telegram's hint or the default."""

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        user: User | None = data.get("event_from_user")
        if user is not None:
            chosen = await data["users"].language_of(user.id)
            if chosen:
                return chosen
        return guess_locale(user, self.i18n.default_locale)


def fill_source_catalog(po_path: str | Path) -> int:
    """English is the source language: its catalog's empty entries take the msgid itself.
    Used by `make i18n`; returns how many entries were filled."""
    from babel.messages.pofile import read_po, write_po

    path = Path(po_path)
    with path.open("rb") as handle:
        catalog = read_po(handle)
    filled = 0
    for message in catalog:
        if message.id and not message.string:
            message.string = message.id
            filled += 1
        elif message.id and isinstance(message.id, tuple) and not all(message.string):
            message.string = message.id
            filled += 1
    with path.open("wb") as handle:
        write_po(handle, catalog, width=0, sort_by_file=True)
    return filled
