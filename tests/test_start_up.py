"""Start-up: the bot serves at once; digests due since it was down go out while it serves."""

import asyncio
from pathlib import Path

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
