"""Drawing the bot's charts with matplotlib, from plain data: what runs in the file worker process.

`bot.charts` (the digest's weekly chart) and `bot.survey_report` (survey results) work out everything
a chart says — translated labels and titles, dates, numbers, colours by index — in the bot's process
and put it in a `WeeklyChart` or `ResultsChart`. These are plain picklable data: `bot.file_worker`
sends one to its child process, where `render` draws it and returns the PNG bytes.

So this module imports nothing of the bot and nothing that reads settings, translations or the
database; only the standard library at import time, and matplotlib (with numpy and Pillow) when the
first chart is drawn (see `bot.worker_child` for how the child imports it without the rest of the bot).

Drawn off-screen (Agg) with matplotlib's object API, so no display and no global pyplot state.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

# The digest's weekly chart: 960 × 600 px, readable on a phone without zooming, small enough to send quickly.
FIGURE_INCHES = (8, 5)
DPI = 120
# Survey results: 960 px wide, as tall as the groups or scales need.
RESULTS_WIDTH_INCHES = 8
GREY = "#d9d9d9"


def agg_matplotlib():
    """matplotlib, imported on first use, with the off-screen Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    return matplotlib


def render(chart: WeeklyChart | ResultsChart) -> bytes:
    """The chart as PNG bytes (what the worker process runs)."""
    return chart.png()


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


# --- the digest's weekly chart -------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Series:
    """One category's bars: its label, its colour (`colour` is the category's place in the list of
    categories) and its count per week."""

    label: str
    colour: int
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class WeeklyChart:
    """A stacked bar per week; `series` bottom first, only categories that had reports."""

    title: str
    ylabel: str
    xlabel: str
    weeks: tuple[str, ...]  # the x tick labels
    series: tuple[Series, ...]
    no_reports: str  # shown instead when no series

    def png(self) -> bytes:
        agg_matplotlib()
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator

        figure = Figure(figsize=FIGURE_INCHES, dpi=DPI, layout="constrained")
        axes = figure.add_subplot()
        positions = list(range(len(self.weeks)))
        bottom = [0] * len(positions)
        for series in self.series:
            values = list(series.values)
            axes.bar(positions, values, bottom=bottom, width=0.7, color=colour(series.colour), label=series.label)
            bottom = [low + value for low, value in zip(bottom, values, strict=True)]

        axes.set_title(self.title, fontsize=12)
        axes.set_ylabel(self.ylabel)
        axes.set_xlabel(self.xlabel)
        axes.set_xticks(positions, list(self.weeks))
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(axis="y", alpha=0.3)
        axes.set_axisbelow(True)
        if self.series:
            axes.set_ylim(0, max(bottom) * 1.08)
            figure.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)
        else:
            axes.set_ylim(0, 1)
            axes.text(0.5, 0.5, self.no_reports, transform=axes.transAxes, ha="center", va="center")
        return _png(figure)


def colour(index: int):
    """A fixed colour per category, so a category looks the same from one Monday to the next:
    the 20 colours of tab20, dark shades first, so neighbours never differ only in lightness."""
    shades = [*range(0, 20, 2), *range(1, 20, 2)]
    return agg_matplotlib().colormaps["tab20"](shades[index % 20])


# --- survey results ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MeanGrid:
    """Mean score per scale (rows) and group (columns). `goodness` is 0–100 with higher better (NaN:
    hidden); `texts` the number to write in each cell, None for a hidden one (which gets `hidden_text`)."""

    goodness: tuple[tuple[float, ...], ...]
    texts: tuple[tuple[str | None, ...], ...]
    hidden_text: str
    small: bool  # many columns: smaller type, labels turned
    row_labels: tuple[str, ...]
    column_labels: tuple[str, ...]
    separators: tuple[int, ...]  # column edges with a white line (between mines and totals)
    xlabel: str


@dataclass(frozen=True, slots=True)
class BandBars:
    """One stacked bar per group (rows): `widths[band][row]` in percent, worst band first; a hidden
    row (`texts[row]` None) is a grey bar with `hidden_text`, a shown one has `texts[row]` at its end."""

    band_labels: tuple[str, ...]
    widths: tuple[tuple[float, ...], ...]
    texts: tuple[str | None, ...]
    hidden_text: str
    row_labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ResultsChart:
    """A survey's results: `grid` or `bands`, or neither and `empty_text` when there is no group."""

    title: str
    height: float  # inches
    empty_text: str
    grid: MeanGrid | None = None
    bands: BandBars | None = None

    def png(self) -> bytes:
        agg_matplotlib()
        from matplotlib.figure import Figure

        figure = Figure(figsize=(RESULTS_WIDTH_INCHES, self.height), dpi=DPI, layout="constrained")
        axes = figure.add_subplot()
        axes.set_title(self.title, fontsize=11)
        if self.bands is not None:
            _band_bars(figure, axes, self.bands)
        elif self.grid is not None:
            _mean_grid(axes, self.grid)
        else:
            axes.set_axis_off()
            axes.text(0.5, 0.5, self.empty_text, transform=axes.transAxes, ha="center", va="center")
        return _png(figure)


def _mean_grid(axes, grid: MeanGrid) -> None:
    from matplotlib.colors import ListedColormap

    colours = ListedColormap(agg_matplotlib().colormaps["RdYlGn"](range(40, 216))).with_extremes(bad=GREY)
    axes.imshow([list(row) for row in grid.goodness], cmap=colours, vmin=0, vmax=100, aspect="auto")
    small = grid.small
    for row, texts in enumerate(grid.texts):
        for col, text in enumerate(texts):
            if text is None:
                axes.text(col, row, grid.hidden_text, ha="center", va="center", fontsize=5.5 if small else 7,
                          color="#555555")
            else:
                axes.text(col, row, text, ha="center", va="center", fontsize=9, fontweight="bold")

    axes.set_yticks(range(len(grid.row_labels)), list(grid.row_labels), fontsize=8)
    axes.set_xticks(range(len(grid.column_labels)), list(grid.column_labels), fontsize=6.5 if small else 7.5,
                    rotation=90 if small else 0)
    axes.xaxis.tick_top()
    axes.tick_params(length=0)
    for edge in grid.separators:
        axes.axvline(edge - 0.5, color="white", linewidth=3)
    for spine in axes.spines.values():
        spine.set_visible(False)
    axes.set_xlabel(grid.xlabel, fontsize=8)


def _band_bars(figure, axes, bands: BandBars) -> None:
    palette = agg_matplotlib().colormaps["RdYlGn"]
    count = len(bands.band_labels)
    steps = max(1, count - 1)
    shades = [palette(0.12 + 0.76 * index / steps) for index in range(count)]
    positions = range(len(bands.row_labels))
    left = [0.0] * len(bands.row_labels)
    for index, label in enumerate(bands.band_labels):
        widths = list(bands.widths[index])
        axes.barh(positions, widths, left=left, color=shades[index], height=0.7, label=label)
        left = [start + width for start, width in zip(left, widths, strict=True)]
    for row, text in enumerate(bands.texts):
        if text is None:
            axes.barh(row, 100, color=GREY, height=0.7)
            axes.text(50, row, bands.hidden_text, ha="center", va="center", fontsize=8, color="#555555")
        else:
            axes.text(101, row, text, va="center", fontsize=8)
    axes.set_yticks(list(positions), list(bands.row_labels), fontsize=8)
    axes.invert_yaxis()
    axes.set_xlim(0, 118)
    axes.set_xticks([0, 25, 50, 75, 100], ["0%", "25%", "50%", "75%", "100%"], fontsize=8)
    axes.grid(axis="x", alpha=0.3)
    axes.set_axisbelow(True)
    for spine in ("top", "right"):
        axes.spines[spine].set_visible(False)
    figure.legend(loc="outside lower center", ncols=min(3, count), fontsize=8, frameon=False)
