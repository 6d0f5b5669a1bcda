"""Committee exports stream: cases are read, turned into rows and written to an XLSX and a CSV on
disk a chunk at a time, and the files live in a private temporary folder only while they are sent."""

from __future__ import annotations

import asyncio
import csv
import io
import stat
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook

from bot import file_worker
from bot.access import NotAllowed
from bot.exports import ExportService
from bot.hazards import CATEGORIES, SEVERITIES, STATUSES
from bot.i18n import build_i18n
from bot.sites import seed_sites
from storage.db import Database
from storage.reports import NewReport, ReportRepository
from storage.sites import SiteRepository
from tests.e2e_support import InProcessBot
from tests.fake_telegram import FakeTelegram
from tests.flows import choose_language, data_starts

TZ = ZoneInfo("Asia/Almaty")
NOW = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)
MEMBER = 5_000_000_002
ADMIN = 5_000_000_001
CASES = 23  # of the member's mine in the period: several chunks of the sizes below, with a remainder


class Committee:
    def __init__(self, site_ids: set[int]) -> None:
        self.site_ids = site_ids

    async def committee_sites(self, user_id: int) -> set[int]:
        return set(self.site_ids)


@pytest.fixture
def private_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The system's temporary folder for this test: whatever an export leaves there is seen."""
    folder = tmp_path / "system-tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


@pytest.fixture(autouse=True)
async def no_file_worker_left():
    """Exports made here use the bot's file worker: it is stopped after each test, as the bot stops it."""
    yield
    await file_worker.shutdown()


@pytest.fixture
async def database(tmp_path: Path):
    """A database with the seeded mines; two mines of one region."""
    db = await Database.open(tmp_path / "db.sqlite3")
    try:
        await db.migrate()
        sites = SiteRepository(db)
        await seed_sites(sites)
        mine, other_mine = (await sites.sites_in("karaganda-coal"))[:2]
        yield db, sites, mine, other_mine
    finally:
        await db.close()


def hour(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:00Z")


def local(moment: datetime) -> str:
    return f"{moment.astimezone(TZ):%Y-%m-%d %H:%M}"


async def fill(db: Database, mine: int, other_mine: int) -> list[dict]:
    """Cases of the member's mine (with photos, notes, status changes and reporter messages),
    interleaved with another mine's and preceded by old ones. Returns what each exported row must hold."""
    reports = ReportRepository(db)
    expected = []
    old = NOW - timedelta(days=40)
    await reports.add(NewReport("MV-OLD01", "h", mine, "gas", "serious", None, "too old", "ru", (), hour(old)))
    for i in range(CASES):
        created = NOW - timedelta(days=29, hours=-i * 7)
        category = ("gas", "ventilation", "roof", "dust")[i % 4]
        severity = ("danger", "serious", "attention")[i % 3]
        location = ("=HYPERLINK(\"x\")" if i == 5 else None) if i % 5 == 0 else f"Участок {i}"
        description = "-1+1 не формула" if i == 7 else f"Случай номер {i}: метан, «кавычки», запятая, ; и\nстрока"
        photos = tuple(f"photo-{i}-{n}" for n in range(i % 3))
        report_id = await reports.add(NewReport(f"MV-A{i:04d}", "h", mine, category, severity, location, description,
                                                "ru", photos, hour(created)))
        history = [f"{local(created)} — {STATUSES['received']}"]
        status = "received"
        if i % 2:
            at = created + timedelta(hours=2, minutes=17)
            status = "in_progress"
            await reports.change_status(report_id, status, ADMIN, "Bolat C.", at.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                        hour(at), None)
            history.append(f"{local(at)} — {STATUSES['in_progress']} — Bolat C.")
        if i % 3 == 1:
            at = created + timedelta(hours=3, minutes=5)
            await reports.add_note(report_id, f"=note {i}", ADMIN, "Bolat C.", at.strftime("%Y-%m-%dT%H:%M:%SZ"), hour(at))
            history.append(f"{local(at)} — note to the reporter by Bolat C.: «=note {i}»")
        if i % 4 == 2:
            at = created + timedelta(hours=4)
            await reports.add_reporter_message(report_id, f"ещё {i}", hour(at))
            history.append(f"{local(at)} — the reporter wrote: «ещё {i}»")
        if i % 3 == 0:  # another mine's case between two of ours
            await reports.add(NewReport(f"MV-B{i:04d}", "h", other_mine, "gas", "danger", None, "not ours", "ru",
                                        ("p",), hour(created)))
        expected.append({
            "row": [f"MV-A{i:04d}", local(created), None, str(CATEGORIES[category]), str(SEVERITIES[severity]),
                    str(STATUSES[status]), location or "", description, len(photos), "\n".join(history)],
        })
    return expected


def safe(value: object) -> object:
    return "'" + value if isinstance(value, str) and value[:1] in ("=", "+", "-", "@") else value


@pytest.mark.parametrize("chunk_size", [1, 4, CASES, 500])
async def test_a_chunked_export_holds_every_case_once_in_order(database: tuple, private_tmp: Path,
                                                               chunk_size: int) -> None:
    db, sites, mine, other_mine = database
    i18n = build_i18n("ru")
    with i18n.context(), i18n.use_locale("en"):
        expected = await fill(db, mine.id, other_mine.id)
        exports = ExportService(ReportRepository(db), sites, Committee({mine.id}))
        exports.chunk_size = chunk_size
        async with exports.export(MEMBER, 30, "en", TZ, now=NOW) as result:
            folder = result.xlsx.parent
            assert result.csv.parent == folder and folder.parent == private_tmp
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700
            xlsx, csv_bytes = result.xlsx.read_bytes(), result.csv.read_bytes()
            rows = result.rows
        header = ["Case code", "Received", "Mine", "Hazard", "Urgency", "Status", "Where", "What is happening",
                  "Photos", "History"]
    assert not folder.exists() and not list(private_tmp.iterdir())  # openpyxl's own temporary file too
    for item in expected:
        item["row"][2] = mine.name("en")
    want = [[safe(value) for value in item["row"]] for item in expected]
    assert rows == CASES

    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    parsed = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig"), newline="")))
    assert parsed[0] == header
    assert parsed[1:] == [[str(value) for value in row] for row in want]

    book = load_workbook(io.BytesIO(xlsx))
    sheet = book.active
    assert sheet.title == "MineVoice" and sheet.freeze_panes == "A2"
    assert [sheet.column_dimensions[column].width for column in "ABCDEFGHIJ"] == [11, 17, 24, 24, 22, 20, 24, 60, 8, 60]
    cells = list(sheet.iter_rows())
    assert [cell.value for cell in cells[0]] == header and all(cell.font.bold for cell in cells[0])
    assert [[cell.value for cell in row] for row in cells[1:]] == [[value if value != "" else None for value in row]
                                                                   for row in want]  # an empty cell reads None
    assert all(cell.alignment.wrap_text and cell.alignment.vertical == "top" for row in cells[1:] for cell in row)


async def test_the_files_are_removed_when_sending_fails_or_the_export_is_refused(database: tuple,
                                                                                private_tmp: Path) -> None:
    db, sites, mine, other_mine = database
    i18n = build_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        await fill(db, mine.id, other_mine.id)
        exports = ExportService(ReportRepository(db), sites, Committee({mine.id}))
        exports.chunk_size = 5
        with pytest.raises(ConnectionError):
            async with exports.export(MEMBER, 30, "ru", TZ, now=NOW) as result:
                assert result.xlsx.exists() and result.csv.exists() and result.rows == CASES
                raise ConnectionError("Telegram went away while sending")
        assert not list(private_tmp.iterdir())

        class Broken(ReportRepository):
            async def cases_page_since(self, *args: object) -> list:
                if args[2]:  # the second chunk
                    raise RuntimeError("database is locked")
                return await super().cases_page_since(*args)

        broken = ExportService(Broken(db), sites, Committee({mine.id}))
        broken.chunk_size = 5
        with pytest.raises(RuntimeError):
            async with broken.export(MEMBER, 30, "ru", TZ, now=NOW):
                pytest.fail("no export to send")
        assert not list(private_tmp.iterdir())

        with pytest.raises(NotAllowed):
            async with ExportService(ReportRepository(db), sites, Committee(set())).export(MEMBER, 30, "ru", TZ):
                pytest.fail("no export for a non-member")
        assert not list(private_tmp.iterdir())


async def test_a_cancelled_export_removes_its_files_only_after_the_worker_is_done(
        database: tuple, private_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, sites, mine, other_mine = database
    written: list[Path] = []
    run = file_worker.run

    async def slow_run(function, *args):  # the XLSX takes a while in the file worker
        await asyncio.sleep(0.3)
        result = await run(function, *args)
        written.append(Path(args[1]))
        assert Path(args[1]).exists()  # the folder was still there while the worker wrote into it
        return result

    monkeypatch.setattr(file_worker, "run", slow_run)
    i18n = build_i18n("ru")
    with i18n.context(), i18n.use_locale("ru"):
        await fill(db, mine.id, other_mine.id)
        exports = ExportService(ReportRepository(db), sites, Committee({mine.id}))

        async def export() -> None:
            async with exports.export(MEMBER, 30, "ru", TZ, now=NOW):
                pytest.fail("cancelled before the files were ready")

        task = asyncio.create_task(export())
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(written) == 1 and not written[0].exists() and not list(private_tmp.iterdir())


async def test_reading_in_chunks_by_id(database: tuple) -> None:
    db, _sites, mine, other_mine = database
    i18n = build_i18n("ru")
    with i18n.context(), i18n.use_locale("en"):
        await fill(db, mine.id, other_mine.id)
    reports = ReportRepository(db)
    since = hour(NOW - timedelta(days=30))
    seen, after = [], 0
    while chunk := await reports.cases_page_since([mine.id], since, after, 4):
        assert len(chunk) <= 4
        seen += [case.case_code for case, _ in chunk]
        after = chunk[-1][0].id
    assert seen == [f"MV-A{i:04d}" for i in range(CASES)]
    both = await reports.cases_page_since([mine.id, other_mine.id], since, 0, 1000)
    assert len(both) == CASES + len(range(0, CASES, 3)) and [case.id for case, _ in both] == sorted(case.id for case, _ in both)
    first = {case.case_code: (case, timeline) for case, timeline in await reports.cases_page_since([mine.id], since, 0, 3)}
    assert first.keys() == {"MV-A0000", "MV-A0001", "MV-A0002"}
    assert first["MV-A0001"][0].photo_file_ids == ("photo-1-0",)
    assert first["MV-A0002"][0].photo_file_ids == ("photo-2-0", "photo-2-1")
    assert [event.kind for event in first["MV-A0001"][1]] == ["status", "status", "note"]
    assert await reports.cases_page_since([], since, 0, 10) == [] and await reports.cases_page_since([mine.id], since, 0, 0) == []


# --- through Telegram ----------------------------------------------------------------------------

@pytest.fixture
async def bot(tg: FakeTelegram, tmp_path: Path, private_tmp: Path):
    process = InProcessBot(tg, tmp_path, admin_ids=str(ADMIN))
    await process.start()
    yield process
    await process.stop()


async def member_of_a_mine(tg: FakeTelegram, bot: InProcessBot):
    """A committee member (English) of a mine with cases of the last 30 days."""
    import re

    admin = tg.user(ADMIN, "Aigerim", language_code="ru")
    member = tg.user(MEMBER, "Bolat", language_code="en")
    await choose_language(admin, "ru")
    await choose_language(member, "en")
    await admin.send("/invite committee kostenko")
    code = re.search(r"/join (\S+)", (await admin.next_message())["text"]).group(1)
    await member.send(f"/join {code}")
    await member.next_message()
    site_id = next(iter(await bot.services.access.committee_sites(MEMBER)))
    reports = ReportRepository(bot.app.db)
    now = datetime.now(UTC)
    for i in range(7):
        await reports.add(NewReport(f"MV-T{i:04d}", "h", site_id, "gas", "serious", None, f"case {i}", "ru",
                                    ("p",) * (i % 2), hour(now - timedelta(days=20, hours=-i))))
    return member


async def test_telegram_gets_both_files_from_disk_and_nothing_stays(tg: FakeTelegram, bot: InProcessBot,
                                                                   private_tmp: Path) -> None:
    member = await member_of_a_mine(tg, bot)
    bot.services.exports.chunk_size = 3
    await member.send("/export")
    await member.next_message()
    await member.callback_answer(await member.press(data_starts("exp:30")), timeout=30)
    xlsx_message, csv_message = await member.next_message(), await member.next_message()
    assert xlsx_message["document"]["file_name"] == "minevoice-cases-30d.xlsx"
    assert csv_message["document"]["file_name"] == "minevoice-cases-30d.csv"
    assert xlsx_message["caption"].startswith("Cases of the last 30 days: 7.")
    parsed = list(csv.reader(io.StringIO(tg.file_content(csv_message["document"]["file_id"]).decode("utf-8-sig"))))
    assert [row[0] for row in parsed[1:]] == [f"MV-T{i:04d}" for i in range(7)]
    assert [row[8] for row in parsed[1:]] == [str(i % 2) for i in range(7)]
    rows = list(load_workbook(io.BytesIO(tg.file_content(xlsx_message["document"]["file_id"]))).active
                .iter_rows(values_only=True))
    assert [list(row) for row in rows] == [[int(v) if i == 8 and n else v or None for i, v in enumerate(row)]
                                           for n, row in enumerate(parsed)]  # the same rows, in both files
    assert not list(private_tmp.iterdir())
    tg.assert_no_errors()


async def test_nothing_stays_when_telegram_refuses_the_file(tg: FakeTelegram, bot: InProcessBot,
                                                            private_tmp: Path) -> None:
    member = await member_of_a_mine(tg, bot)
    bot.services.exports.chunk_size = 2
    await member.send("/export")
    await member.next_message()
    tg.inject_error(chat_id=MEMBER, method="sendDocument", error_code=400, description="Bad Request: file is too big")
    await member.callback_answer(await member.press(data_starts("exp:30")), timeout=30)  # the handler is done
    assert [error.method for error in tg.simulated_errors] == ["sendDocument"]
    assert not list(private_tmp.iterdir())
    tg.assert_no_errors()


def test_export_folders_a_killed_bot_left_are_removed_at_start_up(private_tmp: Path) -> None:
    import os
    import time

    from bot.exports import LEFTOVER_SECONDS, remove_leftover_exports

    now = time.time()
    old = private_tmp / "minevoice-export-old"
    old.mkdir(mode=0o700)
    (old / "cases.csv").write_text("MV-AAAAA,a miner's words", encoding="utf-8")
    os.utime(old, (now - LEFTOVER_SECONDS - 60,) * 2)
    recent = private_tmp / "minevoice-export-recent"  # another bot's export under way
    recent.mkdir(mode=0o700)
    other = private_tmp / "unrelated-old"
    other.mkdir()
    os.utime(other, (now - LEFTOVER_SECONDS - 60,) * 2)

    assert remove_leftover_exports(now) == 1
    assert not old.exists() and recent.exists() and other.exists()
