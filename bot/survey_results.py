"""Survey results for committees: anonymous answer sets aggregated per group and scale, with small groups
hidden so that nobody's answers can be singled out.

Input. One `AnswerSet` per completed survey: its group — (site id, work area), the work area being
"underground" or "surface" — and its *scored* scales (`bot.instruments.score`). Raw item answers never
reach this module: what it cannot see, it cannot leak.

Cells. For every scale there is a cell per group (site × work area), per site (all its work areas), per
work area (all sites) and overall. A cell shows the number of respondents n (those with a score on that
scale), the mean score (0–100), the distribution (respondents per score range 0–19, 20–39, 40–59, 60–79,
80–100) and, for the WHO-5, the share of respondents in each band. All of these add up: a margin is the
sum of its parts, which is exactly what an attacker would use.

Suppression, per scale, with k = `threshold` (10) or `sensitive_threshold` (20) for scales marked
`sensitive` (harassment, violence); neither may be set below 5 (`MIN_THRESHOLD`):

1. Primary: every cell — group or margin — with n < k is hidden.
2. Complementary, repeated until nothing changes. The additive relations are the lines
   site total = Σ its groups, work-area total = Σ its groups, overall = Σ site totals and
   overall = Σ work-area totals.
   a. Pooled subtraction: in a line whose total is shown, the hidden parts together are worth
      "total − shown parts", so they must together cover at least k respondents. Otherwise the smallest
      shown part of that line is hidden too. (This also covers the classic case of one hidden part, and
      stops two people in hidden groups of one from learning each other's answers.)
   b. Exact recovery: all lines are solved together as one linear system over the hidden cells (exact
      rational elimination, both dimensions and the margins at once). A hidden cell whose value the
      system pins down is recoverable. For some recoverable cell, hide the smallest shown part of a line
      through it whose hiding alone makes it unrecoverable, else the smallest such shown total (so a
      margin that gives a hidden cell away together with other margins is hidden too). If no single cell
      helps any of them, make the forced move: in a line where a recoverable cell is the only hidden one,
      hide the line's smallest shown part, else its total. Failing that, the smallest shown cell of a line
      through a recoverable cell.
   Each round hides one more cell and hiding everything is always safe, so this ends.
3. A hidden cell shows only "too few answers": no n, no mean, no distribution. Why it is hidden is not
   shown either, since "hidden to protect another group" would tell that its own n is at least k.

Compute results once over all answer sets of a survey and show subsets of those cells. Aggregating a
subset separately (say, one mine) gives a second, differently suppressed table, and two tables together
can undo the protection.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from types import MappingProxyType

from bot.instruments import Instrument, score

WORK_AREAS = ("underground", "surface")
DEFAULT_THRESHOLD = 10
DEFAULT_SENSITIVE_THRESHOLD = 20
MIN_THRESHOLD = 5
# Score ranges of the distribution: [0, 20), [20, 40), [40, 60), [60, 80), [80, 100].
BUCKETS = ((0, 19), (20, 39), (40, 59), (60, 79), (80, 100))

SiteId = Hashable


@dataclass(frozen=True, slots=True)
class AnswerSet:
    """One respondent's scored scales (scale id → 0–100 or None) and their group (site id, work area)."""

    group: tuple[SiteId, str]
    scores: Mapping[str, float | None]


def answer_set(instrument: Instrument, group: tuple[SiteId, str], answers: Mapping[str, str | None]) -> AnswerSet:
    """Score raw answers (item id → option id) into an `AnswerSet`."""
    return AnswerSet(group, score(instrument, answers))


@dataclass(frozen=True, slots=True)
class Where:
    """A cell's place: a group (site and area), a site total (area None), a work-area total (site None),
    or the overall total (both None)."""

    site: SiteId | None
    area: str | None

    @property
    def kind(self) -> str:
        if self.site is not None:
            return "group" if self.area is not None else "site"
        return "area" if self.area is not None else "all"


OVERALL = Where(None, None)


@dataclass(frozen=True, slots=True)
class Cell:
    where: Where
    hidden: bool
    n: int | None = None
    mean: float | None = None
    distribution: tuple[int, ...] | None = None  # respondents per BUCKETS range
    band_shares: tuple[float, ...] | None = None  # WHO-5: share (0–1) per band, in the instrument's order


@dataclass(frozen=True, slots=True)
class ScaleResult:
    scale_id: str
    threshold: int
    cells: Mapping[Where, Cell]

    def cell(self, where: Where) -> Cell:
        return self.cells[where]


@dataclass(frozen=True, slots=True)
class Results:
    instrument_id: str
    threshold: int
    sensitive_threshold: int
    columns: tuple[Where, ...]  # display order: per site its groups then its total; work-area totals; overall
    scales: tuple[ScaleResult, ...]

    def scale(self, scale_id: str) -> ScaleResult:
        for result in self.scales:
            if result.scale_id == scale_id:
                return result
        raise KeyError(scale_id)

    @property
    def sites(self) -> tuple[SiteId, ...]:
        return tuple(where.site for where in self.columns if where.kind == "site")


def check_thresholds(threshold: int, sensitive_threshold: int) -> None:
    for name, value in (("threshold", threshold), ("sensitive_threshold", sensitive_threshold)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"{name} must be a whole number, not {value!r}")
        if value < MIN_THRESHOLD:
            raise ValueError(f"{name} is {value}; it can never be below {MIN_THRESHOLD}")
    if sensitive_threshold < threshold:
        raise ValueError(f"sensitive_threshold ({sensitive_threshold}) must not be below threshold ({threshold})")


def aggregate(instrument: Instrument, answer_sets: Iterable[AnswerSet], *, threshold: int = DEFAULT_THRESHOLD,
              sensitive_threshold: int = DEFAULT_SENSITIVE_THRESHOLD) -> Results:
    """Per scale and cell: n, mean, distribution, WHO-5 band shares, with suppression (module docstring)."""
    check_thresholds(threshold, sensitive_threshold)
    sets = list(answer_sets)
    scale_ids = {scale.id for scale in instrument.scales}
    for answers in sets:
        _check_answer_set(answers, scale_ids)

    groups = sorted({Where(*answers.group) for answers in sets}, key=_order)
    sites = sorted({where.site for where in groups}, key=_site_order)
    areas = [area for area in WORK_AREAS if any(where.area == area for where in groups)]
    columns = [*(where for site in sites for where in [*(g for g in groups if g.site == site), Where(site, None)]),
               *(Where(None, area) for area in areas), OVERALL]

    results = []
    for scale in instrument.scales:
        k = sensitive_threshold if scale.sensitive else threshold
        values: dict[Where, list[float]] = {where: [] for where in columns}
        for answers in sets:
            value = answers.scores.get(scale.id)
            if value is None:
                continue
            site, area = answers.group
            for where in (Where(site, area), Where(site, None), Where(None, area), OVERALL):
                values[where].append(value)
        hidden = suppress({where: len(scores) for where, scores in values.items()}, k)
        cells = {where: Cell(where, hidden=True) if where in hidden else _cell(instrument, where, values[where])
                 for where in columns}
        results.append(ScaleResult(scale.id, k, MappingProxyType(cells)))
    return Results(instrument.id, threshold, sensitive_threshold, tuple(columns), tuple(results))


def _check_answer_set(answers: AnswerSet, scale_ids: set[str]) -> None:
    if not isinstance(answers.group, tuple) or len(answers.group) != 2 or answers.group[0] is None:
        raise ValueError(f"a group is (site id, work area), not {answers.group!r}")
    if answers.group[1] not in WORK_AREAS:
        raise ValueError(f"work area {answers.group[1]!r} is not one of {', '.join(WORK_AREAS)}")
    for scale_id, value in answers.scores.items():
        if scale_id not in scale_ids:
            raise ValueError(f"no scale {scale_id!r} in this instrument")
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 100):
            raise ValueError(f"scale {scale_id}: a score is between 0 and 100, not {value!r}")


def _cell(instrument: Instrument, where: Where, values: list[float]) -> Cell:
    n = len(values)  # suppression guarantees n ≥ k ≥ 5 for a shown cell
    distribution = [0] * len(BUCKETS)
    for value in values:
        distribution[min(int(value // 20), len(BUCKETS) - 1)] += 1
    shares = None
    if instrument.scoring == "who5":
        counts = [0] * len(instrument.bands)
        for value in values:
            counts[next(i for i, band in enumerate(instrument.bands) if value <= band.max)] += 1
        shares = tuple(count / n for count in counts)
    return Cell(where, hidden=False, n=n, mean=sum(values) / n, distribution=tuple(distribution), band_shares=shares)


def _site_order(site: SiteId) -> tuple:
    return (type(site).__name__, site)


def _order(where: Where) -> tuple:
    return (_site_order(where.site) if where.site is not None else ("~",),
            WORK_AREAS.index(where.area) if where.area is not None else len(WORK_AREAS))


# --- suppression -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Line:
    """An additive relation between shown numbers: total = Σ parts."""

    total: Where
    parts: tuple[Where, ...]


def lines(cells: Iterable[Where]) -> list[Line]:
    """The additive relations among the cells of one scale: sites, work areas, and the overall total twice."""
    cells = set(cells)
    groups = sorted((where for where in cells if where.kind == "group"), key=_order)
    result = []
    for total in sorted((where for where in cells if where.kind == "site"), key=_order):
        result.append(Line(total, tuple(g for g in groups if g.site == total.site)))
    for total in sorted((where for where in cells if where.kind == "area"), key=_order):
        result.append(Line(total, tuple(g for g in groups if g.area == total.area)))
    if OVERALL in cells:
        result.append(Line(OVERALL, tuple(sorted((w for w in cells if w.kind == "site"), key=_order))))
        result.append(Line(OVERALL, tuple(sorted((w for w in cells if w.kind == "area"), key=_order))))
    return [line for line in result if line.parts]


def suppress(counts: Mapping[Where, int], k: int) -> frozenset[Where]:
    """Cells to hide, given the respondents n of every cell (groups and margins) of one scale."""
    if k < MIN_THRESHOLD:
        raise ValueError(f"the threshold can never be below {MIN_THRESHOLD}")
    relations = lines(counts)
    hidden = {where for where, n in counts.items() if n < k}
    while (more := _next_to_hide(relations, counts, hidden, k)) is not None:
        hidden.add(more)
    return frozenset(hidden)


def _smallest(candidates: Iterable[Where], counts: Mapping[Where, int]) -> Where | None:
    """The cell with the fewest respondents (ties: in column order), or None."""
    return min(candidates, key=lambda where: (counts[where], _order(where)), default=None)


def _next_to_hide(relations: list[Line], counts: Mapping[Where, int], hidden: set[Where], k: int) -> Where | None:
    # (a) What subtraction gives directly — the hidden parts of a line, pooled — must cover ≥ k people.
    for line in relations:
        if line.total in hidden:
            continue
        hidden_parts = [part for part in line.parts if part in hidden]
        if hidden_parts and sum(counts[part] for part in hidden_parts) < k:
            choice = _smallest((part for part in line.parts if part not in hidden), counts)
            if choice is not None:  # None cannot happen: all parts hidden means they add up to the total
                return choice
    # (b) No hidden cell may be pinned down by all the lines solved together.
    recovered = recoverable(relations, hidden)

    def by_size(where: Where) -> tuple:
        return counts[where], _order(where)

    for cell in recovered:
        # The smallest shown part, else total, of a line through the cell whose hiding stops the recovery.
        # (A sibling is no use when, say, a mine's only group is given away by the mine's own total.)
        involved = [line for line in relations if cell == line.total or cell in line.parts]
        parts = sorted({part for line in involved for part in line.parts if part not in hidden}, key=by_size)
        totals = sorted({line.total for line in involved if line.total not in hidden}, key=by_size)
        for candidate in (*parts, *totals):
            if cell not in recoverable(relations, hidden | {candidate}):
                return candidate
    for cell in recovered:
        # No single cell helps. A line in which this cell is the only hidden one must lose another cell
        # whatever else is done: its smallest shown part, else its total.
        for line in relations:
            members = (line.total, *line.parts)
            if cell in members and all(where == cell or where not in hidden for where in members):
                return _smallest((part for part in line.parts if part not in hidden), counts) or line.total
    for cell in recovered:
        involved = [line for line in relations if cell == line.total or cell in line.parts]
        choice = _smallest((where for line in involved for where in (*line.parts, line.total)
                            if where not in hidden), counts)
        if choice is not None:
            return choice
    return _smallest((where for where in counts if where not in hidden), counts) if recovered else None


def recoverable(relations: Sequence[Line], hidden: set[Where] | frozenset[Where]) -> list[Where]:
    """Hidden cells whose value follows from the shown ones through the lines (all solved together).

    Each line gives total − Σ parts = 0; moving the shown cells to the right-hand side leaves a linear
    system in the hidden cells. A hidden cell is determined exactly when, in the reduced row echelon form,
    it is a pivot whose row has no free (undetermined) cell in it."""
    variables = sorted(hidden, key=_order)
    column = {where: index for index, where in enumerate(variables)}
    rows = []
    for line in relations:
        row = [Fraction(0)] * len(variables)
        if line.total in column:
            row[column[line.total]] += 1
        for part in line.parts:
            if part in column:
                row[column[part]] -= 1
        if any(row):
            rows.append(row)
    pivots = _reduce(rows, len(variables))
    return [variables[col] for row, col in pivots
            if all(value == 0 for other, value in enumerate(rows[row]) if other != col)]


def _reduce(rows: list[list[Fraction]], width: int) -> list[tuple[int, int]]:
    """Gauss–Jordan elimination in place (exact fractions); returns (row, pivot column) pairs."""
    pivots = []
    top = 0
    for col in range(width):
        found = next((r for r in range(top, len(rows)) if rows[r][col] != 0), None)
        if found is None:
            continue
        rows[top], rows[found] = rows[found], rows[top]
        lead = rows[top][col]
        rows[top] = [value / lead for value in rows[top]]
        for r in range(len(rows)):
            if r != top and rows[r][col] != 0:
                factor = rows[r][col]
                rows[r] = [a - factor * b for a, b in zip(rows[r], rows[top], strict=True)]
        pivots.append((top, col))
        top += 1
    return pivots
