"""The Monday chart of the committee digest: reports per category per week, as a PNG.

`weekly_chart` works out what the chart says, in the recipient's language: call it inside that
language's i18n context (title, axis labels and legend go through `_()`; week dates through Babel).
`draw_weekly_chart` then has it drawn by the file worker process (`bot.file_worker`), so matplotlib
(with numpy and Pillow, about 70 MB) never enters the bot's process; `bot.chart_drawing` draws it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from aiogram.utils.i18n import gettext as _
from babel.dates import format_skeleton

from bot import file_worker
from bot.chart_drawing import Series, WeeklyChart
from bot.hazards import CATEGORIES


@dataclass(frozen=True, slots=True)
class WeeklyCounts:
    """Reports per category in consecutive weeks; `weeks` are the first days (Mondays), oldest first."""

    weeks: tuple[date, ...]
    counts: dict[str, tuple[int, ...]]

    def total(self) -> int:
        return sum(sum(values) for values in self.counts.values())


def _category_label(code: str) -> str:
    label = CATEGORIES.get(code)
    return str(label) if label is not None else code


def weekly_chart(data: WeeklyCounts, site_name: str, language: str) -> WeeklyChart:
    """A stacked bar per week, one colour per category that had reports (fixed by its place among the
    categories); the texts in the current i18n context."""
    order = {code: index for index, code in enumerate(CATEGORIES)}
    present = sorted((code for code, values in data.counts.items() if sum(values)), key=lambda c: (order.get(c, 99), c))
    return WeeklyChart(
        title=_("{site}: reports per week by category").format(site=site_name),
        ylabel=_("Reports"),
        xlabel=_("Week starting"),
        weeks=tuple(format_skeleton("MMMd", week, locale=language) for week in data.weeks),
        series=tuple(Series(_category_label(code), order.get(code, len(order)), tuple(data.counts[code]))
                     for code in present),
        no_reports=_("No reports in these weeks"),
    )


async def draw_weekly_chart(data: WeeklyCounts, site_name: str, language: str) -> bytes:
    """The chart as PNG bytes, drawn in the file worker process; call inside the language's i18n context."""
    return await file_worker.draw(weekly_chart(data, site_name, language))


def weekly_chart_png(data: WeeklyCounts, site_name: str, language: str) -> bytes:
    """The same PNG drawn in this process (tests and tools; it imports matplotlib here)."""
    return weekly_chart(data, site_name, language).png()
