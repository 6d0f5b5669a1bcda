"""`python -m bot` and the `minevoice` console script.

    python -m bot [run]         the bot, by long polling or webhook as MODE says
    python -m bot check         settings, database, translations, backups and the token, one line each
    python -m bot backup        an online backup now (safe while the bot runs)
    python -m bot restore FILE  put a backup in place of the database (the bot must be stopped)

Exit status: 0 fine; 1 a check failed or a restore/backup was refused; 2 the bot cannot start
(a setting is wrong, Telegram rejected the token, the port is taken, another bot holds the
database), with one sentence on stderr saying what to do.
"""

from __future__ import annotations

import argparse
import asyncio
import gettext
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from bot.config import LOCALES, Settings, SettingsError, load_settings
from bot.logs import configure_logging

OK, FAILED, SKIPPED = "✓", "✗", "-"
# `check` calls a backup older than this stale: the nightly job has not run or has failed.
BACKUP_STALE_HOURS = 48
# `check` reports a webhook delivery error Telegram saw within this many seconds.
RECENT_WEBHOOK_ERROR_SECONDS = 3600


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="MineVoice, the miners' hazard report bot.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.add_parser("run", help="run the bot (the default): long polling or webhook, as MODE says")
    commands.add_parser("check", help="check settings, database, translations, backups and the bot token")
    commands.add_parser("backup", help="make an online backup now (safe while the bot runs)")
    restore = commands.add_parser("restore", help="replace the database with a backup (stop the bot first)")
    restore.add_argument("file", type=Path, help="a backup file, e.g. data/backups/minevoice-20260101T033000Z.sqlite3")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.command == "check":
        raise SystemExit(run_check())
    settings = _settings_or_exit()
    configure_logging(settings.log_level, settings.bot_token.get_secret_value(),
                      settings.webhook_secret.get_secret_value() if settings.webhook_secret else "")
    if args.command == "backup":
        raise SystemExit(_backup(settings))
    if args.command == "restore":
        raise SystemExit(_restore(settings, args.file))
    _run(settings)


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        print(f"MineVoice cannot start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def _cannot_start(sentence: str) -> SystemExit:
    print(f"MineVoice cannot start: {sentence}", file=sys.stderr)
    return SystemExit(2)


def _run(settings: Settings) -> None:
    from bot.backup import AlreadyRunning, run_lock

    try:
        with run_lock(settings.database_path):
            _serve(settings)
    except AlreadyRunning:
        raise _cannot_start(
            f"another MineVoice process (or a restore) is using {settings.database_path}; stop it first, "
            "one bot per database.") from None


def _serve(settings: Settings) -> None:
    # Imported after logging is set up, so import-time messages are formatted too (and after the
    # lock: aiogram takes seconds to import, a refused second start need not wait for it).
    from aiogram.exceptions import TelegramUnauthorizedError

    from bot.app import run_polling
    from bot.webhook import WebhookError, run_webhook

    try:
        if settings.mode == "webhook":
            asyncio.run(run_webhook(settings))
        else:
            asyncio.run(run_polling(settings))
    except WebhookError as exc:
        raise _cannot_start(str(exc)) from None
    except TelegramUnauthorizedError:
        raise _cannot_start("Telegram rejected BOT_TOKEN. Check the token @BotFather gave you "
                            "and put it in .env (see README.md).") from None
    except KeyboardInterrupt:
        pass


def _backup(settings: Settings) -> int:
    from bot.backup import make_backup

    try:
        path = make_backup(settings.database_path, settings.backup_dir, settings.backup_keep)
    except FileNotFoundError:
        print(f"MineVoice cannot back up: {settings.database_path} does not exist (check DATABASE_PATH).",
              file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - one sentence for the operator, not a traceback
        print(f"MineVoice cannot back up: {exc}; check free space and that this user may write to "
              f"{settings.backup_dir}.", file=sys.stderr)
        return 1
    print(f"Backup written: {path} ({path.stat().st_size // 1024} KiB); the newest {settings.backup_keep} are kept.")
    return 0


def _restore(settings: Settings, file: Path) -> int:
    from bot.backup import RestoreRefused, restore

    try:
        safety = restore(settings.database_path, file)
    except RestoreRefused as exc:
        print(f"MineVoice did not restore: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"MineVoice did not restore: {exc.strerror or exc} ({exc.filename}); check that this user may "
              f"write to {settings.database_path.parent}.", file=sys.stderr)
        return 1
    kept = f"the previous database is kept as {safety}" if safety else "there was no database before"
    print(f"Restored {settings.database_path} from {file}; {kept}. Start the bot again "
          "(sudo systemctl start minevoice); migrations newer than the backup run at start-up.")
    return 0


# --- check ---------------------------------------------------------------------------------


class _Report:
    def __init__(self) -> None:
        self.failed = False

    def line(self, mark: str, name: str, text: str) -> None:
        self.failed |= mark == FAILED
        print(f"{mark} {name}: {text}", flush=True)


def run_check() -> int:
    """One line per check with ✓ or ✗ and what to do; 0 when nothing failed, else 1."""
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="replace")  # a terminal without UTF-8 gets "?" instead of a crash
    report = _Report()
    try:
        settings = load_settings()
    except SettingsError as exc:
        settings = None
        report.line(FAILED, "settings", str(exc))
    if settings is not None:
        configure_logging("ERROR", settings.bot_token.get_secret_value())
        report.line(OK, "settings", _describe(settings))
        _check_database(report, settings.database_path)
    else:
        report.line(SKIPPED, "database", "not checked until the settings are fixed")
    _check_translations(report)
    if settings is not None:
        _check_backups(report, settings)
        asyncio.run(_check_telegram(report, settings))
    else:
        report.line(SKIPPED, "telegram", "not checked until the settings are fixed")
    return 1 if report.failed else 0


def _describe(settings: Settings) -> str:
    if settings.mode == "webhook":
        secret = "from WEBHOOK_SECRET" if settings.webhook_secret else "new at each start"
        how = (f"webhook mode, Telegram posts to {settings.webhook_url}, local server {settings.web_host}:"
               f"{settings.web_port}, secret {secret}")
    else:
        how = "long polling"
    admins = (f"{len(settings.admin_ids)} admin(s)" if settings.admin_ids
              else "no ADMIN_IDS yet, so nobody can invite committees")
    return f"{how}; database {settings.database_path}; time zone {settings.timezone}; {admins}."


def _check_database(report: _Report, path: Path) -> None:
    from storage.backup import NotADatabase, inspect, latest_schema_version

    latest = latest_schema_version()
    if not path.exists():
        folder = next((parent for parent in path.parents if parent.exists()), Path("."))
        if not os.access(folder, os.W_OK | os.X_OK):
            report.line(FAILED, "database", f"{path} does not exist and this user cannot create it in {folder}; "
                                            "give the bot's user a writable data folder.")
        else:
            report.line(OK, "database", f"{path} does not exist yet; it is created with all {latest} migrations "
                                        "at the first start.")
        return
    try:
        info = inspect(path, integrity="quick_check")
    except NotADatabase as exc:
        report.line(FAILED, "database", f"cannot read {path} as an SQLite database ({exc}); check its owner and "
                                        "permissions, or restore a backup (python -m bot restore FILE).")
        return
    if info.user_version == 0 and not info.tables:
        state = f"empty; all {latest} migrations are applied at the next start"
    elif not info.is_minevoice:
        report.line(FAILED, "database", f"{path} is not a MineVoice database (its tables do not match); "
                                        "check DATABASE_PATH.")
        return
    elif info.user_version > latest:
        report.line(FAILED, "database", f"{path} has schema {info.user_version}, newer than this code ({latest}); "
                                        "upgrade the code, or restore a backup made by this version.")
        return
    elif info.user_version < latest:
        pending = latest - info.user_version
        state = f"schema {info.user_version}; {pending} migration(s) are applied at the next start (back up first)"
    else:
        state = f"schema {info.user_version}, up to date"
    if info.integrity != "ok":
        report.line(FAILED, "database", f"{path} is damaged ({info.integrity}); stop the bot and restore the newest "
                                        "backup (python -m bot restore FILE).")
        return
    if not (os.access(path, os.R_OK | os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)):
        report.line(FAILED, "database", f"{path} or its folder is not writable by this user; the bot's user must "
                                        "own both (chown).")
        return
    report.line(OK, "database", f"{path}: {state}; integrity ok.")


def _check_translations(report: _Report) -> None:
    from bot.i18n import DOMAIN, LOCALES_DIR

    broken = []
    for locale in LOCALES:
        catalog = LOCALES_DIR / locale / "LC_MESSAGES" / f"{DOMAIN}.mo"
        try:
            with catalog.open("rb") as handle:
                gettext.GNUTranslations(handle)
        except Exception:  # noqa: BLE001 - missing, truncated or not a catalog: all mean "compile again"
            broken.append(locale)
    if broken:
        report.line(FAILED, "translations", f"compiled catalogs missing or unreadable for {', '.join(broken)}; "
                                            "run `make translations` (needs the .venv with Babel).")
    else:
        report.line(OK, "translations", f"{', '.join(LOCALES)} compiled.")


def _check_backups(report: _Report, settings: Settings) -> None:
    from bot.backup import list_backups

    folder = settings.backup_dir
    if folder.exists() and not os.access(folder, os.W_OK | os.X_OK):
        report.line(FAILED, "backups", f"{folder} is not writable by this user, so the nightly backup fails; "
                                       "the bot's user must own it.")
        return
    backups = list_backups(folder)
    if not backups:
        report.line(OK, "backups", f"none yet in {folder}; the first is made at {settings.backup_time} "
                                   f"({settings.timezone}), or now with `python -m bot backup`.")
        return
    newest = backups[-1]
    hours = (time.time() - newest.path.stat().st_mtime) / 3600
    age = f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"
    if hours > BACKUP_STALE_HOURS:
        report.line(FAILED, "backups", f"the newest backup ({newest.path.name}) is {age} old; is the bot running? "
                                       "Look for 'backup' in journalctl -u minevoice.")
        return
    report.line(OK, "backups", f"{len(backups)} in {folder}, the newest {age} old (keeping {settings.backup_keep}).")


async def _check_telegram(report: _Report, settings: Settings) -> None:
    from aiogram.exceptions import TelegramAPIError, TelegramNetworkError, TelegramUnauthorizedError

    from bot.app import build_bot

    token = settings.bot_token.get_secret_value()
    where = settings.telegram_api_base or "https://api.telegram.org"
    bot = build_bot(settings)
    try:
        try:
            me = await bot.get_me(request_timeout=20)
        except TelegramUnauthorizedError:
            report.line(FAILED, "telegram", "Telegram rejected BOT_TOKEN; copy the token again from @BotFather "
                                            "(/mybots, API Token) into BOT_TOKEN in .env.")
            return
        except (TelegramNetworkError, TimeoutError, OSError) as exc:
            reason = str(exc).replace(token, "[redacted]")
            report.line(FAILED, "telegram", f"could not reach {where} ({reason}); check this server's internet "
                                            "access, proxy and TELEGRAM_API_BASE.")
            return
        except TelegramAPIError as exc:
            report.line(FAILED, "telegram", f"{where} answered getMe with an error ({exc.message}); check "
                                            "TELEGRAM_API_BASE.")
            return
        report.line(OK, "telegram", f"the token belongs to @{me.username} ({me.first_name}), via {where}.")
        try:
            info = await bot.get_webhook_info(request_timeout=20)
        except TelegramAPIError as exc:
            report.line(FAILED, "webhook", f"getWebhookInfo failed ({exc.message}).")
            return
        _webhook_line(report, settings, info)
    finally:
        await bot.session.close()


def _webhook_line(report: _Report, settings: Settings, info) -> None:
    if settings.mode == "polling":
        if info.url:
            report.line(FAILED, "webhook", f"Telegram still has a webhook ({info.url}), so long polling receives "
                                           "nothing; set MODE=webhook, or delete it by opening "
                                           "https://api.telegram.org/bot<BOT_TOKEN>/deleteWebhook once.")
        else:
            report.line(OK, "webhook", "none set, as long polling needs.")
        return
    if info.url != settings.webhook_url:
        report.line(OK, "webhook", "Telegram does not have WEBHOOK_URL yet; the bot registers it when it starts.")
        return
    recent = (info.last_error_date is not None and
              (datetime.now(UTC) - info.last_error_date).total_seconds() < RECENT_WEBHOOK_ERROR_SECONDS)
    if recent:
        report.line(FAILED, "webhook", f"Telegram's last delivery to {info.url} failed ({info.last_error_message}); "
                                       "check the reverse proxy, its TLS certificate and that the bot runs.")
        return
    report.line(OK, "webhook", f"Telegram delivers to {info.url}; {info.pending_update_count} update(s) waiting.")


if __name__ == "__main__":
    main()
