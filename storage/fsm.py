"""Persistent aiogram FSM storage on the bot's SQLite database, so conversations survive restarts."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, KeyBuilder, StateType, StorageKey

from storage.cache import RecentCache
from storage.db import Database

SURVEY_STATES = "SurveyFlow:"  # the states of handlers/survey.py's StatesGroup
CACHED_CONVERSATIONS = 10_000  # people active at once, with room to spare; the rest are read again


class SQLiteStorage(BaseStorage):
    """Write-through: every change is committed before the handler goes on; recent reads are
    served from memory because this process is the database's only writer. A key whose state and
    data are both empty has no row at all."""

    def __init__(self, db: Database, key_builder: KeyBuilder | None = None, *,
                 cached: int = CACHED_CONVERSATIONS) -> None:
        self._db = db
        self._key_builder = key_builder or DefaultKeyBuilder(
            with_bot_id=True, with_business_connection_id=True, with_destiny=True
        )
        self._cache: RecentCache[str, tuple[str | None, dict[str, Any]]] = RecentCache(cached)

    async def _load(self, key: str) -> tuple[str | None, dict[str, Any]]:
        cached = self._cache.get(key)
        if cached is None:
            row = await self._db.fetchone("SELECT state, data FROM fsm_states WHERE key = ?", (key,))
            cached = (row["state"], json.loads(row["data"])) if row else (None, {})
            self._cache[key] = cached
        return cached

    async def _store(self, key: str, state: str | None, data: dict[str, Any]) -> None:
        if self._cache.get(key) == (state, data):
            return  # nothing changed: no write
        if state is None and not data:
            # A finished conversation (a report's draft, survey answers) leaves no copy in the WAL.
            # The delete is atomic by itself: two round trips to the database, not four with a transaction.
            await self._db.execute("DELETE FROM fsm_states WHERE key = ?", (key,))
            await self._db.checkpoint()
            self._cache.pop(key, None)
            return
        await self._db.execute(
            "INSERT INTO fsm_states (key, state, data, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO UPDATE SET state = excluded.state, data = excluded.data, "
            "updated_at = excluded.updated_at",
            (key, state, json.dumps(data, ensure_ascii=False, separators=(",", ":")), int(time.time())),
        )
        self._cache[key] = (state, data)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        built = self._key_builder.build(key)
        _, data = await self._load(built)
        await self._store(built, state.state if isinstance(state, State) else state, data)

    async def get_state(self, key: StorageKey) -> str | None:
        state, _ = await self._load(self._key_builder.build(key))
        return state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        built = self._key_builder.build(key)
        state, _ = await self._load(built)
        await self._store(built, state, dict(data))

    async def set_state_and_data(self, key: StorageKey, state: StateType, data: Mapping[str, Any]) -> None:
        """Both in one write: a flow step changes both, and every write is a round trip."""
        await self._store(self._key_builder.build(key), state.state if isinstance(state, State) else state, dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        _, data = await self._load(self._key_builder.build(key))
        return dict(data)

    async def purge_older_than(self, seconds: int) -> int:
        """Forget conversations abandoned for longer than `seconds`; returns how many. Survey answers
        in progress are kept until their survey closes (see forget_survey): miners may resume later."""
        cutoff = int(time.time()) - seconds
        where = f"updated_at < ? AND (state IS NULL OR state NOT LIKE '{SURVEY_STATES}%')"
        rows = await self._db.fetchall(f"SELECT key FROM fsm_states WHERE {where}", (cutoff,))
        if rows:
            await self._db.execute(f"DELETE FROM fsm_states WHERE {where}", (cutoff,))
            for row in rows:
                self._cache.pop(row["key"], None)
            await self._db.checkpoint()
        return len(rows)

    async def forget_survey(self, survey_id: int) -> int:
        """At a survey's closing: every unfinished answer set of it, kept under its author's user id, goes."""
        rows = await self._db.fetchall(
            f"SELECT key FROM fsm_states WHERE state LIKE '{SURVEY_STATES}%' AND json_extract(data, '$.survey_id') = ?",
            (survey_id,))
        async with self._db.transaction() as tx:
            tx.want_checkpoint()
            for row in rows:
                await tx.execute("DELETE FROM fsm_states WHERE key = ?", (row["key"],))
        for row in rows:
            self._cache.pop(row["key"], None)  # write-through: the cache never holds more than the table
        return len(rows)

    async def close(self) -> None:
        self._cache.clear()
