from pathlib import Path

from aiogram.fsm.storage.base import StorageKey

from bot.sites import load_seed, seed_sites
from storage.cache import RecentCache
from storage.db import Database
from storage.fsm import SQLiteStorage
from storage.reports import NewReport, ReportRepository
from storage.sites import SiteRepository
from storage.users import UserRepository

KEY = StorageKey(bot_id=1, chat_id=7_123_456_789, user_id=7_123_456_789)


async def open_db(path: Path) -> Database:
    db = await Database.open(path)
    await db.migrate()
    return db


async def test_migrations_are_applied_once_and_pragmas_set(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "x" / "db.sqlite3")
    version = (await db.fetchone("PRAGMA user_version"))[0]
    assert version >= 1
    assert await db.migrate() == version
    assert (await db.fetchone("PRAGMA journal_mode"))[0] == "wal"
    assert (await db.fetchone("PRAGMA foreign_keys"))[0] == 1
    assert (await db.fetchone("PRAGMA secure_delete"))[0] == 1
    await db.close()


async def test_fsm_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = await open_db(path)
    storage = SQLiteStorage(db)
    await storage.set_state(KEY, "ReportFlow:description")
    await storage.update_data(KEY, {"site_id": 3, "category": "gas"})
    await db.close()

    db = await open_db(path)
    storage = SQLiteStorage(db)
    assert await storage.get_state(KEY) == "ReportFlow:description"
    assert await storage.get_data(KEY) == {"site_id": 3, "category": "gas"}
    await db.close()


async def test_fsm_memory_is_bounded_and_forgotten_conversations_are_read_again(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "db.sqlite3")
    storage = SQLiteStorage(db, cached=2)
    keys = [StorageKey(bot_id=1, chat_id=user, user_id=user) for user in range(1, 6)]
    for user, key in enumerate(keys, start=1):
        await storage.set_state(key, f"ReportFlow:step{user}")
        await storage.set_data(key, {"site_id": user})
    for user in (6, 7, 8):  # people who never started a conversation are looked up too
        assert await storage.get_state(StorageKey(bot_id=1, chat_id=user, user_id=user)) is None
    assert len(storage._cache) == 2
    for user, key in enumerate(keys, start=1):
        assert await storage.get_state(key) == f"ReportFlow:step{user}"
        assert await storage.get_data(key) == {"site_id": user}
    assert len(storage._cache) == 2
    await db.close()


async def test_remembered_languages_are_bounded(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "db.sqlite3")
    users = UserRepository(db)
    users._languages = RecentCache(3)
    for user in range(10):
        await users.set_language(user, ("kk", "ru", "en")[user % 3])
    assert len(users._languages) == 3
    assert [await users.language_of(user) for user in range(10)] == [("kk", "ru", "en")[user % 3] for user in range(10)]
    assert await users.language_of(99) is None
    assert len(users._languages) == 3
    await db.close()


async def test_a_finished_conversation_leaves_nothing_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = await open_db(path)
    storage = SQLiteStorage(db)
    secret = "conveyor 4 belt guard removed near the loading point"
    await storage.set_state(KEY, "ReportFlow:review")
    await storage.set_data(KEY, {"description": secret})
    await db.checkpoint()
    assert secret.encode() in path.read_bytes()

    await storage.set_state(KEY, None)
    await storage.set_data(KEY, {})
    assert (await db.fetchone("SELECT count(*) FROM fsm_states"))[0] == 0
    for file in (path, Path(f"{path}-wal")):
        if file.exists():
            assert secret.encode() not in file.read_bytes(), file.name
    assert not Path(f"{path}-wal").exists() or Path(f"{path}-wal").stat().st_size == 0
    await db.close()


async def test_abandoned_conversations_are_purged(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "db.sqlite3")
    storage = SQLiteStorage(db)
    await storage.set_state(KEY, "ReportFlow:site")
    await db.execute("UPDATE fsm_states SET updated_at = updated_at - 10000")
    assert await storage.purge_older_than(5000) == 1
    assert await storage.get_state(KEY) is None
    await db.close()


async def test_seed_is_idempotent_and_keeps_admin_edits(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "db.sqlite3")
    sites = SiteRepository(db)
    await seed_sites(sites)
    count = (await db.fetchone("SELECT count(*) FROM sites"))[0]
    assert count == sum(len(region["sites"]) for region in load_seed())
    first = (await sites.sites_in((await sites.regions())[0].code))[0]
    await db.execute("UPDATE sites SET name_en = 'Renamed' WHERE id = ?", (first.id,))
    await seed_sites(sites)
    assert (await db.fetchone("SELECT count(*) FROM sites"))[0] == count
    assert (await sites.get(first.id)).name("en") == "Renamed"
    await db.close()


async def test_seed_names_regions_in_three_languages(tmp_path: Path) -> None:
    regions = load_seed()
    codes = [region["code"] for region in regions]
    assert {"karaganda-coal", "ekibastuz-coal", "aktobe-ore"} <= set(codes)
    for region in regions:
        assert set(region["name"]) >= {"kk", "ru", "en"}


async def test_report_and_timeline(tmp_path: Path) -> None:
    db = await open_db(tmp_path / "db.sqlite3")
    sites = SiteRepository(db)
    await seed_sites(sites)
    site = (await sites.sites_in("karaganda-coal"))[0]
    reports = ReportRepository(db)
    report_id = await reports.add(NewReport("MV-23456", "scrypt$x", site.id, "gas", "danger", None,
                                            "methane sensor taped over", "ru", ("file-a", "file-b"), "2026-11-23T13:00Z"))
    stored = await reports.by_case_code("MV-23456")
    assert stored.id == report_id and stored.status == "received"
    assert [event.status for event in await reports.timeline(report_id)] == ["received"]
    assert await reports.case_code_taken("MV-23456") and not await reports.case_code_taken("MV-99999")
    photos = await db.fetchall("SELECT file_id FROM report_photos WHERE report_id = ? ORDER BY position", (report_id,))
    assert [row[0] for row in photos] == ["file-a", "file-b"]
    await db.close()


async def test_user_language_is_stored(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite3"
    db = await open_db(path)
    await UserRepository(db).set_language(42, "kk")
    await db.close()
    db = await open_db(path)
    assert await UserRepository(db).language_of(42) == "kk"
    assert await UserRepository(db).language_of(43) is None
    await db.close()


# --- one connection, many tasks ------------------------------------------------------------------

async def test_a_transaction_never_takes_in_another_tasks_statements(tmp_path: Path) -> None:
    """A transaction's rollback undoes only its own work, whatever other tasks send meanwhile, and
    each task's statements run in its own order."""
    import asyncio

    import pytest

    db = await open_db(tmp_path / "db.sqlite3")
    await db.execute("CREATE TABLE t (who TEXT, n INTEGER)")

    async def others(tag: str, count: int) -> None:
        for n in range(count):
            await db.execute("INSERT INTO t VALUES (?, ?)", (tag, n))

    before = [asyncio.create_task(others(f"before-{i}", 20)) for i in range(10)]
    await asyncio.sleep(0)  # each has sent its first statement

    started = asyncio.Event()

    async def rolled_back() -> None:
        async with db.transaction():
            started.set()
            for n in range(30):
                await db.execute("INSERT INTO t VALUES ('tx', ?)", (n,))
                await asyncio.sleep(0)  # others run meanwhile
            raise RuntimeError("undo")

    transaction = asyncio.create_task(rolled_back())
    await started.wait()
    during = [asyncio.create_task(others(f"during-{i}", 20)) for i in range(10)]
    with pytest.raises(RuntimeError):
        await transaction
    await asyncio.gather(*before, *during)

    rows = await db.fetchall("SELECT who, count(*) AS n, group_concat(n) AS seq FROM t GROUP BY who")
    counts = {row["who"]: row["n"] for row in rows}
    assert "tx" not in counts
    assert counts == {**{f"before-{i}": 20 for i in range(10)}, **{f"during-{i}": 20 for i in range(10)}}
    in_order = ",".join(str(n) for n in range(20))
    assert all(row["seq"] == in_order for row in rows)  # each task's statements in its own order
    await db.close()


async def test_statements_sent_while_a_checkpoint_waits_are_all_answered(tmp_path: Path) -> None:
    import asyncio

    db = await open_db(tmp_path / "db.sqlite3")
    await db.execute("CREATE TABLE t (n INTEGER)")
    writers = [asyncio.create_task(db.execute("INSERT INTO t VALUES (?)", (n,))) for n in range(200)]
    await asyncio.sleep(0)
    checkpoints = [asyncio.create_task(db.checkpoint()) for _ in range(3)]
    readers = [asyncio.create_task(db.fetchone("SELECT count(*) FROM t")) for _ in range(50)]
    await asyncio.gather(*writers, *checkpoints)
    counted = [row[0] for row in await asyncio.gather(*readers)]
    assert counted == [200] * 50  # sent after the writers: answered after them
    assert (await db.fetchone("SELECT count(*) FROM t"))[0] == 200
    await db.close()


async def test_a_checkpoint_asked_for_inside_a_transaction_is_made_when_it_commits(tmp_path: Path) -> None:
    import asyncio

    path = tmp_path / "db.sqlite3"
    db = await open_db(path)
    await db.execute("CREATE TABLE t (n INTEGER)")
    wal = Path(f"{path}-wal")
    async with db.transaction():
        await db.execute("INSERT INTO t VALUES (1)")
        await asyncio.wait_for(db.checkpoint(), timeout=5)  # would wait for its own transaction's lock
        await db.execute("DELETE FROM t")
    assert wal.stat().st_size == 0  # folded into the database and truncated after the commit
    assert (await db.fetchone("SELECT count(*) FROM t"))[0] == 0
    await db.close()
