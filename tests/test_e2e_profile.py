"""Subscribers: /profile, /stop, /subscribe and the one-tap Unsubscribe button."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.e2e_support import InProcessBot, tr
from tests.fake_telegram import FakeTelegram
from tests.flows import choose_language, data_starts, says, tap


@pytest.fixture
async def bot(tg: FakeTelegram, tmp_path: Path):
    process = InProcessBot(tg, tmp_path)
    await process.start()
    yield process
    await process.stop()


def subscriber(bot: InProcessBot, user_id: int) -> tuple:
    with sqlite3.connect(bot.settings.database_path) as connection:
        return connection.execute("SELECT language, subscribed, site_id FROM users WHERE user_id = ?", (user_id,)).fetchone()


async def test_profile_mine_and_subscription(tg: FakeTelegram, bot: InProcessBot) -> None:
    miner = tg.user(6_100_000_001, "Miner", language_code="kk")
    await choose_language(miner, "kk")
    assert subscriber(bot, miner.id) == ("kk", 1, None)  # everyone who started is subscribed

    await miner.send("/profile")
    card = await miner.next_message()
    assert tr("kk", "not chosen") in card["text"]
    await tap(miner, data_starts("pf:mine"), message=card)
    await tap(miner, data_starts("pf:region:ekibastuz-coal"), message=card)
    await tap(miner, data_starts("pf:site:"), message=card)
    language, subscribed, site_id = subscriber(bot, miner.id)
    assert site_id is not None and tr("kk", "not chosen") not in card["text"]

    await tap(miner, data_starts("pf:unsubscribe"), message=card)
    assert subscriber(bot, miner.id)[1] == 0
    await miner.send("/subscribe")
    assert says(await miner.next_message(), "kk", "You will get union announcements again. To stop them: /stop")
    assert subscriber(bot, miner.id)[1] == 1
    await miner.send("/stop")
    assert says(await miner.next_message(), "kk", "You will no longer get union announcements.")
    assert subscriber(bot, miner.id)[1] == 0
    await miner.send("/subscribe")
    await miner.next_message()

    # The button under an announcement: one tap.
    answer = await miner.callback_answer(await miner.press_data("unsub", message=card))
    assert answer["text"] == tr("kk", "Unsubscribed. To get announcements again: /subscribe")
    assert subscriber(bot, miner.id)[1] == 0
    tg.assert_no_errors()


async def test_subscribe_before_choosing_a_language_asks_for_it(tg: FakeTelegram, bot: InProcessBot) -> None:
    newcomer = tg.user(6_100_000_002, "New", language_code="ru")
    await newcomer.send("/subscribe")
    picker = await newcomer.next_message()
    assert newcomer.buttons(picker) == [tr(code, "English") for code in ("kk", "ru", "en")]
    tg.assert_no_errors()
