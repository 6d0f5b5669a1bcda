"""Daily online backups with rotation, restoring one, and the lock that tells a running bot apart.

Backups are `BACKUP_DIR/minevoice-YYYYMMDDTHHMMSSZ.sqlite3` (UTC), each a complete SQLite file
made with the backup API while the bot runs and checked with `PRAGMA integrity_check` before it
gets its name; the newest `BACKUP_KEEP` stay. A backup holds reports as they were that night:
text that retention clears later stays in older backups until rotation drops them."""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from storage.backup import DatabaseInfo, NotADatabase, copy_online, inspect, latest_schema_version

try:
    import fcntl
except ImportError:  # pragma: no cover - not Unix: no lock, restore relies on the operator
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_NAME = re.compile(r"^minevoice-(\d{8}T\d{6}Z)(?:-(\d+))?\.sqlite3$")
_STAMP = "%Y%m%dT%H%M%SZ"
_PARTIAL_SUFFIX = ".partial"


class AlreadyRunning(Exception):
    """Another process holds the database's run lock (the bot, or a restore in progress)."""


class RestoreRefused(Exception):
    """Restoring would be unsafe or pointless; the message says why, in one sentence."""


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    taken_at: datetime  # UTC, from the file name

    @property
    def size(self) -> int:
        return self.path.stat().st_size


# --- the run lock --------------------------------------------------------------------------


def lock_path(database_path: Path) -> Path:
    return database_path.with_name(database_path.name + ".lock")


@contextmanager
def run_lock(database_path: Path) -> Iterator[None]:
    """Held for the whole life of `python -m bot` and during a restore, so a restore never swaps
    the file under a running bot and a second bot never shares its database. An flock is dropped
    by the kernel when its process dies, so a crash leaves nothing stale. The file itself stays:
    deleting a lock file races with the next process that opens it."""
    if fcntl is None:  # pragma: no cover
        yield
        return
    path = lock_path(database_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise AlreadyRunning(str(database_path)) from None
        yield
    finally:
        os.close(fd)  # releases the lock


# --- backups -------------------------------------------------------------------------------


def list_backups(backup_dir: Path) -> list[Backup]:
    """MineVoice's backups in the folder, oldest first (other files are left alone)."""
    if not backup_dir.is_dir():
        return []
    found = []
    for entry in backup_dir.iterdir():
        match = _NAME.match(entry.name)
        if match and entry.is_file():
            taken = datetime.strptime(match.group(1), _STAMP).replace(tzinfo=UTC)
            found.append((taken, int(match.group(2) or 0), Backup(entry, taken)))
    found.sort(key=lambda item: item[:2])
    return [backup for _, _, backup in found]


def newest_backup(backup_dir: Path) -> Backup | None:
    backups = list_backups(backup_dir)
    return backups[-1] if backups else None


def _free_name(backup_dir: Path, now: datetime) -> Path:
    stamp = now.astimezone(UTC).strftime(_STAMP)
    path = backup_dir / f"minevoice-{stamp}.sqlite3"
    counter = 0
    while path.exists():  # two backups within one second (a manual one and the nightly one)
        counter += 1
        path = backup_dir / f"minevoice-{stamp}-{counter}.sqlite3"
    return path


def make_backup(database_path: Path, backup_dir: Path, keep: int, now: datetime | None = None) -> Path:
    """Copy the database (live or not) into a new, verified backup, then keep only the newest
    `keep`. Blocking; `back_up` runs it in a thread. A failed copy never gets a backup's name."""
    backup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = _free_name(backup_dir, now or datetime.now(UTC))
    partial = target.with_name(f".{target.name}{_PARTIAL_SUFFIX}")
    try:
        copy_online(database_path, partial)
        os.replace(partial, target)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    _fsync_dir(backup_dir)
    rotate(backup_dir, keep)
    return target


def rotate(backup_dir: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups, and copies a crash left half made; returns what went."""
    removed = []
    for backup in list_backups(backup_dir)[:-keep] if keep > 0 else []:
        backup.path.unlink(missing_ok=True)
        removed.append(backup.path)
    for entry in backup_dir.glob(f".minevoice-*{_PARTIAL_SUFFIX}"):
        entry.unlink(missing_ok=True)  # only one backup runs at a time (max_instances=1)
        removed.append(entry)
    return removed


async def back_up(database_path: Path, backup_dir: Path, keep: int) -> Path:
    """The daily job's work, off the event loop: the bot keeps answering meanwhile."""
    return await asyncio.to_thread(make_backup, database_path, backup_dir, keep)


# --- restore -------------------------------------------------------------------------------


def check_backup_file(backup_file: Path) -> DatabaseInfo:
    """The file is a sound MineVoice database this version of the bot can start from."""
    if not backup_file.is_file():
        raise RestoreRefused(f"{backup_file} does not exist or is not a file.")
    try:
        info = inspect(backup_file)
    except NotADatabase:
        raise RestoreRefused(f"{backup_file} is not an SQLite database, so it is not a MineVoice backup.") from None
    if not info.is_minevoice:
        raise RestoreRefused(f"{backup_file} is an SQLite database but not a MineVoice one (its tables do not match).")
    if info.user_version > latest_schema_version():
        raise RestoreRefused(
            f"{backup_file} was made by a newer MineVoice (schema {info.user_version}, this code knows "
            f"{latest_schema_version()}); upgrade the code first.")
    if info.integrity != "ok":
        raise RestoreRefused(f"{backup_file} is damaged ({info.integrity}); pick an older backup.")
    return info


def restore(database_path: Path, backup_file: Path, now: datetime | None = None) -> Path | None:
    """Put `backup_file` in place of the database, the bot being stopped. The current database
    (with its -wal and -shm, which may hold its newest transactions) is moved aside, not deleted;
    returns where it went (None when there was none). Migrations newer than the backup run at the
    next start."""
    backup_file = backup_file.resolve()
    if database_path.exists() and backup_file == database_path.resolve():
        raise RestoreRefused("that file is the database itself; give a backup file from BACKUP_DIR.")
    check_backup_file(backup_file)
    try:
        with run_lock(database_path):
            return _swap_in(database_path, backup_file, now or datetime.now(UTC))
    except AlreadyRunning:
        raise RestoreRefused(
            "the bot is running on this database; stop it first (sudo systemctl stop minevoice), "
            "then restore, then start it again.") from None


def _swap_in(database_path: Path, backup_file: Path, now: datetime) -> Path | None:
    directory = database_path.parent
    directory.mkdir(parents=True, exist_ok=True)
    # Copy first, next to the database (same file system), so the final step is one rename. The
    # backup API rather than a file copy: a file with its own -wal (a safety copy being put back)
    # comes over complete, and the copy is verified again.
    incoming = directory / f".{database_path.name}.restoring"
    incoming.unlink(missing_ok=True)
    try:
        copy_online(backup_file, incoming)
    except Exception as exc:
        incoming.unlink(missing_ok=True)
        raise RestoreRefused(f"{backup_file} could not be copied ({exc}); the database was not touched.") from None
    safety = None
    if database_path.exists():
        stamp = now.astimezone(UTC).strftime(_STAMP)
        safety = database_path.with_name(f"{database_path.name}.before-restore-{stamp}")
        counter = 0
        while safety.exists():  # never overwrite an earlier safety copy
            counter += 1
            safety = database_path.with_name(f"{database_path.name}.before-restore-{stamp}-{counter}")
        for suffix in ("", "-wal", "-shm"):
            current = Path(f"{database_path}{suffix}")
            if current.exists():
                # Same base name + suffix: SQLite opens the safety copy with its own WAL.
                os.replace(current, Path(f"{safety}{suffix}"))
    else:
        for suffix in ("-wal", "-shm"):  # a WAL without its database would be applied to the backup
            Path(f"{database_path}{suffix}").unlink(missing_ok=True)
    os.replace(incoming, database_path)
    _fsync_dir(directory)
    return safety


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - not supported on this platform
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)
