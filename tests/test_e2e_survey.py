"""Surveys end to end through the fake Bot API: launch, invitation, answering in kk/ru/en with
skips and Back, resume after a restart, a refused second answer set, closing, and /results."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from pathlib import Path

import pytest
from openpyxl import load_workbook

from bot.instruments import load_instruments
from tests.e2e_support import InProcessBot, tr
from tests.fake_telegram import FakeTelegram, FakeUser
from tests.flows import begin, choose_language, data_starts, invitation, launch, says, tap, until

ORGANIZER = 6_300_000_001
WHO5 = load_instruments()["who5"]
LAST_QUESTION = ("That was the last question ({answered} of {total} answered). Send your answers? "
                 "They cannot be changed afterwards.")


@pytest.fixture
async def bot(tg: FakeTelegram, tmp_path: Path):
    process = InProcessBot(tg, tmp_path, admin_ids=frozenset({ORGANIZER}))
    await process.start()
    yield process
    await process.stop()


def db(bot: InProcessBot) -> sqlite3.Connection:
    connection = sqlite3.connect(bot.settings.database_path)
    connection.row_factory = sqlite3.Row
    return connection



async def test_who5_in_three_languages_with_skip_back_and_a_refused_second_answer(tg: FakeTelegram, bot: InProcessBot) -> None:
    org = tg.user(ORGANIZER, "Organizer", language_code="en")
    await choose_language(org, "en")
    miners = {}
    for user_id, language in ((7_900_001, "kk"), (7_900_002, "ru"), (7_900_003, "en")):
        miners[language] = tg.user(user_id, f"Miner {language}", language_code=language)
        await choose_language(miners[language], language)
    await launch(org, "who5")

    for language, miner in miners.items():
        question = await begin(miner, language)
        assert "1/5" in question["text"]
        await tap(miner, data_starts("sv:answer:"), message=question)  # the first option of item 1
        assert "2/5" in question["text"]
        await tap(miner, data_starts("sv:back:"), message=question)  # Back shows the answer given
        assert "1/5" in question["text"] and any(
            button["text"].startswith("✅") for row in question["reply_markup"]["inline_keyboard"] for button in row)
        await tap(miner, data_starts("sv:answer:"), message=question)
        for _ in range(4):
            skip = language == "ru" and "3/5" in question["text"]
            await tap(miner, data_starts("sv:skip:" if skip else "sv:answer:"), message=question)
        assert says(question, language, LAST_QUESTION, answered=4 if language == "ru" else 5, total=5)
        await tap(miner, data_starts("sv:submit:"), message=question)
        assert says(question, language, "✅ Thank you! Your answers are saved, without your name or account.")
        # Only a respondent who answered all five items sees a score (a plain sentence, no diagnosis).
        your_score = WHO5.your_score.get(language).split("{score}")[0].strip()
        assert (your_score in question["text"]) is (language != "ru"), question["text"]
        assert WHO5.support.get(language).split("\n")[0] in question["text"]
        # The second time: refused.
        answer = await tap(miner, data_starts("sv:start:"), message=await invitation(miner))
        assert answer["text"] == tr(language, "You have already answered this survey. Thank you!")

    # The WHO-5 score is shown only to the respondent with all five items answered, never for a skip.
    with db(bot) as connection:
        responses = connection.execute("SELECT site_id, work_area, answers FROM survey_responses").fetchall()
        assert len(responses) == 3
        assert connection.execute("SELECT count(*) FROM survey_takers").fetchone()[0] == 3
        columns = {row["name"] for row in connection.execute("PRAGMA table_info(survey_responses)")}
        assert columns == {"survey_id", "id", "site_id", "work_area", "answers"}
        assert not connection.execute("SELECT count(*) FROM fsm_states WHERE state LIKE 'SurveyFlow:%'").fetchone()[0]
    tg.assert_no_errors()


async def test_resume_after_restart_and_nothing_left_after_closing(tg: FakeTelegram, tmp_path: Path) -> None:
    first = InProcessBot(tg, tmp_path, admin_ids=frozenset({ORGANIZER}))
    await first.start()
    org = tg.user(ORGANIZER, "Organizer", language_code="en")
    await choose_language(org, "en")
    halfway = tg.user(7_910_001, "Halfway", language_code="kk")
    await choose_language(halfway, "kk")
    done = tg.user(7_910_002, "Done", language_code="ru")
    await choose_language(done, "ru")
    await launch(org, "union_mining_checklist")
    question = await begin(halfway, "kk")
    await tap(halfway, data_starts("sv:answer:"), message=question)
    await tap(halfway, data_starts("sv:answer:"), message=question)
    assert "3/10" in question["text"]
    finished = await begin(done, "ru", area="surface")
    for _ in range(10):
        await tap(done, data_starts("sv:answer:"), message=finished)
    await tap(done, data_starts("sv:submit:"), message=finished)
    await first.stop()

    second = InProcessBot(tg, tmp_path, admin_ids=frozenset({ORGANIZER}))
    await second.start()
    try:
        await tap(halfway, data_starts("sv:answer:"), message=question)  # the same message, after the restart
        assert "4/10" in question["text"]
        with db(second) as connection:
            takers = [row[0] for row in connection.execute("SELECT taker FROM survey_takers")]
            assert len(takers) == 1
        # Close it from /results, as its organizer.
        org.skip_pending()
        await org.send("/results")
        listing = await org.next_message()
        await tap(org, data_starts("res:show:"), message=listing)
        not_yet = await org.next_message()
        assert not_yet["text"].startswith("Results are shown once the survey has closed ("), not_yet["text"]
        await tap(org, data_starts("res:close:"), message=not_yet)
        chart, workbook = await org.next_message(), await org.next_message()
        title = load_instruments()["union_mining_checklist"].title.get("en")
        assert chart.get("photo") and says(chart, "en", "{title}, survey #{number}.", title=title, number=1), chart
        book = load_workbook(io.BytesIO(tg.file_content(workbook["document"]["file_id"])))
        cells = [str(cell.value) for sheet in book.worksheets for row in sheet.iter_rows() for cell in row if cell.value]
        assert any(tr("en", "too few answers") in cell for cell in cells)

        # The half-finished miner can no longer go on, and nothing derived from a user id is left.
        answer = await tap(halfway, data_starts("sv:answer:"), message=question)
        assert answer["text"] == tr("kk", "This button is no longer active. Press Start under the invitation to answer.")
        with db(second) as connection:
            assert connection.execute("SELECT count(*) FROM survey_takers").fetchone()[0] == 0
            assert connection.execute("SELECT secret FROM surveys").fetchone()[0] is None
            assert not connection.execute("SELECT count(*) FROM fsm_states WHERE state LIKE 'SurveyFlow:%'").fetchone()[0]
        await asyncio.sleep(0.2)
    finally:
        await second.stop()
    raw = b"".join(path.read_bytes() for path in (tmp_path / "data").glob("minevoice.sqlite3*"))
    for taker in takers:
        assert taker not in raw  # not in the database file nor its WAL
    tg.assert_no_errors()


async def test_committee_launches_for_its_own_mine_and_language(tg: FakeTelegram, bot: InProcessBot) -> None:
    member = tg.user(7_920_010, "Member", language_code="ru")
    await choose_language(member, "ru")
    with db(bot) as connection:
        own, other = [row[0] for row in connection.execute(
            "SELECT id FROM sites WHERE region_code = 'ekibastuz-coal' AND archived = 0 ORDER BY position LIMIT 2")]
        connection.execute("INSERT INTO roles (user_id, role, site_id, display_name, granted_at) "
                           "VALUES (?, 'committee', ?, 'Member', '2026-11-01T00:00:00Z')", (member.id, own))
        connection.executemany("INSERT INTO users (user_id, language, site_id) VALUES (?, ?, ?)",
                               [(7_920_011, "kk", own), (7_920_012, "ru", own), (7_920_013, "kk", other)])
    for user_id in (7_920_011, 7_920_012, 7_920_013):
        tg.user(user_id, "Miner", started=True)
    member.skip_pending()
    await member.send("/survey")
    card = await member.next_message()
    await tap(member, data_starts("ss:instrument:who5"), message=card)
    site_buttons = [b for row in card["reply_markup"]["inline_keyboard"] for b in row
                    if (b.get("callback_data") or "").startswith("ss:site:")]
    assert [b["callback_data"] for b in site_buttons] == [f"ss:site:{own}"]  # its own mine only, already chosen
    forged = await member.callback_answer(await member.press_data(f"ss:site:{other}", message=card))
    assert forged["text"] == tr("ru", "That button belongs to an earlier step.")
    await tap(member, data_starts("ss:sites_done"), message=card)
    await tap(member, data_starts("ss:language:kk"), message=card)
    await tap(member, data_starts("ss:languages_done"), message=card)
    await tap(member, data_starts("ss:now"), message=card)
    await tap(member, data_starts("ss:days:7"), message=card)
    await tap(member, data_starts("ss:launch"), message=card)
    await until(lambda: any(tg.user(7_920_011, "Miner").bot_messages()))
    await asyncio.sleep(0.5)
    assert not tg.user(7_920_012, "Miner").bot_messages() and not tg.user(7_920_013, "Miner").bot_messages()

    miner = tg.user(7_920_001, "Miner", language_code="ru")
    await choose_language(miner, "ru")
    await miner.send("/survey")
    assert says(await miner.next_message(), "ru", "No survey is waiting for you.")
    await miner.send("/results")
    assert says(await miner.next_message(), "ru", "Only union organizers and OSH committees can run surveys.")
    tg.assert_no_errors()
