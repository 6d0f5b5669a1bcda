"""Retention: what is kept, and for how long.

- A closed case (resolved or not confirmed) keeps its description, place, photo references and the
  notes between committee and reporter for `RETENTION_DAYS` after it was closed; then the text is
  replaced by a marker ("[removed after 365 days]") and the photo file ids are deleted. Code, mine,
  category, urgency, status and the hour it arrived stay, so counts and charts do not change.
- Invitation codes that expired unused are deleted (a used one is deleted when it is used).
- Conversations (report drafts) abandoned for three days are deleted by the hourly job in
  `bot/scheduler.py` (`forget_abandoned_conversations`), not here.

Backups made before a purge still hold the text until rotation drops them (`BACKUP_KEEP` days).
Photos themselves live on Telegram's servers; without their file ids the bot can no longer fetch them."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.cases import CLOSED_STATUSES
from bot.reports import current_hour
from storage.db import Database
from storage.retention import PurgedCases, RetentionRepository
from storage.roles import RoleRepository

log = logging.getLogger(__name__)

_MARKER = "[removed after {days} days]"
_MARKER_PATTERN = re.compile(r"^\[removed after (\d+) days\]$")


def removed_marker(days: int) -> str:
    """What replaces purged text. Plain and in English because it is stored; a screen that
    shows cases can recognise it with `removed_after_days` and say it in the reader's language."""
    return _MARKER.format(days=days)


def removed_after_days(text: str | None) -> int | None:
    """N if `text` is the marker left by retention after N days, else None."""
    match = _MARKER_PATTERN.match(text or "")
    return int(match.group(1)) if match else None


@dataclass(frozen=True, slots=True)
class RetentionResult:
    cases: PurgedCases
    invites: int


async def apply_retention(db: Database, *, days: int, now: datetime) -> RetentionResult:
    """One run of the daily retention job; safe to repeat (what is cleared stays cleared)."""
    cutoff = current_hour(now - timedelta(days=days))
    cases = await RetentionRepository(db).purge_closed_cases(CLOSED_STATUSES, cutoff, removed_marker(days))
    invites = await RoleRepository(db).forget_expired_invites(int(now.timestamp()))
    if cases.cases:
        # Counts only: which cases were cleared is visible to committees anyway, and logs carry no text.
        log.info("Retention: cleared the text of %d cases closed more than %d days ago (%d photo references, %d notes)",
                 cases.cases, days, cases.photos, cases.notes)
    if invites:
        log.info("Retention: deleted %d expired invitation codes", invites)
    return RetentionResult(cases, invites)
