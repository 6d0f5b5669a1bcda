"""The real bot process against the fake Bot API: the miner's report flow, end to end."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from tests.e2e_support import BotProcess, tr
from tests.fake_telegram import FakeTelegram
from tests.flows import choose_language, data_starts, report, says, tap


@pytest.fixture
async def bot(tg: FakeTelegram, tmp_path: Path):
    process = BotProcess(tg, tmp_path)
    await process.start()
    yield process
    await process.stop()
    assert "Traceback" not in process.log(), process.log()
    assert tg.token not in process.log()


def reports_in(database: Path) -> list[tuple]:
    with sqlite3.connect(database) as connection:
        return connection.execute("SELECT case_code, category, severity, location, description, status FROM reports").fetchall()


@pytest.mark.parametrize("language", ["kk", "ru", "en"])
async def test_whole_flow_in_each_language(tg: FakeTelegram, bot: BotProcess, language: str) -> None:
    miner = tg.user(7_100_000_001, "Miner", language_code="ru")
    await choose_language(miner, language)
    receipt = await report(miner, language, album=2, severity="danger")

    (row,) = reports_in(bot.database_path)
    assert row[0] == receipt.case_code and row[1:3] == ("gas", "danger") and row[5] == "received"
    photos = sqlite3.connect(bot.database_path).execute("SELECT count(*) FROM report_photos").fetchone()[0]
    assert photos == 2

    # Check status straight from the confirmation's button.
    await tap(miner, data_starts("ck:"), message=receipt.confirmation)
    status = await miner.next_message()
    assert receipt.case_code in status["text"]
    assert says(status, language, "Received")

    # Erase the conversation: every message from the /report button on goes, after a confirmation.
    first = min(m["message_id"] for m in miner.history() if m.get("text") == tr(language, "⚠️ Report a hazard"))
    await tap(miner, data_starts("er:ask:"), message=receipt.confirmation)
    await miner.next_message()
    await tap(miner, data_starts("er:yes:"))
    assert [m for m in miner.history() if m["message_id"] >= first] == []
    assert any(m["message_id"] < first for m in miner.history())  # the language choice before it stays

    # The command menu is there in this language.
    assert tg.commands(language_code=language)[0]["command"] == "report"
    assert tg.calls_to("forwardMessage") == []
    assert tg.unanswered_callbacks() == []
    tg.assert_no_errors()


async def test_command_menus_per_language(tg: FakeTelegram, bot: BotProcess) -> None:
    for language in ("kk", "ru", "en"):
        menu = tg.commands(language_code=language)
        assert [c["command"] for c in menu] == ["report", "status", "privacy", "profile", "language", "help", "cancel"]
        assert menu[0]["description"] == tr(language, "Report a hazard anonymously")
    assert tg.commands()[0]["description"] == tr("ru", "Report a hazard anonymously")


async def test_choice_of_language_is_stored_and_changed(tg: FakeTelegram, bot: BotProcess) -> None:
    miner = tg.user(7_100_000_002, "Miner", language_code="en")
    await choose_language(miner, "kk")
    await miner.send("/help")
    assert says(await miner.next_message(), "kk", "/cancel — stop what you are doing")
    await miner.send("/language")
    await miner.next_message()
    await tap(miner, data_starts("lang:ru"))
    assert says(await miner.next_message(), "ru", "Done. The menu is below.")
    await miner.send("/privacy")
    assert says(await miner.next_message(), "ru", "<b>What is never stored</b>")
    tg.assert_no_errors()


async def test_every_wrong_input_gets_an_answer_and_the_step_again(tg: FakeTelegram, bot: BotProcess) -> None:
    lang = "ru"
    miner = tg.user(7_100_000_003, "Miner", language_code=lang)
    await choose_language(miner, lang)
    await miner.send(tr(lang, "⚠️ Report a hazard"))
    region_question = await miner.next_message()

    async def expect_hint(msgid: str, **values) -> dict:
        hint = await miner.next_message()
        assert says(hint, lang, msgid, **values), hint["text"]
        again = await miner.next_message()
        return again

    # Button steps: stickers, voice, location, contact, text.
    for send in (miner.send_sticker, miner.send_voice, lambda: miner.send_location(49.8, 73.1),
                 miner.send_contact, lambda: miner.send("шахта Ленина")):
        await send()
        again = await expect_hint("Please choose with the buttons below.")
        assert says(again, lang, "<b>Step {step} of {total}</b>", step=1, total=6)

    # A second /report mid-flow, and /start.
    for command in ("/report", "/start", tr(lang, "🔎 Check my report")):
        await miner.send(command)
        await expect_hint("You are in the middle of a report. Carry on below, or send /cancel to drop it.")

    await tap(miner, data_starts("rp:region:karaganda-coal"), message=region_question)
    await tap(miner, data_starts("rp:site:"))
    # An old keyboard: the region buttons of the first question were replaced; tap a stale one elsewhere.
    answer = await tap(miner, data_starts("rp:region:"), message=await _message_with(miner, "rp:region:"))
    assert answer["text"] == tr(lang, "That button belongs to an earlier step.")
    again = await expect_hint("Here is where you are now:")
    assert says(again, lang, "<b>Step {step} of {total}</b>", step=2, total=6)

    await tap(miner, data_starts("rp:category:roof"), message=again)
    await tap(miner, data_starts("rp:severity:serious"), message=again)
    await tap(miner, data_starts("rp:skip"), message=again)

    # Description: not text, too short, too long.
    await miner.send_voice()
    await expect_hint("Please type your answer as a text message.")
    await miner.send("крыша")
    await expect_hint("Please describe it in a few more words (at least {min} characters).", min=10)
    await miner.send("а" * 1501)
    await expect_hint("That is too long ({length} characters). Please shorten it to {limit} characters.",
                      length=1501, limit=1500)
    await miner.send("Отжим боков на сопряжении лавы, крепь не поставлена")
    photos_question = await miner.next_message()

    # Photos: a picture sent as a file, a PDF, a video, text.
    await miner.send_document(file_name="IMG_2041.jpg", mime_type="image/jpeg")
    await expect_hint("Please send it as a photo, not as a file: files keep hidden data, such as where the picture was taken.")
    await miner.send_document(file_name="act.pdf", mime_type="application/pdf")
    await expect_hint("Only photos can be attached to a report.")
    await miner.send_video()
    await expect_hint("Please send a photo, or use the buttons.")
    # Six photos in one album: five are kept, the sixth is refused, and the review follows.
    await miner.send_album(6)
    assert says(await miner.next_message(), lang, "Only {max} photos can be attached; the others were not added.", max=5)
    review = await miner.next_message()
    assert tr(lang, "✅ Send report") in miner.buttons(review)
    del photos_question

    # Text at the review, then an edited message.
    sent = await miner.send("отправить")
    await expect_hint("Please choose with the buttons below.")
    await miner.edit(sent, "отправить!")
    assert says(await miner.next_message(), lang,
                "I cannot see changes to messages already sent. To change a report, use the ✏️ buttons before sending it.")

    await miner.send("/cancel")
    assert says(await miner.next_message(), lang, "Cancelled. Nothing was sent, and the draft is deleted.")
    # After cancelling: a stale button, an unknown command, random text.
    answer = await tap(miner, data_starts("rp:submit"), message=await _message_with(miner, "rp:submit"))
    assert answer["text"] == tr(lang, "This button is no longer active.")
    await miner.send("/frobnicate")
    assert says(await miner.next_message(), lang, "I do not know this command. See /help for what I can do.")
    await miner.send("привет")
    assert says(await miner.next_message(), lang, "Please use the menu buttons below, or see /help.")
    await miner.send("/cancel")
    assert says(await miner.next_message(), lang, "There is nothing to cancel.")

    assert reports_in(bot.database_path) == []
    assert tg.unanswered_callbacks() == []
    tg.assert_no_errors()


async def _message_with(miner, prefix: str) -> dict:
    for message in miner.bot_messages():
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            if any((button.get("callback_data") or "").startswith(prefix) for button in row):
                return message
    raise AssertionError(f"no message with a {prefix} button")


async def test_back_edit_and_cancel(tg: FakeTelegram, bot: BotProcess) -> None:
    lang = "en"
    miner = tg.user(7_100_000_004, "Miner", language_code=lang)
    await choose_language(miner, lang)
    await miner.send("/report")
    question = await miner.next_message()
    await tap(miner, data_starts("rp:region:ekibastuz-coal"))
    await tap(miner, data_starts("nav:back"))
    assert says(question, lang, "Which mine or enterprise is it about? First choose the region.")
    await tap(miner, data_starts("rp:region:ekibastuz-coal"))
    await tap(miner, data_starts("rp:site:"))
    await tap(miner, data_starts("rp:category:dust"))
    await tap(miner, data_starts("rp:severity:attention"))
    await tap(miner, data_starts("rp:skip"))
    await miner.send("Dust suppression sprays at the crusher have been off for a week")
    photos = await miner.next_message()
    await tap(miner, data_starts("rp:done"), message=photos)
    assert tr(lang, "✅ Send report") in miner.buttons(photos) and tr(lang, "not given") in photos["text"]

    # Edit the place from the review, then come straight back to the review.
    await tap(miner, data_starts("rp:edit:location"), message=photos)
    await miner.send("Crusher house, level 2")
    review = await miner.next_message()
    assert "Crusher house, level 2" in review["text"] and tr(lang, "✅ Send report") in miner.buttons(review)
    # Edit the hazard, then Back returns to the review unchanged.
    await tap(miner, data_starts("rp:edit:category"), message=review)
    await tap(miner, data_starts("nav:back"), message=review)
    assert says(review, lang, "Dust")
    await tap(miner, data_starts("nav:cancel"), message=review)
    assert says(review, lang, "Report cancelled. Nothing was sent, and the draft is deleted.")
    assert reports_in(bot.database_path) == []
    with sqlite3.connect(bot.database_path) as connection:
        assert connection.execute("SELECT count(*) FROM fsm_states").fetchone()[0] == 0
    tg.assert_no_errors()


async def test_restart_mid_flow_carries_on(tg: FakeTelegram, bot: BotProcess) -> None:
    lang = "kk"
    miner = tg.user(7_100_000_005, "Miner", language_code="kk")
    await choose_language(miner, lang)
    await miner.send("/report")
    question = await miner.next_message()
    await tap(miner, data_starts("rp:region:aktobe-ore"))
    await tap(miner, data_starts("rp:site:"))
    await tap(miner, data_starts("rp:category:machinery"))
    await tap(miner, data_starts("rp:severity:serious"))
    assert says(question, lang, "<b>Step {step} of {total}</b>", step=4, total=6)

    assert await bot.stop() == 0
    await bot.start()

    await miner.send("Конвейер №3, 2-горизонт")
    assert says(await miner.next_message(), lang, "<b>Step {step} of {total}</b>", step=5, total=6)
    await miner.send("Конвейердің қоршауы алынып тасталған, адамдар жанынан өтеді")
    photos = await miner.next_message()
    await tap(miner, data_starts("rp:done"), message=photos)
    await tap(miner, data_starts("rp:submit"), message=photos)
    assert re.search(r"MV-[0-9A-Z]{5}", (await miner.next_message())["text"])
    (row,) = reports_in(bot.database_path)
    assert row[1:5] == ("machinery", "serious", "Конвейер №3, 2-горизонт",
                        "Конвейердің қоршауы алынып тасталған, адамдар жанынан өтеді")
    tg.assert_no_errors()


async def test_confirmed_report_survives_an_abrupt_kill(tg: FakeTelegram, bot: BotProcess) -> None:
    miner = tg.user(7_100_000_006, "Miner", language_code="ru")
    await choose_language(miner, "ru")
    receipt = await report(miner, "ru")
    await bot.kill()  # the moment the confirmation arrived: no shutdown, no final checkpoint
    assert [row[0] for row in reports_in(bot.database_path)] == [receipt.case_code]
    await bot.start()  # and the bot comes back on the same database


async def test_status_checks_and_throttle(tg: FakeTelegram, bot: BotProcess) -> None:
    lang = "ru"
    miner = tg.user(7_100_000_007, "Miner", language_code=lang)
    await choose_language(miner, lang)
    receipt = await report(miner, lang, location=None)

    # Code and receipt typed one after the other; the receipt message is deleted after checking.
    await miner.send("/status")
    await miner.next_message()
    await miner.send(receipt.case_code.lower())
    assert says(await miner.next_message(), lang, "Now send the secret receipt for {code}.", code=receipt.case_code)
    typed = await miner.send(receipt.receipt.replace("-", " ").lower())
    status = await miner.next_message()
    assert receipt.case_code in status["text"] and says(status, lang, "Received")
    assert typed["deleted"]

    wrong = "MV-ZZZZZ 0000-0000-0000-0000"
    for attempt in range(5):  # five failures per quarter hour; the right receipt above did not count
        await miner.send(f"/status {receipt.case_code if attempt % 2 else wrong}")
        if attempt % 2:
            await miner.next_message()
            await miner.send("0000-0000-0000-0000")
        answer = await miner.next_message()
        assert says(answer, lang, "The case code or the receipt is not right. Check both and send them again, or send /cancel."), answer["text"]
    await miner.send(f"/status {receipt.case_code} {receipt.receipt}")
    assert says(await miner.next_message(), lang, "Too many attempts. Please try again in {minutes} min.", minutes=15)
    tg.assert_no_errors()


async def test_reports_per_hour_are_limited(tg: FakeTelegram, bot: BotProcess) -> None:
    lang = "en"
    miner = tg.user(7_100_000_008, "Miner", language_code=lang)
    await choose_language(miner, lang)
    for _ in range(3):
        await report(miner, lang, location=None)
    await miner.send("/report")
    refusal = await miner.next_message()
    assert says(refusal, lang, "If life is in danger, call the mine dispatcher now.", minutes=60), refusal["text"]
    assert len(reports_in(bot.database_path)) == 3
