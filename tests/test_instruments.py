"""Instrument files: the three shipped ones load, a broken one fails naming the place, and scoring
follows the published rules (COPSOQ III: Burr et al. 2019; WHO-5: WHO 1998, Topp et al. 2015)."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.config import LOCALES
from bot.instruments import (
    INSTRUMENTS_DIR,
    InstrumentError,
    load_instrument,
    load_instruments,
    personal_result,
    questions,
    score,
    who5_band,
)

# The COPSOQ III international core items, in the order of the questionnaire (Burr et al. 2019, Table 2;
# COPSOQ III guidelines and questionnaire of the International COPSOQ Network).
COPSOQ_CORE = ["QD2", "QD3", "WP1", "WP2", "EDX2", "ED3", "INX1", "PD2", "PD3", "MW1", "PR1", "PR2", "RE1", "CL1",
               "CO2", "CO3", "QL3", "QL4", "SSX2", "SCX1", "SW1", "JI1", "JI3", "IW1", "JS4", "WF2", "WF3", "TM1",
               "TMX2", "JU1", "JU4", "GH1"]


def raw(name: str) -> dict:
    return json.loads((INSTRUMENTS_DIR / name).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def shipped():
    return load_instruments()


@pytest.fixture(scope="module")
def copsoq(shipped):
    return shipped["copsoq3_core"]


@pytest.fixture(scope="module")
def who5(shipped):
    return shipped["who5"]


@pytest.fixture(scope="module")
def checklist(shipped):
    return shipped["union_mining_checklist"]


def variant(tmp_path: Path, name: str, change: Callable[[dict], object]):
    """A copy of a shipped file, changed, loaded under the same file name."""
    data = copy.deepcopy(raw(name))
    change(data)
    path = tmp_path / name
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return load_instrument(path)


# --- the shipped files ---------------------------------------------------------------------------

def test_the_three_shipped_instruments_load(shipped) -> None:
    assert sorted(shipped) == ["copsoq3_core", "union_mining_checklist", "who5"]
    assert load_instruments() is shipped  # cached


def test_who5_file_matches_the_published_instrument(who5) -> None:
    assert [item.id for item in who5.items] == ["1", "2", "3", "4", "5"]
    assert [item.text.en for item in who5.items] == [
        "I have felt cheerful and in good spirits", "I have felt calm and relaxed", "I have felt active and vigorous",
        "I woke up feeling fresh and rested", "My daily life has been filled with things that interest me"]
    options = who5.items[0].option_set.options
    assert [(option.label.en, option.value) for option in options] == [
        ("All of the time", 5), ("Most of the time", 4), ("More than half of the time", 3),
        ("Less than half of the time", 2), ("Some of the time", 1), ("At no time", 0)]
    assert [band.max for band in who5.bands] == [28, 50, 100]
    assert who5.translation_is_official("en") and not who5.translation_is_official("kk")
    assert who5.stem is not None and who5.stem.en == "Over the last two weeks:"


def test_copsoq_file_holds_the_core_items_and_credits_them(copsoq) -> None:
    assert [item.id for item in copsoq.items] == COPSOQ_CORE
    assert copsoq.scoring == "copsoq_mean" and copsoq.kind == "validated"
    assert "CC BY-NC-ND" in copsoq.licence and "Burr" in copsoq.attribution
    assert copsoq.translation_is_official("en")
    assert not copsoq.translation_is_official("ru") and not copsoq.translation_is_official("kk")
    assert copsoq.translation.ru.startswith("unofficial: translated by the MineVoice project")
    # Every item is in exactly one scale, and the COPSOQ III core has no reversed item.
    in_scales = [item_id for scale in copsoq.scales for item_id in scale.item_ids]
    assert sorted(in_scales) == sorted(COPSOQ_CORE)
    assert not any(item.reversed for item in copsoq.items)
    # "No supervisor" / "no colleagues" are offered exactly where the items are about them.
    missing = {item.id for item in copsoq.items if any(option.missing for option in item.option_set.options)}
    assert missing == {"QL3", "QL4", "SSX2", "SCX1", "SW1"}


def test_union_checklist_says_what_it_is(checklist) -> None:
    assert checklist.kind == "union_checklist" and checklist.scoring == "mean"
    assert "not a validated" in checklist.intro.en and "union" in checklist.title.en.lower()
    assert 8 <= len(checklist.items) <= 10
    assert [scale.id for scale in checklist.scales if scale.sensitive] == ["HV"]
    assert {item.id for item in checklist.items if item.reversed} == {"FR2", "CF2"}


def test_every_text_is_there_in_every_language(shipped) -> None:
    for instrument in shipped.values():
        texts = [instrument.title, instrument.intro, instrument.translation,
                 *(item.text for item in instrument.items), *(scale.name for scale in instrument.scales),
                 *(option.label for option_set in instrument.option_sets for option in option_set.options)]
        for text in texts:
            assert all(text.get(language).strip() for language in LOCALES), text


# --- broken files: each rule, with the place named -----------------------------------------------

def _drop(path: list, key: str):
    def change(data: dict) -> None:
        target = data
        for step in path:
            target = target[step]
        del target[key]
    return change


def _set(path: list, value):
    def change(data: dict) -> None:
        target = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return change


BROKEN = [
    ("copsoq3_core.json", _drop(["items", 4, "text"], "kk"), "copsoq3_core.json: items[4].text.kk is missing"),
    ("copsoq3_core.json", _set(["items", 4, "text", "ru"], "  "), "copsoq3_core.json: items[4].text.ru is empty"),
    ("copsoq3_core.json", _set(["title", "kz"], "Қате"), "copsoq3_core.json: title.kz is not a field we know"),
    ("copsoq3_core.json", _drop(["scales", 3, "name"], "en"), "copsoq3_core.json: scales[3].name.en is missing"),
    ("who5.json", _drop(["option_sets", 0, "options", 2, "label"], "ru"),
     "who5.json: option_sets[0].options[2].label.ru is missing"),
    ("copsoq3_core.json", _set(["items", 3, "id"], "QD2"), "copsoq3_core.json: items[3].id 'QD2' appears twice"),
    ("copsoq3_core.json", _set(["scales", 1, "id"], "QD"), "copsoq3_core.json: scales[1].id 'QD' appears twice"),
    ("copsoq3_core.json", _set(["option_sets", 0, "options", 1, "id"], "always"),
     "copsoq3_core.json: option_sets[0].options[1].id 'always' appears twice"),
    ("copsoq3_core.json", _set(["scales", 0, "items", 1], "QD9"),
     "copsoq3_core.json: scales[0].items[1] 'QD9' is not an item of this file"),
    ("copsoq3_core.json", _set(["items", 0, "options"], "often"),
     "copsoq3_core.json: items[0].options 'often' is not an option set of this file"),
    ("copsoq3_core.json", _set(["option_sets", 0, "options", 1, "value"], "75"),
     "copsoq3_core.json: option_sets[0].options[1].value must be a number"),
    ("copsoq3_core.json", _set(["option_sets", 0, "options", 1, "value"], True),
     "copsoq3_core.json: option_sets[0].options[1].value must be a number"),
    ("copsoq3_core.json", _set(["option_sets", 1, "options", 5, "value"], 0),
     "copsoq3_core.json: option_sets[1].options[5].value must not be given for a 'missing' option"),
    ("copsoq3_core.json", _set(["option_sets", 0, "options", 1, "value"], 30),
     "copsoq3_core.json: option_sets[0].options[1].value 30 is not a COPSOQ weight (0, 25, 50, 75 or 100)"),
    ("copsoq3_core.json", _set(["items", 0, "reversed"], "yes"),
     "copsoq3_core.json: items[0].reversed must be true or false"),
    ("copsoq3_core.json", _set(["items", 0, "reverse"], True),
     "copsoq3_core.json: items[0].reverse is not a field we know"),
    ("copsoq3_core.json", lambda data: data["items"].append(
        {"id": "EXTRA", "options": "frequency", "reversed": True, "text": {"kk": "а", "ru": "б", "en": "c"}}),
     "copsoq3_core.json: items[32].reversed is true but the item is in no scale, so nothing would be reversed"),
    ("copsoq3_core.json", _set(["scoring"], "sum"),
     "copsoq3_core.json: scoring 'sum' is not a known rule (who5, copsoq_mean, mean)"),
    ("copsoq3_core.json", _set(["kind"], "survey"),
     "copsoq3_core.json: kind 'survey' is not one of validated, union_checklist"),
    ("copsoq3_core.json", _drop(["scales", 2], "higher_is_better"),
     "copsoq3_core.json: scales[2].higher_is_better is missing"),
    ("copsoq3_core.json", _set(["translation", "kk"], "translated by us"),
     ("copsoq3_core.json: translation.kk must be 'official: <source>', 'unofficial: <who translated>' or "
      "'original: <who wrote it>'")),
    ("copsoq3_core.json", _set(["id"], "copsoq 3"),
     "copsoq3_core.json: id 'copsoq 3' must be 1–32 letters, digits, '_' or '-'"),
    ("copsoq3_core.json", _set(["bands"], []), "copsoq3_core.json: bands is only for the who5 scoring rule"),
    ("who5.json", _set(["bands", 1, "max"], 20), "who5.json: bands[1].max must be greater than bands[0].max (28)"),
    ("who5.json", _set(["bands", 2, "max"], 90), "who5.json: bands[2].max must be 100, so that every score has a band"),
    ("who5.json", _set(["bands", 0, "max"], "28"), "who5.json: bands[0].max must be a number"),
    ("who5.json", _set(["your_score", "en"], "Your score."), "who5.json: your_score.en must contain {score}"),
    ("who5.json", _drop([], "support"), "who5.json: support is missing"),
    ("who5.json", _set(["items", 2, "reversed"], True),
     "who5.json: items[2].reversed must be false: no WHO-5 item is reversed"),
    ("who5.json", _set(["option_sets", 0, "options", 5, "value"], 6),
     "who5.json: items[0].options 'time' must have exactly the values 0–5 and no 'missing' option"),
    ("who5.json", _set(["scales", 0, "items"], ["1", "2", "3", "4"]),
     "who5.json: scales must be one scale of 5 items for the who5 rule"),
    ("union_mining_checklist.json", _set(["scales", 4, "sensitive"], "yes"),
     "union_mining_checklist.json: scales[4].sensitive must be true or false"),
    ("union_mining_checklist.json", _set(["option_sets", 0, "options"], [
        {"id": "never", "value": 0, "label": {"kk": "а", "ru": "б", "en": "c"}}]),
     "union_mining_checklist.json: option_sets[0].options need at least two different values"),
]


@pytest.mark.parametrize(("name", "change", "message"), BROKEN, ids=[message for _, _, message in BROKEN])
def test_a_broken_file_is_refused_naming_the_place(tmp_path: Path, name: str, change, message: str) -> None:
    with pytest.raises(InstrumentError) as caught:
        variant(tmp_path, name, change)
    assert str(caught.value) == message


def test_unchanged_copies_load(tmp_path: Path) -> None:
    """The broken-file tests start from files that are fine, so each failure above is the change's."""
    for name in ("who5.json", "copsoq3_core.json", "union_mining_checklist.json"):
        assert variant(tmp_path, name, lambda data: None).file == name


def test_not_json_and_duplicate_ids_are_refused(tmp_path: Path) -> None:
    broken = tmp_path / "copsoq3_core.json"
    broken.write_text('{"id": "x",', encoding="utf-8")
    with pytest.raises(InstrumentError, match=r"^copsoq3_core\.json: is not valid JSON \(.* at line 1, column \d+\)$"):
        load_instrument(broken)

    folder = tmp_path / "two"
    folder.mkdir()
    (folder / "a.json").write_text((INSTRUMENTS_DIR / "who5.json").read_text(encoding="utf-8"), encoding="utf-8")
    (folder / "b.json").write_text((INSTRUMENTS_DIR / "who5.json").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.raises(InstrumentError, match=r"^b\.json: id 'who5' is also the id of a\.json$"):
        load_instruments(folder)


# --- COPSOQ scoring (0/25/50/75/100, reversed mirrored, at least half answered, "no supervisor" missing)

def test_copsoq_all_answered_is_the_mean_of_the_weights(copsoq) -> None:
    scores = score(copsoq, {"QD2": "always", "QD3": "sometimes", "WP1": "seldom", "WP2": "very_small",
                            "GH1": "fair", "JS4": "satisfied"})
    assert scores["QD"] == 75.0  # (100 + 50) / 2
    assert scores["WP"] == 12.5  # (25 + 0) / 2
    assert scores["GH"] == 25.0 and scores["JS"] == 75.0


def test_copsoq_reversed_item_is_mirrored(tmp_path: Path, copsoq) -> None:
    def reverse_qd3(data: dict) -> None:
        next(item for item in data["items"] if item["id"] == "QD3")["reversed"] = True

    reversed_ = variant(tmp_path, "copsoq3_core.json", reverse_qd3)
    answers = {"QD2": "always", "QD3": "seldom"}
    assert score(copsoq, answers)["QD"] == 62.5  # (100 + 25) / 2
    assert score(reversed_, answers)["QD"] == 87.5  # (100 + (100 − 25)) / 2


def test_copsoq_exactly_half_answered_gives_a_score_fewer_gives_none(copsoq) -> None:
    assert score(copsoq, {"QD2": "often"})["QD"] == 75.0  # 1 of 2: exactly half
    assert score(copsoq, {"QD2": "often", "QD3": None})["QD"] == 75.0  # None is "not answered" too
    assert score(copsoq, {})["QD"] is None  # 0 of 2
    assert score(copsoq, {"INX1": "never"})["IN"] == 0.0  # a single-item scale, answered
    assert score(copsoq, {"INX1": None})["IN"] is None


@pytest.mark.parametrize(("answered", "expected"), [
    (["QD2", "QD3", "WP1", "WP2"], 56.25), (["QD2", "QD3"], 62.5), (["WP1", "WP2"], 50.0), (["QD2", "WP2"], 87.5),
    (["QD2"], None), ([], None)])
def test_copsoq_half_rule_on_a_four_item_scale(tmp_path: Path, answered: list[str], expected) -> None:
    """COPSOQ core scales have one or two items; a longer scale shows the rule at its edge: 2 of 4 → score."""
    def four_items(data: dict) -> None:
        data["scales"] = [{"id": "QW", "items": ["QD2", "QD3", "WP1", "WP2"], "higher_is_better": False,
                           "name": {"kk": "а", "ru": "б", "en": "c"}}]

    instrument = variant(tmp_path, "copsoq3_core.json", four_items)
    weights = {"QD2": ("always", 100), "QD3": ("seldom", 25), "WP1": ("seldom", 25), "WP2": ("large", 75)}
    result = score(instrument, {item_id: weights[item_id][0] for item_id in answered})["QW"]
    assert result == expected
    if expected is not None:
        assert expected == sum(weights[item_id][1] for item_id in answered) / len(answered)


def test_copsoq_half_rule_on_a_three_item_scale(tmp_path: Path) -> None:
    """Half of three is 1.5: one answer is fewer than half, two are enough."""
    def three_items(data: dict) -> None:
        data["scales"] = [{"id": "Q3", "items": ["QD2", "QD3", "WP1"], "higher_is_better": False,
                           "name": {"kk": "а", "ru": "б", "en": "c"}}]

    instrument = variant(tmp_path, "copsoq3_core.json", three_items)
    assert score(instrument, {"QD2": "always"})["Q3"] is None
    assert score(instrument, {"QD2": "always", "WP1": "sometimes"})["Q3"] == 75.0


def test_no_supervisor_and_no_colleagues_count_as_missing(copsoq) -> None:
    assert score(copsoq, {"QL3": "no_supervisor", "QL4": "large"})["QL"] == 75.0  # 1 of 2 answered
    assert score(copsoq, {"QL3": "no_supervisor", "QL4": "no_supervisor"})["QL"] is None
    assert score(copsoq, {"SSX2": "no_supervisor"})["SS"] is None  # not 0: it is not an answer
    colleagues = score(copsoq, {"SCX1": "no_colleagues", "SW1": "often"})
    assert colleagues["SC"] is None and colleagues["SW"] == 75.0


def test_unknown_items_and_options_are_refused(copsoq) -> None:
    with pytest.raises(ValueError, match="no option 'no_supervisor'"):
        score(copsoq, {"QD2": "no_supervisor"})  # only supervisor items offer it
    with pytest.raises(ValueError, match="no item 'QD1'"):
        score(copsoq, {"QD1": "always"})


def test_union_checklist_mean_on_0_to_100_with_reversed_items(checklist) -> None:
    scores = score(checklist, {"FR1": "always", "FR2": "always", "CF1": "sometimes", "CF2": "never",
                               "OP1": "often"})
    assert scores["FR"] == 50.0  # afraid always (100), hazards taken seriously always (mirrored: 0)
    assert scores["CF"] == pytest.approx((100 / 3 + 100) / 2)  # CF2 "never respected" mirrored to 100
    assert scores["OP"] == pytest.approx(200 / 3)  # 1 of 2 answered: exactly half
    assert scores["WT"] is None and scores["HV"] is None


# --- WHO-5 ---------------------------------------------------------------------------------------

def test_who5_is_the_raw_sum_times_four(who5) -> None:
    assert score(who5, {str(i): "most" for i in range(1, 6)})["WHO5"] == 80.0  # 5 × 4 = 20 → 80
    answers = dict(zip("12345", ["all", "most", "more_than_half", "less_than_half", "some"], strict=True))
    assert score(who5, answers)["WHO5"] == 60.0  # 5+4+3+2+1 = 15 → 60
    assert score(who5, {str(i): "none" for i in range(1, 6)})["WHO5"] == 0.0
    assert score(who5, {str(i): "all" for i in range(1, 6)})["WHO5"] == 100.0


def test_who5_without_all_five_answers_has_no_score(who5) -> None:
    """The WHO-5 has no official missing-data rule; we do not guess."""
    assert score(who5, {str(i): "all" for i in range(1, 5)})["WHO5"] is None
    assert score(who5, {"1": "all", "2": "all", "3": "all", "4": "all", "5": None})["WHO5"] is None


@pytest.mark.parametrize(("value", "band"), [
    (0, "very_low"), (28, "very_low"), (29, "low"), (32, "low"), (50, "low"), (51, "not_low"), (52, "not_low"),
    (100, "not_low")])
def test_who5_bands_at_their_boundaries(who5, value: float, band: str) -> None:
    assert who5_band(value, who5).id == band
    assert who5_band(value).id == band  # the shipped WHO-5 by default


def test_who5_band_refuses_impossible_scores(who5, copsoq) -> None:
    for value in (-1, 100.5):
        with pytest.raises(ValueError):
            who5_band(value, who5)
    with pytest.raises(ValueError):
        who5_band(50, copsoq)


def test_who5_personal_result_is_plain_and_says_where_to_get_help(who5, copsoq) -> None:
    low = score(who5, {str(i): "some" for i in range(1, 6)})  # 5 → 20: the lowest band
    english = personal_result(who5, low, "en")
    assert english.startswith("Your well-being score: 20 out of 100.")
    assert "This is not a diagnosis" in english and "doctor" in english and "111" in english and "112" in english
    for language, phrase in (("ru", "Это не диагноз"), ("kk", "Бұл диагноз емес")):
        text = personal_result(who5, low, language)
        assert "20" in text and phrase in text and "111" in text
    good = personal_result(who5, score(who5, {str(i): "all" for i in range(1, 6)}), "en")
    assert "100 out of 100" in good and who5.bands[2].message.en in good
    # A skipped item: no score to show, but still where to get support.
    assert personal_result(who5, {"WHO5": None}, "ru") == who5.support.ru
    assert personal_result(copsoq, score(copsoq, {}), "en") is None  # COPSOQ is shown only in aggregate


# --- asking, one question per message ------------------------------------------------------------

def test_questions_come_in_the_file_order_with_their_buttons(copsoq, who5) -> None:
    asked = questions(copsoq, "ru")
    assert [question.item_id for question in asked] == COPSOQ_CORE
    assert [question.number for question in asked] == list(range(1, 33)) and {q.total for q in asked} == {32}
    leadership = asked[COPSOQ_CORE.index("QL3")]
    assert leadership.text == copsoq.item("QL3").text.ru and leadership.stem is None
    assert [choice.option_id for choice in leadership.choices] == [
        "very_large", "large", "somewhat", "small", "very_small", "no_supervisor"]
    assert leadership.choices[-1].label == "У меня нет руководителя"

    first = questions(who5, "kk")[0]
    assert (first.number, first.total, first.item_id, first.stem) == (1, 5, "1", "Соңғы екі аптада:")
    assert questions(who5, "xx")[0].choices[0].label == "All of the time"  # an unknown language: English
