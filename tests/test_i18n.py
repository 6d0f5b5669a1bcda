"""The three catalogs are complete, in step with the code, and nothing user-visible bypasses them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from bot.config import LOCALES
from tests.e2e_support import tr

ROOT = Path(__file__).resolve().parent.parent
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
TAG = re.compile(r"</?(b|i|code)>")
KEYWORDS = {**DEFAULT_KEYWORDS, "__": (1,), "N_": (1,)}


def catalog(language: str):
    with (ROOT / "locales" / language / "LC_MESSAGES" / "messages.po").open("rb") as handle:
        return read_po(handle)


def code_msgids() -> set[str]:
    found = set()
    for folder in ("bot", "handlers", "storage"):
        for _, _, message, _, _ in extract_from_dir(ROOT / folder, keywords=KEYWORDS, comment_tags=()):
            found.add(message if isinstance(message, str) else message[0])
    return found


def test_catalogs_hold_exactly_the_strings_in_the_code() -> None:
    in_code = code_msgids()
    assert in_code, "extraction found nothing"
    for language in LOCALES:
        in_catalog = {message.id for message in catalog(language) if message.id}
        assert in_code - in_catalog == set(), f"{language}: run `make i18n` and translate"
        assert in_catalog - in_code == set(), f"{language}: obsolete entries; run `make i18n`"


@pytest.mark.parametrize("language", LOCALES)
def test_every_entry_translated_with_the_same_placeholders_and_tags(language: str) -> None:
    for message in catalog(language):
        if not message.id:
            continue
        assert message.string, f"{language}: untranslated {message.id!r}"
        assert not message.fuzzy, f"{language}: fuzzy {message.id!r}"
        assert sorted(PLACEHOLDER.findall(message.string)) == sorted(PLACEHOLDER.findall(message.id)), message.id
        assert sorted(TAG.findall(message.string)) == sorted(TAG.findall(message.id)), message.id


def test_each_language_names_itself() -> None:
    assert [tr(language, "English") for language in LOCALES] == ["Қазақша", "Русский", "English"]


def test_bot_command_descriptions_fit_telegram() -> None:
    for language in LOCALES:
        for msgid in ("Report a hazard anonymously", "Check a report you sent", "What is stored and who sees what",
                      "Change the language", "What the bot can do", "Stop what you are doing"):
            assert 3 <= len(tr(language, msgid)) <= 256


def _literal_texts(tree: ast.AST):
    """String literals handed straight to Telegram as text: answer("…"), text="…", edit_text("…")."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", getattr(node.func, "id", ""))
        candidates = []
        if name in {"answer", "edit_text", "send_message", "reply"} and node.args:
            candidates.append(node.args[-1] if name == "send_message" else node.args[0])
        candidates += [kw.value for kw in node.keywords if kw.arg in {"text", "caption", "description"}]
        for value in candidates:
            # Text with letters in it is language; arrows and other symbols alone are not.
            if isinstance(value, ast.Constant) and isinstance(value.value, str) and any(ch.isalpha() for ch in value.value):
                yield node.lineno, value.value
            if isinstance(value, ast.JoinedStr) and any(
                    isinstance(part, ast.Constant) and any(ch.isalpha() for ch in str(part.value)) for part in value.values):
                yield node.lineno, ast.unparse(value)


def test_no_user_visible_literal_outside_the_catalogs() -> None:
    offenders = []
    for folder in ("bot", "handlers"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == ROOT / "bot" / "__main__.py":
                continue  # the operator's command line (check, backup, restore) is English, like the logs
            for line, text in _literal_texts(ast.parse(path.read_text(encoding="utf-8"))):
                offenders.append(f"{path.relative_to(ROOT)}:{line}: {text!r}")
    assert offenders == []
