"""Case exports for meetings with the employer or the inspectorate: XLSX and CSV, in the
member's language. There is no reporter data to leak: reports hold none."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from bot import file_worker
from bot.access import AccessService, NotAllowed
from bot.hazards import CATEGORIES, SEVERITIES, STATUSES
from bot.reports import current_hour, parse_stamp
from bot.sheet_writing import formula_safe, xlsx_from_csv
from storage.reports import Case, ReportEvent, ReportRepository
from storage.sites import SiteRepository

PERIODS = (7, 30, 90, 365)
# Case code, received, mine, hazard, urgency, status, where, what is happening, photos, history.
COLUMN_WIDTHS = (11, 17, 24, 24, 22, 20, 24, 60, 8, 60)
PHOTOS_COLUMN = 8  # a number in the workbook
FOLDER_PREFIX = "minevoice-export-"
LEFTOVER_SECONDS = 3600  # an export takes seconds: a folder this old was left by a bot that was killed

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Export:
    """The two files of an export, on disk in a private temporary folder that exists only
    inside `ExportService.export`'s `async with`."""

    xlsx: Path
    csv: Path
    rows: int


class ExportService:
    # Cases read, turned into rows and written out at a time: memory stays that of one chunk, not
    # of a year of a big mine (its 32,000 cases took the bot past 260 MB when built all at once).
    # The XLSX is then made from the CSV by the file worker process, which keeps openpyxl.
    chunk_size = 500

    def __init__(self, reports: ReportRepository, sites: SiteRepository, access: AccessService) -> None:
        self._reports = reports
        self._sites = sites
        self._access = access

    @asynccontextmanager
    async def export(self, user_id: int, days: int, language: str, tz: ZoneInfo,
                     now: datetime | None = None) -> AsyncIterator[Export]:
        """`async with exports.export(...) as result:` send `result.xlsx` and `result.csv`; the files
        (case texts, never anyone's identity) are removed when the block ends, however it ends."""
        site_ids = sorted(await self._access.committee_sites(user_id))
        if not site_ids:
            raise NotAllowed
        since = current_hour((now or datetime.now(UTC)) - timedelta(days=days))
        header = [_("Case code"), _("Received"), _("Mine"), _("Hazard"), _("Urgency"), _("Status"), _("Where"),
                  _("What is happening"), _("Photos"), _("History")]
        folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX))  # mode 0700: only this process's user
        try:
            table = _Csv(folder / "cases.csv", header)
            try:
                count, after, names = 0, 0, {}
                while True:
                    chunk = await self._reports.cases_page_since(site_ids, since, after, self.chunk_size)
                    if not chunk:
                        break
                    # Rows are made here, where gettext knows the member's language; the CSV is
                    # written in a worker thread, so the bot keeps answering meanwhile.
                    rows = [await self._row(case, timeline, language, tz, names) for case, timeline in chunk]
                    after = chunk[-1][0].id
                    del chunk
                    await _to_the_end(asyncio.to_thread(table.append, rows))
                    count += len(rows)
                    if len(rows) < self.chunk_size:
                        break
            finally:
                table.close()
            xlsx = folder / "cases.xlsx"
            await _to_the_end(file_worker.run(xlsx_from_csv, str(table.path), str(xlsx), "MineVoice", COLUMN_WIDTHS,
                                              (PHOTOS_COLUMN,)))
            yield Export(xlsx, table.path, count)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    async def _row(self, case: Case, timeline: list[ReportEvent], language: str, tz: ZoneInfo,
                   names: dict[int, str]) -> list:
        if case.site_id not in names:  # one look-up per site per export
            site = await self._sites.get(case.site_id)
            names[case.site_id] = site.name(language) if site else ""
        return [
            case.case_code,
            _local(case.created_hour, tz),
            names[case.site_id],
            str(CATEGORIES.get(case.category, case.category)),
            str(SEVERITIES.get(case.severity, case.severity)),
            str(STATUSES.get(case.status, case.status)),
            case.location or "",
            case.description,
            len(case.photo_file_ids),
            "\n".join(_history_line(event, tz) for event in timeline),
        ]


def remove_leftover_exports(now: float | None = None) -> int:
    """At start-up: export folders a killed bot could not remove (case texts, which retention may
    since have cleared from the database) go; returns how many. Recent ones may be another bot's."""
    cutoff = (now if now is not None else time.time()) - LEFTOVER_SECONDS
    removed = 0
    for folder in Path(tempfile.gettempdir()).glob(f"{FOLDER_PREFIX}*"):
        with contextlib.suppress(OSError):  # another user's, or gone meanwhile
            info = folder.stat()
            if folder.is_dir() and info.st_uid == os.getuid() and info.st_mtime < cutoff:
                shutil.rmtree(folder)
                removed += 1
    return removed


async def _to_the_end(work: Awaitable[T]) -> T:
    """`await work`, but a cancelled export still waits for the work to be done with the files
    before they are removed."""
    task = asyncio.ensure_future(work)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved, so asyncio does not log it: the export is cancelled anyway
        raise


def _local(stamp: str, tz: ZoneInfo) -> str:
    return f"{parse_stamp(stamp).astimezone(tz):%Y-%m-%d %H:%M}"


def _history_line(event: ReportEvent, tz: ZoneInfo) -> str:
    when = _local(event.at or event.at_hour, tz)
    if event.kind == "reporter_message":
        return _("{when} — the reporter wrote: «{text}»").format(when=when, text=event.note or "")
    if event.kind == "note":
        return _("{when} — note to the reporter by {member}: «{text}»").format(
            when=when, member=event.actor_name or "", text=event.note or "")
    line = f"{when} — {STATUSES.get(event.status, event.status)}"
    return line + (f" — {event.actor_name}" if event.actor_name else "")


class _Csv:
    """The export's CSV, encoded as it is written, with the BOM that makes Excel read Cyrillic right."""

    def __init__(self, path: Path, header: list[str]) -> None:
        self.path = path
        self._text = path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._text)
        self._writer.writerow(header)

    def append(self, rows: list[list]) -> None:
        self._writer.writerows([formula_safe(value) for value in row] for row in rows)

    def close(self) -> None:
        self._text.close()
