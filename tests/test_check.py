"""`python -m bot check`: one line per check with ✓ or ✗ and plain advice; exit status 0 or 1."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

from storage.backup import latest_schema_version
from tests.e2e_support import ROOT
from tests.fake_telegram import FakeTelegram

OTHER_TOKEN = "987654321:AAF-another-token-telegram-rejects-0000"


def environment(tg: FakeTelegram, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
            "BOT_TOKEN": tg.token, "TELEGRAM_API_BASE": tg.base_url,
            "DATABASE_PATH": str(tmp_path / "data" / "minevoice.sqlite3"),
            "BACKUP_DIR": str(tmp_path / "data" / "backups"), "ADMIN_IDS": "1"} | extra


async def check(env: dict[str, str], cwd: Path) -> tuple[int, dict[str, str], str]:
    """Exit status, {check name: its line}, and stderr."""
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "check", cwd=cwd, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 120)
    lines = out.decode().splitlines()
    by_name = {line.split(":", 1)[0][2:]: line for line in lines}
    assert len(by_name) == len(lines), out.decode()
    return process.returncode, by_name, err.decode()


async def test_everything_fine_against_the_fake_bot_api(tg: FakeTelegram, tmp_path: Path) -> None:
    code, lines, err = await check(environment(tg, tmp_path), tmp_path)
    assert code == 0, (lines, err)
    assert set(lines) == {"settings", "database", "translations", "backups", "telegram", "webhook"}
    assert all(line.startswith("✓ ") for line in lines.values()), lines
    assert "@minevoice_test_bot" in lines["telegram"]
    assert "created" in lines["database"]  # no database yet: the first start makes it
    assert not (tmp_path / "data" / "minevoice.sqlite3").exists(), "check must not create the database"
    assert "Traceback" not in err and tg.token not in err
    assert [call.method.lower() for call in tg.calls] == ["getme", "getwebhookinfo"]  # check only reads


async def test_a_token_telegram_rejects_is_a_cross_with_advice(tg: FakeTelegram, tmp_path: Path) -> None:
    code, lines, err = await check(environment(tg, tmp_path, BOT_TOKEN=OTHER_TOKEN), tmp_path)
    assert code == 1
    assert lines["telegram"].startswith("✗ ") and "@BotFather" in lines["telegram"]
    assert lines["settings"].startswith("✓ ") and lines["translations"].startswith("✓ ")
    assert OTHER_TOKEN not in "".join(lines.values()) + err


async def test_a_malformed_setting_is_a_cross_in_one_sentence(tg: FakeTelegram, tmp_path: Path) -> None:
    code, lines, err = await check(environment(tg, tmp_path, BOT_TOKEN="not-a-token"), tmp_path)
    assert code == 1 and "Traceback" not in err
    assert lines["settings"].startswith("✗ settings: BOT_TOKEN is not a valid bot token")
    assert lines["translations"].startswith("✓ ")  # what can be checked without settings still is
    assert tg.calls == []

    code, lines, _ = await check(environment(tg, tmp_path, MODE="webhook"), tmp_path)
    assert code == 1 and "WEBHOOK_URL" in lines["settings"] and lines["settings"].startswith("✗ ")


async def test_an_unreachable_bot_api_is_a_cross(tg: FakeTelegram, tmp_path: Path) -> None:
    code, lines, _ = await check(environment(tg, tmp_path, TELEGRAM_API_BASE="http://127.0.0.1:9"), tmp_path)
    assert code == 1
    assert lines["telegram"].startswith("✗ ") and "could not reach http://127.0.0.1:9" in lines["telegram"]


def run_database_check(path: Path, capsys) -> tuple[bool, str]:
    from bot.__main__ import _check_database, _Report

    report = _Report()
    _check_database(report, path)
    return report.failed, capsys.readouterr().out


async def test_database_states(tmp_path: Path, capsys) -> None:
    from storage.db import Database

    path = tmp_path / "data" / "minevoice.sqlite3"
    db = await Database.open(path)
    await db.migrate()
    await db.close()
    failed, line = run_database_check(path, capsys)
    assert not failed and line.startswith("✓ database") and f"schema {latest_schema_version()}, up to date" in line
    assert not Path(f"{path}-wal").exists() and not Path(f"{path}-shm").exists(), "check left files behind"

    db = await Database.open(path)  # the bot running: its WAL is there, the check reads through it
    try:
        await db.execute("PRAGMA user_version = 1")
        failed, line = run_database_check(path, capsys)
        assert not failed and f"{latest_schema_version() - 1} migration(s) are applied at the next start" in line
    finally:
        await db.close()

    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {latest_schema_version() + 1}")
    connection.commit()
    connection.close()
    failed, line = run_database_check(path, capsys)
    assert failed and line.startswith("✗ database") and "newer than this code" in line

    path.write_bytes(b"this is not a database " * 100)
    failed, line = run_database_check(path, capsys)
    assert failed and line.startswith("✗ database") and "restore a backup" in line


async def test_a_webhook_left_behind_breaks_polling_and_is_flagged(tg: FakeTelegram, tmp_path: Path, capsys) -> None:
    from bot.__main__ import _check_telegram, _Report
    from bot.config import load_settings

    tg.webhook = {"url": "https://old.example.org/hook"}
    for overrides, failed, words in (({}, True, "deleteWebhook"),
                                     ({"mode": "webhook", "webhook_url": "https://new.example.org/hook"}, False,
                                      "registers it when it starts"),
                                     ({"mode": "webhook", "webhook_url": "https://old.example.org/hook"}, False,
                                      "Telegram delivers to https://old.example.org/hook")):
        settings = load_settings(bot_token=tg.token, telegram_api_base=tg.base_url, _env_file=None, **overrides)
        report = _Report()
        await _check_telegram(report, settings)
        out = capsys.readouterr().out
        webhook_line = next(line for line in out.splitlines() if line[2:].startswith("webhook:"))
        assert report.failed is failed and webhook_line.startswith("✗ " if failed else "✓ ")
        assert words in webhook_line, webhook_line
