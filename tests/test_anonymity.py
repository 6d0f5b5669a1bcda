"""Anonymity, tested rather than promised: after whole report flows by several miners in all three
languages, nothing that identifies them is in the database, its WAL, or the log — outside the
users table, which holds only id → language."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from tests.e2e_support import BotProcess, tr
from tests.fake_telegram import FakeTelegram
from tests.flows import choose_language, data_starts, report, tap

MINERS = [
    # id, first name, last name, username, language
    (7_345_678_901, "Айдос", "Серикбаев", "aidos_karaganda_77", "kk"),
    (7_345_678_902, "Гүлнар", "Жұмабекова", "gulnar_ekibastuz", "kk"),
    (6_123_456_789, "Сергей", "Коваленко", "kovalenko_shakhtinsk", "ru"),
    (6_123_456_790, "Наталья", "Ильина", "ilina_temirtau", "ru"),
    (5_987_654_321, "Daniyar", "Abenov", "daniyar_aktobe_ore", "en"),
    (5_987_654_322, "Marat", "Tulegenov", "marat_khromtau", "en"),
]


def identifiers(user_id: int, first: str, last: str, username: str) -> list[bytes]:
    return [str(user_id).encode(), first.encode(), last.encode(), username.encode()]


def binary_forms(user_id: int) -> list[bytes]:
    """How SQLite stores an integer in a record: big-endian, 6 or 8 bytes for ids this large."""
    return [user_id.to_bytes(6, "big"), user_id.to_bytes(8, "big")]


def files_of(database: Path) -> list[Path]:
    return [path for path in (database, Path(f"{database}-wal"), Path(f"{database}-journal")) if path.exists()]


def without_users_table(database: Path, workdir: Path) -> bytes:
    """A copy of the database (WAL included) with the users table securely emptied."""
    workdir.mkdir()
    for path in files_of(database):
        shutil.copy(path, workdir / path.name)
    copy = workdir / database.name
    connection = sqlite3.connect(copy)
    connection.execute("PRAGMA secure_delete = ON")
    connection.execute("DELETE FROM users")
    connection.commit()
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return b"".join(path.read_bytes() for path in files_of(copy))


def scan(bot: BotProcess, tmp_path: Path, label: str) -> None:
    raw = {path.name: path.read_bytes() for path in files_of(bot.database_path)}
    raw["bot.log"] = bot.log_path.read_bytes()
    assert raw["bot.log"], "the log should have lines to scan"
    emptied = without_users_table(bot.database_path, tmp_path / label)
    for user_id, first, last, username, _ in MINERS:
        for name, content in raw.items():
            for needle in identifiers(user_id, first, last, username):
                assert needle not in content, f"{needle!r} found in {name} ({label})"
        for needle in binary_forms(user_id):
            assert needle not in emptied, f"user id {user_id} stored outside the users table ({label})"


async def test_nothing_identifies_reporters(tmp_path: Path) -> None:
    async with FakeTelegram() as tg:
        bot = BotProcess(tg, tmp_path / "bot", ADMIN_IDS="4000000001")
        bot.workdir.mkdir()
        await bot.start()
        # A committee at the mine, so that alerts go out and reporters can write to it.
        admin, member = tg.user(4_000_000_001, "Admin"), tg.user(4_000_000_002, "Member")
        for user in (admin, member):
            await choose_language(user, "ru")
        await admin.send("/invite committee kostenko")
        code = (await admin.next_message())["text"].split("/join ")[1].split()[0]
        await member.send(f"/join {code}")
        await member.next_message()
        receipts = []
        for index, (user_id, first, last, username, language) in enumerate(MINERS):
            miner = tg.user(user_id, first, last_name=last, username=username, language_code=language)
            await choose_language(miner, language)
            receipts.append(await report(
                miner, language,
                severity=("danger", "serious", "attention")[index % 3],
                album=index % 3,
                description=f"{tr(language, 'Ventilation')}: отказ вентилятора местного проветривания #{index}",
            ))
            # A second report, cancelled half-way: its draft must vanish too.
            await miner.send("/report")
            await miner.next_message()
            await tap(miner, data_starts("rp:region:ekibastuz-coal"))
            await tap(miner, data_starts("rp:site:"))
            await miner.send("/cancel")
            await miner.next_message()
            # A status check with the receipt, and a message to the committee.
            await miner.send(f"/status {receipts[-1].case_code} {receipts[-1].receipt}")
            card = await miner.next_message()
            assert receipts[-1].case_code in card["text"]
            await tap(miner, data_starts("rw:"), message=card)
            await miner.next_message()
            await miner.send(f"Дополнение {index}: мастер знает, датчик заклеен")
            await miner.next_message()

        with sqlite3.connect(bot.database_path) as connection:
            assert connection.execute("SELECT count(*) FROM reports").fetchone()[0] == len(MINERS)
            assert connection.execute("SELECT count(*) FROM users").fetchone()[0] == len(MINERS) + 2
            assert connection.execute("SELECT count(*) FROM report_events WHERE kind = 'reporter_message'").fetchone()[0] == len(MINERS)
            assert connection.execute("SELECT count(*) FROM fsm_states").fetchone()[0] == 0
            stored_receipts = [row[0] for row in connection.execute("SELECT receipt_hash FROM reports")]
        assert not any(r.receipt in h or r.receipt.replace("-", "") in h for r in receipts for h in stored_receipts)

        told = "".join(m.get("text") or "" for m in member.bot_messages())
        assert all(r.case_code in told for r in receipts)  # alerts (for danger) and the reporters' messages arrived
        sent_to_committee = told + str([call.params for call in tg.calls if call.chat_id == member.id])
        for user_id, first, last, username, _ in MINERS:
            for needle in identifiers(user_id, first, last, username):
                assert needle.decode() not in sent_to_committee, f"{needle!r} reached the committee"
        scan(bot, tmp_path, "while running")
        assert await bot.stop() == 0
        scan(bot, tmp_path, "after shutdown")
        assert tg.calls_to("forwardMessage") == []
        tg.assert_no_errors()


def test_the_report_table_has_no_place_for_an_identity(tmp_path: Path) -> None:
    """By construction: the columns a report can ever have."""
    import asyncio

    from storage.db import Database

    async def columns() -> dict[str, set[str]]:
        db = await Database.open(tmp_path / "schema.sqlite3")
        await db.migrate()
        tables = {}
        for table in ("reports", "report_photos", "report_events"):
            tables[table] = {row["name"] for row in await db.fetchall(f"PRAGMA table_info({table})")}
        await db.close()
        return tables

    tables = asyncio.run(columns())
    assert tables["reports"] == {"id", "case_code", "receipt_hash", "site_id", "category", "severity", "location",
                                 "description", "language", "status", "created_hour"}
    assert tables["report_photos"] == {"report_id", "position", "file_id"}
    # actor_* and the exact time are filled only for committee members' actions (they are not anonymous).
    assert tables["report_events"] == {"id", "report_id", "status", "at_hour", "note", "kind", "actor_user_id",
                                       "actor_name", "at"}
