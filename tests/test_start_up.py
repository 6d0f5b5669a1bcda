"""Start-up: the bot serves at once; digests due since it was down go out while it serves."""

import asyncio
import gc
import logging
from pathlib import Path

import pytest
from aiogram.exceptions import TelegramUnauthorizedError

from bot.app import close_app, open_app, start_app
from bot.config import load_settings
from tests.e2e_support import release_routers
from tests.fake_telegram import FakeTelegram


async def test_due_digests_do_not_hold_up_start_up_and_stop_cleanly_at_shutdown(tg: FakeTelegram, tmp_path: Path) -> None:
    settings = load_settings(bot_token=tg.token, telegram_api_base=tg.base_url,
                             database_path=tmp_path / "data" / "minevoice.sqlite3", _env_file=None)
    app = await open_app(settings)
    started, release, stopped = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def slow_digests(now) -> None:  # a Monday's hundreds of digest messages
        started.set()
        try:
            await release.wait()
        except asyncio.CancelledError:
            stopped.set()
            raise

    app.services.digests.run_due = slow_digests
    await asyncio.wait_for(start_app(app), timeout=10)  # returns with the digests still going out
    await asyncio.wait_for(started.wait(), timeout=5)
    assert not app.digest_catch_up.done()
    assert tg.calls_to("setMyCommands"), "the quick start-up steps ran first"

    release_routers(app.dispatcher)
    await close_app(app)
    assert stopped.is_set() and app.digest_catch_up.cancelled()


async def test_a_token_refused_during_the_digest_catch_up_is_logged_once(tg: FakeTelegram, tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(bot_token=tg.token, telegram_api_base=tg.base_url,
                             database_path=tmp_path / "data" / "minevoice.sqlite3", _env_file=None)
    app = await open_app(settings)
    unreported: list[dict] = []
    asyncio.get_running_loop().set_exception_handler(lambda loop, context: unreported.append(context))

    async def refused(now) -> None:  # the token was revoked while the bot was down
        await asyncio.sleep(0.05)
        raise TelegramUnauthorizedError(method=None, message="Unauthorized")

    app.services.digests.run_due = refused
    with caplog.at_level(logging.ERROR, logger="bot.app"):
        await asyncio.wait_for(start_app(app), timeout=10)
        await asyncio.wait([app.digest_catch_up], timeout=5)
    assert [record.getMessage() for record in caplog.records if record.name == "bot.app"] == [
        "The digests due at start-up stopped: Telegram server says - Unauthorized; they go out at the next run"]

    release_routers(app.dispatcher)
    await close_app(app)
    app.digest_catch_up = None
    gc.collect()
    assert not unreported  # nothing left for asyncio's "exception was never retrieved"
