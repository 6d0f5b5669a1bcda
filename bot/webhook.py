"""Webhook mode: Telegram POSTs each update to WEBHOOK_URL; a reverse proxy with TLS passes it to
the built-in aiohttp server on WEB_HOST:WEB_PORT, which also answers `GET /health`.

- Only requests carrying the secret token in `X-Telegram-Bot-Api-Secret-Token` are handled (401
  otherwise). WEBHOOK_SECRET, or a fresh random one at each start: Telegram learns it from
  setWebhook, so nobody else has to know it.
- An update is answered only after it has been handled. If the bot stops or crashes meanwhile,
  Telegram gets no answer and delivers the update again; at shutdown the server first stops taking
  requests and lets the ones under way finish, then the rest of the bot closes.
- The webhook is left registered at shutdown: Telegram keeps the updates that arrive during a
  restart and delivers them once the server answers again. Deleting it would also keep them, but a
  bot that is down for good and a restart would look the same to Telegram, and a polling instance
  started by mistake meanwhile would take them. To go back to polling, the webhook must be removed.
- Telegram out of reach at start: setWebhook is retried (up to once a minute) while the server
  already answers; updates signed with an older secret get 401 meanwhile and Telegram resends them.
- No access log: a line per request would time every update, and so every report.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import time
from urllib.parse import urlsplit

from aiogram.exceptions import TelegramBadRequest, TelegramNetworkError, TelegramRetryAfter, TelegramServerError
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

from bot.app import App, running
from bot.backup import newest_backup
from bot.config import Settings

log = logging.getLogger(__name__)

HEALTH_PATH = "/health"
HEALTH_DB_TIMEOUT = 5.0
# Requests still being handled at shutdown get this long to finish.
SHUTDOWN_GRACE_SECONDS = 50.0
REGISTER_FIRST_RETRY_SECONDS = 1.0
REGISTER_MAX_RETRY_SECONDS = 60.0

_APP_KEY = web.AppKey("minevoice_app", App)


class WebhookError(Exception):
    """The web server or the webhook could not be set up; the message says what to do."""


def webhook_path(url: str) -> str:
    """The local path Telegram's requests arrive on: the path of WEBHOOK_URL (the proxy keeps it)."""
    return urlsplit(url).path or "/"


def webhook_secret(settings: Settings) -> str:
    if settings.webhook_secret is not None:
        return settings.webhook_secret.get_secret_value()
    return secrets.token_urlsafe(32)  # 43 characters of A-Z a-z 0-9 _ -, as Telegram requires


async def health(app: App) -> tuple[int, dict[str, object]]:
    """200 when the database answers and the background work runs, 503 otherwise. Only states
    and ages, nothing about users or reports."""
    checks: dict[str, object] = {}
    healthy = True
    try:
        answered = await asyncio.wait_for(app.db.ping(), HEALTH_DB_TIMEOUT)
        checks["database"] = "ok" if answered else "no answer"
    except TimeoutError:
        checks["database"] = "busy"
    except Exception as exc:  # noqa: BLE001 - any failure is an unhealthy database
        checks["database"] = f"error: {type(exc).__name__}"
    healthy &= checks["database"] == "ok"
    scheduler = getattr(app, "scheduler", None)  # present once running() keeps it on the App
    if scheduler is not None:
        checks["scheduler"] = "running" if scheduler.running else "stopped"
        healthy &= bool(scheduler.running)
    engine = app.services.broadcasts.task
    checks["announcements"] = "running" if engine is not None and not engine.done() else "stopped"
    healthy &= checks["announcements"] == "running"
    latest = newest_backup(app.settings.backup_dir)
    # Information for monitoring, not a failure: a new install has no backup before its first night.
    checks["last_backup_age_hours"] = (
        round((time.time() - latest.path.stat().st_mtime) / 3600, 1) if latest is not None else None)
    checks["status"] = "ok" if healthy else "unhealthy"
    return (200 if healthy else 503), checks


def build_web_app(app: App, secret: str, path: str) -> web.Application:
    """The aiohttp application: Telegram's POSTs on `path`, `GET /health`."""
    web_app = web.Application()
    web_app[_APP_KEY] = app
    handler = SimpleRequestHandler(
        app.dispatcher, app.bot, secret_token=secret,
        # Answer Telegram only when the update is handled, so that none is lost to a restart.
        handle_in_background=False,
    )
    # Registered by hand rather than with handler.register(): that would close the bot's session
    # when the server stops, while the announcement engine may still be recording its last sends.
    web_app.router.add_post(path, handler.handle)
    web_app.router.add_get(HEALTH_PATH, _health_endpoint)
    setup_application(web_app, app.dispatcher, bot=app.bot)
    return web_app


async def _health_endpoint(request: web.Request) -> web.Response:
    status, body = await health(request.app[_APP_KEY])
    return web.json_response(body, status=status, headers={"Cache-Control": "no-store"})


async def serve(app: App, settings: Settings, stop: asyncio.Event, secret: str | None = None) -> None:
    """Run the web server and register the webhook until `stop` is set."""
    assert settings.webhook_url is not None  # guaranteed by the settings when MODE=webhook
    secret = secret or webhook_secret(settings)
    path = webhook_path(settings.webhook_url)
    runner = web.AppRunner(build_web_app(app, secret, path), access_log=None, handle_signals=False,
                           shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.web_host, settings.web_port)
        try:
            await site.start()
        except OSError as exc:
            raise WebhookError(
                f"cannot listen on WEB_HOST={settings.web_host} WEB_PORT={settings.web_port} ({exc.strerror or exc}); "
                "pick a free port or stop what uses it.") from None
        # The server listens first, so Telegram's first delivery after setWebhook finds it.
        if await _register(app, settings, secret, stop):
            log.info("Webhook mode: listening on %s:%s, Telegram delivers to https://%s", settings.web_host,
                     settings.web_port, urlsplit(settings.webhook_url).netloc)
        await stop.wait()
        log.info("Stopping: the webhook stays registered, Telegram keeps new updates until the bot is back")
    finally:
        await runner.cleanup()  # stops taking requests, lets those under way finish


async def _register(app: App, settings: Settings, secret: str, stop: asyncio.Event) -> bool:
    """setWebhook, retried while Telegram cannot be reached (like polling retries getUpdates);
    False if told to stop first. A wrong URL stops the bot with advice; a rejected token too."""
    delay = REGISTER_FIRST_RETRY_SECONDS
    while True:
        try:
            await app.bot.set_webhook(
                url=settings.webhook_url,
                secret_token=secret,
                allowed_updates=app.dispatcher.resolve_used_update_types(),
                drop_pending_updates=False,
            )
            return True
        except TelegramBadRequest as exc:
            raise WebhookError(f"Telegram refused WEBHOOK_URL ({exc.message}); check the address in .env.") from None
        except (TelegramNetworkError, TelegramServerError, TelegramRetryAfter) as exc:
            wait = float(exc.retry_after) if isinstance(exc, TelegramRetryAfter) else delay
            log.warning("Could not register the webhook with Telegram (%s); retrying in %.0f s",
                        type(exc).__name__, wait)
            delay = min(delay * 2, REGISTER_MAX_RETRY_SECONDS)
        try:
            await asyncio.wait_for(stop.wait(), wait)
            return False
        except TimeoutError:
            pass


async def run_webhook(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """The bot in webhook mode until SIGTERM/SIGINT (or until `stop` is set, for tests)."""
    own_signals = stop is None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    if own_signals:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    try:
        async with running(settings) as app:
            await serve(app, settings, stop)
    finally:
        if own_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)
