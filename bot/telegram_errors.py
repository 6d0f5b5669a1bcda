"""What a failed Bot API call means for whoever sent it: one classification for alerts, digests
and announcements, so that "blocked", "try later" and "never again" mean the same everywhere."""

from __future__ import annotations

import enum

from aiogram.exceptions import (
    ClientDecodeError,
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)

# 400s that mean the chat itself is gone, not that this one message was wrong.
_GONE_MARKERS = ("chat not found", "user is deactivated", "bot was kicked", "peer_id_invalid")


class Failure(enum.Enum):
    WAIT = "wait"  # 429: nothing may be sent before retry_after
    MOVED = "moved"  # the group became a supergroup: migrate_to_chat_id
    GONE = "gone"  # blocked the bot, deleted, deactivated: never try this chat again
    TRANSIENT = "transient"  # network trouble or Telegram's 5xx: try again after a pause
    REVOKED = "revoked"  # the token no longer works: nothing will go through
    REFUSED = "refused"  # Telegram refused this message (too long, bad markup): retrying won't help


def classify(error: BaseException) -> Failure | None:
    """None for anything that is not a Telegram answer: a bug in the caller."""
    if isinstance(error, TelegramRetryAfter):
        return Failure.WAIT
    if isinstance(error, TelegramMigrateToChat):
        return Failure.MOVED
    if isinstance(error, TelegramForbiddenError):
        return Failure.GONE
    if isinstance(error, TelegramBadRequest) and any(marker in error.message.lower() for marker in _GONE_MARKERS):
        return Failure.GONE
    if isinstance(error, TelegramUnauthorizedError):
        return Failure.REVOKED
    if isinstance(error, (TelegramNetworkError, TelegramServerError, ClientDecodeError)):
        return Failure.TRANSIENT
    if isinstance(error, TelegramAPIError):
        return Failure.REFUSED
    return None
