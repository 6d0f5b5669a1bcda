"""How long building one committee's daily digest takes on a large database: 1,000,000 reports over
every seeded mine and two years, 500 of them new for one mine since its last digest. Timed is the
build alone (the queries and the rendering, without the chart and without storing anything).

    .venv/bin/python -m benchmarks.digest_build [--reports 1000000] [--new 500] [--runs 10]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.digests import DigestService, utf16_len  # noqa: E402
from bot.hazards import CATEGORIES, SEVERITIES  # noqa: E402
from bot.i18n import build_i18n  # noqa: E402
from bot.sites import seed_sites  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.sites import SiteRepository  # noqa: E402

TARGET_MS = 100
BATCH = 50_000
TZ = ZoneInfo("Asia/Almaty")
NOW = datetime(2026, 11, 24, 8, 0, tzinfo=TZ)  # a Tuesday: no chart
CATEGORY_WEIGHTS = [14, 10, 12, 9, 6, 8, 10, 8, 4, 3, 7, 4, 3, 1, 1]
PHRASES = [
    "Methane detector at the face has been taped over for a week",
    "Conveyor belt guard removed near the loading point, nobody fixed it",
    "Roof bolts missing on a 20 m stretch after the last advance",
    "Dust suppression sprays do not work, visibility under five metres",
    "Self-rescuers expired, the foreman says there are no new ones",
    "We were told to skip the gas check to make the shift plan",
    "Water coming in from the old workings, pumps run all shift",
    "Cable insulation damaged near the substation, sparks seen",
    "Вентилятор местного проветривания остановлен третьи сутки",
    "Кровля в штреке нависает, крепь деформирована",
    "Жаяу жүретін жолда жарық жоқ, вагонеткалар жақын өтеді",
]
CLOSED = ("resolved", "not_confirmed")
OPEN = ("received", "acknowledged", "in_progress", "escalated_employer", "escalated_inspection")


def hour_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:00Z")


def status_for(age_days: float, rng: random.Random) -> str:
    """Mostly closed when old; a committee's backlog is small but never empty."""
    closed_share = 0.997 if age_days > 60 else 0.8 if age_days > 14 else 0.35
    return rng.choice(CLOSED) if rng.random() < closed_share else rng.choice(OPEN)


def description(rng: random.Random) -> str:
    return " ".join(rng.choice(PHRASES) for _ in range(rng.randint(1, 4)))


def fill(path: Path, total: int, new: int, target: int, site_ids: list[int], seed: int = 7) -> tuple[int, float]:
    """Insert the reports with plain sqlite3 (WAL, synchronous=OFF for the fill only). Returns the
    target mine's watermark (its last report before the 500 new ones) and the seconds it took."""
    rng = random.Random(seed)
    started = time.perf_counter()
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("PRAGMA synchronous = OFF")
    categories, severities = list(CATEGORIES), list(SEVERITIES)
    last_digest = NOW.replace(hour=8) - timedelta(days=1)
    span_hours = 2 * 365 * 24
    # Old reports: every mine, spread over two years up to yesterday's digest, in time order.
    newer = total - new
    late_others = new * 3  # other mines keep reporting after the target's watermark too
    old = newer - late_others
    old_hours = sorted(rng.randrange(span_hours) for _ in range(old))
    start = last_digest - timedelta(hours=span_hours)
    next_id = 1
    watermark = 0

    hour_texts: dict[int, str] = {}
    descriptions = [description(rng) for _ in range(5000)]
    locations = (None, "Panel 12", "Штрек 4-бис", "Конвейер №2, привод")

    def rows(batch_hours, site_for):
        nonlocal next_id, watermark
        out, photos = [], []
        drawn = rng.choices(categories, CATEGORY_WEIGHTS, k=len(batch_hours))
        for offset, category in zip(batch_hours, drawn):
            if offset not in hour_texts:
                hour_texts[offset] = hour_text(start + timedelta(hours=offset))
            site = site_for()
            age_days = (span_hours - offset) / 24 + 1
            out.append((next_id, f"MV-{next_id:07d}", "scrypt$bench", site, category, rng.choice(severities),
                        rng.choice(locations), rng.choice(descriptions), rng.choice(("kk", "ru", "ru", "en")),
                        status_for(age_days, rng), hour_texts[offset]))
            if rng.random() < 0.15:
                photos += [(next_id, position, f"AgAC-bench-{next_id}-{position}") for position in range(rng.randint(1, 3))]
            if site == target and offset < span_hours:
                watermark = next_id
            next_id += 1
        return out, photos

    insert = ("INSERT INTO reports (id, case_code, receipt_hash, site_id, category, severity, location, description, "
              "language, status, created_hour) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
    for index in range(0, old, BATCH):
        batch, photos = rows(old_hours[index:index + BATCH], lambda: rng.choice(site_ids))
        with connection:
            connection.executemany(insert, batch)
            connection.executemany("INSERT INTO report_photos (report_id, position, file_id) VALUES (?, ?, ?)", photos)
    # Since the target mine's last digest: its `new` reports, mixed with other mines' reports.
    late = ([target] * new) + [rng.choice([site for site in site_ids if site != target]) for _ in range(late_others)]
    rng.shuffle(late)
    late_hours = sorted(span_hours + rng.randrange(1, 24) for _ in late)
    sites = iter(late)
    batch, photos = rows(late_hours, lambda: next(sites))
    with connection:
        connection.executemany(insert, batch)
        connection.executemany("INSERT INTO report_photos (report_id, position, file_id) VALUES (?, ?, ?)", photos)
        connection.execute("INSERT INTO digest_watermarks (site_id, last_report_id, last_digest_on) VALUES (?, ?, ?)",
                           (target, watermark, (NOW - timedelta(days=1)).date().isoformat()))
        connection.execute("INSERT INTO roles (user_id, role, site_id, display_name, granted_at) "
                           "VALUES (1001, 'committee', ?, 'Bench member', '2026-01-01')", (target,))
        connection.execute("INSERT INTO committee_chats (chat_id, site_id, title, language, bound_by) "
                           "VALUES (-1001001, ?, 'OSH committee', 'kk', 1001)", (target,))
    # No ANALYZE: the bot never runs it, so the planner works without statistics here too.
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return watermark, time.perf_counter() - started


async def prepare(path: Path) -> list[int]:
    db = await Database.open(path)
    try:
        await db.migrate()
        await seed_sites(SiteRepository(db))
        return [row[0] for row in await db.fetchall("SELECT id FROM sites ORDER BY id")]
    finally:
        await db.close()


async def measure(path: Path, target: int, runs: int) -> dict:
    db = await Database.open(path)
    try:
        await db.migrate()
        service = DigestService(db, build_i18n("ru"), lambda *a, **k: None)
        builder = service.builder

        async def build_once() -> tuple[float, object, list[str]]:
            started = time.perf_counter()
            content = await builder.collect(target, NOW, chart=False)
            parts = builder.render(content, "ru")
            return (time.perf_counter() - started) * 1000, content, parts

        await build_once()  # warm-up: page cache, site names, catalogs
        timings = []
        for _ in range(runs):
            elapsed, content, parts = await build_once()
            timings.append(elapsed)
        stored = (await db.fetchone("SELECT count(*) FROM reports"))[0]
        return {"timings": timings, "content": content, "parts": parts, "stored": stored}
    finally:
        await db.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=1_000_000)
    parser.add_argument("--new", type=int, default=500)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="minevoice-digest-") as folder:
        path = Path(folder) / "bench.sqlite3"
        site_ids = asyncio.run(prepare(path))
        target = site_ids[0]
        _, seconds = fill(path, args.reports, args.new, target, site_ids)
        size_mb = sum(file.stat().st_size for file in Path(folder).iterdir()) / 1e6
        result = asyncio.run(measure(path, target, args.runs))
    content, parts, timings = result["content"], result["parts"], result["timings"]
    print(f"database: {result['stored']:,} reports over {len(site_ids)} mines and two years, "
          f"{size_mb:.0f} MB, filled in {seconds:.1f} s")
    print(f"digest of mine {target}: {len(content.new)} new reports, {len(content.overdue)} overdue cases, "
          f"{sum(content.open_counts.values())} open; {len(parts)} messages, "
          f"longest {max(utf16_len(part) for part in parts)} UTF-16 units")
    median, worst = statistics.median(timings), max(timings)
    print(f"digest build: median {median:.1f} ms, max {worst:.1f} ms (target ≤ {TARGET_MS} ms)"
          + ("" if worst <= TARGET_MS else "  MISSED"))


if __name__ == "__main__":
    main()
