"""The Monday chart of the committee digest: reports per category per week, as a PNG.

Rendered off-screen (Agg) with matplotlib's object API, so no display and no global pyplot state.
Call it inside the recipient language's i18n context: labels and legend go through `_()`.

matplotlib (with numpy and Pillow) is imported when the first chart is drawn, not with this module:
it adds about 30 MB to the process, and most days no chart is drawn (see benchmarks/capacity.py)."""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date

from aiogram.utils.i18n import gettext as _
from babel.dates import format_skeleton

from bot.hazards import CATEGORIES

# 960 × 600 px: readable on a phone without zooming, small enough to send quickly.
FIGURE_INCHES = (8, 5)
DPI = 120


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


def agg_matplotlib():
    """matplotlib, imported on first use, with the off-screen Agg backend (also for `bot.survey_report`)."""
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib


def _colour(index: int):
    """A fixed colour per category, so a category looks the same from one Monday to the next:
    the 20 colours of tab20, dark shades first, so neighbours never differ only in lightness."""
    shades = [*range(0, 20, 2), *range(1, 20, 2)]
    return agg_matplotlib().colormaps["tab20"](shades[index % 20])


def weekly_chart_png(data: WeeklyCounts, site_name: str, language: str) -> bytes:
    """A stacked bar per week, one colour per category that had reports; returns PNG bytes."""
    agg_matplotlib()
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=FIGURE_INCHES, dpi=DPI, layout="constrained")
    axes = figure.add_subplot()
    positions = list(range(len(data.weeks)))
    order = {code: index for index, code in enumerate(CATEGORIES)}
    present = sorted((code for code, values in data.counts.items() if sum(values)), key=lambda c: (order.get(c, 99), c))
    bottom = [0] * len(positions)
    for code in present:
        values = list(data.counts[code])
        axes.bar(positions, values, bottom=bottom, width=0.7, color=_colour(order.get(code, len(order))),
                 label=_category_label(code))
        bottom = [low + value for low, value in zip(bottom, values, strict=True)]

    axes.set_title(_("{site}: reports per week by category").format(site=site_name), fontsize=12)
    axes.set_ylabel(_("Reports"))
    axes.set_xlabel(_("Week starting"))
    axes.set_xticks(positions, [format_skeleton("MMMd", week, locale=language) for week in data.weeks])
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.grid(axis="y", alpha=0.3)
    axes.set_axisbelow(True)
    if present:
        axes.set_ylim(0, max(bottom) * 1.08)
        figure.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
    else:
        axes.set_ylim(0, 1)
        axes.text(0.5, 0.5, _("No reports in these weeks"), transform=axes.transAxes, ha="center", va="center")

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()
