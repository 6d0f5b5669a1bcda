"""What a person is in the middle of, held in memory for minutes and then forgotten on its own.

Used for a case code typed before its receipt, and for the case a reporter is writing to. Such a
(person, case) pair would say who reported what, so it is never stored, and it must not sit in the
process's memory after the person has walked away either: each entry is dropped by a timer when it
expires, not when (or if) its owner comes back.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

Value = TypeVar("Value")


class ShortLived(Generic[Value]):
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._entries: dict[int, tuple[Value, asyncio.TimerHandle]] = {}

    def put(self, person: int, value: Value) -> None:
        self.pop(person)
        expiry = asyncio.get_running_loop().call_later(self.seconds, self._entries.pop, person, None)
        self._entries[person] = (value, expiry)

    def get(self, person: int) -> Value | None:
        entry = self._entries.get(person)
        return None if entry is None else entry[0]

    def pop(self, person: int) -> Value | None:
        entry = self._entries.pop(person, None)
        if entry is None:
            return None
        entry[1].cancel()
        return entry[0]

    def held(self) -> int:
        return len(self._entries)
