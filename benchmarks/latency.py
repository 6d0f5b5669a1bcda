"""Update→reply latency under mixed traffic at a fixed offered rate (default 300 updates/s):
miners tapping through report flows, checking cases with /status, and answering a WHO-5
survey, all at once, against the real bot process and the fake Bot API.

    .venv/bin/python -m benchmarks.latency [--rate 300] [--seconds 30]

Every update the simulated users send waits for a token from one bucket at `--rate`, so the
bot is offered that rate as long as it keeps up; the achieved rate is printed beside it. The
latency of an update is from the moment the fake server has it until the bot's first reply.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import gc
import itertools
import os
import random
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.report_flow import cpu_seconds, percentile  # noqa: E402
from bot.broadcasts import TokenBucket  # noqa: E402
from tests.e2e_support import BotProcess  # noqa: E402
from tests.fake_telegram import FakeTelegram, FakeUser  # noqa: E402
from tests.flows import begin, choose_language, data_starts, invitation, launch, report, tap  # noqa: E402

LANGUAGES = ("kk", "ru", "en")
ORGANIZER = 5_000_000_001
TARGET_P99_MS = 40.0
# Simulated people busy at once. Each repeats their part back to back; with these numbers about
# half the updates are report steps, 40 % survey answers, and one status check comes per one or
# two reports (each check hashes the receipt: 13 ms of CPU by design, see bot/receipts.py).
REPORTERS, CHECKERS, RESPONDENTS_AT_ONCE = 60, 6, 60
WARM_UP = 5.0  # seconds in which the simulated people join, not measured


def midday_zone() -> str:
    """A time zone where it is around noon now: survey invitations are held through quiet hours."""
    offset = 12 - datetime.now(UTC).hour
    offset = offset - 24 if offset > 14 else offset
    return f"Etc/GMT{-offset:+d}"  # POSIX-style names: Etc/GMT-5 is UTC+5


def paced(user: FakeUser, bucket: TokenBucket, kind: str) -> FakeUser:
    """Every update this user sends first waits for the shared bucket; `kind` sorts its latencies."""
    send, press = user.send, user.press

    async def paced_send(*args, **kwargs):
        await bucket.take()
        return await send(*args, **kwargs)

    async def paced_press(*args, **kwargs):
        await bucket.take()
        return await press(*args, **kwargs)

    user.send, user.press = paced_send, paced_press
    user.kind = kind
    return user


async def run(rate: float, seconds: float, workdir: Path, slowest_count: int = 0) -> dict:
    async with FakeTelegram() as tg:
        bot = BotProcess(tg, workdir, REPORTS_PER_HOUR="1000000", LOG_LEVEL="WARNING",
                         ADMIN_IDS=str(ORGANIZER), BROADCAST_RATE="1000", TIMEZONE=midday_zone())
        await bot.start()
        organizer = tg.user(ORGANIZER, "Organizer", language_code="en")
        await choose_language(organizer, "en")
        reporters = [tg.user(8_100_000_000 + i, f"Reporter{i}") for i in range(REPORTERS)]
        checkers = [tg.user(8_200_000_000 + i, f"Checker{i}") for i in range(CHECKERS)]
        respondents = [tg.user(8_300_000_000 + i, f"Respondent{i}") for i in range(int(rate * seconds / 8) + 100)]
        everyone = reporters + checkers + respondents
        for chunk in range(0, len(everyone), 100):
            await asyncio.gather(*(choose_language(user, LANGUAGES[user.id % 3]) for user in everyone[chunk:chunk + 100]))
        # Receipts for the status checks, from reports made before the clock starts.
        receipts = [await report(reporters[i], LANGUAGES[reporters[i].id % 3], location=None) for i in range(30)]
        await launch(organizer, "who5")
        await asyncio.gather(*(invitation(user, timeout=300) for user in respondents))
        print(f"set-up done: {len(everyone)} users, survey launched", flush=True)

        bucket = TokenBucket(rate, burst=max(1, int(rate // 50)), granularity=0.005)
        for user in reporters:
            paced(user, bucket, "report")
        for user in checkers:
            paced(user, bucket, "status")
        pool = iter(respondents)
        stop_at = 0.0

        async def reporting(user: FakeUser) -> None:
            while time.monotonic() < stop_at:
                await report(user, LANGUAGES[user.id % 3], severity=("serious", "attention")[user.id % 2],
                             location=None if user.id % 3 else "Участок 5, горизонт −450",
                             description=f"Конвейер 4: ограждение снято, люди проходят рядом #{user.id}")

        async def checking(user: FakeUser) -> None:
            for receipt in itertools.cycle(receipts):
                if time.monotonic() >= stop_at:
                    return
                await user.send(f"/status {receipt.case_code} {receipt.receipt}")
                await user.next_message()

        async def answering() -> None:
            for user in pool:
                if time.monotonic() >= stop_at:
                    return
                language = LANGUAGES[user.id % 3]
                paced(user, bucket, "survey")
                question = await begin(user, language)
                for _ in range(5):
                    await tap(user, data_starts("sv:answer:"), message=question)
                await tap(user, data_starts("sv:submit:"), message=question)

        for user in everyone:
            user.skip_pending()
        # The fake server and the users keep every message: without this, this process's garbage
        # collector pauses now and then and the stand-in's pauses would be measured as the bot's.
        gc.collect()
        gc.freeze()
        gc.set_threshold(200_000, 50, 1000)
        stop_at = time.monotonic() + WARM_UP + seconds
        jitter = random.Random(1)

        async def joining(part) -> None:
            """People start at random moments: all at once, they would move through their flows in
            step, and every receipt of a round would be hashed at the same instant."""
            await asyncio.sleep(jitter.uniform(0, WARM_UP))
            await part

        tasks = ([asyncio.create_task(joining(reporting(user))) for user in reporters]
                 + [asyncio.create_task(joining(checking(user))) for user in checkers]
                 + [asyncio.create_task(joining(answering())) for _ in range(RESPONDENTS_AT_ONCE)])
        await asyncio.sleep(WARM_UP)
        pid = bot.process.pid
        first_update, cpu_before = len(tg.update_log), cpu_seconds(pid)
        loop_before, machine_before = cpu_seconds(pid, thread=pid), machine_jiffies()
        started = time.monotonic()
        await asyncio.sleep(seconds)
        cpu, loop_cpu = cpu_seconds(pid) - cpu_before, cpu_seconds(pid, thread=pid) - loop_before
        busy, total = (after - before for after, before in zip(machine_jiffies(), machine_before, strict=True))
        records = [r for r in tg.update_log[first_update:] if r.first_reply_at is not None and r.enqueued_at <= stop_at]
        await asyncio.gather(*tasks)
        await bot.stop()
        tg.assert_no_errors()

    owners = {user.id: getattr(user, "kind", "other") for user in everyone}
    by_kind: dict[str, list[float]] = collections.defaultdict(list)
    for record in records:
        by_kind[owners.get(record.chat_id, "other")].append(record.first_reply_at - record.enqueued_at)
    latencies = [latency for values in by_kind.values() for latency in values]
    slowest = [(record.enqueued_at - started, record.first_reply_at - record.enqueued_at,
                (record.fetched_at or record.enqueued_at) - record.enqueued_at, owners.get(record.chat_id, "other"),
                record.type) for record in sorted(records, key=lambda r: r.first_reply_at - r.enqueued_at)[-slowest_count:]]
    return {"rate": rate, "seconds": seconds, "achieved": len(records) / seconds, "cpu_share": cpu / seconds,
            "loop_share": loop_cpu / seconds, "machine_busy": busy / max(1, total),
            "all": latencies, "by_kind": by_kind, "slowest": sorted(slowest) if slowest_count else []}


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) CPU time of all cores so far, from /proc/stat."""
    values = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle, iowait
    return sum(values) - idle, sum(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=300.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--slowest", type=int, default=0, help="list the N slowest updates (when, how long, kind)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(run(args.rate, args.seconds, Path(tmp), args.slowest))
    print(f"latency benchmark: offered {result['rate']:.0f} updates/s for {result['seconds']:.0f} s, "
          f"{os.cpu_count()} cores; achieved {result['achieved']:.1f} updates/s "
          f"(÷ offered {result['achieved'] / result['rate']:.2f}); bot process CPU {result['cpu_share']:.0%} of a core")
    print(f"  of it the event-loop thread {result['loop_share']:.0%} of a core, the other threads (SQLite, receipt "
          f"hashing) {result['cpu_share'] - result['loop_share']:.0%}; all cores {result['machine_busy']:.0%} busy "
          "(bot, fake Bot API and simulated users)")
    for kind, values in [("all", result["all"]), *sorted(result["by_kind"].items())]:
        print(f"  {kind:7} {len(values):6d} updates ({len(values) / max(1, len(result['all'])):4.0%})  update→reply p50 {percentile(values, 0.5) * 1000:6.1f} ms  "
              f"p99 {percentile(values, 0.99) * 1000:6.1f} ms")
    for at, took, waited, kind, update_type in result["slowest"]:
        print(f"  slow: at {at:6.2f} s, {took * 1000:6.1f} ms ({waited * 1000:6.1f} ms before the bot fetched it), "
              f"{kind} {update_type}")
    p99 = percentile(result["all"], 0.99) * 1000
    print(f"p99 {p99:.1f} ms ÷ target {TARGET_P99_MS:.0f} ms = {p99 / TARGET_P99_MS:.2f} (target ≤ 1.00)")


if __name__ == "__main__":
    main()
