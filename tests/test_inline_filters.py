"""bot/app.py: aiogram would run each synchronous filter in a worker thread; the wiring makes
them run in the event loop, for the real routers, and the result is the same."""

import asyncio
import time

from aiogram import Dispatcher, F, Router
from aiogram.types import Chat, Message, Update, User

from bot.app import evaluate_sync_filters_inline
from handlers import all_routers
from tests.e2e_support import release_routers
from tests.mocked_bot import MockedBot


def _message(text: str) -> Update:
    return Update(update_id=1, message=Message(message_id=1, date=int(time.time()), text=text,
                                               chat=Chat(id=5, type="private"),
                                               from_user=User(id=5, is_bot=False, first_name="Miner")))


async def test_filters_run_in_the_loop_and_still_decide(monkeypatch) -> None:
    router = Router()
    seen: list[str] = []

    @router.message(F.text.startswith("/report"), lambda message: message.chat.id == 5)
    async def matched(message: Message) -> None:
        seen.append(message.text)

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    evaluate_sync_filters_inline(dispatcher)

    async def no_threads(*args, **kwargs):
        raise AssertionError("a filter went to a worker thread")

    monkeypatch.setattr(asyncio, "to_thread", no_threads)
    bot = MockedBot()
    await dispatcher.feed_update(bot, _message("/report"))
    await dispatcher.feed_update(bot, _message("/status"))
    assert seen == ["/report"]


def test_every_filter_of_the_bot_runs_in_the_loop() -> None:
    dispatcher = Dispatcher()
    dispatcher.include_routers(*all_routers())
    try:
        evaluate_sync_filters_inline(dispatcher)
        filters = [filter_ for router in dispatcher.chain_tail for observer in router.observers.values()
                   for handler in (observer._handler, *observer.handlers) for filter_ in handler.filters or ()]
        assert len(filters) > 50
        assert all(filter_.awaitable for filter_ in filters)
    finally:
        release_routers(dispatcher)
