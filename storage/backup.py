"""SQLite files as a whole: the online backup copy, its verification, and what a file holds.

Blocking (the sqlite3 module); callers run these in a thread. The copy is made on a connection of
its own, so it never sees a transaction the bot's connection has half done: in WAL mode a reader
works on the last committed state while the bot keeps writing, and one backup step copies every
page within that single read transaction."""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

# Tables every MineVoice database has had since the first migration.
MINEVOICE_TABLES = frozenset({"users", "sites", "reports", "report_photos", "report_events", "fsm_states"})


class NotADatabase(Exception):
    """The file cannot be read as an SQLite database."""


@dataclass(frozen=True, slots=True)
class DatabaseInfo:
    user_version: int
    tables: frozenset[str]
    integrity: str  # "ok", or SQLite's first complaint

    @property
    def is_minevoice(self) -> bool:
        return self.user_version >= 1 and MINEVOICE_TABLES <= self.tables


def latest_schema_version() -> int:
    """The version the numbered migrations bring a database to."""
    from storage.db import _migrations  # noqa: PLC2701 - the one list of migrations

    return len(_migrations())


def _read_only(path: Path) -> sqlite3.Connection:
    """Inspecting a file must never create it, change it or leave files next to it: a `-shm`
    made by `root` running `check` would lock the bot's own user out of its database. Without a
    `-wal` beside it nothing is writing the file, so it is read as immutable (no side files)."""
    if not path.is_file():
        raise NotADatabase(f"{path} does not exist")
    live = Path(f"{path}-wal").exists()
    uri = f"{path.resolve().as_uri()}?mode=ro" + ("" if live else "&immutable=1")
    connection = sqlite3.connect(uri, uri=True, timeout=30)
    connection.execute("PRAGMA busy_timeout = 30000")
    return connection


def inspect(path: Path, *, integrity: str = "integrity_check") -> DatabaseInfo:
    """Schema version, tables and the result of `PRAGMA integrity_check` (or `quick_check`)."""
    if integrity not in {"integrity_check", "quick_check"}:
        raise ValueError(integrity)
    try:
        connection = _read_only(path)
        try:
            version = int(connection.execute("PRAGMA user_version").fetchone()[0])
            tables = frozenset(row[0] for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'"))
            problems = [row[0] for row in connection.execute(f"PRAGMA {integrity}")]
        finally:
            connection.close()
    except sqlite3.DatabaseError as exc:
        raise NotADatabase(str(exc)) from None
    return DatabaseInfo(version, tables, "ok" if problems == ["ok"] else (problems[0] if problems else "no answer"))


def copy_online(source: Path, target: Path) -> DatabaseInfo:
    """Copy a live database into `target` (which must not exist) with the sqlite3 backup API,
    make the copy a self-contained file (rollback journal instead of WAL), fsync it and check it.
    Raises when the copy is not sound; the caller removes `target` then."""
    if not source.is_file():
        raise FileNotFoundError(source)
    # An ordinary connection (a read-only one would leave empty -wal/-shm files behind when the
    # bot is stopped); it only reads, and as the last connection it merely folds the WAL in.
    reader = sqlite3.connect(source, timeout=30)
    try:
        reader.execute("PRAGMA busy_timeout = 30000")
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # reports: owner only
        copy = sqlite3.connect(target, isolation_level=None)
        try:
            # pages=-1: everything in one step, i.e. within one read transaction: a consistent snapshot.
            reader.backup(copy, pages=-1)
            # The source is in WAL mode and so is the copy's header; one file is easier to keep and move.
            copy.execute("PRAGMA journal_mode = DELETE")
        finally:
            copy.close()
    finally:
        reader.close()
    with target.open("rb") as handle:
        os.fsync(handle.fileno())
    info = inspect(target)  # a fresh connection: what is really in the file
    if info.integrity != "ok":
        raise RuntimeError(f"the copy failed its integrity check: {info.integrity}")
    if not info.is_minevoice:
        raise RuntimeError("the copy does not look like a MineVoice database")
    return info
