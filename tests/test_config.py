import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import SettingsError, load_settings
from tests.conftest import TOKEN

ROOT = Path(__file__).resolve().parent.parent


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_PATH", raising=False)
    settings = load_settings(bot_token=TOKEN, _env_file=None)
    assert settings.default_locale == "ru"
    assert settings.timezone == "Asia/Almaty"
    assert str(settings.database_path) == "data/minevoice.sqlite3"
    assert settings.admin_ids == frozenset()


def test_admin_ids_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_IDS", "11, 22,33")
    assert load_settings(bot_token=TOKEN, _env_file=None).admin_ids == {11, 22, 33}


@pytest.mark.parametrize("token, word", [("", "missing"), ("not-a-token", "not a valid bot token")])
def test_bad_token_is_one_plain_sentence(token: str, word: str) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(bot_token=token, _env_file=None)
    assert word in str(raised.value) and "@BotFather" in str(raised.value)


def test_bad_timezone_names_the_setting() -> None:
    with pytest.raises(SettingsError, match="TIMEZONE"):
        load_settings(bot_token=TOKEN, timezone="Mars/Olympus", _env_file=None)


def test_start_without_token_gives_advice_not_traceback(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "bot"], cwd=tmp_path, env=env | {"PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "BOT_TOKEN is missing" in result.stderr and "@BotFather" in result.stderr
