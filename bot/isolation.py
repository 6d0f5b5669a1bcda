"""One update at a time per person, without a lock kept for every person who ever wrote.

aiogram's SimpleEventIsolation keeps each chat's lock in a dict for the life of the process (its
own TODO asks for a cleaner): with 100,000 subscribers that is tens of megabytes after a few
months. Here a lock lives only while an update of that chat is being handled or waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from aiogram.fsm.storage.base import BaseEventIsolation, StorageKey


class _Held:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0  # updates holding or waiting for the lock


class PerChatEventIsolation(BaseEventIsolation):
    def __init__(self) -> None:
        self._held: dict[StorageKey, _Held] = {}

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = _Held()
        held.users += 1
        try:
            async with held.lock:
                yield
        finally:
            held.users -= 1
            if not held.users:
                del self._held[key]

    def locks_held(self) -> int:
        """Chats with an update being handled or waiting. (Not __len__: aiogram takes
        `events_isolation or DisabledEventIsolation()`, and an empty one would be falsy.)"""
        return len(self._held)

    async def close(self) -> None:
        self._held.clear()
