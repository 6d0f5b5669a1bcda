"""Webhook mode: the real application behind its aiohttp server, Telegram played by the fake Bot API
(which records setWebhook; the tests deliver updates the way Telegram would, by POSTing them)."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
import signal
import socket
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from bot.config import SettingsError, load_settings
from bot.webhook import build_web_app, run_webhook, webhook_path
from storage.db import Database
from tests.e2e_support import ROOT, tr
from tests.fake_telegram import FakeTelegram

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
URL = "https://bot.example.org/telegram/updates"
_update_ids = itertools.count(900_000_001)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def webhook_settings(tg: FakeTelegram, tmp_path: Path, **overrides: object):
    values = dict(bot_token=tg.token, telegram_api_base=tg.base_url, database_path=tmp_path / "data" / "mv.sqlite3",
                  backup_dir=tmp_path / "backups", mode="webhook", webhook_url=URL, web_port=free_port(),
                  _env_file=None)
    return load_settings(**(values | overrides))


def release_routers() -> None:
    """aiogram's routers are module-level and attach to one dispatcher for life; a later test in
    this process builds a new dispatcher (see tests/e2e_support.InProcessBot._release)."""
    from handlers import all_routers

    for router in all_routers():
        router._parent_router = None  # noqa: SLF001


def start_update(user_id: int, first_name: str, language_code: str = "ru") -> dict:
    sender = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": language_code}
    return {"update_id": next(_update_ids), "message": {
        "message_id": 1, "date": int(time.time()), "chat": {"id": user_id, "type": "private", "first_name": first_name},
        "from": sender, "text": "/start", "entities": [{"type": "bot_command", "offset": 0, "length": 6}]}}


class WebhookBot:
    """`run_webhook` as a task in the test's loop, stopped like SIGTERM would (the stop event)."""

    def __init__(self, settings) -> None:
        self.settings = settings
        self.stop_event = asyncio.Event()
        self.task: asyncio.Task | None = None
        self.base = f"http://127.0.0.1:{settings.web_port}"

    async def __aenter__(self) -> WebhookBot:
        self.task = asyncio.create_task(run_webhook(self.settings, stop=self.stop_event))
        return self

    async def wait_registered(self, tg: FakeTelegram, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not tg.webhook.get("url"):
            if self.task.done():
                self.task.result()  # raises what stopped it
                raise AssertionError("run_webhook returned before registering the webhook")
            assert time.monotonic() < deadline, "setWebhook was never called"
            await asyncio.sleep(0.02)

    async def __aexit__(self, *exc: object) -> None:
        self.stop_event.set()
        try:
            await asyncio.wait_for(self.task, 30)
        finally:
            release_routers()


async def post_update(base: str, path: str, update: dict, secret: str | None) -> aiohttp.ClientResponse:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    async with aiohttp.ClientSession() as session:
        async with session.post(base + path, json=update, headers=headers) as response:
            await response.read()
            return response


async def get_health(base: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(base + "/health") as response:
            return response.status, await response.json()


async def test_webhook_registers_handles_only_signed_updates_and_reports_health(tg: FakeTelegram,
                                                                                  tmp_path: Path) -> None:
    settings = webhook_settings(tg, tmp_path, webhook_secret="s3cret_for-the-test")
    async with WebhookBot(settings) as bot:
        await bot.wait_registered(tg)
        (call,) = tg.calls_to("setWebhook")
        assert call.params["url"] == URL
        assert call.params["secret_token"] == "s3cret_for-the-test"
        assert not call.params.get("drop_pending_updates")
        assert {"message", "callback_query"} <= set(call.params["allowed_updates"])

        alice = tg.user(1001, "Alice", language_code="ru", started=True)
        path = webhook_path(URL)
        assert path == "/telegram/updates"

        # Wrong or missing secret: refused, nothing handled.
        for secret in ("wrong", None, ""):
            response = await post_update(bot.base, path, start_update(alice.id, "Alice"), secret)
            assert response.status in (401, 403)
        await asyncio.sleep(0.3)
        assert tg.calls_to("sendMessage", chat_id=alice.id) == []

        # The right secret: handled, and answered only once handled (a restart cannot lose it).
        response = await post_update(bot.base, path, start_update(alice.id, "Alice"), "s3cret_for-the-test")
        assert response.status == 200
        assert tg.calls_to("sendMessage", chat_id=alice.id), "the update was acknowledged before it was handled"
        picker = await alice.next_message()
        assert tr("ru", "Choose your language") in picker["text"]
        assert "English" in alice.buttons(picker)

        status, body = await get_health(bot.base)
        assert status == 200, body
        assert body["status"] == "ok" and body["database"] == "ok" and body["announcements"] == "running"
        assert body["last_backup_age_hours"] is None  # no backup yet: reported, not a failure

    # Stopped: the webhook stays, so Telegram keeps updates for the next start.
    assert tg.webhook.get("url") == URL
    assert tg.calls_to("deleteWebhook") == []
    tg.assert_no_errors()


async def test_without_webhook_secret_a_random_one_is_made_at_each_start(tg: FakeTelegram, tmp_path: Path) -> None:
    secrets_seen = []
    for _ in range(2):
        settings = webhook_settings(tg, tmp_path)
        assert settings.webhook_secret is None
        async with WebhookBot(settings) as bot:
            await bot.wait_registered(tg)
            secret = tg.webhook["secret_token"]
            assert len(secret) >= 32
            secrets_seen.append(secret)
            user = tg.user(2000 + len(secrets_seen), "Bob", started=True)
            assert (await post_update(bot.base, webhook_path(URL), start_update(user.id, "Bob"), "guess")).status == 401
            assert (await post_update(bot.base, webhook_path(URL), start_update(user.id, "Bob"), secret)).status == 200
            await user.next_message()
        tg.webhook.clear()  # as if Telegram forgot it, so wait_registered sees the next start
    assert secrets_seen[0] != secrets_seen[1]
    tg.assert_no_errors()


async def test_health_is_503_when_the_database_does_not_answer(tg: FakeTelegram, tmp_path: Path) -> None:
    from aiohttp.test_utils import TestClient, TestServer

    from bot.app import running

    settings = webhook_settings(tg, tmp_path)
    closed = await Database.open(tmp_path / "gone.sqlite3")
    await closed.close()
    try:
        async with running(settings) as app:
            for db, expected in ((app.db, 200), (closed, 503)):
                web_app = build_web_app(dataclasses.replace(app, db=db), "secret", "/hook")
                async with TestClient(TestServer(web_app)) as client:
                    response = await client.get("/health")
                    body = await response.json()
                    assert response.status == expected, body
                    assert (body["database"] == "ok") is (expected == 200)
                    assert response.headers["Cache-Control"] == "no-store"
    finally:
        release_routers()


async def test_python_m_bot_in_webhook_mode_stops_on_sigterm_and_keeps_the_webhook(tg: FakeTelegram,
                                                                                     tmp_path: Path) -> None:
    port = free_port()
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "PYTHONPATH": str(ROOT),
           "BOT_TOKEN": tg.token, "TELEGRAM_API_BASE": tg.base_url, "DATABASE_PATH": str(tmp_path / "mv.sqlite3"),
           "BACKUP_DIR": str(tmp_path / "backups"), "MODE": "webhook", "WEBHOOK_URL": URL,
           "WEBHOOK_SECRET": "process-secret", "WEB_PORT": str(port), "LOG_LEVEL": "INFO"}
    log_path = tmp_path / "bot.log"
    user = tg.user(7_300_194_631, "Dana", started=True)
    with log_path.open("wb") as log:
        process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", cwd=tmp_path, env=env,
                                                       stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        while not tg.webhook.get("url"):
            assert process.returncode is None, log_path.read_text()
            assert time.monotonic() < deadline, log_path.read_text()
            await asyncio.sleep(0.05)
        status, body = await get_health(f"http://127.0.0.1:{port}")
        assert status == 200, body
        response = await post_update(f"http://127.0.0.1:{port}", webhook_path(URL), start_update(user.id, "Dana"),
                                     "process-secret")
        assert response.status == 200
        await user.next_message()
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(process.wait(), 30)
    log = log_path.read_text()
    assert returncode == 0, log
    assert "Traceback" not in log, log
    assert "process-secret" not in log and tg.token not in log
    assert str(user.id) not in log and "POST" not in log  # no access log: nothing times an update
    assert tg.webhook.get("url") == URL


async def test_setwebhook_is_retried_while_telegram_fails(tg: FakeTelegram, tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    tg.inject_error(method="setWebhook", error_code=502, description="Bad Gateway", times=2)
    async with WebhookBot(webhook_settings(tg, tmp_path)) as bot:
        await bot.wait_registered(tg)
        assert len(tg.calls_to("setWebhook")) == 3
        status, _ = await get_health(bot.base)
        assert status == 200
    assert "Could not register the webhook with Telegram" in caplog.text


async def test_a_url_telegram_refuses_stops_with_advice(tg: FakeTelegram, tmp_path: Path) -> None:
    from bot.webhook import WebhookError

    tg.inject_error(method="setWebhook", error_code=400, description="Bad Request: bad webhook: Failed to resolve host")
    with pytest.raises(WebhookError, match="Telegram refused WEBHOOK_URL .*Failed to resolve host"):
        async with WebhookBot(webhook_settings(tg, tmp_path)) as bot:
            await bot.wait_registered(tg)


@pytest.mark.parametrize("overrides, words", [
    ({"mode": "webhook"}, ("WEBHOOK_URL", "MODE=webhook")),
    ({"mode": "webhook", "webhook_url": ""}, ("WEBHOOK_URL", "MODE=webhook")),
    ({"mode": "webhook", "webhook_url": "http://bot.example.org/hook"}, ("WEBHOOK_URL", "https://")),
    ({"webhook_url": "bot.example.org/hook"}, ("WEBHOOK_URL", "https://")),
    ({"webhook_secret": "has spaces and ünïcode"}, ("WEBHOOK_SECRET", "A-Z")),
    ({"mode": "both"}, ("MODE",)),
])
def test_webhook_settings_are_checked_in_one_sentence(overrides: dict, words: tuple[str, ...]) -> None:
    with pytest.raises(SettingsError) as raised:
        load_settings(bot_token="123456789:AAF-fake-token-for-tests-only-000000", _env_file=None, **overrides)
    message = str(raised.value)
    assert all(word in message for word in words), message
    assert message.count(". ") == 0 and message.endswith(".")
    assert "ünïcode" not in message  # a secret is never echoed


def test_polling_stays_the_default_and_a_webhook_needs_nothing_else() -> None:
    token = "123456789:AAF-fake-token-for-tests-only-000000"
    settings = load_settings(bot_token=token, _env_file=None)
    assert settings.mode == "polling" and settings.webhook_url is None and settings.webhook_secret is None
    settings = load_settings(bot_token=token, _env_file=None, mode="webhook", webhook_url=" https://b.example.org ",
                             webhook_secret="")
    assert settings.webhook_url == "https://b.example.org" and settings.webhook_secret is None
    assert webhook_path(settings.webhook_url) == "/"
