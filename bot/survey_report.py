"""Survey results as a committee sees them: a PNG chart and an XLSX workbook, in the member's language.

Both render `bot.survey_results.Results`, which hold aggregates only: there is no individual answer to
leak. Hidden cells say "too few answers" and nothing else. Scale, instrument and band texts come from
the instrument file; the rest goes through `_()`. Call inside the recipient language's i18n context.
The chart's content is worked out here (`results_chart`) and drawn by the file worker process
(`draw_results_chart`, see `bot.file_worker` and `bot.chart_drawing`), so matplotlib never enters the
bot's process. The workbook likewise: its cells are worked out here (`results_sheets`) and written by
the file worker (`make_results_xlsx`, see `bot.sheet_writing`), so openpyxl stays out too."""

from __future__ import annotations

import math
import textwrap
from collections.abc import Collection, Iterable, Mapping

from aiogram.utils.i18n import gettext as _

from bot import file_worker
from bot.chart_drawing import BandBars, MeanGrid, ResultsChart
from bot.instruments import Instrument
from bot.sheet_writing import Row, Sheet, formula_safe, workbook
from bot.survey_results import BUCKETS, Results, Where


def too_few_answers() -> str:
    return _("too few answers")


def area_label(area: str | None) -> str:
    if area == "underground":
        return _("Underground")
    if area == "surface":
        return _("Surface")
    return _("Underground and surface")


def column_label(where: Where, site_names: Mapping, separator: str = "\n") -> str:
    site = _("All mines") if where.site is None else site_names.get(where.site, str(where.site))
    return f"{site}{separator}{area_label(where.area)}"


def shown_columns(results: Results, sites: Collection | None) -> list[Where]:
    """All columns, or only those of `sites` plus the all-mine totals (which every committee may see)."""
    return [where for where in results.columns if sites is None or where.site is None or where.site in sites]


# --- chart -------------------------------------------------------------------------------------------

def results_chart(instrument: Instrument, results: Results, site_names: Mapping, language: str,
                  sites: Collection | None = None) -> ResultsChart:
    """The committee's chart: for the WHO-5, the share of respondents in each band per group;
    otherwise the mean score per scale (rows) and group (columns). Hidden cells say "too few answers"."""
    columns = shown_columns(results, sites)
    title = _("{survey}: mean score by group, 0–100").format(survey=instrument.title.get(language))
    if instrument.bands:
        title = _("{survey}: share of respondents in each band").format(survey=instrument.title.get(language))
    rows = len(columns) if instrument.bands else len(instrument.scales)
    grid = bands = None
    if columns and instrument.bands:
        bands = _band_bars(instrument, results, columns, site_names, language)
    elif columns:
        grid = _mean_grid(instrument, results, columns, site_names, language)
    return ResultsChart(title="\n".join(textwrap.wrap(title, 70)),
                        height=2.4 + 0.42 * rows + (0.9 if len(columns) > 6 else 0.4),
                        empty_text=_("No answers yet"), grid=grid, bands=bands)


async def draw_results_chart(instrument: Instrument, results: Results, site_names: Mapping, language: str,
                             sites: Collection | None = None) -> bytes:
    """The chart as PNG bytes, drawn in the file worker process; call inside the language's i18n context."""
    return await file_worker.draw(results_chart(instrument, results, site_names, language, sites))


def results_chart_png(instrument: Instrument, results: Results, site_names: Mapping, language: str,
                      sites: Collection | None = None) -> bytes:
    """The same PNG drawn in this process (tests and tools; it imports matplotlib here)."""
    return results_chart(instrument, results, site_names, language, sites).png()


def _mean_grid(instrument: Instrument, results: Results, columns: list[Where], site_names: Mapping,
               language: str) -> MeanGrid:
    """Colour says good or bad: for a scale where higher is worse (demands, insecurity) it is flipped."""
    scales = instrument.scales
    goodness = [[math.nan] * len(columns) for _ in scales]
    texts: list[list[str | None]] = [[None] * len(columns) for _ in scales]
    for row, scale in enumerate(scales):
        for col, where in enumerate(columns):
            cell = results.scale(scale.id).cell(where)
            if not cell.hidden:
                goodness[row][col] = cell.mean if scale.higher_is_better else 100 - cell.mean
                texts[row][col] = f"{cell.mean:.0f}"
    small = len(columns) > 6
    return MeanGrid(
        goodness=tuple(tuple(row) for row in goodness),
        texts=tuple(tuple(row) for row in texts),
        hidden_text="\n".join(textwrap.wrap(too_few_answers(), 9 if small else 12)),
        small=small,
        row_labels=tuple("\n".join(textwrap.wrap(scale.name.get(language), 28)) for scale in scales),
        column_labels=tuple("\n".join(textwrap.wrap(column_label(where, site_names, " — "), 14 if small else 12))
                            for where in columns),
        # white lines between mines and totals
        separators=tuple(edge for edge in range(1, len(columns))
                         if columns[edge - 1].kind != "group" or columns[edge].site != columns[edge - 1].site),
        xlabel=_("Colour: green is better, red is worse."),
    )


def _band_bars(instrument: Instrument, results: Results, columns: list[Where], site_names: Mapping,
               language: str) -> BandBars:
    """One stacked bar per group, worst band first and red; the mean score at the end of the bar."""
    result = results.scale(instrument.scales[0].id)
    cells = [result.cell(where) for where in columns]
    return BandBars(
        band_labels=tuple(band.label.get(language) for band in instrument.bands),
        widths=tuple(tuple(0.0 if cell.hidden else cell.band_shares[index] * 100 for cell in cells)
                     for index in range(len(instrument.bands))),
        texts=tuple(None if cell.hidden else _("mean {mean}").format(mean=f"{cell.mean:.0f}") for cell in cells),
        hidden_text=too_few_answers(),
        row_labels=tuple(column_label(where, site_names, " — ") for where in columns),
    )


# --- workbook ----------------------------------------------------------------------------------------

def _sheet_title(title: str, taken: set[str]) -> str:
    cleaned = "".join(" " if ch in "[]:*?/\\" else ch for ch in title).strip()[:31] or "Survey"
    name, number = cleaned, 2
    while name.lower() in taken:
        suffix = f" ({number})"
        name, number = cleaned[:31 - len(suffix)] + suffix, number + 1
    taken.add(name.lower())
    return name


def results_sheets(reports: Iterable[tuple[Instrument, Results]], site_names: Mapping, language: str,
                   sites: Collection | None = None) -> tuple[Sheet, ...]:
    """One sheet per instrument: groups as columns; per scale n, mean, distribution and WHO-5 band shares."""
    taken: set[str] = set()
    sheets = tuple(_sheet(_sheet_title(instrument.title.get(language), taken), instrument, results, site_names,
                          language, sites) for instrument, results in reports)
    return sheets or (Sheet("MineVoice", (Row((_("No answers yet"),)),)),)


async def make_results_xlsx(reports: Iterable[tuple[Instrument, Results]], site_names: Mapping, language: str,
                            sites: Collection | None = None) -> bytes:
    """The results workbook as XLSX bytes, written in the file worker process; call inside the
    language's i18n context."""
    return await file_worker.run(workbook, results_sheets(reports, site_names, language, sites))


def results_xlsx(reports: Iterable[tuple[Instrument, Results]], site_names: Mapping, language: str,
                 sites: Collection | None = None) -> bytes:
    """The same workbook written in this process (tests and tools; it imports openpyxl here)."""
    return workbook(results_sheets(reports, site_names, language, sites))


def _translation_status(kind: str) -> str:
    if kind == "official":
        return _("official translation")
    if kind == "unofficial":
        return _("unofficial translation by the MineVoice project")
    return _("original text by the union and the MineVoice project")


def _sheet(title: str, instrument: Instrument, results: Results, site_names: Mapping, language: str,
           sites: Collection | None) -> Sheet:
    columns = shown_columns(results, sites)
    hidden = too_few_answers()
    rows: list[Row] = []

    def put(values: Iterable = (), look: str = "", *, percent: bool = False) -> None:
        rows.append(Row(tuple(formula_safe(value) for value in values), look, percent))

    put([instrument.title.get(language)], "title")
    put([_("Aggregated results only: no individual answers.")], "note")
    put([_("A group with fewer than {threshold} respondents ({sensitive} for questions on harassment or "
           "violence) shows only “too few answers”; some other groups are hidden too, so that a hidden group "
           "cannot be worked out from the totals.").format(threshold=results.threshold,
                                                            sensitive=results.sensitive_threshold)], "note")
    put([_("Source: {attribution}").format(attribution=instrument.attribution)], "note")
    put([_("Licence: {licence}").format(licence=instrument.licence)], "note")
    put([_("Translation: {status}").format(status=_translation_status(instrument.translation_kind(language)))], "note")
    put()
    put(["", *(column_label(where, site_names) for where in columns)], "header")
    header_row = len(rows)

    for scale in instrument.scales:
        result = results.scale(scale.id)
        cells = [result.cell(where) for where in columns]
        direction = _("higher is better") if scale.higher_is_better else _("higher is worse")
        put([f"{scale.name.get(language)} ({direction})"], "bold")
        put([_("Respondents"), *(hidden if cell.hidden else cell.n for cell in cells)])
        put([_("Mean score (0–100)"), *(hidden if cell.hidden else round(cell.mean, 1) for cell in cells)])
        for index, (low, high) in enumerate(BUCKETS):
            put([_("Respondents with score {low}–{high}").format(low=low, high=high),
                 *(hidden if cell.hidden else cell.distribution[index] for cell in cells)])
        for index, band in enumerate(instrument.bands):
            put([_("Share: {band}").format(band=band.label.get(language)),
                 *(hidden if cell.hidden else cell.band_shares[index] for cell in cells)], percent=True)
        put()
    return Sheet(title, tuple(rows), widths=(46, *(16,) * len(columns)), freeze=f"B{header_row + 1}")
