"""A miner's moves, for end-to-end tests and benchmarks: press what the bot shows, read what it says."""

from __future__ import annotations

import asyncio
import html
import re
from dataclasses import dataclass

from tests.e2e_support import tr
from tests.fake_telegram import FakeUser

TAG = re.compile(r"<[^>]+>")


def plain(text: str) -> str:
    """A catalog string as Telegram shows it: tags parsed away, entities unescaped, trimmed."""
    return html.unescape(TAG.sub("", text)).strip()


def says(message: dict, language: str, msgid: str, **values: object) -> bool:
    expected = plain(tr(language, msgid).format(**values) if values else tr(language, msgid))
    return expected in (message.get("text") or message.get("caption") or "")


def data_starts(prefix: str):
    return lambda button: (button.get("callback_data") or "").startswith(prefix)


async def tap(user: FakeUser, button, *, message: dict | None = None) -> dict:
    """Press a button and wait until the bot has answered the callback (handler finished)."""
    query_id = await user.press(button, message=message)
    return await user.callback_answer(query_id, timeout=10)


async def choose_language(user: FakeUser, language: str) -> None:
    await user.send("/start")
    picker = await user.next_message()
    assert user.buttons(picker) == [tr(code, "English") for code in ("kk", "ru", "en")]
    await tap(user, data_starts(f"lang:{language}"))
    welcome = await user.next_message()
    assert says(welcome, language, "Use the buttons below. How your anonymity is protected: /privacy"), welcome["text"]
    assert user.reply_buttons()[0] == tr(language, "⚠️ Report a hazard")


@dataclass
class Receipt:
    case_code: str
    receipt: str
    confirmation: dict


STEP = "<b>Step {step} of {total}</b>"


async def report(
    user: FakeUser,
    language: str,
    *,
    region: str = "karaganda-coal",
    category: str = "gas",
    severity: str = "serious",
    location: str | None = "Участок 5, горизонт −450",
    description: str = "Датчик метана заклеен, вентилятор не работает с утра",
    album: int = 0,
) -> Receipt:
    """The whole report flow, as a miner taps it, from the main-menu button to the receipt."""
    await user.send(tr(language, "⚠️ Report a hazard"))
    question = await user.next_message()
    assert says(question, language, STEP, step=1, total=6), question["text"]
    await tap(user, data_starts(f"rp:region:{region}"))
    assert says(question, language, STEP, step=1, total=6)
    await tap(user, data_starts("rp:site:"))
    assert says(question, language, STEP, step=2, total=6), question["text"]
    await tap(user, data_starts(f"rp:category:{category}"))
    assert says(question, language, STEP, step=3, total=6)
    await tap(user, data_starts(f"rp:severity:{severity}"))
    if severity == "danger":
        assert says(question, language, "1. Leave the danger zone and take others with you."), question["text"]
        question = await user.next_message()
    assert says(question, language, STEP, step=4, total=6), question["text"]
    if location is None:
        await tap(user, data_starts("rp:skip"))
    else:
        await user.send(location)
        question = await user.next_message()
    assert says(question, language, STEP, step=5, total=6), question["text"]
    await user.send(description)
    question = await user.next_message()
    assert says(question, language, STEP, step=6, total=6), question["text"]
    if album:
        await user.send_album(album)
        question = await user.next_message()
        assert says(question, language, "Photos attached: {count} of {max}. Send more, or press Done.", count=album, max=5)
    await tap(user, data_starts("rp:done"), message=question)
    assert tr(language, "✅ Send report") in user.buttons(question), question["text"]
    assert description in question["text"]
    await tap(user, data_starts("rp:submit"), message=question)
    confirmation = await user.next_message()
    found = re.search(r"(MV-[0-9A-Z]{5}).*?([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})", confirmation["text"], re.S)
    assert found, confirmation["text"]
    return Receipt(found.group(1), found.group(2), confirmation)


async def launch(org: FakeUser, instrument: str, languages: tuple[str, ...] = ()) -> None:
    org.skip_pending()
    await org.send("/survey")
    card = await org.next_message()
    assert says(card, "en", "Which questionnaire?")
    await tap(org, data_starts(f"ss:instrument:{instrument}"), message=card)
    await tap(org, data_starts("ss:sites_done"), message=card)
    for language in languages:
        await tap(org, data_starts(f"ss:language:{language}"), message=card)
    await tap(org, data_starts("ss:languages_done"), message=card)
    await tap(org, data_starts("ss:now"), message=card)
    await tap(org, data_starts("ss:days:14"), message=card)
    assert says(card, "en", "Check and launch")
    await tap(org, data_starts("ss:launch"), message=card)
    assert card["text"].startswith("🚀"), card["text"]  # "Survey #N launched…"


async def invitation(user: FakeUser, timeout: float = 15.0) -> dict:
    """The newest message carrying a Start button."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        for message in reversed(user.bot_messages()):
            if any(data_starts("sv:start:")(button) for row in (message.get("reply_markup") or {}).get(
                    "inline_keyboard", []) for button in row):
                return message
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("no invitation")
        await asyncio.sleep(0.05)


async def begin(user: FakeUser, language: str, *, region: str = "karaganda-coal", area: str = "underground") -> dict:
    """Start under the invitation → intro → Begin → mine → work area; returns the question message."""
    start = await invitation(user)
    user.skip_pending()
    await tap(user, data_starts("sv:start:"), message=start)
    intro = await user.next_message()
    assert says(intro, language, "<b>Anonymous:</b> your answers are stored only with your mine"), intro["text"]
    await tap(user, data_starts("sv:begin:"), message=intro)
    await tap(user, ends_with("sv:region:", region), message=intro)
    await tap(user, data_starts("sv:site:"), message=intro)
    assert says(intro, language, "Do you work mostly underground or on the surface?")
    await tap(user, ends_with("sv:area:", area), message=intro)
    return intro


def ends_with(prefix: str, suffix: str):
    return lambda button: (button.get("callback_data") or "").startswith(prefix) and button["callback_data"].endswith(suffix)


async def until(condition, timeout: float = 15.0) -> None:
    """Wait until `condition()` holds (the bot works in the background: sends, engine, jobs)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.05)
