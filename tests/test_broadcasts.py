"""Campaign announcements: the audience, the durable outbox, pacing, Telegram's errors, the circuit
breaker, the organizer's controls, crashes, schedules and quiet hours — on a temp SQLite file with a
fake `send` and a fake clock; and once end to end through a real aiogram Bot and the fake Bot API."""

from __future__ import annotations

import asyncio
import math
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMessage

from bot import broadcasts
from bot.broadcasts import BroadcastEngine, InteractiveSendMiddleware, TokenBucket, quiet_period
from bot.sites import seed_sites
from storage.campaigns import Audience, CampaignRepository, Counters
from storage.db import Database
from storage.sites import SiteRepository
from tests.e2e_support import most_in_any_second
from tests.fake_telegram import FakeTelegram

ALMATY = ZoneInfo("Asia/Almaty")
CONTENTS = {"ru": {"text": "Собрание профкома в пятницу"}, "kk": {"text": "Кәсіподақ жиналысы жұма күні"},
            "en": {"text": "Union meeting on Friday"}, "fallback": "ru"}
METHOD = SendMessage(chat_id=1, text="x")


# --- the test bed ------------------------------------------------------------------------------

class FakeTime:
    """Monotonic seconds and the wall clock move together, only when someone sleeps."""

    def __init__(self, start: datetime = datetime(2026, 11, 23, 5, 0, tzinfo=UTC), *,
                 overshoot: float = 0.0, seed: int = 1) -> None:
        self.start = start  # 10:00 in Almaty by default
        self.offset = 0.0
        self.sleeps: list[float] = []
        self._overshoot = overshoot
        self._random = random.Random(seed)

    def monotonic(self) -> float:
        return self.offset

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.offset)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.offset += max(0.0, seconds) + self._random.uniform(0, self._overshoot)
        await asyncio.sleep(0)


class Crash(BaseException):
    """The process dies here: nothing after it runs."""


@dataclass
class Call:
    chat_id: int
    language: str
    at: float  # monotonic
    wall: datetime
    silent: bool
    campaign_id: int


class FakeSend:
    """A fake `send`: raises the queued errors of a chat first; counts a message as arrived before
    its answer comes back, like Telegram, so a crash in between makes a possible duplicate."""

    def __init__(self, time: FakeTime, errors: dict[int, list[BaseException]] | None = None, *,
                 crash_on: int | None = None, on_call=None) -> None:
        self.time = time
        self.errors = {chat: list(queue) for chat, queue in (errors or {}).items()}
        self.crash_on = crash_on
        self.on_call = on_call
        self.calls: list[Call] = []
        self.arrived: Counter[int] = Counter()

    async def __call__(self, chat_id: int, language: str, campaign) -> None:
        self.calls.append(Call(chat_id, language, self.time.monotonic(), self.time.now(), campaign.silent_now,
                               campaign.id))
        if self.on_call is not None:
            self.on_call(len(self.calls))
        if self.crash_on is not None and len(self.calls) == self.crash_on:
            raise Crash
        queue = self.errors.get(chat_id)
        if queue:
            raise queue.pop(0)
        assert campaign.content_for(language)["text"]
        self.arrived[chat_id] += 1
        await asyncio.sleep(0)  # the answer is on its way back

    def calls_to(self, chat_id: int) -> int:
        return sum(1 for call in self.calls if call.chat_id == chat_id)


def forbidden() -> TelegramForbiddenError:
    return TelegramForbiddenError(METHOD, "Forbidden: bot was blocked by the user")


def bad_request(text: str) -> TelegramBadRequest:
    return TelegramBadRequest(METHOD, f"Bad Request: {text}")


class Bed:
    def __init__(self, db: Database, time: FakeTime, site_ids: list[int]) -> None:
        self.db = db
        self.repo = CampaignRepository(db)
        self.time = time
        self.site_ids = site_ids
        self.engines: list[BroadcastEngine] = []
        self.finished: dict[int, Counters] = {}
        self.paused: list[tuple[int, str]] = []
        self.progress: list[tuple[int, float, Counters]] = []
        self._done: dict[int, asyncio.Event] = {}

    async def users(self, *rows: tuple[int, str, int | None], subscribed: int = 1, reachable: int = 1) -> None:
        await self.db.executemany(
            "INSERT INTO users (user_id, language, site_id, subscribed, reachable) VALUES (?, ?, ?, ?, ?)",
            [(user_id, language, site, subscribed, reachable) for user_id, language, site in rows])

    async def crowd(self, count: int, first: int = 1000) -> list[int]:
        ids = list(range(first, first + count))
        await self.users(*((uid, ("kk", "ru", "en")[uid % 3], self.site_ids[uid % 2]) for uid in ids))
        return ids

    async def campaign(self, audience: Audience | None = None, **options) -> int:
        return await self.repo.create(42, audience or Audience(), CONTENTS, now=self.time.now(), **options)

    def engine(self, send, **options) -> BroadcastEngine:
        settings = dict(clock=self.time.now, monotonic=self.time.monotonic, sleep=self.time.sleep,
                        on_finished=self._on_finished, on_paused=self._on_paused, on_progress=self._on_progress)
        engine = BroadcastEngine(self.repo, send, **(settings | options))
        self.engines.append(engine)
        return engine

    async def _on_finished(self, campaign_id: int, counters: Counters) -> None:
        self.finished[campaign_id] = counters
        self._event(campaign_id).set()

    async def _on_paused(self, campaign_id: int, reason: str) -> None:
        self.paused.append((campaign_id, reason))

    async def _on_progress(self, campaign_id: int, counters: Counters) -> None:
        self.progress.append((campaign_id, self.time.monotonic(), counters))

    def _event(self, campaign_id: int) -> asyncio.Event:
        return self._done.setdefault(campaign_id, asyncio.Event())

    async def wait_done(self, campaign_id: int, timeout: float = 30) -> Counters:
        await asyncio.wait_for(self._event(campaign_id).wait(), timeout)
        return self.finished[campaign_id]

    async def send_all(self, send, campaign_id: int, **options) -> tuple[BroadcastEngine, Counters]:
        engine = self.engine(send, **options)
        assert await engine.launch(campaign_id) == "sending"
        engine.start()
        return engine, await self.wait_done(campaign_id)

    async def outbox_rows(self, campaign_id: int) -> int:
        return (await self.db.fetchone("SELECT count(*) FROM campaign_outbox WHERE campaign_id = ?", (campaign_id,)))[0]

    async def reachable(self, user_id: int) -> int:
        return (await self.db.fetchone("SELECT reachable FROM users WHERE user_id = ?", (user_id,)))[0]


async def open_db(path: Path) -> tuple[Database, list[int]]:
    db = await Database.open(path)
    try:
        await db.migrate()
        await seed_sites(SiteRepository(db))
        site_ids = [row[0] for row in await db.fetchall("SELECT id FROM sites ORDER BY id LIMIT 3")]
    except BaseException:
        await db.close()
        raise
    return db, site_ids


@pytest.fixture
async def bed(tmp_path: Path):
    db, site_ids = await open_db(tmp_path / "broadcasts.sqlite3")
    bed = Bed(db, FakeTime(), site_ids)
    try:
        yield bed
    finally:
        for engine in bed.engines:
            await engine.stop()
        await db.close()


async def until(condition, timeout: float = 10.0) -> None:
    """Real-time polling for a state the engine reaches through its own tasks."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.005)


# --- the audience and the outbox ----------------------------------------------------------------

async def test_audience_counts_by_mine_and_language(bed: Bed):
    a, b, c = bed.site_ids
    await bed.users((1, "kk", a), (2, "ru", a), (3, "en", a), (4, "ru", b), (5, "ru", b), (6, "kk", None), (7, "en", c))
    await bed.users((8, "ru", a), subscribed=0)  # said no to announcements
    await bed.users((9, "ru", a), reachable=0)  # blocked the bot
    count = bed.repo.count_audience
    assert await count(Audience()) == 7
    assert await count(Audience(sites=(a,))) == 3
    assert await count(Audience(sites=(a, b))) == 5
    assert await count(Audience(languages=("ru",))) == 3
    assert await count(Audience(languages=("kk", "en"))) == 4
    assert await count(Audience(sites=(a,), languages=("ru",))) == 1
    assert await count(Audience(sites=(a, b), languages=("ru", "kk"))) == 4
    assert await count(Audience(sites=(c,), languages=("kk",))) == 0
    assert await count(Audience(sites=())) == 0  # nobody chosen is nobody, not everyone
    assert await count(Audience.from_json('{"sites": null, "languages": ["en"]}')) == 2
    # The count is live: a user who unsubscribes is out of it.
    await bed.db.execute("UPDATE users SET subscribed = 0 WHERE user_id = 1")
    assert await count(Audience(sites=(a,))) == 2


async def test_enqueue_is_one_transaction_and_idempotent(bed: Bed, monkeypatch):
    a, b, _ = bed.site_ids
    await bed.users((1, "kk", a), (2, "ru", a), (3, "en", b))
    campaign_id = await bed.campaign(Audience(sites=(a,)))

    # A failure after the rows were inserted leaves neither rows nor a changed campaign.
    real_execute = bed.db.execute

    async def failing_execute(sql, params=()):
        if sql.startswith("UPDATE campaigns SET state = 'sending'"):
            raise RuntimeError("disk full")
        return await real_execute(sql, params)

    monkeypatch.setattr(bed.db, "execute", failing_execute)
    with pytest.raises(RuntimeError):
        await bed.repo.enqueue(campaign_id)
    monkeypatch.undo()
    assert await bed.outbox_rows(campaign_id) == 0
    assert (await bed.repo.get(campaign_id)).state == "draft"

    assert await bed.repo.enqueue(campaign_id) == 2
    assert await bed.repo.enqueue(campaign_id) is None  # the second call does nothing
    campaign = await bed.repo.get(campaign_id)
    assert (campaign.state, campaign.counters.total) == ("sending", 2)
    rows = await bed.db.fetchall("SELECT chat_id, language, state FROM campaign_outbox WHERE campaign_id = ? "
                                 "ORDER BY chat_id", (campaign_id,))
    assert [tuple(row) for row in rows] == [(1, "kk", "queued"), (2, "ru", "queued")]

    # Two enqueues racing (the scheduler and an organizer's tap) queue everyone once.
    other = await bed.campaign()
    results = await asyncio.gather(bed.repo.enqueue(other), bed.repo.enqueue(other))
    assert sorted(results, key=str) == [3, None]
    assert await bed.outbox_rows(other) == 3


# --- pacing ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("rate", "burst", "overshoot"),
                         [(25, 1, 0.0), (25, 10, 0.0), (30, 3, 0.003), (7.5, 4, 0.05), (1000, 20, 0.0005)])
async def test_bucket_never_starts_more_than_rate_in_any_second(rate, burst, overshoot):
    time = FakeTime(overshoot=overshoot)
    bucket = TokenBucket(rate, burst=burst, clock=time.monotonic, sleep=time.sleep, granularity=0.01)
    jitter = random.Random(7)
    starts: list[float] = []
    for index in range(int(rate * 12)):
        await bucket.take()
        starts.append(time.monotonic())
        if index % 17 == 0:  # callers come irregularly, so the bucket refills and bursts
            time.offset += jitter.uniform(0, 0.5)
    assert most_in_any_second(starts) <= math.floor(rate)
    # …and the pace is kept, not just the ceiling (a fractional rate rounds down: 7 in a second, not 7.5).
    steady = TokenBucket(rate, burst=burst, clock=time.monotonic, sleep=time.sleep, granularity=0.01)
    began = time.monotonic()
    for _ in range(int(rate * 10)):
        await steady.take()
    assert int(rate * 10) / (time.monotonic() - began) >= 0.97 * math.floor(rate)


async def test_bulk_leaves_the_global_budget_to_interactive_replies(bed: Bed):
    recipients = await bed.crowd(120)
    send = FakeSend(bed.time)
    engine = bed.engine(send, rate=25)
    for _ in range(22):  # replies in the same second, before the campaign starts
        engine.note_interactive_send()
    campaign_id = await bed.campaign()
    await engine.launch(campaign_id)
    engine.start()
    counters = await bed.wait_done(campaign_id)
    starts = [call.at for call in send.calls]
    assert sum(1 for moment in starts if moment < 1.0) <= 30 - 22
    assert most_in_any_second(starts) <= 25
    assert most_in_any_second(starts + [0.0] * 22) <= 30
    assert counters.delivered == len(recipients)
    later = [moment for moment in starts if moment >= 1.01]  # once the replies' second is over: full pace
    assert (len(later) - 1) / (later[-1] - later[0]) >= 0.95 * 25


# --- Telegram's answers ---------------------------------------------------------------------------

async def test_retry_after_pauses_every_bulk_send(bed: Bed):
    recipients = await bed.crowd(60)
    flooded = recipients[20]
    send = FakeSend(bed.time, {flooded: [TelegramRetryAfter(METHOD, "Too Many Requests: retry after 7", 7)]})
    campaign_id = await bed.campaign()
    _, counters = await bed.send_all(send, campaign_id)
    refused_at = next(call.at for call in send.calls if call.chat_id == flooded)
    assert not [call for call in send.calls if refused_at < call.at < refused_at + 7]
    assert [call.chat_id for call in send.calls].count(flooded) == 2
    assert all(send.arrived[uid] == 1 for uid in recipients)
    assert counters == Counters(60, 60, 0, 0, 0)


async def test_blocked_and_gone_chats_are_marked_unreachable_and_not_retried(bed: Bed):
    recipients = await bed.crowd(30)
    blocked, not_found, deactivated, too_long = recipients[3], recipients[10], recipients[11], recipients[12]
    send = FakeSend(bed.time, {blocked: [forbidden()], not_found: [bad_request("chat not found")],
                               deactivated: [bad_request("user is deactivated")],
                               too_long: [bad_request("message is too long")]})
    campaign_id = await bed.campaign()
    _, counters = await bed.send_all(send, campaign_id)
    assert counters == Counters(30, 26, 3, 1, 0)
    for uid in (blocked, not_found, deactivated, too_long):
        assert send.calls_to(uid) == 1
    assert [await bed.reachable(uid) for uid in (blocked, not_found, deactivated, too_long)] == [0, 0, 0, 1]
    assert await bed.repo.count_audience(Audience()) == 27  # left out of the next campaigns


async def test_network_errors_are_retried_with_backoff_then_failed(bed: Bed):
    recipients = await bed.crowd(10)
    flaky, down = recipients[2], recipients[5]
    network = TelegramNetworkError(METHOD, "ClientConnectorError")
    send = FakeSend(bed.time, {flaky: [network, network],
                               down: [TelegramServerError(METHOD, "Internal Server Error")] * 9})
    campaign_id = await bed.campaign()
    _, counters = await bed.send_all(send, campaign_id, max_attempts=5, backoff=1.0)
    assert counters == Counters(10, 9, 0, 1, 0)
    assert send.calls_to(flaky) == 3 and send.arrived[flaky] == 1
    assert send.calls_to(down) == 5
    backoffs = [seconds for seconds in bed.time.sleeps if seconds >= 1.0]
    assert sorted(backoffs) == [1.0, 1.0, 2.0, 2.0, 4.0, 8.0]
    assert await bed.reachable(down) == 1  # a failure is not a block


async def test_a_migrated_chat_moves_and_gets_the_message(bed: Bed):
    recipients = await bed.crowd(5)
    old = recipients[1]
    new = -1_000_000_000_000 - old
    send = FakeSend(bed.time, {old: [TelegramMigrateToChat(METHOD, "group chat was upgraded", new)]})
    campaign_id = await bed.campaign()
    _, counters = await bed.send_all(send, campaign_id)
    assert counters.delivered == 5
    assert send.arrived[new] == 1 and send.arrived[old] == 0
    assert await bed.db.fetchone("SELECT 1 FROM users WHERE user_id = ?", (new,))
    assert not await bed.db.fetchone("SELECT 1 FROM users WHERE user_id = ?", (old,))


async def test_circuit_breaker_pauses_a_campaign_most_first_recipients_blocked(bed: Bed):
    recipients = await bed.crowd(120)
    blocked = {uid for index, uid in enumerate(recipients) if index < 50 and index % 5 < 3}  # 30 of the first 50
    send = FakeSend(bed.time, {uid: [forbidden()] for uid in blocked})
    campaign_id = await bed.campaign()
    engine = bed.engine(send)
    await engine.launch(campaign_id)
    engine.start()

    async def paused():
        campaign = await bed.repo.get(campaign_id)
        return campaign.state == "paused" and not await bed.db.fetchone(
            "SELECT 1 FROM campaign_outbox WHERE campaign_id = ? AND state = 'sending'", (campaign_id,))

    await until(paused)
    campaign = await bed.repo.get(campaign_id)
    assert campaign.pause_reason == "blocked"
    assert bed.paused == [(campaign_id, "blocked")]
    assert campaign.counters.blocked >= 26
    assert len(send.calls) < 50
    calls_when_paused = len(send.calls)
    await asyncio.sleep(0.05)
    assert len(send.calls) == calls_when_paused

    # The organizer looked and decided to go on: the breaker does not trip again.
    assert await engine.resume(campaign_id)
    counters = await bed.wait_done(campaign_id)
    assert bed.paused == [(campaign_id, "blocked")]
    assert counters == Counters(120, 90, 30, 0, 0)
    assert all(send.calls_to(uid) == 1 for uid in recipients)


async def test_pause_resume_and_cancel(bed: Bed):
    recipients = await bed.crowd(80)
    first = await bed.campaign()
    second = await bed.campaign()
    engine: BroadcastEngine | None = None
    controls: list[asyncio.Task] = []

    def on_call(count: int) -> None:
        if count == 10:
            controls.append(asyncio.ensure_future(engine.pause(first)))
        if sum(1 for call in send.calls if call.campaign_id == second) == 15:
            controls.append(asyncio.ensure_future(engine.cancel(second)))

    send = FakeSend(bed.time, on_call=on_call)
    engine = bed.engine(send)
    await engine.launch(first)
    await engine.launch(second)
    engine.start()

    async def settled(campaign_id: int, state: str):
        campaign = await bed.repo.get(campaign_id)
        in_flight = await bed.db.fetchone(
            "SELECT count(*) FROM campaign_outbox WHERE campaign_id = ? AND state = 'sending'", (campaign_id,))
        return campaign.state == state and in_flight[0] == 0

    # Pausing the first lets the second go on (oldest first only among those sending).
    await until(lambda: settled(first, "paused"))
    paused = await bed.repo.get(first)
    assert paused.pause_reason == "organizer"
    assert paused.counters.done <= 10 + 13  # what was already on its way
    assert await bed.repo.queued(first) == 80 - paused.counters.done

    await until(lambda: settled(second, "cancelled"))
    cancelled = await bed.repo.get(second)
    assert await bed.outbox_rows(second) == 0  # queued rows dropped, the rest recorded then dropped
    assert cancelled.counters.total == 80 and cancelled.counters.delivered == cancelled.counters.done < 80
    calls = len(send.calls)
    await asyncio.sleep(0.05)
    assert len(send.calls) == calls

    assert await engine.resume(first)
    counters = await bed.wait_done(first)
    assert counters == Counters(80, 80, 0, 0, 0)
    assert second not in bed.finished
    delivered_first = Counter(call.chat_id for call in send.calls if call.campaign_id == first)
    assert sorted(delivered_first) == recipients and set(delivered_first.values()) == {1}
    await asyncio.gather(*controls)


@pytest.mark.parametrize("crash", ["send raises", "task cancelled"])
async def test_crash_mid_campaign_then_a_new_engine_delivers_everyone(bed: Bed, crash: str):
    recipients = await bed.crowd(400)
    campaign_id = await bed.campaign()
    first_engine: BroadcastEngine | None = None

    def cancel_after(count: int) -> None:
        if count == 170:
            first_engine.task.cancel()

    if crash == "send raises":
        send = FakeSend(bed.time, crash_on=170)
    else:
        send = FakeSend(bed.time, on_call=cancel_after)
    first_engine = BroadcastEngine(bed.repo, send, rate=500, clock=bed.time.now, monotonic=bed.time.monotonic,
                                   sleep=bed.time.sleep)  # discarded: never stopped
    await first_engine.launch(campaign_id)
    first_engine.start()
    await asyncio.gather(first_engine.task, return_exceptions=True)
    await asyncio.sleep(0.2)  # a write already handed to SQLite completes, as it would in the dead process
    in_flight = await bed.repo.in_flight()
    assert 0 < in_flight < 400
    arrived_before = sum(send.arrived.values())

    send.crash_on, send.on_call = None, None
    engine = bed.engine(send, rate=500)
    assert await engine.recover() == in_flight
    engine.start()
    counters = await bed.wait_done(campaign_id)
    assert counters.total == counters.delivered == 400
    assert all(send.arrived[uid] >= 1 for uid in recipients)
    duplicates = sum(count - 1 for count in send.arrived.values())
    assert duplicates <= in_flight
    assert arrived_before < 400


async def test_scheduled_campaign_starts_when_due_even_if_the_bot_was_down(bed: Bed):
    await bed.crowd(12)
    send = FakeSend(bed.time)
    engine = bed.engine(send)
    campaign_id = await bed.campaign(send_at=bed.time.now() + timedelta(hours=2))
    assert await engine.launch(campaign_id) == "scheduled"
    engine.start()
    assert await engine.start_due() == []
    bed.time.offset += 5 * 3600  # down for hours: the start-up call picks it up
    assert await engine.start_due() == [campaign_id]
    assert await engine.start_due() == []
    counters = await bed.wait_done(campaign_id)
    assert counters.delivered == 12 and len(send.calls) == 12


async def test_quiet_hours_hold_waits_until_seven(bed: Bed):
    bed.time.start = datetime(2026, 11, 23, 21, 59, 55, tzinfo=ALMATY).astimezone(UTC)
    recipients = await bed.crowd(12)
    send = FakeSend(bed.time)
    campaign_id = await bed.campaign(quiet_hours="hold")
    _, counters = await bed.send_all(send, campaign_id, rate=1)
    local = [call.wall.astimezone(ALMATY) for call in send.calls]
    before = [moment for moment in local if moment.day == 23]
    after = [moment for moment in local if moment.day == 24]
    assert before and after and len(before) + len(after) == 12
    assert all(moment.hour == 21 for moment in before)
    assert all(moment.hour >= 7 for moment in after) and min(after).hour == 7
    assert counters.delivered == 12 and all(send.arrived[uid] == 1 for uid in recipients)


async def test_quiet_hours_silent_sends_without_notification(bed: Bed):
    bed.time.start = datetime(2026, 11, 24, 6, 59, 56, tzinfo=ALMATY).astimezone(UTC)
    await bed.crowd(8)
    send = FakeSend(bed.time)
    campaign_id = await bed.campaign(quiet_hours="silent")
    await bed.send_all(send, campaign_id, rate=1)
    silent = [call.silent for call in send.calls]
    assert silent == [call.wall.astimezone(ALMATY).hour < 7 for call in send.calls]
    assert True in silent and False in silent
    # Campaigns without quiet hours are never silent.
    loud = FakeSend(bed.time)
    bed.time.start -= timedelta(hours=3)
    await bed.send_all(loud, await bed.campaign(), rate=5)
    assert not any(call.silent for call in loud.calls)


def test_quiet_period_edges():
    def at(hour: int, minute: int = 0) -> datetime:
        return datetime(2026, 11, 23, hour, minute, tzinfo=ALMATY)

    assert quiet_period(at(21, 59), ALMATY, *broadcasts.QUIET_HOURS) == (False, at(22))
    assert quiet_period(at(22), ALMATY, *broadcasts.QUIET_HOURS) == (True, at(7) + timedelta(days=1))
    assert quiet_period(at(3), ALMATY, *broadcasts.QUIET_HOURS) == (True, at(7))
    assert quiet_period(at(7), ALMATY, *broadcasts.QUIET_HOURS) == (False, at(22))


async def test_finished_campaign_deletes_its_outbox_and_keeps_the_totals(bed: Bed):
    await bed.crowd(25)
    blocked = 1003
    campaign_id = await bed.campaign(ack_button=True)
    _, counters = await bed.send_all(FakeSend(bed.time, {blocked: [forbidden()]}), campaign_id)
    assert counters == Counters(25, 24, 1, 0, 0)
    assert await bed.outbox_rows(campaign_id) == 0
    await bed.repo.acknowledge(campaign_id)
    await bed.repo.acknowledge(campaign_id)
    campaign = await bed.repo.get(campaign_id)
    assert campaign.state == "done"
    assert campaign.counters == Counters(25, 24, 1, 0, 2)
    # A crash-recovery afterwards finds nothing to resend.
    assert await bed.repo.recover() == 0


async def test_progress_is_throttled_per_campaign(bed: Bed):
    await bed.crowd(150)
    campaign_id = await bed.campaign()
    _, counters = await bed.send_all(FakeSend(bed.time), campaign_id, progress_every=2.0)
    await asyncio.sleep(0.01)
    moments = [moment for cid, moment, _ in bed.progress if cid == campaign_id]
    assert len(moments) >= 2
    assert all(later - earlier >= 2.0 for earlier, later in zip(moments, moments[1:]))
    done = [counters.done for cid, _, counters in bed.progress if cid == campaign_id]
    assert done == sorted(done) and done[-1] <= 150
    assert counters.delivered == 150


async def test_interactive_middleware_counts_replies_not_bulk_sends():
    class Engine:
        noted = 0
        held = 0.0

        def note_interactive_send(self):
            self.noted += 1

        def hold(self, seconds):
            self.held = seconds

    engine = Engine()
    middleware = InteractiveSendMiddleware(engine)

    async def ok(bot, method):
        return "sent"

    async def flood(bot, method):
        raise TelegramRetryAfter(method, "Too Many Requests", 3)

    assert await middleware(ok, None, METHOD) == "sent"
    token = broadcasts._BULK.set(True)  # noqa: SLF001 - what the engine's tasks carry
    try:
        await middleware(ok, None, METHOD)
    finally:
        broadcasts._BULK.reset(token)  # noqa: SLF001
    assert engine.noted == 1
    with pytest.raises(TelegramRetryAfter):
        await middleware(flood, None, METHOD)
    assert engine.held == 3


# --- end to end: a real aiogram Bot against the fake Bot API -------------------------------------

async def test_end_to_end_every_reachable_subscriber_gets_one_message(tg: FakeTelegram, tmp_path: Path):
    db, site_ids = await open_db(tmp_path / "e2e.sqlite3")
    bot = Bot(tg.token, session=AiohttpSession(api=TelegramAPIServer.from_base(tg.base_url)))
    engine: BroadcastEngine | None = None
    try:
        subscribers = list(range(7_000_001, 7_000_016))
        for uid in subscribers:
            tg.user(uid, f"Miner{uid % 100}", started=uid != 7_000_015)  # the last never started the bot
        outsider = tg.user(7_000_100, "Organizer", started=True)
        repo = CampaignRepository(db)
        await db.executemany("INSERT INTO users (user_id, language, site_id) VALUES (?, ?, ?)",
                             [(uid, ("kk", "ru", "en")[uid % 3], site_ids[0]) for uid in subscribers])
        blocked, gone, flooded, flaky = 7_000_003, 7_000_006, 7_000_009, 7_000_012
        tg.block(blocked)
        tg.inject_error(chat_id=gone, method="sendMessage", error_code=400, description="Bad Request: chat not found",
                        times=-1)
        tg.inject_error(chat_id=flooded, method="sendMessage", error_code=429,
                        description="Too Many Requests: retry after 1", retry_after=1)
        tg.inject_error(chat_id=flaky, method="sendMessage", error_code=502, description="Bad Gateway")

        async def send(chat_id: int, language: str, campaign):
            content = campaign.content_for(language)
            return await bot.send_message(chat_id, content["text"], disable_notification=campaign.silent_now)

        finished = asyncio.Event()

        async def on_finished(campaign_id: int, counters: Counters) -> None:
            finished.set()

        engine = BroadcastEngine(repo, send, rate=20, backoff=0.2, on_finished=on_finished)
        bot.session.middleware(engine.request_middleware())
        await bot.send_message(outsider.id, "Your announcement is on its way")  # an interactive reply
        campaign_id = await repo.create(outsider.id, Audience(), CONTENTS, now=datetime.now(UTC))
        assert await repo.count_audience(Audience()) == 15
        await engine.recover()
        assert await engine.launch(campaign_id) == "sending"
        engine.start()
        await asyncio.wait_for(finished.wait(), 30)

        unreachable = {blocked, gone, 7_000_015}
        for uid in subscribers:
            messages = tg.chat_messages(uid)
            if uid in unreachable:
                assert messages == [] and len(tg.calls_to("sendMessage", uid)) == 1, uid
            else:
                expected = {"kk": CONTENTS["kk"]["text"], "ru": CONTENTS["ru"]["text"],
                            "en": CONTENTS["en"]["text"]}[("kk", "ru", "en")[uid % 3]]
                assert [message["text"] for message in messages] == [expected], uid
        reachable = {uid: (await db.fetchone("SELECT reachable FROM users WHERE user_id = ?", (uid,)))[0]
                     for uid in subscribers}
        assert {uid for uid, flag in reachable.items() if not flag} == unreachable
        flood = tg.calls_to("sendMessage", flooded)[0]
        assert flood.error is not None and flood.error.error_code == 429
        during = [call for call in tg.calls_to("sendMessage")
                  if flood.end_time + 0.05 < call.time < flood.end_time + 0.95]
        assert during == []
        campaign = await repo.get(campaign_id)
        assert (campaign.state, campaign.counters) == ("done", Counters(15, 12, 3, 0, 0))
        assert (await db.fetchone("SELECT count(*) FROM campaign_outbox"))[0] == 0
        # The fake counts "can't initiate conversation" as the bot's mistake; it is the only one.
        assert [(error.chat_id, error.error_code) for error in tg.errors] == [(7_000_015, 403)]
    finally:
        if engine is not None:
            await engine.stop()
        await bot.session.close()
        await db.close()
