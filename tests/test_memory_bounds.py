"""What the bot keeps in memory per person must not grow with everyone who ever wrote to it:
a union's bot runs for years with 100,000 subscribers on a small server."""

import asyncio

import pytest
from aiogram.fsm.storage.base import StorageKey

from bot.isolation import PerChatEventIsolation
from bot.limits import SlidingWindowLimit
from bot.pending import ShortLived


def _key(chat_id: int) -> StorageKey:
    return StorageKey(bot_id=1, chat_id=chat_id, user_id=chat_id)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_limit_forgets_people_whose_events_have_expired() -> None:
    clock = Clock()
    limit = SlidingWindowLimit(3, 60, clock=clock)
    for person in range(10_000):
        limit.record(person)
    assert limit.keys_held() == 10_000
    clock.now += 30
    limit.record("recent")
    assert limit.keys_held() == 10_001  # nothing has expired yet
    clock.now += 31
    limit.record("later")
    assert limit.keys_held() == 2  # "recent" (30 s ago) and "later"
    assert limit.retry_after(5) == 0.0


def test_a_limit_still_counts_across_the_sweep() -> None:
    clock = Clock()
    limit = SlidingWindowLimit(3, 60, clock=clock)
    for _ in range(3):
        limit.record("miner")
        clock.now += 25  # the third event is at +50 s; the sweep at +75 s must keep it
    limit.record("someone else")
    assert limit.retry_after("miner") == 0.0  # the first event (+0 s) has left the window
    limit.record("miner")
    assert limit.retry_after("miner") == pytest.approx(25 + 60 - 75)  # until the +25 s event leaves


async def test_one_update_at_a_time_per_chat_and_no_lock_left_behind() -> None:
    isolation = PerChatEventIsolation()
    order: list[str] = []
    first_inside = asyncio.Event()

    async def update(name: str, chat_id: int, hold: asyncio.Event | None = None) -> None:
        async with isolation.lock(_key(chat_id)):
            order.append(f"{name} in")
            if hold is not None:
                first_inside.set()
                await hold.wait()
            order.append(f"{name} out")

    release = asyncio.Event()
    first = asyncio.create_task(update("first", 7, release))
    await first_inside.wait()
    second = asyncio.create_task(update("second", 7))
    other_chat = asyncio.create_task(update("other", 8))
    await other_chat  # another person is not held up
    await asyncio.sleep(0.01)
    assert order == ["first in", "other in", "other out"]  # the same person's next update waits
    assert isolation.locks_held() == 1
    release.set()
    await asyncio.gather(first, second)
    assert order[3:] == ["first out", "second in", "second out"]
    assert isolation.locks_held() == 0


async def test_a_failing_or_cancelled_update_leaves_no_lock() -> None:
    isolation = PerChatEventIsolation()
    with pytest.raises(RuntimeError):
        async with isolation.lock(_key(1)):
            raise RuntimeError("handler failed")
    assert isolation.locks_held() == 0

    holding = asyncio.Event()

    async def held() -> None:
        async with isolation.lock(_key(2)):
            holding.set()
            await asyncio.sleep(3600)

    holder = asyncio.create_task(held())
    await holding.wait()
    waiter = asyncio.create_task(held())
    await asyncio.sleep(0.01)
    waiter.cancel()  # cancelled while waiting for the lock
    holder.cancel()
    await asyncio.gather(holder, waiter, return_exceptions=True)
    assert isolation.locks_held() == 0
    async with isolation.lock(_key(2)):  # and the chat is not stuck
        pass


async def test_many_people_leave_nothing_behind() -> None:
    isolation = PerChatEventIsolation()

    async def update(chat_id: int) -> None:
        async with isolation.lock(_key(chat_id)):
            await asyncio.sleep(0)

    await asyncio.gather(*(update(chat_id) for chat_id in range(5_000)))
    assert isolation.locks_held() == 0


async def test_a_short_lived_entry_goes_on_its_own_when_it_expires() -> None:
    memo: ShortLived[str] = ShortLived(0.05)
    memo.put(1, "MV-7K3Q9")
    memo.put(2, "MV-AAAAA")
    assert memo.get(1) == "MV-7K3Q9" and memo.held() == 2
    await asyncio.sleep(0.03)
    memo.put(2, "MV-BBBBB")  # replaced: its time starts again
    await asyncio.sleep(0.04)
    assert memo.get(1) is None and memo.get(2) == "MV-BBBBB"  # nobody asked for 1: it went anyway
    assert memo.pop(2) == "MV-BBBBB" and memo.held() == 0
    await asyncio.sleep(0.06)  # the popped entry's timer was cancelled with it
    assert memo.pop(2) is None
