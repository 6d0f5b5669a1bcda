"""The rules of a hazard report: what a draft must hold, how it is submitted, how a reporter
checks on it. Nothing here ever receives who the reporter is, except the in-memory limits."""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from bot.hazards import CATEGORIES, SEVERITIES
from bot.limits import SlidingWindowLimit
from bot.receipts import hash_receipt_async, new_case_code, new_receipt, normalize_case_code, normalize_receipt, receipt_matches_async
from storage.db import Database
from storage.reports import NewReport, ReportEvent, ReportRepository, StoredReport


DESCRIPTION_MIN = 10
DESCRIPTION_MAX = 1500
LOCATION_MAX = 200
PHOTOS_MAX = 5
STATUS_FAILURES_PER_USER = 5
STATUS_WINDOW = 15 * 60
STATUS_FAILURES_GLOBAL_PER_MINUTE = 120


@dataclass(slots=True)
class Draft:
    """A report in progress, as kept in the miner's FSM data until it is submitted or cancelled."""

    site_id: int | None = None
    category: str | None = None
    severity: str | None = None
    location: str | None = None
    description: str | None = None
    photos: list[str] = field(default_factory=list)

    @classmethod
    def from_data(cls, data: dict) -> Draft:
        return cls(**{name: data.get(name, default) for name, default in _DRAFT_DEFAULTS.items()})

    def is_complete(self) -> bool:
        return (
            self.site_id is not None
            and self.category in CATEGORIES
            and self.severity in SEVERITIES
            and self.description is not None
            and DESCRIPTION_MIN <= len(self.description) <= DESCRIPTION_MAX
            and len(self.photos) <= PHOTOS_MAX
        )


_DRAFT_DEFAULTS = {"site_id": None, "category": None, "severity": None, "location": None, "description": None, "photos": []}


class TextProblem(enum.Enum):
    TOO_SHORT = "too_short"
    TOO_LONG = "too_long"


def check_description(text: str) -> TextProblem | None:
    if len(text.strip()) < DESCRIPTION_MIN:
        return TextProblem.TOO_SHORT
    if len(text.strip()) > DESCRIPTION_MAX:
        return TextProblem.TOO_LONG
    return None


def check_location(text: str) -> TextProblem | None:
    if not text.strip():
        return TextProblem.TOO_SHORT
    if len(text.strip()) > LOCATION_MAX:
        return TextProblem.TOO_LONG
    return None


@dataclass(frozen=True, slots=True)
class Submitted:
    case_code: str
    receipt: str


class StatusOutcome(enum.Enum):
    FOUND = "found"
    MALFORMED = "malformed"
    WRONG = "wrong"
    THROTTLED = "throttled"


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    outcome: StatusOutcome
    report: StoredReport | None = None
    timeline: tuple[ReportEvent, ...] = ()
    retry_after: float = 0.0


def current_hour(now: datetime | None = None) -> str:
    """Reports keep only the hour they arrived in: exact times could be matched to a shift log."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0).strftime("%Y-%m-%dT%H:00Z")


def parse_stamp(stamp: str) -> datetime:
    """Times as stored: "2026-11-23T13:00Z" (an hour) or "2026-11-23T13:42:07Z" (exact)."""
    layout = "%Y-%m-%dT%H:%M:%SZ" if stamp.count(":") == 2 else "%Y-%m-%dT%H:00Z"
    return datetime.strptime(stamp, layout).replace(tzinfo=UTC)


class ReportService:
    def __init__(
        self,
        db: Database,
        reports: ReportRepository,
        *,
        reports_per_hour: int = 3,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = db
        self._reports = reports
        self._clock = clock
        self._submissions = SlidingWindowLimit(reports_per_hour, 3600)
        self._status_attempts = SlidingWindowLimit(STATUS_FAILURES_PER_USER, STATUS_WINDOW)
        self._status_failures = SlidingWindowLimit(STATUS_FAILURES_GLOBAL_PER_MINUTE, 60)

    def wait_before_next_report(self, user_id: int) -> float:
        """Seconds this person must wait before starting another report (0: go ahead)."""
        return self._submissions.retry_after(user_id)

    def count_submission(self, user_id: int) -> None:
        self._submissions.record(user_id)

    async def submit(self, draft: Draft, language: str, forget_draft: Callable[[], Awaitable[None]]) -> Submitted:
        """Commit the report and forget the draft in one transaction; durable on disk on return."""
        if not draft.is_complete():
            raise ValueError("incomplete draft")
        receipt = new_receipt()
        receipt_hash = await hash_receipt_async(receipt)
        while True:
            case_code = new_case_code()
            if not await self._reports.case_code_taken(case_code):
                break
        report = NewReport(
            case_code=case_code,
            receipt_hash=receipt_hash,
            site_id=draft.site_id,
            category=draft.category,
            severity=draft.severity,
            location=(draft.location or "").strip() or None,
            description=draft.description.strip(),
            language=language,
            photo_file_ids=tuple(draft.photos),
            created_hour=current_hour(self._clock()),
        )
        async with self._db.transaction() as tx:
            # The checkpoint at commit makes the report durable on disk before the miner is told,
            # and truncates the WAL that still holds the deleted draft.
            tx.want_checkpoint()
            await self._reports.add(report)
            await forget_draft()
        # Deliberately not logged: a log line carries the second it was written, which would undo
        # rounding the report's time down to the hour.
        return Submitted(case_code, receipt)

    async def status(self, user_id: int, case_code_text: str, receipt_text: str) -> StatusAnswer:
        wait = max(self._status_attempts.retry_after(user_id), self._status_failures.retry_after("all"))
        if wait:
            return StatusAnswer(StatusOutcome.THROTTLED, retry_after=wait)
        case_code, receipt = normalize_case_code(case_code_text), normalize_receipt(receipt_text)
        if case_code is None or receipt is None:
            return StatusAnswer(StatusOutcome.MALFORMED)
        report = await self._reports.by_case_code(case_code)
        if not await receipt_matches_async(receipt, report.receipt_hash if report else None):
            # Only failures count: a reporter may check and write back as often as they like.
            self._status_attempts.record(user_id)
            self._status_failures.record("all")
            return StatusAnswer(StatusOutcome.WRONG)
        timeline = await self._reports.timeline(report.id)
        return StatusAnswer(StatusOutcome.FOUND, report=report, timeline=tuple(timeline))
