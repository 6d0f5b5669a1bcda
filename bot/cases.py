"""Working a case: who may change what, and the reporter's side of the conversation."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from bot.access import AccessService, NotAllowed
from bot.hazards import STATUSES
from bot.reports import current_hour
from storage.reports import OPEN_STATUSES, Case, ReportEvent, ReportRepository

NOTE_MAX = 1000
PAGE_SIZE = 8
# What a member can set; "received" is only ever the first status.
SETTABLE = tuple(status for status in STATUSES if status != "received")
CLOSED_STATUSES = ("resolved", "not_confirmed")
FILTERS = {"open": OPEN_STATUSES, "closed": CLOSED_STATUSES, "all": OPEN_STATUSES + CLOSED_STATUSES}


class CaseService:
    def __init__(self, reports: ReportRepository, access: AccessService,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._reports = reports
        self._access = access
        self._clock = clock

    async def _case_for(self, user_id: int, report_id: int) -> Case:
        case = await self._reports.case(report_id)
        if case is None or not await self._access.can_work_on(user_id, case.site_id):
            raise NotAllowed
        return case

    async def view(self, user_id: int, report_id: int) -> tuple[Case, list[ReportEvent]]:
        case = await self._case_for(user_id, report_id)
        return case, await self._reports.timeline(report_id)

    async def change_status(self, user_id: int, actor_name: str, report_id: int, status: str,
                            note: str | None = None) -> Case:
        if status not in SETTABLE:
            raise ValueError(f"unknown status {status!r}")
        case = await self._case_for(user_id, report_id)
        if case.status != status:
            now = self._clock()
            await self._reports.change_status(report_id, status, user_id, actor_name, _exact(now), current_hour(now), note)
        return await self._reports.case(report_id)

    async def add_note(self, user_id: int, actor_name: str, report_id: int, note: str) -> Case:
        case = await self._case_for(user_id, report_id)
        now = self._clock()
        await self._reports.add_note(report_id, note.strip()[:NOTE_MAX], user_id, actor_name, _exact(now), current_hour(now))
        return case

    async def list(self, user_id: int, which: str, page: int) -> tuple[list[Case], int]:
        sites = sorted(await self._access.committee_sites(user_id))
        if not sites:
            raise NotAllowed
        return await self._reports.cases(sites, FILTERS.get(which, OPEN_STATUSES), page * PAGE_SIZE, PAGE_SIZE)

    async def from_reporter(self, report_id: int, text: str) -> Case:
        """The reporter (already proven by the receipt) adds information or answers a question."""
        await self._reports.add_reporter_message(report_id, text.strip()[:NOTE_MAX], current_hour(self._clock()))
        return await self._reports.case(report_id)


def _exact(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
