"""Many simulated miners tapping through the report flow at once, against the fake Bot API,
then a bare aiogram echo bot through the same server: updates/s, update→reply latency, ratio.

    .venv/bin/python -m benchmarks.report_flow [--miners 100] [--seconds 20]
"""

from __future__ import annotations

import argparse
import collections
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.e2e_support import BotProcess  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402
from tests.flows import choose_language, report  # noqa: E402

LANGUAGES = ("kk", "ru", "en")


def cpu_seconds(pid: int, thread: int | None = None) -> float:
    """User + system CPU time so far (Linux /proc) of a process and its threads, or of one thread
    (a process's main thread has the process's id)."""
    path = f"/proc/{pid}/task/{thread}/stat" if thread is not None else f"/proc/{pid}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(tg: FakeTelegram, seconds: float, act, pid: int) -> dict:
    """Every simulated user repeats `act` back to back; counted are the updates whose reply came
    within the window, so flows still finishing afterwards do not stretch it."""
    first_update, first_call = len(tg.update_log), len(tg.calls)
    cpu_before, driver_before = cpu_seconds(pid), cpu_seconds(os.getpid())
    started = time.monotonic()
    stop_at = started + seconds

    async def loop_user(index: int) -> None:
        while time.monotonic() < stop_at:
            await act(index)

    tasks = [asyncio.create_task(loop_user(index)) for index in range(act.users)]
    await asyncio.sleep(seconds)
    cpu = cpu_seconds(pid) - cpu_before
    driver_cpu = cpu_seconds(os.getpid()) - driver_before
    records = [r for r in tg.update_log[first_update:] if r.first_reply_at is not None and r.first_reply_at <= stop_at]
    calls = collections.Counter(call.method for call in tg.calls[first_call:] if call.time <= stop_at)
    await asyncio.gather(*tasks)
    latencies = [r.first_reply_at - r.enqueued_at for r in records]
    return {
        "updates": len(records),
        "elapsed": seconds,
        "rate": len(records) / seconds,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "cpu_ms_per_update": cpu * 1000 / max(1, len(records)),
        "cpu_share": cpu / seconds,
        "driver_share": driver_cpu / seconds,
        "calls_per_update": {method: count / max(1, len(records)) for method, count in calls.most_common()},
    }


async def bench_minevoice(miners: int, seconds: float, workdir: Path) -> dict:
    async with FakeTelegram() as tg:
        bot = BotProcess(tg, workdir, REPORTS_PER_HOUR="1000000", LOG_LEVEL="WARNING")
        await bot.start()
        users = [tg.user(8_000_000_000 + i, f"Miner{i}") for i in range(miners)]
        await asyncio.gather(*(choose_language(user, LANGUAGES[i % 3]) for i, user in enumerate(users)))

        async def act(index: int) -> None:
            await report(users[index], LANGUAGES[index % 3], severity=("serious", "attention")[index % 2],
                         description=f"Конвейер 4: ограждение снято, люди проходят рядом #{index}")

        act.users = miners
        result = await measure(tg, seconds, act, bot.process.pid)
        await bot.stop()
        tg.assert_no_errors()
        return result


async def bench_echo(users_count: int, seconds: float, *, buttons: bool) -> dict:
    async with FakeTelegram() as tg:
        env = {"PATH": os.environ.get("PATH", ""), "BOT_TOKEN": tg.token, "TELEGRAM_API_BASE": tg.base_url,
               "PYTHONPATH": str(ROOT)}
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "benchmarks.echo_bot", cwd=ROOT, env=env)
        await tg.wait_polling(timeout=30)
        users = [tg.user(9_000_000_000 + i, f"User{i}") for i in range(users_count)]

        async def act(index: int) -> None:
            user = users[index]
            await user.send(f"button {index}" if buttons else f"hello {index}")
            echoed = await user.next_message()
            if buttons:
                await user.callback_answer(await user.press("again", message=echoed))

        act.users = users_count
        result = await measure(tg, seconds, act, process.pid)
        process.terminate()
        await process.wait()
        return result


def show(name: str, result: dict) -> None:
    print(f"{name:10} {result['updates']:7d} updates in {result['elapsed']:5.1f} s = {result['rate']:7.1f} updates/s, "
          f"update→reply p50 {result['p50_ms']:6.1f} ms, p99 {result['p99_ms']:6.1f} ms, "
          f"bot CPU {result['cpu_ms_per_update']:.2f} ms/update ({result['cpu_share']:.0%} of a core), "
          f"fake server + users {result['driver_share']:.0%} of a core")
    print(" " * 11 + "API calls per update: " + ", ".join(f"{m} {n:.2f}" for m, n in result["calls_per_update"].items()))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--miners", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        minevoice = await bench_minevoice(args.miners, args.seconds, Path(tmp))
        echo = await bench_echo(args.miners, args.seconds, buttons=False)
        echo_buttons = await bench_echo(args.miners, args.seconds, buttons=True)
    print(f"report flow benchmark: {args.miners} concurrent users, {args.seconds:.0f} s each, {os.cpu_count()} cores")
    show("MineVoice", minevoice)
    show("echo bot", echo)
    show("echo+tap", echo_buttons)
    print(f"ratio MineVoice/echo updates/s: {minevoice['rate'] / echo['rate']:.2f} (target ≥ 0.70)")
    print(f"ratio MineVoice/echo-with-button-taps updates/s: {minevoice['rate'] / echo_buttons['rate']:.2f} "
          "(the same Telegram calls per tap as a button flow needs)")


if __name__ == "__main__":
    asyncio.run(main())
