from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings, load_settings

TOKEN = "123456789:AAF-fake-token-for-tests-only-000000"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(bot_token=TOKEN, database_path=tmp_path / "data" / "minevoice.sqlite3", _env_file=None)
