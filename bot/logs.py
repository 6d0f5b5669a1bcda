"""Logging: one line per event as `key=value` pairs (logfmt), and the bot token never written anywhere.

    time=2026-11-23T03:00:00.120Z level=INFO logger=bot.surveys msg="Survey 1 (who5) launched"

A traceback is folded into its event's line as `error="…"` (newlines escaped), so that every line
is one event that journald, grep and log shippers can take apart without knowing Python."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime

_BARE = re.compile(r"^[^\s\"=\\]+$")


def _value(text: str) -> str:
    return text if _BARE.match(text) else json.dumps(text, ensure_ascii=False)


class LogfmtFormatter(logging.Formatter):
    """Secrets are replaced in the finished line, tracebacks included (aiohttp errors quote URLs,
    and Bot API URLs carry the token)."""

    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self._secrets = [secret for secret in secrets if secret]

    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            fields["error"] = self.formatException(record.exc_info)
        if record.stack_info:
            fields["stack"] = self.formatStack(record.stack_info)
        line = " ".join(f"{key}={_value(value)}" for key, value in fields.items())
        for secret in self._secrets:
            line = line.replace(secret, "[redacted]")
        return line


def configure_logging(level: str, *secrets: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogfmtFormatter(*secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiogram logs every update and callback id with a timestamp; kept out of INFO logs so that
    # nobody can line a report up with the moment a particular update arrived.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in ("aiogram.event", "aiogram.middlewares"):
        logging.getLogger(name).setLevel(quiet)
