"""Campaign announcements: every subscriber gets the message once, at Telegram's pace.

The outbox (storage/campaigns.py) is the truth: a row is marked 'sending' before its message goes
out and gets its outcome afterwards, so a crash repeats at most the rows that were in flight.
One engine task sends the rows of campaigns in state 'sending', oldest campaign first, through the
injected `send(chat_id, language, campaign)`, which raises aiogram's exceptions like a real Bot:

* TelegramRetryAfter: all bulk sending waits `retry_after`, then the row is tried again;
* TelegramForbiddenError, or "chat not found" / "user is deactivated": 'blocked', and the user is
  marked unreachable (never tried again, left out of later audiences);
* TelegramMigrateToChat: the row and the subscriber follow the new chat id, and it is tried again;
* network and 5xx errors: tried again after 1, 2, 4, … s, 'failed' after `max_attempts`;
* any other Telegram error: 'failed'. Anything else is a bug in `send`: the campaign is paused
  with pause_reason 'error' so that an organizer looks at it.

Bulk sends start at most `rate` per second (an exact sliding window, not just an average) and
only while bulk plus interactive messages stay under Telegram's global 30 per second: replies to
people come first. Several sends are in flight at once, because one Telegram round trip (≈0.1–0.3 s)
is longer than the gap between two sends.
"""

from __future__ import annotations

import asyncio
import contextvars
import dataclasses
import logging
import math
import time as _time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime, time, timedelta, tzinfo
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.exceptions import TelegramRetryAfter

from bot.telegram_errors import Failure, classify
from storage.campaigns import Campaign, CampaignRepository, Counters, OutboxRow, Outcome

log = logging.getLogger(__name__)
T = TypeVar("T")

# What `send` returns is not looked at: a message that raised nothing was delivered.
SendResult = Any
Send = Callable[[int, str, Campaign], Awaitable[SendResult]]
ProgressCallback = Callable[[int, Counters], Awaitable[None]]
PausedCallback = Callable[[int, str], Awaitable[None]]

TELEGRAM_GLOBAL_RATE = 30  # messages per second to all chats together, by Telegram's FAQ
QUIET_HOURS = (time(22, 0), time(7, 0))
# "chat not found" and "user is deactivated" come as 400s, but mean the same as a block.
# Requests the session middleware counts as interactive traffic sharing the global budget.
_COUNTED_METHODS = ("send", "copy", "forward", "edit")
# Set in the engine's own tasks, so the session middleware can tell bulk sends from replies.
_BULK: contextvars.ContextVar[bool] = contextvars.ContextVar("minevoice_bulk_send", default=False)
# A start is timed when its token is granted; the request leaves a few microseconds later (a
# garbage collection in between can make it milliseconds), so the engine's window is a bit longer.
_WINDOW_MARGIN = 0.005


def _utcnow() -> datetime:
    return datetime.now(UTC)


class TokenBucket:
    """Paces starts: on average `rate_per_second`, bursts of at most `burst`, and never more than
    `limit` (by default the rate) starts in any `window` (1 s) — a bucket alone would allow
    burst + rate.

    `granularity` (s) lets a waiting caller sleep until that many seconds' worth of tokens have
    gathered (up to `burst`), so that at high rates the loop wakes up once per few sends."""

    def __init__(self, rate_per_second: float, burst: int = 1, clock: Callable[[], float] = _time.monotonic, *,
                 sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep, window: float = 1.0,
                 limit: int | None = None, granularity: float = 0.0) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be positive")
        self.rate = float(rate_per_second)
        self.burst = max(1, int(burst))
        self.window = window
        # Starts allowed in any window; by default the rate, rounded down (7.5/s: 7 in a second).
        self.limit = max(1, limit if limit is not None else math.floor(rate_per_second * window + 1e-9))
        self._clock = clock
        self._sleep = sleep
        self._wanted = min(float(self.burst), max(1.0, self.rate * granularity))
        # Starting with one batch, not a full bucket: a burst at the start would come back as a
        # gap (and a burst after it) every second, as the window slides over it.
        self._tokens = self._wanted
        self._updated: float | None = None
        self._starts: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def take(self) -> None:
        """Wait for a token (callers are served in turn)."""
        async with self._lock:
            while True:
                now = self._clock()
                wait = self.delay(now)
                if wait <= 0:
                    self.consume(now)
                    return
                await self._sleep(wait)

    def delay(self, now: float) -> float:
        """Seconds to wait before a start at `now` is allowed; 0 if it is."""
        if self._updated is None:
            self._updated = now
        elif now > self._updated:
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.rate)
            self._updated = now
        wait = 0.0
        starts = self.recent(now)
        if len(starts) >= self.limit:
            # Until as many starts leave the window as a waiter gathers tokens for (one wake-up per
            # batch, not per send), with recent()'s arithmetic, so never a rounding too early.
            wait = self.window - (now - starts[min(len(starts), int(self._wanted)) - 1])
        if self._tokens < 1.0:
            wait = max(wait, (self._wanted - self._tokens) / self.rate)
        # Rounding can leave a remainder too small to move the clock; wait a microsecond instead.
        return max(wait, 1e-6) if wait > 0 else 0.0

    def consume(self, now: float) -> None:
        self._tokens -= 1.0
        self._starts.append(now)

    def recent(self, now: float) -> deque[float]:
        """Start times within the last window (oldest first)."""
        starts = self._starts
        while starts and now - starts[0] >= self.window:
            starts.popleft()
        return starts


@dataclasses.dataclass(eq=False)
class _Live:
    """A campaign the engine is sending: its two faces for `send` and what is in flight."""

    campaign: Campaign
    loud: Campaign
    silent: Campaign
    active: bool = True  # False once paused, cancelled or stopped by the engine
    exhausted: bool = False  # no queued rows were left at the last claim
    finishing: bool = False
    pending: int = 0  # rows claimed and not yet resolved
    seen: int = 0  # outcomes among the circuit breaker's sample
    blocked: int = 0

    @property
    def id(self) -> int:
        return self.campaign.id


class BroadcastEngine:
    """Sends campaigns from the outbox. At start-up: `await recover()`, `await start_due()`, then
    `start()`; `await stop()` at shutdown. The organizer's controls go through `launch`, `pause`,
    `resume` and `cancel`, which wake the engine."""

    def __init__(
        self,
        repo: CampaignRepository,
        send: Send,
        *,
        rate: float = 25,
        global_rate: int | None = TELEGRAM_GLOBAL_RATE,
        clock: Callable[[], datetime] = _utcnow,
        monotonic: Callable[[], float] = _time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        max_attempts: int = 5,
        backoff: float = 1.0,
        breaker_sample: int = 50,
        breaker_share: float = 0.5,
        progress_every: float = 5.0,
        on_progress: ProgressCallback | None = None,
        on_paused: PausedCallback | None = None,
        on_finished: ProgressCallback | None = None,
        timezone: tzinfo = ZoneInfo("Asia/Almaty"),
        quiet_hours: tuple[time, time] = QUIET_HOURS,
        concurrency: int | None = None,
        stop_grace: float = 5.0,
    ) -> None:
        self._repo = repo
        self._send = send
        self.rate = rate
        self._global_rate = global_rate
        self._clock = clock
        self._monotonic = monotonic
        self._sleep = sleep
        self._max_attempts = max(1, max_attempts)
        self._backoff = backoff
        self._breaker_sample = breaker_sample
        self._breaker_trip = math.floor(breaker_share * breaker_sample) + 1  # "more than" the share
        self._progress_every = progress_every
        self._on_progress = on_progress
        self._on_paused = on_paused
        self._on_finished = on_finished
        self._tz = timezone
        self._quiet_hours = quiet_hours
        self._stop_grace = stop_grace
        # Enough sends in flight to keep the pace over a slow round trip; at most half of aiogram's
        # 100 connections, so that replies to people never queue behind announcements.
        self._concurrency = concurrency or min(50, max(4, math.ceil(rate / 2)))
        self._claim_size = min(500, max(self._concurrency, math.ceil(rate / 5)))
        # Outcomes are written in batches of about 1/10 s of sending: a crash repeats little, and at
        # high rates the database thread is not woken for every message (each wake-up costs more
        # CPU than the write itself).
        self._flush_size = max(1, int(rate // 10))
        # At high rates tokens are handed out in batches of 20 ms worth (fewer timer wake-ups); up
        # to 0.1 s worth is saved, to catch up after a late wake-up or a short stall (a garbage
        # collection, a slow answer). The window still caps every second at `rate`.
        window = 1.0 + _WINDOW_MARGIN
        self._bucket = TokenBucket(rate / window, burst=max(2, math.ceil(rate / 10)), clock=monotonic, sleep=sleep,
                                   window=window, limit=math.floor(rate + 1e-9), granularity=0.02)
        self._interactive: deque[float] = deque()
        self._hold_until = -math.inf
        self._pace_lock = asyncio.Lock()
        self._refill_lock = asyncio.Lock()
        self._flush_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._ready: deque[tuple[_Live, OutboxRow]] = deque()
        self._live: dict[int, _Live] = {}
        self._outcomes: list[Outcome] = []
        self._released: list[tuple[int, int]] = []
        self._progress_at: dict[int, float] = {}
        self._background: set[asyncio.Task] = set()
        self._calls = 0
        self._calls_idle = asyncio.Event()
        self._calls_idle.set()
        self._quiet = False
        self._quiet_until = datetime.min.replace(tzinfo=UTC)
        self._stopping = False
        self._task: asyncio.Task | None = None

    # --- life cycle --------------------------------------------------------------------------

    @property
    def task(self) -> asyncio.Task | None:
        """The engine's task while it runs (cancelling it is a crash: nothing is tidied up)."""
        return self._task

    async def recover(self) -> int:
        """Before `start()`: rows a crash left in flight go back to the queue (they may arrive twice)."""
        if self._task is not None and not self._task.done():
            raise RuntimeError("recover() must run before start()")
        requeued = await self._repo.recover()
        if requeued:
            log.info("Re-queued %d announcement messages that were in flight when the bot stopped", requeued)
        return requeued

    def start(self) -> None:
        if self._task is not None and not self._task.done():
            return
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="broadcasts")
        self._task.add_done_callback(self._ended)

    async def stop(self) -> None:
        """Let messages already on their way finish (up to `stop_grace` s), record every outcome
        and put rows never handed to Telegram back in the queue. A message still unanswered after
        the grace stays 'sending': run recover() before the next start()."""
        task = self._task
        if task is None:
            return
        self._stopping = True
        self._wake.set()
        if self._calls:
            try:
                await asyncio.wait_for(self._calls_idle.wait(), self._stop_grace)
            except TimeoutError:
                log.warning("Stopping with %d announcement messages still in flight", self._calls)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        self._task = None
        self._released.extend((live.id, row.chat_id) for live, row in self._ready)
        self._ready.clear()
        self._live.clear()  # reloaded from the database by the next start()
        background = list(self._background)
        await asyncio.gather(*background, return_exceptions=True)
        await self._flush()

    def wake(self) -> None:
        """Something changed in the outbox (a campaign was enqueued or resumed elsewhere)."""
        self._wake.set()

    def _ended(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.critical("The announcement engine stopped", exc_info=task.exception())

    # --- the organizer's controls ------------------------------------------------------------

    async def launch(self, campaign_id: int) -> str:
        """A confirmed draft: 'scheduled' if its send_at is still ahead, else queued and sent now."""
        campaign = await self._repo.get(campaign_id)
        if campaign is None:
            raise LookupError(f"no campaign {campaign_id}")
        if campaign.state in ("draft", "scheduled") and campaign.send_at is not None \
                and campaign.send_at > self._clock():
            await self._repo.schedule(campaign_id)
            return "scheduled"
        if await self._repo.enqueue(campaign_id) is not None:
            self._wake.set()
            return "sending"
        return campaign.state

    async def start_due(self, now: datetime | None = None) -> list[int]:
        """Enqueue scheduled campaigns whose time has come (also those due while the bot was down)."""
        started = [campaign_id for campaign_id in await self._repo.due(now or self._clock())
                   if await self._repo.enqueue(campaign_id) is not None]
        if started:
            self._wake.set()
        return started

    async def pause(self, campaign_id: int, reason: str = "organizer") -> bool:
        live = self._live.get(campaign_id)
        if live is not None:
            live.active = False
        paused = await self._repo.pause(campaign_id, reason)
        if live is not None:
            self._forget(live)
            await self._flush()
        return paused

    async def resume(self, campaign_id: int) -> bool:
        resumed = await self._repo.resume(campaign_id)
        if resumed:
            self._wake.set()
        return resumed

    async def cancel(self, campaign_id: int) -> bool:
        live = self._live.get(campaign_id)
        if live is not None:
            live.active = False
        cancelled = await self._repo.cancel(campaign_id)
        if live is not None:
            self._forget(live)
            await self._flush()
        return cancelled

    # --- sharing Telegram's budget -----------------------------------------------------------

    def note_interactive_send(self) -> None:
        """A message that is not part of a campaign left (see InteractiveSendMiddleware)."""
        now = self._monotonic()
        self._interactive.append(now)
        while now - self._interactive[0] >= self._bucket.window:
            self._interactive.popleft()

    def hold(self, seconds: float) -> None:
        """Telegram asked for a pause (a 429 on any request): no bulk send starts before it ends."""
        self._hold_until = max(self._hold_until, self._monotonic() + seconds)

    def request_middleware(self) -> InteractiveSendMiddleware:
        return InteractiveSendMiddleware(self)

    async def _pace(self) -> None:
        async with self._pace_lock:
            while True:
                now = self._monotonic()
                wait = self._hold_until - now
                if wait <= 0:
                    wait = self._bucket.delay(now)
                    if wait <= 0 and self._global_rate is not None:
                        wait = self._share_delay(now)
                    if wait <= 0:
                        self._bucket.consume(now)
                        return
                if wait > 0.2 and self._outcomes:
                    await self._flush()  # a long wait: what is done should not be repeated after a crash
                    continue
                await self._sleep(wait)

    def _share_delay(self, now: float) -> float:
        """Bulk gets what interactive traffic leaves of the global budget over the last second."""
        window = self._bucket.window
        interactive = self._interactive
        while interactive and now - interactive[0] >= window:
            interactive.popleft()
        bulk = self._bucket.recent(now)
        if len(bulk) + len(interactive) < self._global_rate:
            return 0.0
        oldest = min(bulk[0] if bulk else math.inf, interactive[0] if interactive else math.inf)
        return max(window - (now - oldest), 1e-6)

    # --- the engine's task ---------------------------------------------------------------------

    async def _run(self) -> None:
        workers = [asyncio.create_task(self._worker(), name=f"broadcasts-{index}") for index in range(self._concurrency)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self) -> None:
        _BULK.set(True)
        while True:
            live, row = await self._next_row()
            await self._attempt(live, row)
            live.pending -= 1
            if live.exhausted and not live.pending:
                await self._maybe_finish(live)

    async def _next_row(self) -> tuple[_Live, OutboxRow]:
        while not self._ready:
            async with self._refill_lock:
                if not self._ready:
                    await self._refill()
        return self._ready.popleft()

    async def _refill(self) -> None:
        """Claim the next rows of the oldest campaign that may send now, or wait for one."""
        while True:
            self._wake.clear()
            if self._stopping:
                await asyncio.Event().wait()  # until stop() cancels the task
            hold_until: datetime | None = None
            for campaign_id in await self._db(self._repo.sending()):
                live = self._live.get(campaign_id) or await self._load(campaign_id)
                if live is None or not live.active or live.exhausted:
                    continue
                if live.campaign.quiet_hours == "hold" and self._quiet_now():
                    hold_until = self._quiet_until
                    continue
                rows = await self._db(self._repo.claim(campaign_id, self._claim_size))
                if rows:
                    live.pending += len(rows)
                    self._ready.extend((live, row) for row in rows)
                    return
                live.exhausted = True
                await self._maybe_finish(live)
            await self._flush()
            await self._idle(hold_until)

    async def _load(self, campaign_id: int) -> _Live | None:
        campaign = await self._db(self._repo.get(campaign_id))
        if campaign is None or campaign.state != "sending":
            return None
        live = _Live(campaign, campaign, dataclasses.replace(campaign, silent_now=True))
        # After a restart the breaker goes on from the recorded outcomes.
        live.seen = min(campaign.counters.done, self._breaker_sample)
        live.blocked = campaign.counters.blocked
        self._live[campaign_id] = live
        return live

    async def _idle(self, until: datetime | None) -> None:
        if until is None:
            await self._wake.wait()
            return
        delay = (until - self._clock()).total_seconds()
        if delay <= 0:
            return
        sleeper = asyncio.ensure_future(self._sleep(delay))
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait((sleeper, waker), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            waker.cancel()

    def _sendable(self, live: _Live) -> bool:
        if not live.active or self._stopping:
            return False
        return live.campaign.quiet_hours != "hold" or not self._quiet_now()

    async def _attempt(self, live: _Live, row: OutboxRow) -> None:
        """One row to its end: an outcome, back to the queue, or dropped as a duplicate chat."""
        attempts = row.attempts
        unsent = True  # cancelled while this holds, the row goes back to the queue (see stop())
        try:
            while True:
                if not self._sendable(live):
                    self._released.append((live.id, row.chat_id))
                    return
                await self._pace()
                if not self._sendable(live):  # paused, cancelled or quiet hours while waiting
                    self._released.append((live.id, row.chat_id))
                    return
                silent = live.campaign.quiet_hours == "silent" and self._quiet_now()
                attempts += 1
                error: Exception | None = None
                unsent = False
                self._calls += 1
                self._calls_idle.clear()
                try:
                    await self._send(row.chat_id, row.language, live.silent if silent else live.loud)
                except Exception as exc:  # noqa: BLE001 - classified below; a crash (BaseException) passes
                    error = exc
                finally:
                    self._calls -= 1
                    if not self._calls:
                        self._calls_idle.set()
                if error is None:
                    await self._outcome(live, row, "delivered", attempts)
                    return
                if not await self._after_error(live, row, error, attempts):
                    return
                unsent = True  # an answer came: this try is over, the next has not begun
                if isinstance(error, TelegramRetryAfter):
                    attempts -= 1  # Telegram said "later", not "no"
        except asyncio.CancelledError:
            # Cancelled during a send, nobody knows whether it arrived: the row stays 'sending'
            # and recover() re-queues it at the next start (the allowed window for a duplicate).
            if unsent:
                self._released.append((live.id, row.chat_id))
            raise

    async def _after_error(self, live: _Live, row: OutboxRow, error: Exception, attempts: int) -> bool:
        """Record what the error means; True if the row is to be tried again."""
        failure = classify(error)
        if failure is Failure.WAIT:
            self.hold(error.retry_after)
            return True
        if failure is Failure.MOVED:
            if attempts >= self._max_attempts:
                await self._outcome(live, row, "failed", attempts)
                return False
            if not await self._db(self._repo.move_chat(live.id, row.chat_id, error.migrate_to_chat_id)):
                return False  # the new chat is already a recipient: its own row delivers
            row.chat_id = error.migrate_to_chat_id
            return True
        if failure is Failure.GONE:
            await self._outcome(live, row, "blocked", attempts)
            return False
        if failure is Failure.REVOKED:  # nothing will go through
            self._released.append((live.id, row.chat_id))
            await self._stop_campaign(live, "unauthorized")
            return False
        if failure is Failure.TRANSIENT:
            if attempts >= self._max_attempts:
                await self._outcome(live, row, "failed", attempts)
                return False
            await self._flush()
            await self._sleep(self._backoff * 2 ** (attempts - 1))
            return True
        if failure is Failure.REFUSED:
            await self._outcome(live, row, "failed", attempts)
            return False
        log.error("Sending announcement %d failed unexpectedly; pausing it", live.id, exc_info=error)
        self._released.append((live.id, row.chat_id))
        await self._stop_campaign(live, "error")
        return False

    async def _outcome(self, live: _Live, row: OutboxRow, state: str, attempts: int) -> None:
        self._outcomes.append(Outcome(live.id, row.chat_id, state, attempts))
        tripped = False
        if live.seen < self._breaker_sample:
            live.seen += 1
            if state == "blocked":
                live.blocked += 1
                # Equality, not >=: after a resume (or a restart past it) the breaker stays quiet.
                tripped = live.blocked == self._breaker_trip
        if tripped:
            log.warning("Announcement %d paused: most of its first recipients have blocked the bot", live.id)
            await self._stop_campaign(live, "blocked")
        elif len(self._outcomes) >= self._flush_size:
            await self._flush()

    async def _stop_campaign(self, live: _Live, reason: str) -> None:
        """The engine pauses a campaign itself (circuit breaker, revoked token, a bug in `send`)."""
        if not live.active:
            return
        live.active = False
        await self._flush()
        paused = await self._db(self._repo.pause(live.id, reason))
        self._forget(live)
        await self._flush()
        if paused and self._on_paused is not None:
            token = _BULK.set(False)  # the organizer's message is not a bulk send
            try:
                await self._on_paused(live.id, reason)
            except Exception:  # noqa: BLE001 - telling the organizer must not stop the engine
                log.exception("on_paused failed for announcement %d", live.id)
            finally:
                _BULK.reset(token)

    def _forget(self, live: _Live) -> None:
        """The campaign stopped: its claimed rows that wait for a sender go back to the queue."""
        if self._live.get(live.id) is live:
            del self._live[live.id]
        kept: deque[tuple[_Live, OutboxRow]] = deque()
        for item in self._ready:
            if item[0] is live:
                self._released.append((live.id, item[1].chat_id))
                live.pending -= 1
            else:
                kept.append(item)
        self._ready = kept

    async def _maybe_finish(self, live: _Live) -> None:
        if live.finishing or live.pending or not live.exhausted:
            return
        live.finishing = True
        try:
            await self._flush()
            if not live.active:
                return
            if await self._db(self._repo.finish(live.id)):
                if self._live.get(live.id) is live:
                    del self._live[live.id]
                self._progress_at.pop(live.id, None)
                if self._on_finished is not None:
                    self._spawn(self._finished(live.id))
            elif await self._db(self._repo.queued(live.id)):
                live.exhausted = False  # rows came back to the queue (paused, held): go on
                self._wake.set()
            else:
                log.warning("Announcement %d has rows left in flight by an earlier run; "
                            "recover() at start-up re-queues them", live.id)
        finally:
            live.finishing = False

    # --- writing outcomes and telling the organizer ----------------------------------------

    async def _flush(self) -> None:
        async with self._flush_lock:
            if not self._outcomes and not self._released:
                return
            outcomes, self._outcomes = self._outcomes, []
            released, self._released = self._released, []
            await self._db(self._repo.record(outcomes, released))
        if self._on_progress is not None and outcomes:
            now = self._monotonic()
            for campaign_id in {outcome.campaign_id for outcome in outcomes}:
                if now - self._progress_at.get(campaign_id, -math.inf) >= self._progress_every:
                    self._progress_at[campaign_id] = now
                    self._spawn(self._progress(campaign_id))

    async def _db(self, work: Coroutine[Any, Any, T]) -> T:
        """Database work from the engine's tasks runs to its end even if the engine is cancelled:
        an aiosqlite call abandoned half-way would leave the shared connection inside a
        transaction; and a write of outcomes must be complete or absent, never counted twice."""
        task = asyncio.ensure_future(work)
        self._background.add(task)
        task.add_done_callback(self._callback_done)
        return await asyncio.shield(task)

    async def _progress(self, campaign_id: int) -> None:
        counters = await self._repo.counters(campaign_id)
        if counters is not None:
            await self._on_progress(campaign_id, counters)

    async def _finished(self, campaign_id: int) -> None:
        counters = await self._repo.counters(campaign_id)
        if counters is not None:
            await self._on_finished(campaign_id, counters)

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        """Run a callback beside the sending, outside the bulk context."""
        context = contextvars.copy_context()
        context.run(_BULK.set, False)
        task = asyncio.get_running_loop().create_task(coroutine, context=context)
        self._background.add(task)
        task.add_done_callback(self._callback_done)

    def _callback_done(self, task: asyncio.Task) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("An announcement task failed", exc_info=task.exception())

    # --- quiet hours -----------------------------------------------------------------------

    def _quiet_now(self) -> bool:
        now = self._clock()
        if now >= self._quiet_until:
            self._quiet, self._quiet_until = quiet_period(now, self._tz, *self._quiet_hours)
        return self._quiet


def quiet_period(now: datetime, tz: tzinfo, start: time, end: time) -> tuple[bool, datetime]:
    """Whether `now` is within the quiet hours [start, end) in `tz`, and when that changes (UTC)."""
    local = now.astimezone(tz)
    today, clock_time = local.date(), local.time().replace(tzinfo=None)
    if start > end:  # across midnight, like 22:00–07:00
        quiet = clock_time >= start or clock_time < end
    else:
        quiet = start <= clock_time < end
    edge = end if quiet else start
    day = today if clock_time < edge else today + timedelta(days=1)
    return quiet, datetime.combine(day, edge, tzinfo=tz).astimezone(UTC)


class InteractiveSendMiddleware(BaseRequestMiddleware):
    """For the Bot's session (`bot.session.middleware(engine.request_middleware())`): every
    message that is not a campaign's counts against Telegram's global budget, so bulk sending
    yields to replies; a 429 on any request pauses bulk sending too."""

    def __init__(self, engine: BroadcastEngine) -> None:
        self._engine = engine

    async def __call__(self, make_request: NextRequestMiddlewareType, bot: Any, method: Any) -> Any:
        if not _BULK.get() and getattr(method, "__api_method__", "").startswith(_COUNTED_METHODS):
            self._engine.note_interactive_send()
        try:
            return await make_request(bot, method)
        except TelegramRetryAfter as error:
            self._engine.hold(error.retry_after)
            raise
