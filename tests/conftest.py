from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings, load_settings

TOKEN = "123456789:AAF-fake-token-for-tests-only-000000"


@pytest.fixture
async def tg():
    """The fake Telegram Bot API on 127.0.0.1 that end-to-end tests play users on."""
    from tests.fake_telegram import FakeTelegram

    async with FakeTelegram() as fake:
        yield fake


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(bot_token=TOKEN, database_path=tmp_path / "data" / "minevoice.sqlite3", _env_file=None)
