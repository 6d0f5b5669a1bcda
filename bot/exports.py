"""Case exports for meetings with the employer or the inspectorate: XLSX and CSV, in the
member's language. There is no reporter data to leak: reports hold none."""

from __future__ import annotations

import asyncio
import contextlib
import csv
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from bot.access import AccessService, NotAllowed
from bot.hazards import CATEGORIES, SEVERITIES, STATUSES
from bot.reports import current_hour, parse_stamp
from storage.reports import Case, ReportEvent, ReportRepository
from storage.sites import SiteRepository

PERIODS = (7, 30, 90, 365)

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
        folder = Path(tempfile.mkdtemp(prefix="minevoice-export-"))  # mode 0700: only this process's user
        try:
            files = await _in_thread(_Files, folder, header)
            try:
                count, after, names = 0, 0, {}
                while True:
                    chunk = await self._reports.cases_page_since(site_ids, since, after, self.chunk_size)
                    if not chunk:
                        break
                    # Rows are made here, in the event loop, where gettext knows the member's language;
                    # the writing (seconds for a year of a big mine) is in a worker thread.
                    rows = [await self._row(case, timeline, language, tz, names) for case, timeline in chunk]
                    after = chunk[-1][0].id
                    del chunk
                    await _in_thread(files.append, rows)
                    count += len(rows)
                    if len(rows) < self.chunk_size:
                        break
                await _in_thread(files.finish)
            except BaseException:
                await _in_thread(files.abandon)
                raise
            yield Export(files.xlsx_path, files.csv_path, count)
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


async def _in_thread(function: Callable[..., T], *args: object) -> T:
    """`asyncio.to_thread`, but a cancelled export still waits for the worker to be done with the
    files before they are removed."""
    work = asyncio.ensure_future(asyncio.to_thread(function, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        await asyncio.wait([work])
        if not work.cancelled():
            work.exception()  # retrieved, so asyncio does not log it: the export is cancelled anyway
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


def _safe_cell(value: object) -> object:
    """Miners' text must never become a spreadsheet formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class _Files:
    """The XLSX and the CSV of one export, written on disk a chunk of rows at a time: openpyxl's
    write-only mode writes each row out as it is appended (a workbook keeping every cell as an
    object took some 80 MB more for a year of a big mine), and the CSV is encoded as it is written,
    with the BOM that makes Excel read Cyrillic right. openpyxl is imported only when an export is
    made. Every method runs in a worker thread."""

    def __init__(self, folder: Path, header: list[str]) -> None:
        from openpyxl import Workbook
        from openpyxl.cell import WriteOnlyCell
        from openpyxl.styles import Alignment, Font

        self.xlsx_path, self.csv_path = folder / "cases.xlsx", folder / "cases.csv"
        self._text = self.csv_path.open("w", encoding="utf-8-sig", newline="")
        try:
            self._csv = csv.writer(self._text)
            self._csv.writerow(header)
            self._cell = WriteOnlyCell
            self._book = Workbook(write_only=True)
            self._sheet = self._book.create_sheet("MineVoice")
            widths = (11, 17, 24, 24, 22, 20, 24, 60, 8, 60)
            for column, width in zip("ABCDEFGHIJ", widths, strict=True):  # before the first row, in this mode
                self._sheet.column_dimensions[column].width = width
            self._sheet.freeze_panes = "A2"
            self._wrapped = Alignment(wrap_text=True, vertical="top")
            self._sheet.append([self._styled(value, font=Font(bold=True)) for value in header])
        except BaseException:
            self._text.close()
            raise

    def _styled(self, value: object, *, font: object = None, alignment: object = None) -> object:
        cell = self._cell(self._sheet, value)
        if font is not None:
            cell.font = font
        if alignment is not None:
            cell.alignment = alignment
        return cell

    def append(self, rows: list[list]) -> None:
        for row in rows:
            safe = [_safe_cell(value) for value in row]
            self._sheet.append([self._styled(value, alignment=self._wrapped) for value in safe])
            self._csv.writerow(safe)

    def finish(self) -> None:
        self._text.close()
        self._book.save(self.xlsx_path)

    def abandon(self) -> None:
        """After a failure: close both files. Saving the workbook is also what removes the sheet's
        temporary file openpyxl keeps in the system's temporary folder. Nothing here may hide the
        failure itself, and the folder is removed anyway."""
        with contextlib.suppress(Exception):
            self._text.close()
        with contextlib.suppress(Exception):
            self._book.save(self.xlsx_path)
