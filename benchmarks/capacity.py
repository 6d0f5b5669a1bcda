"""Capacity on a big database: the bot's memory with 100,000 subscribers and 1,000,000 reports
(target ≤ 120 MB), its cold start, and how big the database gets per 100,000 reports.

    .venv/bin/python -m benchmarks.capacity [--reports 1000000] [--subscribers 100000] [--quick]
                                            [--miners 120] [--starts 3] [--cache-dir DIR]
                                            [--bot-env KEY=VALUE ...]

1. A database is generated like one after three years of use: the schema comes from the app's own
   migrations (storage.db.Database) and seed, then plain sqlite3 `executemany` in one transaction
   fills subscribers, reports in kk/ru/en with photos, timelines, committees, past digests,
   announcements and a closed survey (old closed cases already cleared by retention, as the
   nightly job leaves them). It lives in a temporary folder for this run, or in --cache-dir
   (reused when it exists: delete it to make a new one).
2. The real bot (`python -m bot`, tests/e2e_support.BotProcess) runs on a copy against the fake
   Bot API. Read from /proc/PID/status: RSS at idle after start-up, then VmHWM (peak) after
   traffic: miners' /start, report flows with photos, /status with receipts, a committee member's
   /cases, case view, status change and /digest; then after /export and survey /results, which
   build spreadsheets and charts. A second copy starts with the day's digest due, so the start-up
   catch-up builds and delivers every committee's digest.
3. Cold start: spawn → first getUpdates at the fake server, and spawn → the reply to a /start sent
   before the bot was started, on an empty database and on the big one (page cache warm).
4. Size: the file (with -wal) per 100,000 reports, split by table and index with `dbstat`.
5. Where the memory goes: RSS of a fresh interpreter after each group of imports the bot makes.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import bisect
import json
import os
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.hazards import CATEGORIES  # noqa: E402
from bot.receipts import CASE_CODE_ALPHABET, hash_receipt, new_receipt  # noqa: E402
from bot.sites import seed_sites  # noqa: E402
from storage.db import Database  # noqa: E402
from storage.sites import SiteRepository  # noqa: E402
from tests.e2e_support import BotProcess, tr  # noqa: E402
from tests.fake_telegram import FakeTelegram  # noqa: E402
from tests.flows import choose_language, data_starts, plain, report, tap, until  # noqa: E402

TARGET_MB = 120
SCHEMA_TAG = "v1"  # bump when the generated content changes, so a --cache-dir copy is rebuilt
TZ = ZoneInfo("Asia/Almaty")
SPAN_DAYS = 3 * 365
LANGUAGE_WEIGHTS = {"ru": 55, "kk": 35, "en": 10}
CATEGORY_WEIGHTS = [14, 10, 12, 9, 6, 8, 10, 8, 4, 3, 7, 4, 3, 1, 1]
CLOSED = ("resolved", "not_confirmed")
OPEN = ("received", "acknowledged", "in_progress", "escalated_employer", "escalated_inspection")
RETENTION_DAYS = 365
COMMITTEE_SITES = 12
MEMBERS_PER_COMMITTEE = 2
FIRST_MEMBER = 5_000_000_000
ORGANIZER = 5_000_000_900
ADMIN = 5_000_000_999
KNOWN_RECEIPTS = 60
SURVEY_RESPONSES = 2_500
BATCH = 50_000

SENTENCES = {
    "ru": [
        "Датчик метана в лаве заклеен изолентой уже неделю, мастер знает.",
        "Вентилятор местного проветривания остановлен третьи сутки, в забое душно.",
        "Кровля в штреке нависает, крепь деформирована на участке метров двадцать.",
        "Ограждение конвейера у погрузочного пункта снято, люди ходят рядом с лентой.",
        "Орошение не работает, пыль такая, что видимость меньше пяти метров.",
        "Самоспасатели просрочены, новых на складе нет, говорят ждать до следующего месяца.",
        "Нас заставляют пропускать замер газа, чтобы выполнить план смены.",
        "Из старых выработок идёт вода, насосы работают всю смену без остановки.",
        "У подстанции повреждена изоляция кабеля, видели искры.",
        "Смены по 12 часов без выходных вторую неделю, люди засыпают на ходу.",
        "Тормоза на вагонетке не держат, машинист жаловался, никто не чинит.",
        "Аптечки на горизонте пустые, носилок нет.",
        "Проход к запасному выходу завален породой.",
        "Освещение на откаточном штреке не работает, ходим с одними коногонками.",
    ],
    "kk": [
        "Лавадағы метан датчигі бір аптадан бері оқшаулағыш таспамен жабылған.",
        "Жергілікті желдеткіш үш күннен бері тоқтап тұр, забойда ауа жетпейді.",
        "Штректегі төбе салбырап тұр, бекіткіш жиырма метрдей жерде майысқан.",
        "Тиеу пунктіндегі конвейер қоршауы алынып тасталған, адамдар таспаның жанынан өтеді.",
        "Шаңды басатын су бүріккіштер істемейді, бес метрден әрі ештеңе көрінбейді.",
        "Өзін-өзі құтқарғыштардың мерзімі өтіп кеткен, қоймада жаңасы жоқ.",
        "Ауысым жоспарын орындау үшін газ өлшеуді өткізіп жіберуге мәжбүрлейді.",
        "Ескі қазбалардан су ағып жатыр, сорғылар ауысым бойы тоқтаусыз жұмыс істейді.",
        "Қосалқы станция жанында кабельдің оқшаулауы зақымданған, ұшқын көрдік.",
        "Жаяу жүретін жолда жарық жоқ, вагонеткалар жақын өтеді.",
        "Апаттық шығуға баратын жол жыныспен бітеліп қалған.",
        "Екі аптадан бері демалыссыз 12 сағаттық ауысым, адамдар шаршап жүр.",
    ],
    "en": [
        "Methane detector at the face has been taped over for a week and the foreman knows.",
        "Conveyor belt guard removed near the loading point, nobody fixed it.",
        "Roof bolts missing on a 20 m stretch after the last advance.",
        "Dust suppression sprays do not work, visibility under five metres.",
        "Self-rescuers expired, the store says there are no new ones until next month.",
        "We were told to skip the gas check to make the shift plan.",
        "Water coming in from the old workings, pumps run all shift.",
        "Cable insulation damaged near the substation, sparks seen.",
        "Twelve-hour shifts without a day off for the second week.",
        "Brakes on the man-rider do not hold, the driver reported it twice.",
        "Escape route blocked by fallen rock near the second crosscut.",
        "No lighting on the haulage drift, only cap lamps.",
    ],
}
LOCATIONS = ["Участок 5, горизонт −450", "Лава 12-бис", "Штрек 4, у сбойки", "Конвейер №2, привод",
             "Panel 12, tailgate", "Crusher house", "Quarry bench 3", "Ұңғыма 7, жоғарғы горизонт",
             "Обогатительная фабрика, флотация", "Ремонтный цех", "Скиповой ствол"]
NOTES = ["Спасибо, передали главному инженеру, проверка в четверг.",
         "Рахмет, бас инженерге жеткіздік.", "Thank you, raised with the shift manager; we will check on Monday.",
         "Уточните, пожалуйста, номер лавы и смену.", "Акт составлен, копия в инспекции."]
NAMES = ["Болат Сейткали", "Айгерим Нурланова", "Сергей Ким", "Dana Abenova", "Ерлан Жаксылыков", "Ольга Петренко"]


def hour_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:00Z")


def exact_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def case_code(number: int) -> str:
    symbols = []
    for _ in range(5):
        number, digit = divmod(number, len(CASE_CODE_ALPHABET))
        symbols.append(CASE_CODE_ALPHABET[digit])
    return "MV-" + "".join(symbols)


def description(rng: random.Random, language: str) -> str:
    """100–400 characters, most around 170: a few sentences a miner would type."""
    target = int(rng.triangular(100, 400, 170))
    text = rng.choice(SENTENCES[language])
    while len(text) < target:
        text += " " + rng.choice(SENTENCES[language])
    return text[:400].rsplit(" ", 1)[0] if len(text) > 400 else text


def status_for(age_days: float, rng: random.Random) -> str:
    """Mostly closed when old; a committee's backlog is small but never empty."""
    closed_share = 0.997 if age_days > 60 else 0.8 if age_days > 14 else 0.35
    return rng.choice(CLOSED) if rng.random() < closed_share else rng.choice(OPEN)


PATHS = {  # the status changes a case went through, after 'received'
    "received": (),
    "acknowledged": ("acknowledged",),
    "in_progress": ("acknowledged", "in_progress"),
    "escalated_employer": ("acknowledged", "escalated_employer"),
    "escalated_inspection": ("acknowledged", "escalated_employer", "escalated_inspection"),
    "resolved": ("acknowledged", "in_progress", "resolved"),
    "not_confirmed": ("acknowledged", "not_confirmed"),
}


@dataclass
class Built:
    path: Path
    reports: int
    subscribers: int
    seconds: float
    committee_sites: list[int]
    members: dict[int, list[int]]  # site id → member user ids
    member_languages: dict[int, str]
    known: list[tuple[str, str]]  # (case code, receipt) of old reports whose receipt a miner kept
    subscribers_sample: list[tuple[int, str]]  # (user id, language) of some subscribed miners
    committee_site: int  # the one the traffic's committee member works for (first of karaganda-coal)
    survey_id: int
    rows: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> str:
        data = dict(vars(self), path=str(self.path))
        data["members"] = {str(k): v for k, v in self.members.items()}
        data["member_languages"] = {str(k): v for k, v in self.member_languages.items()}
        return json.dumps(data)

    @classmethod
    def from_json(cls, text: str) -> Built:
        data = json.loads(text)
        data["path"] = Path(data["path"])
        data["members"] = {int(k): v for k, v in data["members"].items()}
        data["member_languages"] = {int(k): v for k, v in data["member_languages"].items()}
        data["known"] = [tuple(pair) for pair in data["known"]]
        data["subscribers_sample"] = [tuple(pair) for pair in data["subscribers_sample"]]
        return cls(**data)


async def create_schema(path: Path) -> list[tuple[int, str, str]]:
    """The app's own migrations and seed; returns (site id, site code, region code)."""
    db = await Database.open(path)
    try:
        await db.migrate()
        await seed_sites(SiteRepository(db))
        rows = await db.fetchall("SELECT id, code, region_code FROM sites ORDER BY id")
        return [(row[0], row[1], row[2]) for row in rows]
    finally:
        await db.close()


def build_database(path: Path, total: int, subscribers: int, seed: int = 2026) -> Built:
    started = time.perf_counter()
    sites = asyncio.run(create_schema(path))
    rng = random.Random(seed)
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    start = now - timedelta(days=SPAN_DAYS)
    span_hours = SPAN_DAYS * 24
    site_ids = [site_id for site_id, _, _ in sites]
    # Big mines report far more than small ones.
    site_weights = [rng.choice((1, 2, 3, 5, 8, 13)) for _ in site_ids]
    committee_site = next(site_id for site_id, _, region in sites if region == "karaganda-coal")
    by_weight = sorted(site_ids, key=lambda s: -site_weights[site_ids.index(s)])
    committee_sites = [committee_site] + [s for s in by_weight if s != committee_site][:COMMITTEE_SITES - 1]
    site_weights[site_ids.index(committee_site)] = 13
    languages, language_weights = list(LANGUAGE_WEIGHTS), list(LANGUAGE_WEIGHTS.values())
    categories = list(CATEGORIES)
    pool = {language: [description(rng, language) for _ in range(8000)] for language in languages}

    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode = OFF")  # the fill only; the file is switched to WAL below
    connection.execute("PRAGMA synchronous = OFF")
    connection.execute("PRAGMA cache_size = -400000")
    rows: dict[str, int] = {}

    def insert(table: str, columns: str, values: list[tuple]) -> None:
        if values:
            connection.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({','.join('?' * (columns.count(',') + 1))})", values)
            rows[table] = rows.get(table, 0) + len(values)

    connection.execute("BEGIN")
    # --- people ---------------------------------------------------------------------------------
    members: dict[int, list[int]] = {}
    member_languages: dict[int, str] = {}
    next_member = FIRST_MEMBER
    for site_id in committee_sites:
        members[site_id] = []
        for _ in range(MEMBERS_PER_COMMITTEE):
            members[site_id].append(next_member)
            member_languages[next_member] = rng.choices(languages, language_weights)[0]
            next_member += 1
    staff = {uid: member_languages[uid] for uid in member_languages} | {ORGANIZER: "ru", ADMIN: "ru"}
    miner_ids = rng.sample(range(100_000_000, 8_000_000_000), subscribers - len(staff))
    users = [(uid, rng.choices(languages, language_weights)[0], int(rng.random() < 0.92),
              int(rng.random() < 0.95), rng.choices(site_ids, site_weights)[0] if rng.random() < 0.6 else None)
             for uid in miner_ids]
    users += [(uid, language, 1, 1, None) for uid, language in staff.items()]
    insert("users", "user_id, language, subscribed, reachable, site_id", users)
    subscribers_sample = [(uid, language) for uid, language, subscribed, reachable, _ in users[:5000]
                          if subscribed and reachable][:2000]
    del users, miner_ids
    granted = exact_text(now - timedelta(days=700))
    insert("roles", "user_id, role, site_id, display_name, granted_at",
           [(uid, "committee", site_id, rng.choice(NAMES), granted)
            for site_id, uids in members.items() for uid in uids]
           + [(ORGANIZER, "organizer", None, "Union organizer", granted)])

    # --- reports, photos, timelines -------------------------------------------------------------
    # More reports lately than at first (the bot spread): density grows linearly over the span.
    offsets = sorted(int(span_hours * rng.random() ** 0.5) for _ in range(total))
    codes = rng.sample(range(len(CASE_CODE_ALPHABET) ** 5), total)
    known_ids = set(rng.sample(range(max(1, total - total // 40), total + 1), min(KNOWN_RECEIPTS, total)))
    known: list[tuple[str, str]] = []
    retention_cutoff = hour_text(now - timedelta(days=RETENTION_DAYS))
    marker = f"[removed after {RETENTION_DAYS} days]"
    actors = [uid for uids in members.values() for uid in uids]
    hour_texts: dict[int, str] = {}
    report_columns = ("id, case_code, receipt_hash, site_id, category, severity, location, description, language, "
                      "status, created_hour")
    event_columns = "report_id, status, at_hour, note, kind, actor_user_id, actor_name, at"
    for first in range(0, total, BATCH):
        reports, photos, events, alerts = [], [], [], []
        chunk = offsets[first:first + BATCH]
        drawn_sites = rng.choices(site_ids, site_weights, k=len(chunk))
        drawn_categories = rng.choices(categories, CATEGORY_WEIGHTS, k=len(chunk))
        drawn_languages = rng.choices(languages, language_weights, k=len(chunk))
        for index, offset in enumerate(chunk):
            report_id = first + index + 1
            if offset not in hour_texts:
                hour_texts[offset] = hour_text(start + timedelta(hours=offset))
            created = start + timedelta(hours=offset)
            age_days = (span_hours - offset) / 24
            status = status_for(age_days, rng)
            severity = rng.choices(("danger", "serious", "attention"), (8, 42, 50))[0]
            language = drawn_languages[index]
            location = rng.choice(LOCATIONS) if rng.random() < 0.6 else None
            text = rng.choice(pool[language])
            if report_id in known_ids and status not in CLOSED:
                receipt = new_receipt()
                receipt_hash = hash_receipt(receipt)
                known.append((case_code(codes[report_id - 1]), receipt))
            else:
                receipt_hash = f"scrypt$4096$8$1${b64(rng.randbytes(16))}${b64(rng.randbytes(32))}"
            timeline = [(report_id, "received", hour_texts[offset], None, "status", None, None, None)]
            moment, last_change = created, hour_texts[offset]
            for step, step_status in enumerate(PATHS[status]):
                moment = min(now, moment + timedelta(hours=rng.uniform(1, 30) if step == 0 else rng.uniform(5, 240)))
                actor = rng.choice(actors)
                last_change = hour_text(moment)
                timeline.append((report_id, step_status, last_change, None, "status", actor, rng.choice(NAMES),
                                 exact_text(moment)))
                if rng.random() < 0.05:
                    timeline.append((report_id, step_status, last_change, rng.choice(NOTES), "note", actor,
                                     rng.choice(NAMES), exact_text(moment)))
                if rng.random() < 0.02:
                    timeline.append((report_id, step_status, last_change, description(rng, language)[:200],
                                     "reporter_message", None, None, None))
            purged = status in CLOSED and last_change < retention_cutoff
            if purged:
                text, location = marker, (marker if location else None)
                timeline = [event if event[3] is None else (*event[:3], marker, *event[4:]) for event in timeline]
            elif rng.random() < 0.18:
                count = rng.choices((1, 2, 3, 4, 5), (50, 25, 13, 7, 5))[0]
                photos += [(report_id, position, "AgACAgIAAxkBAA" + base64.urlsafe_b64encode(rng.randbytes(54)).decode())
                           for position in range(count)]
            if severity == "danger" and status == "received" and age_days < 2:
                alerts.append((report_id, "sent"))
            reports.append((report_id, case_code(codes[report_id - 1]), receipt_hash, drawn_sites[index],
                            drawn_categories[index], severity, location, text, language, status, hour_texts[offset]))
            events += timeline
        insert("reports", report_columns, reports)
        insert("report_photos", "report_id, position, file_id", photos)
        insert("report_events", event_columns, events)
        insert("danger_alerts", "report_id, state", alerts)

    # --- digests: one a day per committee and language since it started, delivered --------------
    local_now = now.astimezone(TZ)
    yesterday = local_now.date() - timedelta(days=1)
    day_ends = []  # (day, the last report id before that day's 08:00)
    for back in range(700, 0, -1):
        day = local_now.date() - timedelta(days=back)
        cut = datetime.combine(day, datetime.min.time(), TZ).replace(hour=8)
        hours = int((cut.astimezone(UTC) - start).total_seconds() // 3600)
        day_ends.append((day, bisect.bisect_left(offsets, hours)))
    digests, deliveries, digest_id = [], [], 0
    for site_id in committee_sites:
        site_languages = sorted({member_languages[uid] for uid in members[site_id]})
        previous = 0
        for day, last_id in day_ends[-rng.randint(200, 700):]:
            for language in site_languages:
                digest_id += 1
                digests.append((digest_id, site_id, day.isoformat(), previous, last_id, language, "[]", "delivered"))
                parts = rng.randint(1, 3)
                deliveries += [(digest_id, uid, part) for uid in members[site_id]
                               if member_languages[uid] == language for part in range(parts)]
            previous = last_id
    insert("digests", "id, site_id, digest_on, from_report_id, to_report_id, language, parts, state", digests)
    insert("digest_deliveries", "digest_id, chat_id, part", deliveries)
    insert("digest_watermarks", "site_id, last_report_id, last_digest_on",
           [(site_id, day_ends[-1][1], yesterday.isoformat()) for site_id in committee_sites])

    # --- announcements and a closed survey --------------------------------------------------------
    campaigns = []
    for number in range(1, 61):
        sent = now - timedelta(days=SPAN_DAYS * (61 - number) / 61)
        contents = {language: {"text": " ".join(rng.choice(SENTENCES[language]) for _ in range(3)), "entities": []}
                    for language in ("kk", "ru")}
        contents["fallback"] = {"text": " ".join(rng.choice(SENTENCES["en"]) for _ in range(3)), "entities": []}
        delivered = int(subscribers * rng.uniform(0.6, 0.9))
        campaigns.append((number, ORGANIZER, "done", json.dumps({"sites": None, "languages": None}),
                          json.dumps(contents, ensure_ascii=False), exact_text(sent), exact_text(sent), delivered,
                          delivered, subscribers // 40, subscribers // 200))
    insert("campaigns", "id, created_by, state, audience, contents, send_at, created_at, total, delivered, blocked, "
                        "failed", campaigns)
    opened = now - timedelta(days=40)
    survey_id = 1
    insert("surveys", "id, instrument, created_by, audience, opens_at, closes_at, state, secret, campaign_id, created_at",
           [(survey_id, "who5", ORGANIZER, json.dumps({"sites": None, "languages": None}), exact_text(opened),
             exact_text(opened + timedelta(days=14)), "closed", None, 60, exact_text(opened))])
    options = ["all", "most", "more_than_half", "less_than_half", "some", "none"]
    insert("survey_responses", "survey_id, id, site_id, work_area, answers",
           [(survey_id, rng.randbytes(16), rng.choices(site_ids, site_weights)[0],
             rng.choice(("underground", "surface")),
             json.dumps({str(item): (None if rng.random() < 0.03 else rng.choice(options)) for item in range(1, 6)},
                        sort_keys=True, separators=(",", ":")))
            for _ in range(SURVEY_RESPONSES)])
    connection.execute("COMMIT")
    connection.execute("PRAGMA journal_mode = WAL")  # as the bot keeps it
    connection.close()
    return Built(path, total, subscribers, time.perf_counter() - started, committee_sites, members, member_languages,
                 known, subscribers_sample, committee_site, survey_id, rows)


def cached_database(folder: Path, total: int, subscribers: int) -> tuple[Built, bool]:
    path = folder / f"capacity-{total}-{subscribers}-{SCHEMA_TAG}.sqlite3"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return Built.from_json(meta.read_text()), True
    for stale in (path, meta, Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    built = build_database(path, total, subscribers)
    meta.write_text(built.to_json())
    return built, False


# --- size ----------------------------------------------------------------------------------------

REPORT_TABLES = {"reports", "report_photos", "report_events", "danger_alerts"}


def database_sizes(path: Path) -> dict:
    files = sum(Path(f"{path}{suffix}").stat().st_size for suffix in ("", "-wal")
                if Path(f"{path}{suffix}").exists())
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        owners = dict(connection.execute("SELECT name, tbl_name FROM sqlite_schema WHERE type IN ('table', 'index')"))
        kinds = dict(connection.execute("SELECT name, type FROM sqlite_schema"))
        try:
            usage = connection.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.OperationalError:
            usage = None
        free = connection.execute("PRAGMA freelist_count").fetchone()[0] * connection.execute("PRAGMA page_size").fetchone()[0]
        counts = {table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                  for table in ("reports", "report_photos", "report_events", "users")}
    finally:
        connection.close()
    result = {"files": files, "free": free, "counts": counts, "by_name": None}
    if usage is not None:
        # A WITHOUT ROWID table is its own primary-key b-tree, under the table's name: data.
        by_name = {name: (owners.get(name, name), "index" if kinds.get(name) == "index" else "data", size)
                   for name, size in usage}
        result["by_name"] = by_name
    return result


# --- the bot process -----------------------------------------------------------------------------

def proc_status(pid: int) -> dict[str, float]:
    """VmRSS, VmHWM, RssAnon, RssFile in MB from /proc/PID/status."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile", "RssShmem"):
            values[key] = int(rest.split()[0]) / 1024
        elif key == "Threads":
            values[key] = int(rest)
    return values


def children_status(pid: int) -> dict[str, dict[str, float]]:
    """`proc_status` of each child process of `pid` (the file worker and multiprocessing's resource
    tracker), by what it runs; empty when there is none."""
    found = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                kind = "resource tracker" if "resource_tracker" in command else "file worker"
                found[kind] = proc_status(int(child))
            except (FileNotFoundError, ProcessLookupError):
                continue  # ended meanwhile
    return found


EXTRA_ENV: dict[str, str] = {}  # --bot-env: e.g. allocator settings to compare


def environment(**extra: str) -> dict[str, str]:
    return {"REPORTS_PER_HOUR": "1000000", "LOG_LEVEL": "WARNING", "ADMIN_IDS": str(ADMIN),
            "DIGEST_TIME": not_due_digest_time()} | EXTRA_ENV | extra


def not_due_digest_time() -> str:
    """A DIGEST_TIME that has not come yet today in Asia/Almaty, so no digest is built at start-up
    (in the minute 23:59 itself this waits for midnight)."""
    while (local := datetime.now(TZ)).hour == 23 and local.minute == 59:
        time.sleep(1)
    return "23:59"


def add_staff(tg: FakeTelegram, built: Built | None) -> None:
    """Committee members, the organizer and the admin exist on Telegram and have started the bot."""
    tg.user(ADMIN, "Admin", language_code="ru", started=True)
    tg.user(ORGANIZER, "Organizer", language_code="ru", started=True)
    if built is not None:
        for uid, language in built.member_languages.items():
            tg.user(uid, "Member", last_name=str(uid), language_code=language, started=True)


def place_database(source: Path | None, workdir: Path) -> None:
    target = workdir / "data" / "minevoice.sqlite3"
    target.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        shutil.copyfile(source, target)


@dataclass
class StartResult:
    first_call: float
    first_poll: float
    first_reply: float
    status: dict


async def start_and_time(tg: FakeTelegram, bot: BotProcess, early) -> StartResult:
    """Spawn the bot with `early`'s /start already queued; time its first request, its first
    getUpdates and its reply to that /start, all from the spawn."""
    await early.send("/start")
    spawned = time.monotonic()
    await bot.start(timeout=300)
    await early.next_message(timeout=120)
    record = next(r for r in tg.update_log if r.chat_id == early.id and r.first_reply_at is not None)
    return StartResult(tg.calls[0].time - spawned, tg.calls_to("getUpdates")[0].time - spawned,
                       record.first_reply_at - spawned, {})


async def cold_start(workdir: Path, built: Built | None, **env: str) -> StartResult:
    async with FakeTelegram() as tg:
        add_staff(tg, built)
        early_id, language = built.subscribers_sample[-1] if built else (7_000_000_001, "ru")
        early = tg.user(early_id, "Early", language_code=language)
        bot = BotProcess(tg, workdir, **environment(**env))
        try:
            result = await start_and_time(tg, bot, early)
            await tg.wait_idle(quiet=1.0, timeout=60)
            result.status = proc_status(bot.process.pid)
        finally:
            await bot.stop()
        return result


# --- traffic -------------------------------------------------------------------------------------

REGIONS = ("karaganda-coal", "ekibastuz-coal", "aktobe-ore", "ulytau-copper", "east-kz-polymetal", "kostanay-iron")


async def limited(limit: asyncio.Semaphore, coroutine) -> object:
    async with limit:
        return await coroutine


async def status_check(user, code: str, receipt: str) -> None:
    await user.send(f"/status {code} {receipt}")
    card = await user.next_message(timeout=60)
    assert code in (card.get("text") or ""), card.get("text")


async def new_miner(tg: FakeTelegram, uid: int, index: int) -> None:
    language = ("ru", "kk", "en")[index % 3]
    user = tg.user(uid, f"Miner{index}", language_code=language)
    await choose_language(user, language)
    rng = random.Random(uid)
    receipt = await report(user, language, region=REGIONS[index % len(REGIONS)],
                           category=rng.choice(list(CATEGORIES)),
                           severity=("danger", "serious", "attention", "serious")[index % 4],
                           location=rng.choice(LOCATIONS) if index % 3 else None,
                           description=description(rng, language), album=(0, 0, 1, 3)[index % 4])
    await status_check(user, receipt.case_code, receipt.receipt)


async def subscriber(tg: FakeTelegram, uid: int, language: str, index: int, known: list[tuple[str, str]]) -> None:
    user = tg.user(uid, f"Subscriber{index}", language_code=language)
    await user.send("/start")
    await user.next_message(timeout=60)
    if index % 3 == 0:
        rng = random.Random(uid)
        await report(user, language, region=REGIONS[index % len(REGIONS)], category=rng.choice(list(CATEGORIES)),
                     severity=("serious", "attention")[index % 2], description=description(rng, language))
    elif known:
        await status_check(user, *known[index % len(known)])


async def next_with(user, predicate, timeout: float = 60.0) -> dict:
    """The next bot message in this chat that `predicate` accepts (danger alerts may come between)."""
    while True:
        message = await user.next_message(timeout=timeout)
        if predicate(message):
            return message


def has_button(prefix: str):
    def check(message: dict) -> bool:
        rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        return any((button.get("callback_data") or "").startswith(prefix) for row in rows for button in row)
    return check


async def committee_work(tg: FakeTelegram, built: Built) -> None:
    uid = built.members[built.committee_site][0]
    language = built.member_languages[uid]
    member = tg.user(uid, "Member")
    member.skip_pending()
    await member.send("/cases")
    page = await next_with(member, has_button("cases:"))
    for data in ("cases:open:1", "cases:all:0", "cases:closed:0", "cases:open:0"):
        await tap(member, data_starts(data), message=page)
    await tap(member, data_starts("case:view:"), message=page)
    history = plain(tr(language, "<b>History</b>"))
    card = [m for m in member.bot_messages() if history in (m.get("text") or "") and has_button("case:status:")(m)][-1]
    await tap(member, data_starts("case:status:"), message=card)  # acknowledge
    await member.send("/digest")
    await member.collect(quiet=1.0, timeout=60)


async def committee_extras(tg: FakeTelegram, built: Built, days: int) -> tuple[int, int]:
    """/export of `days`: the documents sent and the number of cases the caption gives."""
    uid = built.members[built.committee_site][0]
    member = tg.user(uid, "Member")
    before = len(tg.calls_to("sendDocument", chat_id=uid))
    await member.send("/export")
    await next_with(member, has_button(f"exp:{days}"))
    await member.callback_answer(await member.press(data_starts(f"exp:{days}")), timeout=600)
    calls = tg.calls_to("sendDocument", chat_id=uid)[before:]
    caption = next((call.params.get("caption") for call in calls if call.params.get("caption")), "")
    found = re.search(r"(\d+)\D*$", caption or "")
    return len(calls), int(found.group(1)) if found else -1


async def survey_results(tg: FakeTelegram, built: Built) -> bool:
    uid = built.members[built.committee_site][0]
    member = tg.user(uid, "Member")
    await member.send("/results")
    await next_with(member, has_button("res:show:"))
    query = await member.press(data_starts(f"res:show:{built.survey_id}"))
    await member.callback_answer(query, timeout=600)
    return bool(tg.calls_to("sendPhoto", chat_id=uid)) and bool(tg.calls_to("sendDocument", chat_id=uid))


async def traffic_run(built: Built, workdir: Path, miners: int) -> dict:
    place_database(built.path, workdir)
    out: dict = {}
    async with FakeTelegram() as tg:
        add_staff(tg, built)
        bot = BotProcess(tg, workdir, **environment())
        early_id, language = built.subscribers_sample[-2]
        early = tg.user(early_id, "Early", language_code=language)
        try:
            out["start"] = await start_and_time(tg, bot, early)
            pid = bot.process.pid
            await tg.wait_idle(quiet=2.0, timeout=120)
            out["idle"] = proc_status(pid)

            started = time.monotonic()
            limit = asyncio.Semaphore(40)
            newcomers = miners // 2
            regulars = miners - newcomers
            jobs = [limited(limit, new_miner(tg, 7_100_000_000 + i, i)) for i in range(newcomers)]
            jobs += [limited(limit, subscriber(tg, uid, language, i, built.known))
                     for i, (uid, language) in enumerate(built.subscribers_sample[:regulars])]
            jobs.append(committee_work(tg, built))
            await asyncio.gather(*jobs)
            await tg.wait_idle(quiet=2.0, timeout=120)
            out["traffic_seconds"] = time.monotonic() - started
            out["updates"] = len(tg.update_log)
            out["after_traffic"] = proc_status(pid)

            out["export_30"] = await committee_extras(tg, built, 30)
            await tg.wait_idle(quiet=1.0, timeout=120)
            out["after_export_30"] = proc_status(pid)
            out["children_export_30"] = children_status(pid)
            out["export_365"] = await committee_extras(tg, built, 365)
            await tg.wait_idle(quiet=1.0, timeout=120)
            out["after_export_365"] = proc_status(pid)
            out["children_export_365"] = children_status(pid)
            out["results_ok"] = await survey_results(tg, built)
            await tg.wait_idle(quiet=1.0, timeout=120)
            out["after_results"] = proc_status(pid)
            out["children_results"] = children_status(pid)
        finally:
            await bot.stop()
        out["errors"] = [str(error) for error in tg.errors]
        return out


async def digest_run(built: Built, workdir: Path) -> dict:
    """Start-up with today's digest due (DIGEST_TIME=00:00): the bot polls at once and builds and
    delivers every committee's digest alongside."""
    place_database(built.path, workdir)
    async with FakeTelegram() as tg:
        add_staff(tg, built)
        bot = BotProcess(tg, workdir, **environment(DIGEST_TIME="00:00"))
        early_id, language = built.subscribers_sample[-3]
        early = tg.user(early_id, "Early", language_code=language)
        try:
            start = await start_and_time(tg, bot, early)
            members = set(built.member_languages)
            # Building a year's digests takes seconds without a Bot API call: wait for the first
            # digest message before waiting for quiet.
            await until(lambda: any(call.chat_id in members for call in tg.calls_to("sendMessage")), timeout=300)
            await tg.wait_idle(quiet=2.0, timeout=300)
            status = start.status = proc_status(bot.process.pid)
        finally:
            await bot.stop()
        members = set(built.member_languages)
        messages = [call for call in tg.calls if call.method.lower() in ("sendmessage", "sendphoto")
                    and call.chat_id in members]
        charts = sum(1 for call in messages if call.method.lower() == "sendphoto")
        return {"start": start, "status": status, "messages": len(messages), "charts": charts,
                "errors": [str(error) for error in tg.errors]}


# --- where the memory goes -----------------------------------------------------------------------

IMPORT_PROBE = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1]) / 1024
steps = [
    ("Python itself", []),
    ("pydantic, pydantic-settings (bot.config)", ["bot.config", "bot.logs"]),
    ("aiohttp", ["aiohttp"]),
    ("aiogram (all Bot API types and methods)", ["aiogram", "aiogram.types", "aiogram.methods"]),
    ("aiosqlite, APScheduler, Babel", ["aiosqlite", "apscheduler.schedulers.asyncio", "babel.dates"]),
    ("MineVoice modules bot.app imports", ["handlers", "bot.access", "bot.announcements", "bot.broadcasts",
        "bot.cases", "bot.commands", "bot.digests", "bot.exports", "bot.i18n", "bot.middlewares", "bot.notify",
        "bot.reports", "bot.scheduler", "bot.sites", "bot.surveys", "storage.fsm", "aiogram.fsm.storage.memory",
        "aiogram.utils.callback_answer"]),
    ("bot.app itself (with _pin_response_models)", ["bot.app"]),
    ("bot.webhook (imported in polling mode too)", ["bot.webhook"]),
]
out = []
for label, modules in steps:
    began = time.perf_counter()
    for name in modules:
        __import__(name)
    out.append([label, rss(), time.perf_counter() - began])
heavy = ("numpy", "matplotlib", "PIL", "openpyxl")
loaded = [name for name in heavy if name in sys.modules]
for label, modules in [("matplotlib + numpy (first chart)", ["matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"]),
                       ("openpyxl (first workbook)", ["openpyxl"])]:
    began = time.perf_counter()
    for name in modules:
        __import__(name)
    out.append([label, rss(), time.perf_counter() - began])
print(json.dumps({"steps": out, "loaded_at_start": loaded}))
"""


def import_breakdown() -> dict:
    done = subprocess.run([sys.executable, "-c", IMPORT_PROBE, str(ROOT)], capture_output=True, text=True,
                          check=False, timeout=300, cwd=ROOT, env={"PATH": os.environ.get("PATH", "")})
    if done.returncode:
        raise RuntimeError(done.stderr)
    return json.loads(done.stdout)


# --- printing ------------------------------------------------------------------------------------

def mb(value: float) -> str:
    return f"{value:6.1f} MB"


def show_status(label: str, status: dict) -> None:
    print(f"  {label:44} RSS {mb(status['VmRSS'])}  peak (VmHWM) {mb(status['VmHWM'])}  "
          f"anon {mb(status['RssAnon'])}  file {mb(status['RssFile'])}  threads {status['Threads']:.0f}")


def show_sizes(sizes: dict, reports: int) -> None:
    per = 100_000 / max(1, reports)
    print(f"database size: {sizes['files'] / 1e6:.1f} MB (file + -wal) for {reports:,} reports, "
          f"{sizes['counts']['report_events']:,} timeline rows, {sizes['counts']['report_photos']:,} photo ids, "
          f"{sizes['counts']['users']:,} users; free pages {sizes['free'] / 1e6:.1f} MB")
    by_name = sizes["by_name"]
    if by_name is None:
        print(f"  per 100,000 reports: {sizes['files'] * per / 1e6:.1f} MB (whole file; dbstat unavailable, "
              "no split into data and indexes)")
        return
    report_data = sum(size for table, kind, size in by_name.values() if table in REPORT_TABLES and kind == "data")
    report_index = sum(size for table, kind, size in by_name.values() if table in REPORT_TABLES and kind == "index")
    print(f"  per 100,000 reports: {sizes['files'] * per / 1e6:.1f} MB of the whole file; of it the reports with "
          f"their photos, timelines and alerts {(report_data + report_index) * per / 1e6:.1f} MB = data "
          f"{report_data * per / 1e6:.1f} MB + indexes {report_index * per / 1e6:.1f} MB")
    tables: dict[str, list[int]] = {}
    for table, kind, size in by_name.values():
        entry = tables.setdefault(table, [0, 0])
        entry[kind == "index"] += size
    for table, (data, index) in sorted(tables.items(), key=lambda item: -sum(item[1]))[:9]:
        print(f"    {table:22} data {data / 1e6:8.1f} MB   indexes {index / 1e6:8.1f} MB")
    indexes = sorted(((size, name) for name, (table, kind, size) in by_name.items()
                      if kind == "index" and table in REPORT_TABLES), reverse=True)
    print("    report indexes: " + ", ".join(f"{name} {size / 1e6:.1f} MB" for size, name in indexes))


def show_starts(label: str, starts: list[StartResult]) -> None:
    def summary(values: list[float]) -> str:
        return f"median {statistics.median(values):5.2f} s (" + ", ".join(f"{v:.2f}" for v in values) + ")"

    print(f"  {label}:")
    print(f"    spawn → first Bot API request  {summary([s.first_call for s in starts])}")
    print(f"    spawn → first getUpdates       {summary([s.first_poll for s in starts])}")
    print(f"    spawn → reply to a queued /start {summary([s.first_reply for s in starts])}")
    print("    idle RSS after start-up        " + ", ".join(f"{s.status['VmRSS']:.1f}" for s in starts)
          + f" MB; peak {max(s.status['VmHWM'] for s in starts):.1f} MB")


def run(args: argparse.Namespace, folder: Path) -> None:
    print(f"capacity benchmark: {args.reports:,} reports, {args.subscribers:,} subscribers, {os.cpu_count()} cores, "
          f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}"
          + (f", bot environment {' '.join(args.bot_env)}" if args.bot_env else ""))
    began = time.perf_counter()
    built, reused = cached_database(folder, args.reports, args.subscribers)
    asyncio.run(measure(args, folder, built, reused, began))


async def measure(args: argparse.Namespace, folder: Path, built: Built, reused: bool, began: float) -> None:
    print(f"database {'reused from ' + str(built.path) if reused else 'generated'} "
          f"({built.seconds:.1f} s to generate; " + ", ".join(f"{table} {count:,}" for table, count in built.rows.items())
          + ")")
    sizes = database_sizes(built.path)
    show_sizes(sizes, built.reports)

    breakdown = import_breakdown()
    print("memory by import, fresh interpreter (VmRSS after each step):")
    previous = 0.0
    for label, rss, seconds in breakdown["steps"]:
        print(f"  {label:48} {mb(rss)}  +{rss - previous:6.1f} MB  {seconds:5.2f} s")
        previous = rss
    print("  heavy libraries loaded at start-up: " + (", ".join(breakdown["loaded_at_start"]) or "none")
          + " (the last two steps are what the file worker process, not the bot, adds for a chart / a workbook)")

    print("cold start (page cache warm; median of runs):")
    empty = []
    for attempt in range(args.starts):
        with tempfile.TemporaryDirectory(prefix="minevoice-capacity-empty-") as tmp:
            place_database(None, Path(tmp))
            empty.append(await cold_start(Path(tmp), None))
    show_starts("empty database", empty)
    with tempfile.TemporaryDirectory(prefix="minevoice-capacity-run-", dir=folder) as tmp:
        workdir = Path(tmp)
        place_database(built.path, workdir)
        big = [await cold_start(workdir, built) for _ in range(args.starts)]
        show_starts(f"{built.reports:,} reports, {built.subscribers:,} subscribers, nothing due", big)
        shutil.rmtree(workdir / "data")
        digest = await digest_run(built, workdir)
        show_starts("same, with today's digests due (built and sent while the bot serves)", [digest["start"]])
        print(f"    digests: {digest['messages']} messages to {len(built.member_languages)} members of "
              f"{len(built.committee_sites)} committees, {digest['charts']} weekly charts (Mondays only)")
        show_status("after start-up with the digests", digest["status"])
        shutil.rmtree(workdir / "data")
        traffic = await traffic_run(built, workdir, args.miners)

    print(f"memory of the bot process on {built.reports:,} reports and {built.subscribers:,} subscribers "
          f"(target ≤ {TARGET_MB} MB):")
    show_status("idle after start-up", traffic["idle"])
    show_status(f"after traffic ({traffic['updates']} updates, {traffic['traffic_seconds']:.0f} s)",
                traffic["after_traffic"])
    show_status(f"after /export of 30 days ({traffic['export_30'][1]:,} cases)", traffic["after_export_30"])
    show_status(f"after /export of a year ({traffic['export_365'][1]:,} cases)", traffic["after_export_365"])
    show_status("after survey /results (chart + workbook)", traffic["after_results"])
    print("  child processes, which end a minute after their last chart or workbook (bot/file_worker.py):")
    for step in ("export_30", "export_365", "results"):
        for kind, status in traffic[f"children_{step}"].items():
            show_status(f"  {kind}, after {step.replace('_', ' ')}", status)
    print(f"  traffic: {args.miners // 2} new miners (language, report with 0–3 photos, /status), "
          f"{args.miners - args.miners // 2} subscribers (/start, every third a report, the others /status of an "
          "old case), one committee member (/cases pages and filters, case view, acknowledge, /digest)")
    idle, peak = traffic["idle"]["VmRSS"], traffic["after_traffic"]["VmHWM"]
    peak_all = traffic["after_results"]["VmHWM"]
    print(f"ratio idle RSS / target: {idle / TARGET_MB:.2f} ({idle:.1f} / {TARGET_MB} MB)"
          + ("" if idle <= TARGET_MB else "  OVER"))
    print(f"ratio peak RSS after traffic / target: {peak / TARGET_MB:.2f} ({peak:.1f} / {TARGET_MB} MB)"
          + ("" if peak <= TARGET_MB else "  OVER"))
    print(f"ratio peak RSS incl. exports and survey results / target: {peak_all / TARGET_MB:.2f} "
          f"({peak_all:.1f} / {TARGET_MB} MB)" + ("" if peak_all <= TARGET_MB else "  OVER"))
    for name, errors in (("traffic", traffic["errors"]), ("digest", digest["errors"])):
        if errors:
            print(f"fake Bot API errors in the {name} run ({len(errors)}): " + "; ".join(errors[:5]))
    print(f"total {time.perf_counter() - began:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=int, default=None, help="default 1,000,000 (20,000 with --quick)")
    parser.add_argument("--subscribers", type=int, default=None, help="default 100,000 (5,000 with --quick)")
    parser.add_argument("--miners", type=int, default=None, help="simulated miners in the traffic (default 120)")
    parser.add_argument("--starts", type=int, default=None, help="cold starts per database (default 3)")
    parser.add_argument("--quick", action="store_true", help="a small smoke run")
    parser.add_argument("--cache-dir", type=Path, help="keep the generated database here and reuse it")
    parser.add_argument("--bot-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the bot process (repeatable), e.g. MALLOC_ARENA_MAX=2")
    args = parser.parse_args()
    EXTRA_ENV.update(item.split("=", 1) for item in args.bot_env)
    args.reports = args.reports or (20_000 if args.quick else 1_000_000)
    args.subscribers = args.subscribers or (5_000 if args.quick else 100_000)
    args.miners = args.miners or (12 if args.quick else 120)
    args.starts = args.starts or (1 if args.quick else 3)
    if args.cache_dir:
        args.cache_dir.mkdir(parents=True, exist_ok=True)
        run(args, args.cache_dir)
    else:
        with tempfile.TemporaryDirectory(prefix="minevoice-capacity-") as folder:
            run(args, Path(folder))


if __name__ == "__main__":
    main()
