"""Logging: one line per event, and the bot token never written anywhere."""

from __future__ import annotations

import logging
import sys


class RedactingFormatter(logging.Formatter):
    """Replaces secrets in the finished line, tracebacks included (aiohttp errors quote URLs,
    and Bot API URLs carry the token)."""

    def __init__(self, fmt: str, *secrets: str) -> None:
        super().__init__(fmt)
        self._secrets = [secret for secret in secrets if secret]

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        for secret in self._secrets:
            line = line.replace(secret, "[redacted]")
        return line


def configure_logging(level: str, *secrets: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", *secrets))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # aiogram logs every update and callback id with a timestamp; kept out of INFO logs so that
    # nobody can line a report up with the moment a particular update arrived.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in ("aiogram.event", "aiogram.middlewares"):
        logging.getLogger(name).setLevel(quiet)
