"""One announcement to 100,000 subscribers through the real engine, a real aiogram Bot and the
fake Bot API: achieved pace, the busiest second, CPU per message and peak memory.

    .venv/bin/python -m benchmarks.broadcast [--recipients 100000] [--rate 1000] [--in-process]

By default the fake Bot API runs in a child process, so the bot's CPU time is measured apart from
the fake's (both are printed, and their sum is what one shared process would show). The global
30-messages-per-second share is switched off: 1000/s is far above it, and only the pacing is measured.
"""

from __future__ import annotations

import argparse
import array
import asyncio
import gc
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.access import AccessService  # noqa: E402
from bot.app import build_announcements, build_bot  # noqa: E402
from bot.i18n import build_i18n  # noqa: E402
from bot.broadcasts import BroadcastEngine, TokenBucket  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.sites import seed_sites  # noqa: E402
from storage.campaigns import Audience, CampaignRepository, Counters  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.roles import RoleRepository  # noqa: E402
from storage.users import UserRepository  # noqa: E402
from storage.sites import SiteRepository  # noqa: E402
from tests.e2e_support import most_in_any_second  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402

FIRST_ID = 6_000_000_000
LANGUAGES = ("kk", "ru", "en")
CONTENTS = {  # as the composer stores them: the organizer's text with its formatting entities
    "kk": {"text": "Кәсіподақ жиналысы жұма күні 18:00-де, мәдениет үйінде. Келіңіздер!",
           "entities": [{"type": "bold", "offset": 0, "length": 18}]},
    "ru": {"text": "Собрание профсоюза в пятницу в 18:00 в доме культуры. Приходите!",
           "entities": [{"type": "bold", "offset": 0, "length": 18}]},
    "fallback": {"text": "Union meeting on Friday at 18:00 in the House of Culture. Please come!",
                 "entities": [{"type": "bold", "offset": 0, "length": 13}]},
}


def process_cpu() -> float:
    times = os.times()
    return times.user + times.system


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


# --- the fake Bot API, in this process or a child -----------------------------------------------

class FakeStats:
    """What the fake saw: sendMessage arrival times, messages per chat, its own CPU and memory."""

    def __init__(self, tg: FakeTelegram, recipients: int) -> None:
        self.tg = tg
        self.recipients = recipients

    def report(self) -> dict:
        calls = self.tg.calls_to("sendMessage")
        arrivals = sorted(call.time for call in calls if call.chat_id != FIRST_ID - 1)
        counts: dict[int, int] = {}
        for uid in range(FIRST_ID, FIRST_ID + self.recipients):
            messages = len(self.tg.chat_messages(uid))
            counts[messages] = counts.get(messages, 0) + 1
        return {"arrivals_max_window": most_in_any_second(arrivals), "messages_per_chat": counts,
                "errors": len(self.tg.errors), "cpu": process_cpu(), "rss_mb": peak_rss_mb()}


async def serve_fake(recipients: int) -> None:
    """Child process: the fake Bot API; answers "cpu" and "report" lines on stdin with JSON."""
    async with FakeTelegram() as tg:
        for uid in range(FIRST_ID - 1, FIRST_ID + recipients):
            tg.user(uid, "Miner", started=True)
        # The fake keeps every call and message: without this its garbage collector pauses for
        # a third of a second now and then, and the bot's pace would measure the stand-in.
        gc.freeze()
        gc.set_threshold(200_000, 50, 1000)
        print(json.dumps({"base_url": tg.base_url, "token": tg.token}), flush=True)
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        stats = FakeStats(tg, recipients)
        while line := (await reader.readline()).strip():
            answer = {"cpu": process_cpu()} if line == b"cpu" else stats.report()
            print(json.dumps(answer), flush=True)


class ChildFake:
    def __init__(self, recipients: int) -> None:
        self.recipients = recipients
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> tuple[str, str]:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "benchmarks.broadcast", "--serve-fake", "--recipients", str(self.recipients),
            cwd=ROOT, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**24)
        hello = json.loads(await self.process.stdout.readline())
        return hello["base_url"], hello["token"]

    async def ask(self, what: str) -> dict:
        self.process.stdin.write(what.encode() + b"\n")
        await self.process.stdin.drain()
        return json.loads(await self.process.stdout.readline())

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.stdin.close()
            await self.process.wait()


class InProcessFake:
    def __init__(self, recipients: int) -> None:
        self.tg = FakeTelegram()
        self.recipients = recipients

    async def start(self) -> tuple[str, str]:
        await self.tg.start()
        for uid in range(FIRST_ID - 1, FIRST_ID + self.recipients):
            self.tg.user(uid, "Miner", started=True)
        return self.tg.base_url, self.tg.token

    async def ask(self, what: str) -> dict:
        return {"cpu": 0.0} if what == "cpu" else FakeStats(self.tg, self.recipients).report()

    async def stop(self) -> None:
        await self.tg.stop()


# --- the run ---------------------------------------------------------------------------------

async def populate(db: Database, recipients: int) -> list[int]:
    await db.migrate()
    await seed_sites(SiteRepository(db))
    site_ids = [row[0] for row in await db.fetchall("SELECT id FROM sites ORDER BY id")]
    await db.executemany(
        "INSERT INTO users (user_id, language, site_id) VALUES (?, ?, ?)",
        ((uid, LANGUAGES[uid % 3], site_ids[uid % len(site_ids)]) for uid in range(FIRST_ID, FIRST_ID + recipients)))
    return site_ids


async def baseline(bot, count: int, rate: int) -> float:
    """Bare aiogram at the same pace, no database and no engine: its CPU per message."""
    bucket = TokenBucket(rate, burst=max(2, rate // 50), granularity=0.01)
    tasks: set[asyncio.Task] = set()
    limit = asyncio.Semaphore(64)

    async def one(uid: int) -> None:
        try:
            await bot.send_message(uid, CONTENTS["ru"]["text"])
        finally:
            limit.release()

    before = process_cpu()
    for index in range(count):
        await limit.acquire()
        await bucket.take()
        task = asyncio.create_task(one(FIRST_ID - 1))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    await asyncio.gather(*tasks)
    return (process_cpu() - before) / count


async def engine_alone(workdir: Path, count: int, rate: int) -> float:
    """The engine and SQLite with a `send` that does nothing, at the same pace: CPU per message."""
    db = await Database.open(workdir / "alone.sqlite3")
    try:
        await populate(db, count)
        repo = CampaignRepository(db)
        campaign_id = await repo.create(1, Audience(), CONTENTS, now=datetime.now(UTC))
        await repo.enqueue(campaign_id)
        finished = asyncio.Event()

        async def send(chat_id: int, language: str, campaign) -> None:
            await asyncio.sleep(0)

        async def on_finished(_: int, counters: Counters) -> None:
            finished.set()

        engine = BroadcastEngine(repo, send, rate=rate, global_rate=None, on_finished=on_finished)
        before = process_cpu()
        engine.start()
        await finished.wait()
        cpu = process_cpu() - before
        await engine.stop()
        return cpu / count
    finally:
        await db.close()


async def run(recipients: int, rate: int, in_process: bool, baseline_count: int) -> None:
    fake = InProcessFake(recipients) if in_process else ChildFake(recipients)
    base_url, token = await fake.start()
    bot = build_bot(load_settings(bot_token=token, telegram_api_base=base_url, _env_file=None))
    starts = array.array("d")
    with tempfile.TemporaryDirectory() as tmp:
        db = await Database.open(Path(tmp) / "bench.sqlite3")
        try:
            began = time.monotonic()
            await populate(db, recipients)
            repo = CampaignRepository(db)
            campaign_id = await repo.create(1, Audience(), CONTENTS, now=datetime.now(UTC))
            enqueue_began = time.monotonic()
            assert await repo.enqueue(campaign_id) == recipients
            enqueue_seconds = time.monotonic() - enqueue_began
            print(f"{recipients} subscribers written in {enqueue_began - began:.1f} s, "
                  f"campaign enqueued in {enqueue_seconds * 1000:.0f} ms", flush=True)

            monotonic = time.monotonic
            finished = asyncio.Event()
            result: list[Counters] = []

            async def on_finished(_: int, counters: Counters) -> None:
                result.append(counters)
                finished.set()

            async def on_progress(_: int, counters: Counters) -> None:
                print(f"  … {counters.done}/{counters.total}", file=sys.stderr, flush=True)

            # The bot's own wiring: the composer's rendering (entities, buttons in the recipient's
            # language) and the engine, with only the callbacks and the start times watched here.
            settings = load_settings(bot_token=token, telegram_api_base=base_url, broadcast_rate=rate, _env_file=None)
            rendering: dict[str, object] = {}

            async def send(chat_id: int, language: str, campaign) -> object:
                starts.append(monotonic())
                return await rendering["deliver"](chat_id, language, campaign)

            announcements, engine = build_announcements(
                settings, db, bot, build_i18n(settings.default_locale), UserRepository(db),
                AccessService(RoleRepository(db), frozenset()), lambda: datetime.now(UTC),
                send=send, on_finished=on_finished, on_progress=on_progress, progress_every=10.0)
            rendering["deliver"] = announcements.deliver
            await bot.send_message(FIRST_ID - 1, "warm-up")  # connection and models ready, as in a running bot

            fake_cpu_before = (await fake.ask("cpu"))["cpu"]
            cpu_before = process_cpu()
            sending_began = time.monotonic()
            engine.start()
            await finished.wait()
            sending_seconds = time.monotonic() - sending_began
            cpu = process_cpu() - cpu_before
            fake_cpu = (await fake.ask("cpu"))["cpu"] - fake_cpu_before
            await engine.stop()
            counters = result[0]
            report = await fake.ask("report")

            per_message = cpu / counters.delivered * 1e6
            bare = await baseline(bot, baseline_count, rate) * 1e6 if baseline_count else None
            alone = await engine_alone(Path(tmp), baseline_count, rate) * 1e6 if baseline_count else None
        finally:
            await bot.session.close()
            await db.close()
            await fake.stop()

    span = starts[-1] - starts[0]
    print(f"broadcast benchmark: {recipients} recipients at rate {rate}/s, {os.cpu_count()} cores, "
          f"fake Bot API {'in this process' if in_process else 'in a child process'}")
    print(f"delivered {counters.delivered}, blocked {counters.blocked}, failed {counters.failed}; "
          f"messages per chat at the fake: {report['messages_per_chat']}; fake's errors: {report['errors']}")
    print(f"achieved rate ÷ configured: {counters.delivered / sending_seconds / rate:.3f} "
          f"({counters.delivered / sending_seconds:.1f}/s over {sending_seconds:.1f} s from start() to done; "
          f"{(len(starts) - 1) / span / rate:.3f} between the first and the last send)")
    print(f"most sends started in any 1 s ÷ rate: {most_in_any_second(starts) / rate:.3f} "
          f"(as arrivals at the fake: {report['arrivals_max_window'] / rate:.3f})")
    if in_process:
        print(f"CPU per delivered message: {per_message:.0f} µs (bot and fake Bot API together)")
    else:
        print(f"CPU per delivered message: {per_message:.0f} µs in the bot's process; "
              f"the fake Bot API {fake_cpu / counters.delivered * 1e6:.0f} µs in its own; "
              f"together {(cpu + fake_cpu) / counters.delivered * 1e6:.0f} µs")
    if bare is not None:
        print(f"  for scale, {baseline_count} messages at the same pace: bare aiogram send_message without engine "
              f"or database {bare:.0f} µs; the engine and SQLite with a send that does nothing {alone:.0f} µs")
    print(f"peak RSS: {peak_rss_mb():.0f} MB (bot process)"
          + ("" if in_process else f", {report['rss_mb']:.0f} MB (fake Bot API)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipients", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--in-process", action="store_true", help="run the fake Bot API in this process")
    parser.add_argument("--baseline", type=int, default=20_000,
                        help="messages for the comparisons: bare aiogram, and the engine alone (0: skip)")
    parser.add_argument("--serve-fake", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_fake:
        asyncio.run(serve_fake(args.recipients))
    else:
        asyncio.run(run(args.recipients, args.rate, args.in_process, args.baseline))


if __name__ == "__main__":
    main()
