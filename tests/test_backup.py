"""Online backups (consistent while the bot writes), rotation, and restore with its safety copy."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.backup import (
    AlreadyRunning,
    RestoreRefused,
    back_up,
    list_backups,
    make_backup,
    restore,
    run_lock,
)
from bot.config import load_settings
from bot.scheduler import build_scheduler
from bot.sites import seed_sites
from storage.backup import inspect, latest_schema_version
from storage.db import Database
from storage.fsm import SQLiteStorage
from storage.reports import NewReport, ReportRepository
from storage.sites import SiteRepository
from tests.conftest import TOKEN
from tests.e2e_support import BotProcess
from tests.fake_telegram import FakeTelegram

NOW = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)


async def open_seeded(path: Path) -> tuple[Database, ReportRepository, int]:
    db = await Database.open(path)
    try:
        await db.migrate()
        await seed_sites(SiteRepository(db))
        site_id = (await db.fetchone("SELECT min(id) FROM sites"))[0]
    except BaseException:
        await db.close()
        raise
    return db, ReportRepository(db), site_id


def report(number: int, site_id: int, photos: int = 0, text: str = "") -> NewReport:
    # The description says how many photos the report has: a torn copy would disagree with itself.
    return NewReport(f"MV-{number:06d}", "scrypt$test", site_id, "gas", "serious", "Panel 12",
                     f"photos={photos} {text}" + "x" * 600, "ru",
                     tuple(f"photo-{number}-{index}" for index in range(photos)), "2026-11-23T10:00Z")


def assert_consistent(copy: Path) -> int:
    """Every report of the copy has its first timeline entry and all its photos; returns how many."""
    info = inspect(copy)
    assert info.integrity == "ok" and info.is_minevoice and info.user_version == latest_schema_version()
    connection = sqlite3.connect(f"{copy.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = connection.execute(
            "SELECT r.description, (SELECT count(*) FROM report_photos p WHERE p.report_id = r.id), "
            "(SELECT count(*) FROM report_events e WHERE e.report_id = r.id) FROM reports r").fetchall()
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    finally:
        connection.close()
    for description, photos, events in rows:
        assert description.startswith(f"photos={photos} "), (description[:20], photos)
        assert events == 1
    return len(rows)


async def test_backup_while_the_bot_writes_is_consistent_and_does_not_stop_it(tmp_path: Path) -> None:
    db, reports, site_id = await open_seeded(tmp_path / "data" / "minevoice.sqlite3")
    backups = tmp_path / "backups"
    try:
        for number in range(3000):  # a few MB, so that a copy takes a while
            await reports.add(report(number, site_id, photos=number % 4))
        written = 3000
        stop = asyncio.Event()

        async def writer() -> None:
            nonlocal written
            while not stop.is_set():
                await reports.add(report(written, site_id, photos=written % 4))
                written += 1
                await asyncio.sleep(0)

        task = asyncio.create_task(writer())
        paths, during = [], 0
        try:
            for _ in range(4):
                before = written
                paths.append(await back_up(db.path, backups, keep=10))
                during += written - before
        finally:
            stop.set()
            await task
        assert during > 0, "the bot could not write while a backup was being made"
        counts = [assert_consistent(path) for path in paths]
        assert counts == sorted(counts) and counts[0] >= 3000
        assert counts[-1] < written  # copies are snapshots, not the live file
        assert all(oct(path.stat().st_mode & 0o777) == "0o600" for path in paths)
        assert not list(backups.glob(".*")), "no half-made copy is left behind"
        assert not Path(f"{paths[0]}-wal").exists() and not Path(f"{paths[0]}-journal").exists()
    finally:
        await db.close()


async def test_rotation_keeps_exactly_backup_keep_newest(tmp_path: Path) -> None:
    db, reports, site_id = await open_seeded(tmp_path / "minevoice.sqlite3")
    backups = tmp_path / "backups"
    try:
        await reports.add(report(1, site_id))
        backups.mkdir()
        (backups / "notes.txt").write_text("the operator's own file")
        (backups / ".minevoice-20261120T033000Z.sqlite3.partial").write_bytes(b"half a copy from a crash")
        made = [make_backup(db.path, backups, keep=3, now=NOW + timedelta(days=day)) for day in range(5)]
        # Two in the same second (a manual one next to the nightly one): both kept, in order.
        made.append(make_backup(db.path, backups, keep=3, now=NOW + timedelta(days=4)))
        kept = [backup.path for backup in list_backups(backups)]
        assert kept == made[-3:]
        assert kept[-1].name == "minevoice-20261127T223000Z-1.sqlite3"
        assert sorted(entry.name for entry in backups.iterdir()) == sorted([*(path.name for path in kept), "notes.txt"])
        assert list_backups(backups)[-1].taken_at == NOW + timedelta(days=4)
    finally:
        await db.close()


async def test_restore_puts_the_backup_in_place_and_keeps_a_safety_copy(tmp_path: Path) -> None:
    path = tmp_path / "data" / "minevoice.sqlite3"
    db, reports, site_id = await open_seeded(path)
    try:
        await reports.add(report(1, site_id))
        backup = make_backup(path, tmp_path / "backups", keep=5, now=NOW)
        await reports.add(report(2, site_id))  # newer than the backup; it must survive in the safety copy
    finally:
        await db.close()
    # As after a crash: the newest transaction is only in the WAL (the process died without closing).
    crash = ("import os, sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.execute('PRAGMA wal_autocheckpoint = 0'); "
             "c.execute(\"UPDATE reports SET category = 'fire' WHERE case_code = 'MV-000002'\"); c.commit(); "
             "os._exit(0)")
    subprocess.run([sys.executable, "-c", crash, str(path)], check=True, timeout=60)
    assert Path(f"{path}-wal").stat().st_size > 0

    safety = restore(path, backup, now=NOW + timedelta(hours=1))

    assert safety == path.with_name("minevoice.sqlite3.before-restore-20261123T233000Z")
    assert safety.exists() and not Path(f"{path}-wal").exists()
    restored = sqlite3.connect(path)
    assert [row[0] for row in restored.execute("SELECT case_code FROM reports")] == ["MV-000001"]
    restored.close()
    kept = sqlite3.connect(safety)
    assert dict(kept.execute("SELECT case_code, category FROM reports").fetchall()) == {
        "MV-000001": "gas", "MV-000002": "fire"}
    kept.close()
    assert oct(path.stat().st_mode & 0o777) == "0o600"

    # Putting the safety copy back (an undo) brings its WAL's transactions along.
    undo = restore(path, safety, now=NOW + timedelta(hours=2))
    assert undo is not None and undo.exists()
    back = sqlite3.connect(path)
    assert dict(back.execute("SELECT case_code, category FROM reports").fetchall()) == {
        "MV-000001": "gas", "MV-000002": "fire"}
    back.close()

    # The restored database opens and migrates like any other.
    db = await Database.open(path)
    try:
        assert await db.migrate() == latest_schema_version()
    finally:
        await db.close()


async def test_restore_refuses_what_is_not_a_minevoice_backup(tmp_path: Path) -> None:
    path = tmp_path / "minevoice.sqlite3"
    db, _, _ = await open_seeded(path)
    await db.close()
    before = path.read_bytes()
    text = tmp_path / "notes.sqlite3"
    text.write_text("not a database at all, just text " * 200)
    other = tmp_path / "other.sqlite3"
    connection = sqlite3.connect(other)
    connection.execute("CREATE TABLE things (id INTEGER)")
    connection.execute("PRAGMA user_version = 3")
    connection.commit()
    connection.close()
    newer = tmp_path / "newer.sqlite3"
    newer.write_bytes(before)
    connection = sqlite3.connect(newer)
    connection.execute(f"PRAGMA user_version = {latest_schema_version() + 1}")
    connection.commit()
    connection.close()

    for file, words in ((text, "not an SQLite database"), (other, "not a MineVoice one"), (newer, "newer MineVoice"),
                        (tmp_path / "missing.sqlite3", "does not exist"), (path, "the database itself")):
        with pytest.raises(RestoreRefused, match=words):
            restore(path, file)
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.before-restore-*"))


async def test_restore_refuses_while_the_bot_holds_the_database(tmp_path: Path) -> None:
    path = tmp_path / "minevoice.sqlite3"
    db, reports, site_id = await open_seeded(path)
    try:
        await reports.add(report(1, site_id))
        backup = make_backup(path, tmp_path / "backups", keep=2, now=NOW)
        with run_lock(path):
            with pytest.raises(RestoreRefused, match="running"):
                restore(path, backup)
            with pytest.raises(AlreadyRunning):
                with run_lock(path):
                    pass
        assert (await db.fetchone("SELECT count(*) FROM reports"))[0] == 1
    finally:
        await db.close()
    assert not list(tmp_path.glob("*.before-restore-*"))


async def _cli(env: dict[str, str], cwd: Path, *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", *args, cwd=cwd, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    return process.returncode, out.decode(), err.decode()


async def test_cli_backup_while_running_restore_only_after_stopping(tg: FakeTelegram, tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    bot = BotProcess(tg, tmp_path, BACKUP_DIR=str(backups))
    await bot.start()
    try:
        alice = tg.user(1001, "Alice", language_code="en")
        await alice.send("/start")
        await alice.next_message()
        await alice.press("English")  # stores her language: a row the backup must hold
        await alice.next_message()
        code, out, err = await _cli(bot.env, tmp_path, "backup")
        assert code == 0, err
        (backup,) = list_backups(backups)
        assert str(backup.path) in out
        copy = sqlite3.connect(f"{backup.path.resolve().as_uri()}?mode=ro", uri=True)
        try:
            assert copy.execute("SELECT language FROM users").fetchall() == [("en",)]
        finally:
            copy.close()

        code, out, err = await _cli(bot.env, tmp_path, "restore", str(backup.path))
        assert code == 1 and "running" in err and "Traceback" not in err
        # A second bot on the same database is refused too.
        code, _, err = await _cli(bot.env, tmp_path, "run")
        assert code == 2 and "another MineVoice" in err
    finally:
        assert await bot.stop() == 0

    code, out, err = await _cli(bot.env, tmp_path, "restore", str(backup.path))
    assert code == 0, err
    assert "before-restore-" in out and "Traceback" not in err
    assert len(list(bot.database_path.parent.glob("minevoice.sqlite3.before-restore-*"))) == 1
    await bot.start()
    assert await bot.stop() == 0


def test_the_scheduler_runs_backup_and_retention_daily_in_the_time_zone(tmp_path: Path) -> None:
    settings = load_settings(bot_token=TOKEN, database_path=tmp_path / "db.sqlite3", backup_time="00:10",
                             timezone="Asia/Almaty", _env_file=None)
    storage = SQLiteStorage(SimpleNamespace())  # type: ignore[arg-type] - never touched here
    scheduler = build_scheduler(settings, storage, SimpleNamespace(alerts=None), db=SimpleNamespace())
    jobs = {job.id: job for job in scheduler.get_jobs()}
    assert {"follow_up_alerts", "daily_digests", "digest_retries", "due_campaigns",
            "forget_abandoned_conversations"} <= set(jobs)
    backup, retention = jobs["daily_backup"], jobs["daily_retention"]
    for job in (backup, retention):
        assert str(job.trigger.timezone) == "Asia/Almaty"
        assert job.coalesce and job.max_instances == 1 and job.misfire_grace_time >= 600
    fields = {field.name: str(field) for field in backup.trigger.fields}
    assert (fields["hour"], fields["minute"]) == ("0", "10")
    fields = {field.name: str(field) for field in retention.trigger.fields}
    assert (fields["hour"], fields["minute"]) == ("23", "40")  # half an hour before, across midnight
