"""Survey results: thresholds, complementary suppression (attacked by subtraction, and checked by linear
algebra independent of the module's own), and the chart and workbook committees get."""

from __future__ import annotations

import dataclasses
import io
import itertools
import random
import struct

import numpy as np
import pytest
from openpyxl import load_workbook

from bot.i18n import build_i18n
from bot.instruments import load_instruments
from bot.survey_report import results_chart_png, results_xlsx
from bot.survey_results import (
    BUCKETS,
    OVERALL,
    AnswerSet,
    Where,
    aggregate,
    answer_set,
    check_thresholds,
    suppress,
)

U, S = "underground", "surface"


@pytest.fixture(scope="module")
def checklist():
    return load_instruments()["union_mining_checklist"]


@pytest.fixture(scope="module")
def who5():
    return load_instruments()["who5"]


@pytest.fixture(scope="module")
def copsoq():
    return load_instruments()["copsoq3_core"]


@pytest.fixture
def english():
    i18n = build_i18n("en")
    with i18n.context(), i18n.use_locale("en"):
        yield


def people(site, area: str, count: int, scores: dict | None = None) -> list[AnswerSet]:
    return [AnswerSet((site, area), dict(scores or {"OP": 50.0, "HV": 50.0})) for _ in range(count)]


def hidden_cells(result, scale_id: str) -> set[Where]:
    return {where for where, cell in result.scale(scale_id).cells.items() if cell.hidden}


# --- independent model of what a reader can compute ----------------------------------------------
# The data's free values are the groups (site × area). Every cell is a sum of groups, so a cell is a
# vector over the groups; whatever a reader can compute from shown cells is a combination of theirs.

def vector(where: Where, groups: list[Where]) -> np.ndarray:
    return np.array([
        1.0 if (where.site in (None, group.site) and where.area in (None, group.area)) else 0.0 for group in groups])


def recoverable_by_algebra(cells: list[Where], hidden: set[Where]) -> list[Where]:
    """Hidden cells lying in the span of the shown ones: computable from them by some combination."""
    groups = [where for where in cells if where.kind == "group"]
    shown = [vector(where, groups) for where in cells if where not in hidden]
    base = np.linalg.matrix_rank(np.array(shown)) if shown else 0
    return [where for where in hidden
            if (np.linalg.matrix_rank(np.array([*shown, vector(where, groups)])) if shown else 1) == base]


def peel(cells: dict[Where, tuple[int, float]], hidden: set[Where]) -> dict[Where, tuple[int, float]]:
    """The attack: take each total and subtract the parts you know; whenever a line has one unknown left,
    you know it too; repeat until nothing new. Returns the hidden cells worked out, with their value."""
    known = {where: value for where, value in cells.items() if where not in hidden}
    sites = {where.site for where in cells if where.kind == "site"}
    areas = {where.area for where in cells if where.kind == "area"}
    relations = [(Where(site, None), [w for w in cells if w.kind == "group" and w.site == site]) for site in sites]
    relations += [(Where(None, area), [w for w in cells if w.kind == "group" and w.area == area]) for area in areas]
    relations += [(OVERALL, [w for w in cells if w.kind == "site"]), (OVERALL, [w for w in cells if w.kind == "area"])]
    found: dict[Where, tuple[int, float]] = {}
    progress = True
    while progress:
        progress = False
        for total, parts in relations:
            unknown = [where for where in (total, *parts) if where not in known]
            if len(unknown) != 1:
                continue
            (missing,) = unknown
            if missing == total:
                value = (sum(known[p][0] for p in parts), sum(known[p][1] for p in parts))
            else:
                others = [p for p in parts if p != missing]
                value = (known[total][0] - sum(known[p][0] for p in others),
                         known[total][1] - sum(known[p][1] for p in others))
            known[missing] = found[missing] = value
            progress = True
    return found


def truth(answer_sets: list[AnswerSet], scale_id: str) -> dict[Where, tuple[int, float]]:
    """n and sum of scores of every cell, computed here from scratch."""
    cells: dict[Where, list[float]] = {}
    for answers in answer_sets:
        site, area = answers.group
        for where in (Where(site, area), Where(site, None), Where(None, area), OVERALL):
            cells.setdefault(where, [])
            if answers.scores.get(scale_id) is not None:
                cells[where].append(answers.scores[scale_id])
    return {where: (len(values), sum(values)) for where, values in cells.items()}


# --- thresholds ------------------------------------------------------------------------------------

def test_ten_respondents_are_shown_nine_are_not(checklist) -> None:
    shown = aggregate(checklist, people(1, U, 10))
    assert not hidden_cells(shown, "OP")
    assert shown.scale("OP").cell(Where(1, U)).n == 10
    hidden = aggregate(checklist, people(1, U, 9))
    assert hidden_cells(hidden, "OP") == {Where(1, U), Where(1, None), Where(None, U), OVERALL}


def test_harassment_scale_needs_twenty(checklist) -> None:
    nineteen = aggregate(checklist, people(1, U, 19))
    assert not hidden_cells(nineteen, "OP")  # an ordinary scale: 19 ≥ 10
    assert hidden_cells(nineteen, "HV") == {Where(1, U), Where(1, None), Where(None, U), OVERALL}
    assert nineteen.scale("HV").threshold == 20 and nineteen.scale("OP").threshold == 10
    twenty = aggregate(checklist, people(1, U, 20))
    assert twenty.scale("HV").cell(Where(1, U)).n == 20


def test_thresholds_are_configurable_but_never_below_five(checklist) -> None:
    assert aggregate(checklist, people(1, U, 5), threshold=5, sensitive_threshold=5).scale("HV").cell(OVERALL).n == 5
    for options in ({"threshold": 4}, {"sensitive_threshold": 4}, {"threshold": 0, "sensitive_threshold": 0},
                    {"threshold": 12, "sensitive_threshold": 11}, {"threshold": 9.5}):
        with pytest.raises(ValueError):
            aggregate(checklist, people(1, U, 30), **options)
    with pytest.raises(ValueError):
        check_thresholds(4, 20)
    with pytest.raises(ValueError):
        suppress({Where(1, U): 3}, 4)


def test_a_hidden_cell_shows_nothing_but_that_it_is_hidden(checklist) -> None:
    result = aggregate(checklist, people(1, U, 30) + people(1, S, 3))
    cell = result.scale("OP").cell(Where(1, S))
    assert cell.hidden and (cell.n, cell.mean, cell.distribution, cell.band_shares) == (None, None, None, None)


# --- complementary suppression ---------------------------------------------------------------------

def test_complementary_suppression_across_sites_and_work_areas(checklist) -> None:
    """Mine 1 surface has 4 people. Hiding only it, mine 1's total minus its underground group would give
    it away; hiding mine 1 underground too, the surface total minus mine 2 surface would; and so on."""
    sets = people(1, U, 30) + people(1, S, 4) + people(2, U, 20) + people(2, S, 15)
    result = aggregate(checklist, sets)
    assert hidden_cells(result, "OP") == {Where(1, U), Where(1, S), Where(2, U), Where(2, S)}
    op = result.scale("OP")
    assert [op.cell(w).n for w in (Where(1, None), Where(2, None), Where(None, U), Where(None, S), OVERALL)] == [
        34, 35, 50, 19, 69]


def test_a_margin_that_would_give_away_another_margin_is_hidden(checklist) -> None:
    """Mine A has 8 people, all underground: its group and its total are hidden. The overall total minus
    the other mines' totals would still give mine A, so another mine's total has to go too."""
    sets = people("A", U, 8) + people("B", U, 11) + people("C", U, 50) + people("C", S, 20)
    result = aggregate(checklist, sets)
    hidden = hidden_cells(result, "OP")
    assert {Where("A", U), Where("A", None)} <= hidden
    assert len(hidden & {Where("B", None), Where("C", None), OVERALL}) >= 1
    cells = list(result.scale("OP").cells)
    assert recoverable_by_algebra(cells, hidden) == []
    assert peel(truth(sets, "OP"), hidden) == {}


def test_subtraction_recovers_a_small_group_without_complementary_suppression(checklist) -> None:
    """The control for the attack below: with only the primary rule, the attack works."""
    sets = people(1, U, 30, {"OP": 80.0}) + people(1, S, 4, {"OP": 10.0}) + people(2, U, 20) + people(2, S, 15)
    values = truth(sets, "OP")
    primary_only = {where for where, (n, _) in values.items() if n < 10}
    assert primary_only == {Where(1, S)}
    assert peel(values, primary_only) == {Where(1, S): (4, 40.0)}  # 4 people, and their scores: recovered
    assert recoverable_by_algebra(list(values), primary_only) == [Where(1, S)]


def test_subtracting_shown_cells_never_recovers_a_hidden_group(checklist) -> None:
    """Every combination of shown cells, each added, subtracted or left out, against every hidden cell."""
    sets = people(1, U, 30, {"OP": 80.0}) + people(1, S, 4, {"OP": 10.0}) + people(2, U, 20) + people(2, S, 15)
    result = aggregate(checklist, sets)
    cells = list(result.scale("OP").cells)
    hidden = hidden_cells(result, "OP")
    groups = [where for where in cells if where.kind == "group"]
    shown = [where for where in cells if where not in hidden]
    attempts = 0
    for signs in itertools.product((-1, 0, 1), repeat=len(shown)):
        combined = sum(sign * vector(where, groups) for sign, where in zip(signs, shown, strict=True))
        for target in hidden:
            attempts += 1
            assert not np.array_equal(combined, vector(target, groups)), (target, signs)
    assert attempts == 3 ** len(shown) * len(hidden) > 0
    assert peel(truth(sets, "OP"), hidden) == {}


@pytest.mark.parametrize("seed", range(40))
def test_random_surveys_leave_nothing_to_recover(checklist, seed: int) -> None:
    rng = random.Random(seed)
    sets = []
    for site in range(1, rng.randint(1, 7)):
        for area in (U, S):
            size = rng.choice([0, 0, 1, 2, 4, 6, 9, 10, 11, 15, 19, 20, 24, 40])
            for _ in range(size):
                sets.append(AnswerSet((site, area), {
                    "OP": rng.choice([0, 100 / 3, 200 / 3, 100]),
                    "HV": rng.choice([None, 0, 50, 100]),  # some skip it: per-scale n differs
                }))
    if not sets:
        return
    result = aggregate(checklist, sets)
    for scale_id in ("OP", "HV"):
        k = result.scale(scale_id).threshold
        values = truth(sets, scale_id)
        hidden = hidden_cells(result, scale_id)
        assert {where for where, (n, _) in values.items() if n < k} <= hidden  # primary
        assert peel(values, hidden) == {}
        assert recoverable_by_algebra(list(values), hidden) == []
        # What subtraction does give — the hidden parts of a shown total, pooled — covers at least k people.
        for total in (where for where in values if where not in hidden and where.kind != "group"):
            for parts in _parts(total, values):
                pooled = sum(values[part][0] for part in parts if part in hidden)
                assert pooled == 0 or pooled >= k, (scale_id, total, pooled)
        for where, (n, total_score) in values.items():
            cell = result.scale(scale_id).cell(where)
            if not cell.hidden:
                assert cell.n == n >= k and cell.mean == pytest.approx(total_score / n)


def _parts(total: Where, values) -> list[list[Where]]:
    if total == OVERALL:
        return [[w for w in values if w.kind == "site"], [w for w in values if w.kind == "area"]]
    return [[w for w in values if w.kind == "group" and (w.site == total.site if total.site is not None
                                                         else w.area == total.area)]]


def test_forty_mines_are_aggregated_quickly(copsoq) -> None:
    rng = random.Random(7)
    sets = [AnswerSet((site, area), {scale.id: rng.choice([0, 25, 50, 75, 100]) for scale in copsoq.scales})
            for site in range(40) for area in (U, S) for _ in range(rng.choice([0, 3, 8, 12, 30]))]
    result = aggregate(copsoq, sets)  # pytest-timeout would catch a runaway loop
    assert len(result.scales) == len(copsoq.scales)
    assert recoverable_by_algebra(list(result.scale("QD").cells), hidden_cells(result, "QD")) == []


# --- what a shown cell holds -----------------------------------------------------------------------

def test_margins_distribution_and_who5_bands(who5) -> None:
    scores = [28.0] * 3 + [48.0] * 2 + [64.0] * 1 + [100.0] * 4 + [0.0] * 2  # 12 people underground
    sets = [AnswerSet((7, U), {"WHO5": value}) for value in scores] + people(7, S, 10, {"WHO5": 80.0})
    result = aggregate(who5, sets).scale("WHO5")
    underground = result.cell(Where(7, U))
    assert underground.n == 12 and underground.mean == pytest.approx(sum(scores) / 12)
    assert underground.band_shares == pytest.approx((5 / 12, 2 / 12, 5 / 12))  # 28 is in the lowest band
    assert underground.distribution == (2, 3, 2, 1, 4)  # 0–19, 20–39, 40–59, 60–79, 80–100
    assert len(underground.distribution) == len(BUCKETS)
    mine = result.cell(Where(7, None))
    assert mine.n == 22 and mine.distribution == (2, 3, 2, 1, 14)
    assert mine.mean == pytest.approx((sum(scores) + 800) / 22)
    assert result.cell(OVERALL) == dataclasses.replace(mine, where=OVERALL)  # one mine: the same figures


def test_unscored_answers_do_not_count(checklist) -> None:
    sets = people(1, U, 12, {"OP": 50.0}) + people(1, U, 3, {"OP": None})
    assert aggregate(checklist, sets).scale("OP").cell(Where(1, U)).n == 12


def test_answer_sets_are_checked(checklist, who5) -> None:
    for bad in (AnswerSet((1, "office"), {"OP": 1.0}), AnswerSet((1, U), {"XX": 1.0}),
                AnswerSet((1, U), {"OP": 101.0}), AnswerSet((1, U), {"OP": float("nan")}), AnswerSet((1,), {})):
        with pytest.raises(ValueError):
            aggregate(checklist, [bad])
    raw = answer_set(who5, (3, S), {str(i): "most" for i in range(1, 6)})
    assert raw == AnswerSet((3, S), {"WHO5": 80.0})


def test_columns_list_each_mine_then_the_totals(checklist) -> None:
    result = aggregate(checklist, people(2, S, 10) + people(1, U, 10) + people(1, S, 10))
    assert result.columns == (Where(1, U), Where(1, S), Where(1, None), Where(2, S), Where(2, None),
                              Where(None, U), Where(None, S), OVERALL)
    assert result.sites == (1, 2)


# --- chart and workbook ----------------------------------------------------------------------------

def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def _survey(instrument, rng: random.Random, per_group: dict) -> list[AnswerSet]:
    sets = []
    for (site, area), count in per_group.items():
        for _ in range(count):
            answers = {item.id: rng.choice(item.option_set.options).id for item in instrument.items}
            sets.append(answer_set(instrument, (site, area), answers))
    return sets


GROUPS = {(1, U): 30, (1, S): 4, (2, U): 14, (2, S): 12, (3, U): 6, (3, S): 25}
NAMES = {1: "Kostenko mine", 2: "Kuzembaev mine", 3: "Bogatyr open pit"}


def test_the_chart_is_a_png_a_phone_can_show(english, copsoq, who5, checklist) -> None:
    rng = random.Random(1)
    for instrument in (copsoq, who5, checklist):
        result = aggregate(instrument, _survey(instrument, rng, GROUPS))
        png = results_chart_png(instrument, result, NAMES, "en")
        width, height = _png_size(png)
        assert width == 960 and 300 < height < 3000 and len(png) > 10_000
        one_mine = results_chart_png(instrument, result, NAMES, "kk", sites={1})
        assert _png_size(one_mine)[0] == 960 and one_mine != png
    empty = results_chart_png(who5, aggregate(who5, []), NAMES, "ru")
    assert _png_size(empty)[0] == 960


def test_the_workbook_holds_aggregates_only(english, copsoq, who5) -> None:
    rng = random.Random(2)
    small = [(copsoq, aggregate(copsoq, _survey(copsoq, rng, GROUPS))),
             (who5, aggregate(who5, _survey(who5, rng, GROUPS)))]
    ten_times = {group: count * 10 for group, count in GROUPS.items()}
    large = [(copsoq, aggregate(copsoq, _survey(copsoq, rng, ten_times)))]
    names = {**NAMES, 2: "=HYPERLINK(\"http://x\")"}

    book = load_workbook(io.BytesIO(results_xlsx(small, names, "en")))
    assert [sheet.title for sheet in book.worksheets] == [
        "Psychosocial working conditions", "WHO-5 Well-Being Index"]  # at most 31 characters
    sheet = book.worksheets[0]
    rows = [tuple(row) for row in sheet.iter_rows(values_only=True)]
    header = next(row for row in rows if row[0] is None and row[1])
    assert header[1] == "Kostenko mine\nUnderground" and header[-1] == "All mines\nUnderground and surface"
    assert any(str(value).startswith("'=HYPERLINK") for value in header)  # a name is never a formula
    assert not any(isinstance(value, str) and value.startswith("=") for row in rows for value in row)
    respondents = [row for row in rows if row[0] == "Respondents"]
    assert len(respondents) == len(copsoq.scales)
    for row in respondents:
        assert row[1:3] == ("too few answers", "too few answers")  # mine 1: surface has 4 people
        assert all(value == "too few answers" or value >= 10 for value in row[1:])
    who5_rows = list(book.worksheets[1].iter_rows(values_only=True))
    assert [row[0] for row in who5_rows if str(row[0]).startswith("Share: ")] == [
        f"Share: {band.label.en}" for band in who5.bands]

    # One row per figure, never per person: ten times the respondents, the same rows.
    big = load_workbook(io.BytesIO(results_xlsx(large, NAMES, "en"))).worksheets[0]
    assert big.max_row == sheet.max_row and big.max_column == sheet.max_column
    per_scale = 3 + len(BUCKETS) + 1  # name, respondents, mean, ranges, blank line
    assert sheet.max_row <= 8 + per_scale * len(copsoq.scales)


def test_the_workbook_says_in_its_language_whose_translation_the_questions_are(copsoq) -> None:
    i18n = build_i18n("ru")
    rng = random.Random(3)
    reports = [(copsoq, aggregate(copsoq, _survey(copsoq, rng, GROUPS)))]
    with i18n.context(), i18n.use_locale("ru"):
        book = load_workbook(io.BytesIO(results_xlsx(reports, NAMES, "ru")))
    cells = [value for row in book.worksheets[0].iter_rows(values_only=True) for value in row if isinstance(value, str)]
    assert "Перевод: неофициальный перевод проекта MineVoice" in cells
    assert not any("translated by" in cell for cell in cells)  # the data file's own note stays out
    with i18n.context(), i18n.use_locale("en"):
        english = load_workbook(io.BytesIO(results_xlsx(reports, NAMES, "en")))
    cells = [value for row in english.worksheets[0].iter_rows(values_only=True) for value in row if isinstance(value, str)]
    assert "Translation: official translation" in cells
