"""Writing the bot's spreadsheets with openpyxl, from plain data: what runs in the file worker process.

Writing a workbook with openpyxl took the bot from 103 to 124 MB, which a process never gives back
(benchmarks/capacity.py), so workbooks are written by the file worker's child process (`bot.file_worker`), like the charts. The bot works out
every cell — translated, formatted, made formula-safe — and hands over plain picklable data:

- an export's cases as its CSV file on disk, turned into the XLSX by `xlsx_from_csv`, row by row
  (openpyxl's write-only mode), so a year of a big mine is never in either process's memory at once;
- a survey's results as a few `Sheet`s of `Row`s, turned into XLSX bytes by `workbook`.

This module imports only the standard library at import time; the bot uses `formula_safe` and the
data classes, the child the rest.
"""

from __future__ import annotations

import csv
import io
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def formula_safe(value: object) -> object:
    """Text (miners', committees', mine names) must never become a spreadsheet formula."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


@dataclass(frozen=True, slots=True)
class Row:
    """One row of a sheet: its values, already formula-safe, and how it looks: "" plain, "title"
    (bold, larger), "bold", "header" (bold, wrapped, top-aligned), "note" (top-aligned, unwrapped).
    With `percent`, fractional numbers show as percentages."""

    values: tuple = ()
    look: str = ""
    percent: bool = False


@dataclass(frozen=True, slots=True)
class Sheet:
    title: str  # at most 31 characters, none of []:*?/\ (Excel's rules)
    rows: tuple[Row, ...]
    widths: tuple[float, ...] = ()  # of columns A, B, … in characters
    freeze: str | None = None  # the first cell that scrolls, e.g. "B9"


def workbook(sheets: tuple[Sheet, ...]) -> bytes:
    """A small workbook (survey results) as XLSX bytes."""
    from openpyxl import Workbook
    from openpyxl.utils import get_column_letter

    book = Workbook()
    book.remove(book.active)
    for spec in sheets:
        sheet = book.create_sheet(spec.title)
        for number, row in enumerate(spec.rows, start=1):
            sheet.append(list(row.values))
            for column in range(1, len(row.values) + 1):
                _style(sheet.cell(number, column), row)
        for index, width in enumerate(spec.widths, start=1):
            sheet.column_dimensions[get_column_letter(index)].width = width
        sheet.freeze_panes = spec.freeze
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _style(cell, row: Row) -> None:
    from openpyxl.styles import Alignment, Font

    if row.look == "title":
        cell.font = Font(bold=True, size=13)
    elif row.look in ("bold", "header"):
        cell.font = Font(bold=True)
    if row.look == "header":
        cell.alignment = Alignment(wrap_text=True, vertical="top")
    elif row.look == "note":
        cell.alignment = Alignment(wrap_text=False, vertical="top")
    if row.percent and isinstance(cell.value, float):
        cell.number_format = "0%"


def xlsx_from_csv(csv_path: str, xlsx_path: str, sheet_title: str, widths: tuple[float, ...],
                  number_columns: tuple[int, ...] = ()) -> None:
    """The XLSX of an export from its CSV (UTF-8 with BOM): the first row bold, frozen at the top,
    every other cell wrapped and top-aligned; cells of `number_columns` (0-based) that hold a whole
    number become numbers. Written row by row, and openpyxl's temporary file is kept in the export's
    own folder, which the bot removes however the export ends."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    folder = str(Path(xlsx_path).parent)
    with _temporary_files_in(folder), open(csv_path, encoding="utf-8-sig", newline="") as text:
        book = Workbook(write_only=True)
        sheet = book.create_sheet(sheet_title)
        for index, width in enumerate(widths, start=1):  # before the first row, in this mode
            sheet.column_dimensions[get_column_letter(index)].width = width
        sheet.freeze_panes = "A2"
        bold, wrapped = Font(bold=True), Alignment(wrap_text=True, vertical="top")

        def cell(value: object, **style: object) -> WriteOnlyCell:
            made = WriteOnlyCell(sheet, value)
            for name, setting in style.items():
                setattr(made, name, setting)
            return made

        rows = csv.reader(text)
        sheet.append([cell(value, font=bold) for value in next(rows, [])])
        for row in rows:
            sheet.append([cell(int(value) if index in number_columns and value.isdigit() else value,
                               alignment=wrapped) for index, value in enumerate(row)])
        book.save(xlsx_path)  # also removes the sheet's temporary file


@contextmanager
def _temporary_files_in(folder: str) -> Iterator[None]:
    before, tempfile.tempdir = tempfile.tempdir, folder
    try:
        yield
    finally:
        tempfile.tempdir = before
