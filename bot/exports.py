"""Case exports for meetings with the employer or the inspectorate: XLSX and CSV, in the
member's language. There is no reporter data to leak: reports hold none."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import gettext as _

from bot.access import AccessService, NotAllowed
from bot.hazards import CATEGORIES, SEVERITIES, STATUSES
from bot.reports import current_hour, parse_stamp
from storage.reports import Case, ReportEvent, ReportRepository
from storage.sites import SiteRepository

PERIODS = (7, 30, 90, 365)


@dataclass(frozen=True, slots=True)
class Export:
    xlsx: bytes
    csv: bytes
    rows: int


class ExportService:
    def __init__(self, reports: ReportRepository, sites: SiteRepository, access: AccessService) -> None:
        self._reports = reports
        self._sites = sites
        self._access = access

    async def export(self, user_id: int, days: int, language: str, tz: ZoneInfo, now: datetime | None = None) -> Export:
        site_ids = sorted(await self._access.committee_sites(user_id))
        if not site_ids:
            raise NotAllowed
        since = current_hour((now or datetime.now(UTC)) - timedelta(days=days))
        cases = await self._reports.cases_since(site_ids, since)
        header = [_("Case code"), _("Received"), _("Mine"), _("Hazard"), _("Urgency"), _("Status"), _("Where"),
                  _("What is happening"), _("Photos"), _("History")]
        rows = [await self._row(case, timeline, language, tz) for case, timeline in cases]
        del cases
        # Seconds of work for a year of a big mine: in a worker thread, so the bot keeps answering.
        xlsx, csv_bytes = await asyncio.to_thread(_files, header, rows)
        return Export(xlsx, csv_bytes, len(rows))

    async def _row(self, case: Case, timeline: list[ReportEvent], language: str, tz: ZoneInfo) -> list:
        site = await self._sites.get(case.site_id)
        return [
            case.case_code,
            _local(case.created_hour, tz),
            site.name(language) if site else "",
            str(CATEGORIES.get(case.category, case.category)),
            str(SEVERITIES.get(case.severity, case.severity)),
            str(STATUSES.get(case.status, case.status)),
            case.location or "",
            case.description,
            len(case.photo_file_ids),
            "\n".join(_history_line(event, tz) for event in timeline),
        ]


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


def _files(header: list[str], rows: list[list]) -> tuple[bytes, bytes]:
    return _xlsx(header, rows), _csv(header, rows)


def _xlsx(header: list[str], rows: list[list]) -> bytes:
    """Streamed (openpyxl's write-only mode): each row is written out when appended. A workbook
    that keeps every cell as an object took some 80 MB more for a year of a big mine (32,000 cases,
    benchmarks/capacity.py). openpyxl itself is imported only when a workbook is made."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font

    book = Workbook(write_only=True)
    sheet = book.create_sheet("MineVoice")
    widths = (11, 17, 24, 24, 22, 20, 24, 60, 8, 60)
    for column, width in zip("ABCDEFGHIJ", widths, strict=True):  # before the first row, in this mode
        sheet.column_dimensions[column].width = width
    sheet.freeze_panes = "A2"
    bold, wrapped = Font(bold=True), Alignment(wrap_text=True, vertical="top")

    def cell(value: object, *, font: Font | None = None, alignment: Alignment | None = None) -> WriteOnlyCell:
        written = WriteOnlyCell(sheet, value)
        if font is not None:
            written.font = font
        if alignment is not None:
            written.alignment = alignment
        return written

    sheet.append([cell(value, font=bold) for value in header])
    for row in rows:
        sheet.append([cell(_safe_cell(value), alignment=wrapped) for value in row])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _csv(header: list[str], rows: list[list]) -> bytes:
    """Encoded as it is written, with the BOM that makes Excel read Cyrillic right."""
    buffer = io.BytesIO()
    text = io.TextIOWrapper(buffer, encoding="utf-8-sig", newline="")
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows([_safe_cell(value) for value in row] for row in rows)
    text.flush()
    return buffer.getvalue()
