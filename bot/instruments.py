"""Survey instruments: the data files in `bot/data/instruments/`, checked on loading, and their scoring.

An instrument file holds the questions (items), the answer options with their numeric values, which
items form which scale, reversed items, the scoring rule, the licence and credit of the instrument and
the status of each translation. Every text is there in kk, ru and en; English is the source language.

Scoring rules, as published:

- `copsoq_mean` (COPSOQ III, Burr et al. 2019): answers weigh 0/25/50/75/100; a reversed item is
  mirrored (100 − x); a scale is the mean of its answered items when at least half of the scale's items
  were answered, otherwise missing. An option marked `"missing": true` ("I do not have a supervisor",
  "I do not have colleagues") counts as not answered.
- `mean` (our own checklist): the same rule, after putting each option value on 0–100
  (lowest option 0, highest 100), so that all charts share one axis.
- `who5` (WHO 1998; Topp et al. 2015): raw sum of the five items (0–5 each) × 4, on 0–100. The WHO-5
  has no official rule for a skipped item, so we stay conservative: no score unless all five items are
  answered. A person's band comes from the file's `bands` (≤ 28, ≤ 50, ≤ 100).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from bot.config import LOCALES

INSTRUMENTS_DIR = Path(__file__).resolve().parent / "data" / "instruments"

KINDS = ("validated", "union_checklist")
SCORING_RULES = ("who5", "copsoq_mean", "mean")
TRANSLATION_STATUSES = ("official", "unofficial", "original")
COPSOQ_WEIGHTS = frozenset({0, 25, 50, 75, 100})
WHO5_VALUES = frozenset(range(6))
WHO5_ITEMS = 5
# Ids travel in Telegram callback data (64 bytes at most) and in database rows: short, plain ASCII.
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class InstrumentError(ValueError):
    """A broken instrument file. The message names the file and the exact place, e.g.
    `copsoq3_core.json: items[4].text.kk is missing`."""


@dataclass(frozen=True, slots=True)
class Text:
    """One text in the three languages."""

    kk: str
    ru: str
    en: str

    def get(self, language: str) -> str:
        """The text in `language`; English, the source language, for a language we do not have."""
        return getattr(self, language) if language in LOCALES else self.en


@dataclass(frozen=True, slots=True)
class Option:
    id: str
    label: Text
    value: float | None  # None exactly when `missing`
    missing: bool = False


@dataclass(frozen=True, slots=True)
class OptionSet:
    id: str
    options: tuple[Option, ...]

    def option(self, option_id: str) -> Option:
        for option in self.options:
            if option.id == option_id:
                return option
        raise KeyError(option_id)

    @property
    def value_range(self) -> tuple[float, float]:
        """Lowest and highest value of the options that count (not the `missing` ones)."""
        values = [option.value for option in self.options if option.value is not None]
        return min(values), max(values)


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    text: Text
    option_set: OptionSet
    reversed: bool = False


@dataclass(frozen=True, slots=True)
class Scale:
    id: str
    name: Text
    item_ids: tuple[str, ...]
    higher_is_better: bool
    sensitive: bool = False  # harassment or violence: results need more respondents


@dataclass(frozen=True, slots=True)
class Band:
    """A WHO-5 band: scores up to and including `max` (and above the previous band's `max`)."""

    id: str
    max: float
    label: Text
    message: Text


@dataclass(frozen=True, slots=True)
class Choice:
    option_id: str
    label: str


@dataclass(frozen=True, slots=True)
class Question:
    """One item as the bot asks it, one per message: "3/32", the stem, the text and the buttons."""

    number: int
    total: int
    item_id: str
    stem: str | None
    text: str
    choices: tuple[Choice, ...]


@dataclass(frozen=True, slots=True)
class Instrument:
    id: str
    version: str
    kind: str
    title: Text
    intro: Text
    stem: Text | None
    licence: str
    attribution: str
    translation: Text  # per language: "official: …", "unofficial: …" or "original: …"
    option_sets: tuple[OptionSet, ...]
    items: tuple[Item, ...]  # in the order they are asked
    scales: tuple[Scale, ...]
    scoring: str
    bands: tuple[Band, ...] = ()
    your_score: Text | None = None
    support: Text | None = None
    file: str = ""

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def scale(self, scale_id: str) -> Scale:
        for scale in self.scales:
            if scale.id == scale_id:
                return scale
        raise KeyError(scale_id)

    def translation_kind(self, language: str) -> str:
        """'official', 'unofficial' or 'original' (the file's note after the colon is for us)."""
        return self.translation.get(language).split(":", 1)[0]

    def translation_is_official(self, language: str) -> bool:
        return self.translation_kind(language) == "official"


# --- loading ---------------------------------------------------------------------------------------

def load_instrument(path: str | Path) -> Instrument:
    """One instrument file, fully checked; `InstrumentError` names the file and the place."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise InstrumentError(f"{path.name}: cannot be read ({error.strerror or error})") from None
    except UnicodeDecodeError:
        raise InstrumentError(f"{path.name}: is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise InstrumentError(
            f"{path.name}: is not valid JSON ({error.msg} at line {error.lineno}, column {error.colno})") from None
    return _Reader(path.name).instrument(data)


def load_instruments(directory: str | Path = INSTRUMENTS_DIR) -> Mapping[str, Instrument]:
    """Every `*.json` in `directory` by instrument id; read once, then cached."""
    return _load_directory(Path(directory).resolve())


@lru_cache(maxsize=8)
def _load_directory(directory: Path) -> Mapping[str, Instrument]:
    files = sorted(directory.glob("*.json"))
    if not files:
        raise InstrumentError(f"{directory}: holds no instrument files (*.json)")
    instruments: dict[str, Instrument] = {}
    for path in files:
        instrument = load_instrument(path)
        if instrument.id in instruments:
            raise InstrumentError(
                f"{path.name}: id {instrument.id!r} is also the id of {instruments[instrument.id].file}")
        instruments[instrument.id] = instrument
    return MappingProxyType(instruments)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


class _Reader:
    """Turns the parsed JSON of one file into an `Instrument`, or fails naming the file and the place."""

    TOP_LEVEL = frozenset({"id", "version", "kind", "title", "intro", "stem", "licence", "attribution", "translation",
                           "option_sets", "items", "scales", "scoring", "bands", "your_score", "support"})

    def __init__(self, file: str) -> None:
        self.file = file

    def error(self, where: str, problem: str) -> InstrumentError:
        return InstrumentError(f"{self.file}: {where} {problem}" if where else f"{self.file}: {problem}")

    # -- generic pieces

    def obj(self, value: Any, where: str, allowed: set[str] | frozenset[str]) -> dict:
        if not isinstance(value, dict):
            raise self.error(where, "must be an object") if where else self.error("", "must hold one JSON object")
        for key in value:
            if key not in allowed:
                # A misspelt key ("reverse" for "reversed") would otherwise be ignored without a word.
                raise self.error(_join(where, key), "is not a field we know")
        return value

    def field(self, data: dict, key: str, where: str) -> Any:
        if key not in data:
            raise self.error(_join(where, key), "is missing")
        return data[key]

    def string(self, data: dict, key: str, where: str) -> str:
        value = self.field(data, key, where)
        if not isinstance(value, str):
            raise self.error(_join(where, key), "must be text")
        if not value.strip():
            raise self.error(_join(where, key), "is empty")
        return value

    def identifier(self, data: dict, key: str, where: str) -> str:
        value = self.string(data, key, where)
        if not ID_PATTERN.match(value):
            raise self.error(_join(where, key), f"{value!r} must be 1–32 letters, digits, '_' or '-'")
        return value

    def boolean(self, data: dict, key: str, where: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.error(_join(where, key), "must be true or false")
        return value

    def array(self, data: dict, key: str, where: str) -> list:
        value = self.field(data, key, where)
        if not isinstance(value, list):
            raise self.error(_join(where, key), "must be a list")
        if not value:
            raise self.error(_join(where, key), "is empty")
        return value

    def text(self, data: dict, key: str, where: str) -> Text:
        place = _join(where, key)
        value = self.obj(self.field(data, key, where), place, set(LOCALES))
        for language in LOCALES:
            self.string(value, language, place)
        return Text(**{language: value[language] for language in LOCALES})

    def unique(self, ids: list[str], where: str) -> None:
        seen: set[str] = set()
        for position, value in enumerate(ids):
            if value in seen:
                raise self.error(_join(_join(where, position), "id"), f"{value!r} appears twice")
            seen.add(value)

    # -- the instrument

    def instrument(self, data: Any) -> Instrument:
        data = self.obj(data, "", self.TOP_LEVEL)
        kind = self.string(data, "kind", "")
        if kind not in KINDS:
            raise self.error("kind", f"{kind!r} is not one of {', '.join(KINDS)}")
        scoring = self.string(data, "scoring", "")
        if scoring not in SCORING_RULES:
            raise self.error("scoring", f"{scoring!r} is not a known rule ({', '.join(SCORING_RULES)})")

        option_sets = self.option_sets(self.array(data, "option_sets", ""))
        items = self.items(self.array(data, "items", ""), {option_set.id: option_set for option_set in option_sets})
        scales = self.scales(self.array(data, "scales", ""), items)
        self.check_reversed(items, scales)
        if scoring == "copsoq_mean":
            self.check_copsoq_weights(data, items, scales)
        extras: dict[str, Any] = {}
        if scoring == "who5":
            self.check_who5(data, items, scales)
            extras = {"bands": self.bands(self.array(data, "bands", "")),
                      "your_score": self.text(data, "your_score", ""),
                      "support": self.text(data, "support", "")}
            for language in LOCALES:
                if "{score}" not in extras["your_score"].get(language):
                    raise self.error(f"your_score.{language}", "must contain {score}")
        else:
            for key in ("bands", "your_score", "support"):
                if key in data:
                    raise self.error(key, "is only for the who5 scoring rule")

        return Instrument(
            id=self.identifier(data, "id", ""),
            version=self.string(data, "version", ""),
            kind=kind,
            title=self.text(data, "title", ""),
            intro=self.text(data, "intro", ""),
            stem=self.text(data, "stem", "") if "stem" in data else None,
            licence=self.string(data, "licence", ""),
            attribution=self.string(data, "attribution", ""),
            translation=self.translation(data),
            option_sets=option_sets,
            items=items,
            scales=scales,
            scoring=scoring,
            file=self.file,
            **extras,
        )

    def translation(self, data: dict) -> Text:
        text = self.text(data, "translation", "")
        for language in LOCALES:
            status, _, note = text.get(language).partition(":")
            if status not in TRANSLATION_STATUSES or not note.strip():
                raise self.error(f"translation.{language}", "must be 'official: <source>', "
                                 "'unofficial: <who translated>' or 'original: <who wrote it>'")
        return text

    def option_sets(self, raw: list) -> tuple[OptionSet, ...]:
        result = []
        for position, entry in enumerate(raw):
            where = _join("option_sets", position)
            entry = self.obj(entry, where, {"id", "options"})
            options = []
            for index, option in enumerate(self.array(entry, "options", where)):
                place = _join(_join(where, "options"), index)
                option = self.obj(option, place, {"id", "value", "label", "missing"})
                missing = self.boolean(option, "missing", place, False)
                if missing and "value" in option:
                    raise self.error(_join(place, "value"), "must not be given for a 'missing' option")
                value = None if missing else self.field(option, "value", place)
                if not missing and not _is_number(value):
                    raise self.error(_join(place, "value"), "must be a number")
                options.append(Option(self.identifier(option, "id", place), self.text(option, "label", place),
                                      None if value is None else float(value), missing))
            self.unique([option.id for option in options], _join(where, "options"))
            if len({option.value for option in options if not option.missing}) < 2:
                raise self.error(_join(where, "options"), "need at least two different values")
            result.append(OptionSet(self.identifier(entry, "id", where), tuple(options)))
        self.unique([option_set.id for option_set in result], "option_sets")
        return tuple(result)

    def items(self, raw: list, option_sets: dict[str, OptionSet]) -> tuple[Item, ...]:
        result = []
        for position, entry in enumerate(raw):
            where = _join("items", position)
            entry = self.obj(entry, where, {"id", "text", "options", "reversed"})
            set_id = self.string(entry, "options", where)
            if set_id not in option_sets:
                raise self.error(_join(where, "options"), f"{set_id!r} is not an option set of this file")
            result.append(Item(self.identifier(entry, "id", where), self.text(entry, "text", where),
                               option_sets[set_id], self.boolean(entry, "reversed", where, False)))
        self.unique([item.id for item in result], "items")
        return tuple(result)

    def scales(self, raw: list, items: tuple[Item, ...]) -> tuple[Scale, ...]:
        known = {item.id for item in items}
        result = []
        for position, entry in enumerate(raw):
            where = _join("scales", position)
            entry = self.obj(entry, where, {"id", "name", "items", "sensitive", "higher_is_better"})
            item_ids = self.array(entry, "items", where)
            for index, item_id in enumerate(item_ids):
                if item_id not in known:
                    raise self.error(_join(_join(where, "items"), index), f"{item_id!r} is not an item of this file")
            if len(set(item_ids)) != len(item_ids):
                raise self.error(_join(where, "items"), "lists an item twice")
            if "higher_is_better" not in entry:
                raise self.error(_join(where, "higher_is_better"), "is missing")
            result.append(Scale(self.identifier(entry, "id", where), self.text(entry, "name", where),
                                tuple(item_ids), self.boolean(entry, "higher_is_better", where, True),
                                self.boolean(entry, "sensitive", where, False)))
        self.unique([scale.id for scale in result], "scales")
        return tuple(result)

    def check_reversed(self, items: tuple[Item, ...], scales: tuple[Scale, ...]) -> None:
        scored = {item_id for scale in scales for item_id in scale.item_ids}
        for position, item in enumerate(items):
            if item.reversed and item.id not in scored:
                raise self.error(_join(_join("items", position), "reversed"),
                                 "is true but the item is in no scale, so nothing would be reversed")

    def check_copsoq_weights(self, data: dict, items: tuple[Item, ...], scales: tuple[Scale, ...]) -> None:
        scored = {item_id for scale in scales for item_id in scale.item_ids}
        used = {item.option_set.id for item in items if item.id in scored}
        for position, entry in enumerate(data["option_sets"]):
            if entry["id"] not in used:
                continue
            for index, option in enumerate(entry["options"]):
                if not option.get("missing") and option["value"] not in COPSOQ_WEIGHTS:
                    raise self.error(f"option_sets[{position}].options[{index}].value",
                                     f"{option['value']} is not a COPSOQ weight (0, 25, 50, 75 or 100)")

    def check_who5(self, data: dict, items: tuple[Item, ...], scales: tuple[Scale, ...]) -> None:
        if len(scales) != 1 or len(scales[0].item_ids) != WHO5_ITEMS:
            raise self.error("scales", f"must be one scale of {WHO5_ITEMS} items for the who5 rule")
        for position, item in enumerate(items):
            if item.id not in scales[0].item_ids:
                continue
            if item.reversed:
                raise self.error(f"items[{position}].reversed", "must be false: no WHO-5 item is reversed")
            values = {option.value for option in item.option_set.options}
            if values != WHO5_VALUES:
                raise self.error(f"items[{position}].options",
                                 f"{item.option_set.id!r} must have exactly the values 0–5 and no 'missing' option")

    def bands(self, raw: list) -> tuple[Band, ...]:
        result: list[Band] = []
        for position, entry in enumerate(raw):
            where = _join("bands", position)
            entry = self.obj(entry, where, {"id", "max", "label", "message"})
            upper = self.field(entry, "max", where)
            if not _is_number(upper):
                raise self.error(_join(where, "max"), "must be a number")
            if result and upper <= result[-1].max:
                raise self.error(_join(where, "max"),
                                 f"must be greater than bands[{position - 1}].max ({result[-1].max:g})")
            if not result and upper < 0:
                raise self.error(_join(where, "max"), "must not be below 0")
            result.append(Band(self.identifier(entry, "id", where), float(upper),
                               self.text(entry, "label", where), self.text(entry, "message", where)))
        self.unique([band.id for band in result], "bands")
        if result[-1].max != 100:
            raise self.error(f"bands[{len(result) - 1}].max", "must be 100, so that every score has a band")
        return tuple(result)


# --- asking ------------------------------------------------------------------------------------------

def questions(instrument: Instrument, language: str) -> tuple[Question, ...]:
    """The items in the order they are asked, in `language`, ready for one message each."""
    stem = instrument.stem.get(language) if instrument.stem else None
    total = len(instrument.items)
    return tuple(
        Question(number, total, item.id, stem, item.text.get(language),
                 tuple(Choice(option.id, option.label.get(language)) for option in item.option_set.options))
        for number, item in enumerate(instrument.items, start=1)
    )


# --- scoring -----------------------------------------------------------------------------------------

def score(instrument: Instrument, answers: Mapping[str, str | None]) -> dict[str, float | None]:
    """Scale id → score on 0–100, or None when the scale cannot be scored (see the module docstring).

    `answers` maps item ids to option ids; an item left out or mapped to None was not answered.
    An unknown item or option raises ValueError: answers come from buttons, so that is a bug or a forgery."""
    points: dict[str, float | None] = {}
    for item in instrument.items:
        option_id = answers.get(item.id)
        if option_id is None:
            points[item.id] = None
            continue
        try:
            option = item.option_set.option(option_id)
        except KeyError:
            raise ValueError(f"{instrument.id}: item {item.id} has no option {option_id!r}") from None
        points[item.id] = None if option.missing else _points(instrument, item, option.value)
    unknown = set(answers) - set(points)
    if unknown:
        raise ValueError(f"{instrument.id}: no item {min(unknown)!r}")

    scores: dict[str, float | None] = {}
    for scale in instrument.scales:
        values = [points[item_id] for item_id in scale.item_ids]
        answered = [value for value in values if value is not None]
        if instrument.scoring == "who5":
            # No official rule for a skipped WHO-5 item: no score rather than a guessed one.
            scores[scale.id] = float(sum(answered) * 4) if len(answered) == len(values) else None
        else:
            # COPSOQ: the mean of the answered items, if at least half of the scale's items were answered.
            scores[scale.id] = sum(answered) / len(answered) if answered and 2 * len(answered) >= len(values) else None
    return scores


def _points(instrument: Instrument, item: Item, value: float) -> float:
    if instrument.scoring == "who5":
        return value  # summed raw (0–5), × 4 per scale
    if instrument.scoring == "copsoq_mean":
        return 100 - value if item.reversed else value  # weights are already 0/25/50/75/100
    low, high = item.option_set.value_range  # `mean`: lowest option 0, highest 100
    on_100 = (value - low) / (high - low) * 100
    return 100 - on_100 if item.reversed else on_100


def who5_band(value: float, instrument: Instrument | None = None) -> Band:
    """The band of a WHO-5 score (0–100): the first band whose `max` is at or above it."""
    instrument = instrument or load_instruments()["who5"]
    if instrument.scoring != "who5":
        raise ValueError(f"{instrument.id} is not scored with the WHO-5 rule")
    if not 0 <= value <= 100:
        raise ValueError(f"a WHO-5 score is between 0 and 100, not {value}")
    return next(band for band in instrument.bands if value <= band.max)


def personal_result(instrument: Instrument, scores: Mapping[str, float | None], language: str) -> str | None:
    """What a WHO-5 respondent may see at the end: their score, a plain non-diagnostic sentence and where
    to get support. Only the support part when an item was skipped (no score); None for other instruments,
    whose results are shown only in aggregate."""
    if instrument.scoring != "who5" or instrument.support is None or instrument.your_score is None:
        return None
    value = scores.get(instrument.scales[0].id)
    support = instrument.support.get(language)
    if value is None:
        return support
    band = who5_band(value, instrument)
    return "\n\n".join((instrument.your_score.get(language).format(score=f"{value:g}"),
                        band.message.get(language), support))
