"""Announcements end to end: an organizer composes in the chat, miners receive through the fake
Bot API, with the real app (polling, engine, SQLite file) in this process."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.scheduler import start_due_campaigns
from tests.e2e_support import InProcessBot, tr
from tests.fake_telegram import FakeTelegram, FakeUser
from tests.flows import choose_language, data_starts, says, tap, until

ORGANIZER = 6_200_000_001
BOLD_TEXT = "Сход 5 декабря: ратифицируем Конвенцию МОТ № 176!"


@pytest.fixture
async def bot(tg: FakeTelegram, tmp_path: Path):
    process = InProcessBot(tg, tmp_path, admin_ids=frozenset({ORGANIZER}), broadcast_rate=20)
    await process.start()
    yield process
    await process.stop()


async def organizer(tg: FakeTelegram) -> FakeUser:
    user = tg.user(ORGANIZER, "Organizer", language_code="en")
    await choose_language(user, "en")
    return user


def subscribers(bot: InProcessBot, miners: list[tuple[int, str, int | None]]) -> None:
    """Miners who started the bot long ago: (user id, language, mine id or None)."""
    with sqlite3.connect(bot.settings.database_path) as connection:
        connection.executemany("INSERT INTO users (user_id, language, site_id) VALUES (?, ?, ?)", miners)
    for user_id, language, _site in miners:
        bot.tg.user(user_id, f"Miner {user_id}", language_code=language, started=True)


def site_id(bot: InProcessBot, code: str) -> int:
    with sqlite3.connect(bot.settings.database_path) as connection:
        return connection.execute("SELECT id FROM sites WHERE code = ?", (code,)).fetchone()[0]


def campaign_row(bot: InProcessBot, campaign_id: int | None = None) -> sqlite3.Row:
    with sqlite3.connect(bot.settings.database_path) as connection:
        connection.row_factory = sqlite3.Row
        query = "SELECT * FROM campaigns " + ("WHERE id = ?" if campaign_id else "ORDER BY id DESC LIMIT 1")
        return connection.execute(query, (campaign_id,) if campaign_id else ()).fetchone()


def announcements_to(tg: FakeTelegram, chat_id: int) -> list[dict]:
    """What the chat got that carries the Unsubscribe button: announcements and their previews."""
    return [message for message in tg.chat_messages(chat_id)
            if any(button.get("callback_data") == "unsub" for row in
                   (message.get("reply_markup") or {}).get("inline_keyboard", []) for button in row)]



async def compose(org: FakeUser, *, sites: list[int] = (), languages: list[str] = (), text: str = BOLD_TEXT,
                  entities: list[dict] | None = None, photo: bool = False, versions: dict[str, str] | None = None,
                  link: str | None = None, ack: bool = False, when: str | None = None, quiet: str | None = None,
                  confirm: bool = True) -> dict:
    """The organizer's taps from /announce to the confirmation; returns the step 4 card."""
    org.skip_pending()  # the organizer is a subscriber too: earlier announcements may be unread
    await org.send("/announce")
    card = await org.next_message()
    assert says(card, "en", "Who gets the announcement")
    if sites:
        await tap(org, data_starts("ann:sites"), message=card)
        for site in sites:
            await tap(org, data_starts(f"ann:site:{site}"), message=card)
        await tap(org, data_starts("ann:done"), message=card)
    if languages:
        await tap(org, data_starts("ann:languages"), message=card)
        for language in languages:
            await tap(org, data_starts(f"ann:language:{language}"), message=card)
        await tap(org, data_starts("ann:done"), message=card)
    await tap(org, data_starts("ann:next"), message=card)
    assert says(card, "en", "This main version goes to everyone")
    if photo:
        await org.send_photo(caption=text)
    else:
        await org.send(text, entities=entities)
    card = await org.next_message()
    assert says(card, "en", "Versions and link"), card["text"]
    for language, version in (versions or {}).items():
        await tap(org, data_starts(f"ann:version:{language}"), message=card)
        await org.send(version)
        card = await org.next_message()
    if link:
        await tap(org, data_starts("ann:link"), message=card)
        await org.send(link)
        card = await org.next_message()
    await tap(org, data_starts("ann:next"), message=card)
    assert says(card, "en", "When and how")
    if when:
        await tap(org, data_starts("ann:schedule"), message=card)
        await org.send(when)
        card = await org.next_message()
    if quiet:
        await tap(org, data_starts(f"ann:quiet:{quiet}"), message=card)
    if ack:
        await tap(org, data_starts("ann:ack"), message=card)
    await tap(org, data_starts("ann:preview"), message=card)
    messages = await org.collect()
    final = messages[-1]
    assert says(final, "en", "Check the preview above: this is exactly what miners will get."), final["text"]
    if confirm:
        await tap(org, data_starts("ann:confirm"), message=final)
    return final


def visible(message: dict) -> tuple:
    """What a person sees: text or caption, formatting, photo, and the buttons' labels and links."""
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    return (message.get("text") or message.get("caption"), message.get("entities") or message.get("caption_entities"),
            bool(message.get("photo")), [(button["text"], button.get("url")) for row in rows for button in row])


async def test_everyone_gets_it_in_their_language_exactly_as_previewed(tg: FakeTelegram, bot: InProcessBot) -> None:
    org = await organizer(tg)
    subscribers(bot, [(7_000_001, "kk", None), (7_000_002, "ru", None), (7_000_003, "en", None)])
    bold = [{"type": "bold", "offset": 0, "length": 4}]
    final = await compose(org, entities=bold, versions={"kk": "5 желтоқсанда жиын: 176 конвенция!"},
                          link="https://union.example.kz/ilo176", ack=True)
    previews = announcements_to(tg, ORGANIZER)[:2]  # the organizer is a subscriber too: delivery comes after
    assert len(previews) == 2  # the main version (for ru and en) and the Kazakh one
    await until(lambda: all(announcements_to(tg, miner) for miner in (7_000_001, 7_000_002, 7_000_003)))

    kazakh, russian, english = (announcements_to(tg, miner)[0] for miner in (7_000_001, 7_000_002, 7_000_003))
    assert kazakh["text"] == "5 желтоқсанда жиын: 176 конвенция!"
    assert russian["text"] == BOLD_TEXT and russian["entities"] == bold
    # The main version's preview has the organizer's language's buttons, as an English recipient gets it.
    main_preview = next(p for p in previews if p["text"] == BOLD_TEXT)
    assert visible(main_preview) == visible(english)
    assert visible(main_preview)[:3] == visible(russian)[:3]
    kazakh_preview = next(p for p in previews if p["text"] != BOLD_TEXT)
    assert visible(kazakh_preview) == visible(kazakh)
    assert [label for label, _url in visible(english)[3]] == [
        tr("en", "🔗 Open {site}").format(site="union.example.kz"), tr("en", "✅ I've read it"), tr("en", "🔕 Unsubscribe")]
    assert visible(english)[3][0][1] == "https://union.example.kz/ilo176"

    await until(lambda: campaign_row(bot)["state"] == "done")
    row = campaign_row(bot)
    assert (row["total"], row["delivered"], row["blocked"], row["failed"]) == (4, 4, 0, 0)  # with the organizer
    # The progress message shows the end.
    progress = tg.message(ORGANIZER, row["progress_message_id"])
    assert says(progress, "en", "finished") and "Delivered: 4" in progress["text"]

    # "I've read it": counted once, the button goes away, nobody is recorded.
    miner = tg.user(7_000_002, "Miner")
    answer = await tap(miner, data_starts("ack:"), message=russian)
    assert answer["text"] == tr("ru", "Thank you!")
    assert not any(data_starts("ack:")(button) for row_ in russian["reply_markup"]["inline_keyboard"] for button in row_)
    assert campaign_row(bot)["acknowledged"] == 1
    preview_answer = await tap(org, data_starts("ack:0"), message=main_preview)
    assert preview_answer["text"] == tr("en", "This is the preview: nothing was counted.")
    assert campaign_row(bot)["acknowledged"] == 1
    tg.assert_no_errors()


async def test_audience_by_mine_and_language_with_live_counts(tg: FakeTelegram, bot: InProcessBot) -> None:
    org = await organizer(tg)
    with sqlite3.connect(bot.settings.database_path) as connection:
        karaganda = [row[0] for row in connection.execute(
            "SELECT id FROM sites WHERE region_code = 'karaganda-coal' AND archived = 0 ORDER BY position")]
    first, second = karaganda[0], karaganda[1]
    subscribers(bot, [(7_100_001, "kk", first), (7_100_002, "ru", first), (7_100_003, "ru", second),
                      (7_100_004, "en", None), (7_100_005, "kk", second)])

    await org.send("/announce")
    card = await org.next_message()
    assert says(card, "en", "Recipients now: <b>{count}</b> (subscribers who can be reached)", count=6)  # and the organizer
    await tap(org, data_starts("ann:sites"), message=card)
    await tap(org, data_starts(f"ann:site:{first}"), message=card)
    assert says(card, "en", "Recipients now: <b>{count}</b> (subscribers who can be reached)", count=2)
    await tap(org, data_starts("ann:done"), message=card)
    await tap(org, data_starts("ann:languages"), message=card)
    await tap(org, data_starts("ann:language:ru"), message=card)
    assert says(card, "en", "Recipients now: <b>{count}</b> (subscribers who can be reached)", count=1)
    await tap(org, data_starts("ann:done"), message=card)
    await org.send("/cancel")
    await org.next_message()

    await compose(org, sites=[first, second], languages=["kk"], text="Только казахоязычным шахт 1 и 2")
    await until(lambda: campaign_row(bot)["state"] == "done")
    got = {miner for miner in (7_100_001, 7_100_002, 7_100_003, 7_100_004, 7_100_005) if announcements_to(tg, miner)}
    assert got == {7_100_001, 7_100_005}

    await compose(org, languages=["en", "ru"], text="ru and en")
    await until(lambda: campaign_row(bot)["state"] == "done")
    got = {miner for miner in (7_100_001, 7_100_002, 7_100_003, 7_100_004, 7_100_005)
           if any(m["text"] == "ru and en" for m in announcements_to(tg, miner))}
    assert got == {7_100_002, 7_100_003, 7_100_004}
    tg.assert_no_errors()


async def test_unsubscribe_button_and_blocking_leave_the_audience(tg: FakeTelegram, bot: InProcessBot) -> None:
    org = await organizer(tg)
    miner = tg.user(7_200_001, "Miner", language_code="ru")
    await choose_language(miner, "ru")
    leaver = tg.user(7_200_002, "Leaver", language_code="kk")
    await choose_language(leaver, "kk")
    await compose(org, text="Первое")
    await until(lambda: campaign_row(bot)["state"] == "done")
    first = announcements_to(tg, miner.id)[0]
    answer = await tap(miner, data_starts("unsub"), message=first)
    assert answer["text"] == tr("ru", "Unsubscribed. To get announcements again: /subscribe")
    tg.block(leaver.id)  # Telegram tells the bot with a my_chat_member update
    await until(lambda: sqlite3.connect(bot.settings.database_path).execute(
        "SELECT reachable FROM users WHERE user_id = ?", (leaver.id,)).fetchone()[0] == 0)

    org.skip_pending()
    await org.send("/announce")
    card = await org.next_message()
    assert says(card, "en", "Recipients now: <b>{count}</b> (subscribers who can be reached)", count=1)  # the organizer
    await org.send("/cancel")
    await org.next_message()
    tg.unblock(leaver.id)
    await until(lambda: sqlite3.connect(bot.settings.database_path).execute(
        "SELECT reachable FROM users WHERE user_id = ?", (leaver.id,)).fetchone()[0] == 1)
    tg.assert_no_errors()


async def test_errors_per_chat_blocked_gone_flood_and_migration(tg: FakeTelegram, bot: InProcessBot) -> None:
    org = await organizer(tg)
    subscribers(bot, [(7_300_000 + n, "ru", None) for n in range(1, 7)])
    tg.block(7_300_001, notify=False)
    tg.inject_error(chat_id=7_300_002, method="sendMessage", error_code=400, description="Bad Request: chat not found")
    tg.inject_error(chat_id=7_300_003, method="sendMessage", error_code=400,
                    description="Bad Request: user is deactivated", times=-1)
    tg.inject_error(chat_id=7_300_004, method="sendMessage", error_code=429,
                    description="Too Many Requests: retry after 1", retry_after=1)
    await tg.group(-7_300_100, "Миграция", supergroup=True).add_bot(by=org)
    tg.inject_error(chat_id=7_300_005, method="sendMessage", error_code=400,
                    description="Bad Request: group chat was upgraded to a supergroup chat", migrate_to_chat_id=-7_300_100)
    await compose(org, text="Проверка ошибок")
    await until(lambda: campaign_row(bot)["state"] == "done", timeout=30)
    row = campaign_row(bot)
    # 6 miners + the organizer; three are gone for good; the 429 and the migration were delivered.
    assert (row["total"], row["delivered"], row["blocked"], row["failed"]) == (7, 4, 3, 0)
    assert announcements_to(tg, 7_300_004) and announcements_to(tg, -7_300_100) and announcements_to(tg, 7_300_006)
    with sqlite3.connect(bot.settings.database_path) as connection:
        unreachable = {row_[0] for row_ in connection.execute("SELECT user_id FROM users WHERE reachable = 0")}
        moved = connection.execute("SELECT count(*) FROM users WHERE user_id = -7300100").fetchone()[0]
    assert unreachable == {7_300_001, 7_300_002, 7_300_003}
    assert moved == 1
    tg.assert_no_errors()


async def test_pause_resume_cancel_from_campaigns(tg: FakeTelegram, tmp_path: Path) -> None:
    slow = InProcessBot(tg, tmp_path, admin_ids=frozenset({ORGANIZER}), broadcast_rate=2)
    await slow.start()
    try:
        org = await organizer(tg)
        subscribers(slow, [(7_400_000 + n, "ru", None) for n in range(1, 41)])
        await compose(org, text="Медленно")
        await until(lambda: campaign_row(slow)["delivered"] >= 2)
        await org.send("/campaigns")
        listing = await org.next_message()
        await tap(org, data_starts("cmp:show:"), message=listing)
        answer = await tap(org, data_starts("cmp:pause:"), message=listing)
        assert answer["text"] == tr("en", "Paused.")
        assert campaign_row(slow)["state"] == "paused"
        delivered = campaign_row(slow)["delivered"]
        await asyncio.sleep(1.6)
        assert campaign_row(slow)["delivered"] <= delivered + 2  # at most those in flight
        assert says(listing, "en", "paused")
        answer = await tap(org, data_starts("cmp:resume:"), message=listing)
        assert answer["text"] == tr("en", "Sending again.")
        await until(lambda: campaign_row(slow)["delivered"] > delivered + 1)
        await tap(org, data_starts("cmp:cancel:"), message=listing)
        answer = await tap(org, data_starts("cmp:cancel_yes:"), message=listing)
        assert answer["text"] == tr("en", "Cancelled.")
        stopped_at = campaign_row(slow)["delivered"]
        await asyncio.sleep(1.2)
        row = campaign_row(slow)
        assert row["state"] == "cancelled" and row["delivered"] <= stopped_at + 2 < 41
        received = sum(len(announcements_to(tg, 7_400_000 + n)) for n in range(1, 41))
        organizer_received = len(announcements_to(tg, ORGANIZER)) - 1  # the first one is the preview
        assert received + organizer_received == row["delivered"]
        tg.assert_no_errors()
    finally:
        await slow.stop()


async def test_scheduled_campaign_and_quiet_hours(tg: FakeTelegram, bot: InProcessBot) -> None:
    org = await organizer(tg)
    subscribers(bot, [(7_500_001, "ru", None)])
    # The fake clock says 10:00 in Almaty on 23.11.2026; schedule for 23:30 the same day, silent at night.
    await compose(org, text="Вечером", when="23.11.2026 23:30", quiet="silent")
    row = campaign_row(bot)
    assert row["state"] == "scheduled"
    await start_due_campaigns(bot.services)
    await asyncio.sleep(0.3)
    assert not announcements_to(tg, 7_500_001)
    bot.clock.advance(hours=13, minutes=31)
    await start_due_campaigns(bot.services)
    await until(lambda: announcements_to(tg, 7_500_001))
    call = tg.calls_to("sendMessage", chat_id=7_500_001)[-1]
    assert call.params.get("disable_notification") in (True, "true")
    # A date in the past is refused with a reason.
    await until(lambda: campaign_row(bot)["state"] == "done")
    org.skip_pending()
    await org.send("/announce")
    card = await org.next_message()
    await tap(org, data_starts("ann:next"), message=card)
    await org.send("Прошлое")
    card = await org.next_message()
    await tap(org, data_starts("ann:next"), message=card)
    await tap(org, data_starts("ann:schedule"), message=card)
    await org.send("01.01.2020 10:00")
    hint = await org.next_message()
    assert says(hint, "en", "I could not read that as a date and time in the next twelve months.")
    tg.assert_no_errors()


async def test_composer_refuses_what_it_cannot_send(tg: FakeTelegram, bot: InProcessBot) -> None:
    miner = tg.user(7_600_001, "Miner", language_code="kk")
    await choose_language(miner, "kk")
    await miner.send("/announce")
    assert says(await miner.next_message(), "kk", "Only union organizers can send announcements.")
    await miner.send("/campaigns")
    assert says(await miner.next_message(), "kk", "Only union organizers can send announcements.")

    org = await organizer(tg)
    await org.send("/announce")
    card = await org.next_message()
    await tap(org, data_starts("ann:next"), message=card)
    await org.send_sticker()
    hint = await org.next_message()
    assert says(hint, "en", "Please send the announcement as a text message, or as one photo with a caption.")
    await org.next_message()  # the step again
    await org.send("/report")
    assert says(await org.next_message(), "en", "You are composing an announcement.")
    await org.next_message()
    await org.send("Текст")
    card = await org.next_message()
    await tap(org, data_starts("ann:link"), message=card)
    await org.send("javascript:alert(1)")
    assert says(await org.next_message(), "en", "That is not a web address.")
    await org.next_message()
    stale = await org.callback_answer(await org.press_data("ann:next:", message=card))  # an earlier screen's button
    assert stale["text"] == tr("en", "That button belongs to an earlier step.")
    await org.collect()
    await org.send("/cancel")
    assert says(await org.next_message(), "en", "Cancelled.")
    assert campaign_row(bot) is None
    tg.assert_no_errors()


async def test_photo_announcement_previews_as_delivered(tg: FakeTelegram, bot: InProcessBot) -> None:
    org = await organizer(tg)
    subscribers(bot, [(7_700_001, "en", None)])
    await compose(org, photo=True, text="Meeting at the union hall")
    await until(lambda: campaign_row(bot)["state"] == "done")
    delivered = announcements_to(tg, 7_700_001)[0]
    preview = announcements_to(tg, ORGANIZER)[0]
    assert delivered["photo"][-1]["file_id"] == preview["photo"][-1]["file_id"]
    assert visible(delivered) == visible(preview)
    assert not tg.calls_to("forwardMessage") and not tg.calls_to("copyMessage")
    tg.assert_no_errors()


def test_scheduler_runs_due_campaigns_every_minute(tmp_path: Path) -> None:
    from bot.config import load_settings
    from bot.scheduler import build_scheduler

    settings = load_settings(bot_token="123456:" + "A" * 35, _env_file=None, database_path=tmp_path / "db.sqlite3")
    scheduler = build_scheduler(settings, storage=None, services=SimpleNamespace(alerts=None), db=None)  # type: ignore[arg-type]
    job = scheduler.get_job("due_campaigns")
    assert job.func is start_due_campaigns
    assert job.trigger.interval == timedelta(minutes=1) and str(job.trigger.timezone) == "Asia/Almaty"


async def test_killed_mid_campaign_resumes_without_gaps(tg: FakeTelegram, tmp_path: Path) -> None:
    """2,000 recipients; the bot process is killed (SIGKILL) part-way and started again."""
    from tests.e2e_support import BotProcess

    rate = 200
    process = BotProcess(tg, tmp_path, ADMIN_IDS=str(ORGANIZER), BROADCAST_RATE=str(rate))
    await process.start()
    org = await organizer(tg)
    miners = [8_000_000 + n for n in range(2000)]
    with sqlite3.connect(process.database_path, timeout=10) as connection:
        connection.executemany("INSERT INTO users (user_id, language) VALUES (?, 'ru')", [(m,) for m in miners])
    for miner in miners:
        tg.user(miner, "Miner", started=True)
    await compose(org, text="Не пропустить никого")

    def received() -> dict[int, int]:
        counts: dict[int, int] = {}
        for call in tg.calls_to("sendMessage"):
            if call.ok and 8_000_000 <= call.chat_id < 8_002_000:
                counts[call.chat_id] = counts.get(call.chat_id, 0) + 1
        return counts

    await until(lambda: len(received()) >= 700, timeout=60)
    await process.kill()
    before_restart = len(received())
    assert before_restart < 2000, "the campaign finished before the kill: nothing was tested"
    await process.start()
    await until(lambda: len(received()) == 2000, timeout=90)
    with sqlite3.connect(process.database_path, timeout=10) as connection:
        await until(lambda: connection.execute("SELECT state FROM campaigns").fetchone()[0] == "done", timeout=30)
        total, delivered = connection.execute("SELECT total, delivered FROM campaigns").fetchone()
    await process.stop()
    counts = received()
    duplicates = sum(count - 1 for count in counts.values())
    print(f"killed after {before_restart} of 2000 delivered; {duplicates} arrived twice")
    assert set(counts) == set(miners)  # nobody skipped
    # At most the messages in flight at the kill arrive twice: those whose rows were still marked
    # 'sending' (claimed for sending, or sent with the outcome not yet written), which the restart
    # put back in the queue and reported.
    requeued = re.search(r"Re-queued (\d+) announcement messages", process.log())
    assert requeued, process.log()
    assert duplicates <= int(requeued.group(1)) <= 2 * min(50, rate // 2) + rate // 10, (duplicates, requeued.group(1))
    assert total == 2001 and delivered == 2001  # the miners and the organizer
    tg.assert_no_errors()
