"""One SQLite connection per process, its pragmas, transactions and schema migrations."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from importlib import resources
from pathlib import Path
from typing import Any

import aiosqlite

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_in_transaction: ContextVar[bool] = ContextVar("minevoice_in_transaction", default=False)

PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    # NORMAL is crash-safe in WAL mode; commits that must survive power loss call checkpoint().
    "PRAGMA synchronous = NORMAL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 5000",
    # Deleted rows (report drafts, finished conversations) are overwritten with zeros, not left in free pages.
    "PRAGMA secure_delete = ON",
)


class Database:
    """The process's single connection. Every statement runs under one lock, so a transaction
    opened by one task never swallows another task's statements; nested `transaction()` blocks
    in the same task join the outer one."""

    def __init__(self, connection: aiosqlite.Connection, path: Path) -> None:
        self._conn = connection
        self.path = path
        self._lock = asyncio.Lock()
        self._checkpoint_wanted = False

    @classmethod
    async def open(cls, path: Path) -> Database:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = await aiosqlite.connect(path, isolation_level=None)
        connection.row_factory = aiosqlite.Row
        for pragma in PRAGMAS:
            await connection.execute(pragma)
        return cls(connection, path)

    async def close(self) -> None:
        await self.checkpoint()
        await self._conn.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        if _in_transaction.get():
            yield self
            return
        async with self._lock:
            token = _in_transaction.set(True)
            try:
                await self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self
                except BaseException:
                    await self._conn.execute("ROLLBACK")
                    raise
                await self._conn.execute("COMMIT")
            finally:
                _in_transaction.reset(token)
            if self._checkpoint_wanted:
                await self._checkpoint_locked()

    # Each await on the connection is a round trip to its worker thread, so every method below
    # makes one where it can (execute_insert, execute_fetchall) rather than execute, fetch, close.

    async def execute(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run one statement (atomic by itself in autocommit mode, or part of the caller's
        transaction); returns the last inserted rowid (or 0)."""
        async with self._statement():
            row = await self._conn.execute_insert(sql, tuple(params))
            return (row[0] if row else 0) or 0

    async def execute_count(self, sql: str, params: Iterable[Any] = ()) -> int:
        """Run one statement; returns how many rows it changed."""
        async with self._statement():
            cursor = await self._conn.execute(sql, tuple(params))
            changed = cursor.rowcount
            await cursor.close()
            return changed

    async def executemany(self, sql: str, rows: Iterable[Iterable[Any]]) -> None:
        async with self.transaction():
            await self._conn.executemany(sql, [tuple(row) for row in rows])

    async def fetchone(self, sql: str, params: Iterable[Any] = ()) -> aiosqlite.Row | None:
        """The first row of a query that yields at most a few (a key look-up, an aggregate)."""
        rows = await self.fetchall(sql, params)
        return rows[0] if rows else None

    async def fetchall(self, sql: str, params: Iterable[Any] = ()) -> list[aiosqlite.Row]:
        async with self._statement():
            return list(await self._conn.execute_fetchall(sql, tuple(params)))

    @asynccontextmanager
    async def _statement(self) -> AsyncIterator[None]:
        """The lock for one statement, unless this task already holds it in a transaction."""
        if _in_transaction.get():
            yield
            return
        async with self._lock:
            yield

    def want_checkpoint(self) -> None:
        """Ask for the WAL to be folded into the database and truncated once the current
        transaction commits, so that deleted data leaves no old copies in the `-wal` file."""
        self._checkpoint_wanted = True

    async def ping(self) -> bool:
        """The connection answers (for the health endpoint)."""
        row = await self.fetchone("SELECT 1")
        return row is not None and row[0] == 1

    async def checkpoint(self) -> None:
        """Fold the WAL into the database file, fsync, and truncate the WAL to zero bytes; inside a
        transaction, as soon as it commits."""
        if _in_transaction.get():
            self.want_checkpoint()
            return
        async with self._lock:
            await self._checkpoint_locked()

    async def _checkpoint_locked(self) -> None:
        self._checkpoint_wanted = False
        (busy, _, _), = await self._conn.execute_fetchall("PRAGMA wal_checkpoint(TRUNCATE)")
        if busy:
            log.warning("WAL checkpoint could not complete; it will be retried")
            self._checkpoint_wanted = True

    async def migrate(self) -> int:
        """Apply every numbered migration newer than `PRAGMA user_version`; returns the version."""
        row = await self.fetchone("PRAGMA user_version")
        current = int(row[0]) if row else 0
        for number, name, sql in _migrations():
            if number <= current:
                continue
            async with self._lock:
                try:
                    await self._conn.executescript(
                        f"BEGIN IMMEDIATE;\n{sql}\nPRAGMA user_version = {number};\nCOMMIT;"
                    )
                except Exception:
                    await self._conn.execute("ROLLBACK")
                    raise
            log.info("Applied migration %s", name)
            current = number
        return current


def _migrations() -> list[tuple[int, str, str]]:
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    numbers = [number for number, _, _ in found]
    if numbers != list(range(1, len(numbers) + 1)):
        raise RuntimeError(f"Migrations must be numbered 0001, 0002, … without gaps; found {numbers}")
    return found
