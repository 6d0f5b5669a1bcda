"""Wiring: database, services, dispatcher, scheduler, and the polling loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram import Bot, Dispatcher, Router
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramUnauthorizedError
from aiogram.types import CallbackQuery, ErrorEvent, Message
from aiogram.utils.callback_answer import CallbackAnswerMiddleware
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot import file_worker
from bot.access import AccessService
from bot.announcements import AnnouncementService
from bot.broadcasts import TELEGRAM_GLOBAL_RATE, BroadcastEngine
from bot.cases import CaseService
from bot.commands import CommandMenus, register_commands
from bot.config import Settings
from bot.digests import DigestService
from bot.exports import ExportService, remove_leftover_exports
from bot.i18n import UserLanguageMiddleware, build_i18n
from bot.isolation import PerChatEventIsolation
from bot.middlewares import ServicesMiddleware
from bot.notify import AlertService, CommitteeNotifier
from bot.reports import ReportService
from bot.scheduler import build_scheduler, settle_memory
from bot.sites import SiteAdmin, seed_sites
from bot.surveys import SurveyService
from handlers import all_routers
from storage.campaigns import CampaignRepository
from storage.db import Database
from storage.fsm import SQLiteStorage
from storage.reports import ReportRepository
from storage.roles import RoleRepository
from storage.sites import SiteRepository
from storage.surveys import SurveyRepository
from storage.users import UserRepository

log = logging.getLogger(__name__)

# Updates handled at once. Past this the bot fetches no more until some finish: under a burst the
# next getUpdates brings a batch instead of one update per request, and memory stays bounded.
UPDATES_IN_PROGRESS = 16


def _pin_response_models() -> list[type]:
    """aiogram parses every reply as `Response[method.__returning__]`; pydantic keeps generic
    models only weakly, so a garbage-collected one is rebuilt on the next call (≈10 ms each).
    Holding one strong reference per method keeps them cached for the life of the process."""
    import aiogram.methods as methods
    from aiogram.methods.base import Response, TelegramMethod

    return [
        Response[method.__returning__]  # type: ignore[name-defined]
        for method in vars(methods).values()
        if isinstance(method, type) and issubclass(method, TelegramMethod)
        and isinstance(getattr(method, "__api_method__", None), str)
    ]


_RESPONSE_MODELS = _pin_response_models()


@dataclass
class App:
    settings: Settings
    db: Database
    storage: SQLiteStorage
    i18n: I18n
    bot: Bot
    services: "Services"
    dispatcher: Dispatcher
    scheduler: AsyncIOScheduler | None = None  # set while running (the health endpoint looks at it)
    digest_catch_up: asyncio.Task | None = None  # digests due at start-up, delivered while serving


def build_bot(settings: Settings) -> Bot:
    session = None
    if settings.telegram_api_base:
        session = AiohttpSession(api=TelegramAPIServer.from_base(settings.telegram_api_base.rstrip("/")))
    return Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML, link_preview_is_disabled=True),
    )


@dataclass
class Services:
    """Everything handlers get by name (see ServicesMiddleware)."""

    settings: Settings
    users: UserRepository
    sites: SiteRepository
    reports: ReportService
    access: AccessService
    cases: CaseService
    notifier: CommitteeNotifier
    alerts: AlertService
    exports: ExportService
    site_admin: SiteAdmin
    digests: DigestService
    menus: CommandMenus
    announcements: AnnouncementService
    broadcasts: BroadcastEngine
    surveys: SurveyService
    clock: Callable[[], datetime]


def build_services(settings: Settings, db: Database, storage: SQLiteStorage, bot: Bot, i18n: I18n,
                   clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Services:
    sites = SiteRepository(db)
    report_repository = ReportRepository(db)
    roles = RoleRepository(db)
    access = AccessService(roles, settings.admin_ids)
    notifier = CommitteeNotifier(bot, roles, sites, report_repository, i18n, settings.admin_ids, settings.default_locale)
    users = UserRepository(db)
    announcements, broadcasts = build_announcements(settings, db, bot, i18n, users, access, clock)
    return Services(
        settings=settings,
        users=users,
        sites=sites,
        reports=ReportService(db, report_repository, reports_per_hour=settings.reports_per_hour, clock=clock),
        access=access,
        cases=CaseService(report_repository, access, clock=clock),
        notifier=notifier,
        alerts=AlertService(report_repository, notifier, timedelta(minutes=settings.escalate_after_minutes), clock=clock),
        exports=ExportService(report_repository, sites, access),
        site_admin=SiteAdmin(sites, access),
        digests=DigestService.from_settings(db, i18n, notifier.send_digest_part, settings, sites),
        menus=CommandMenus(bot, i18n, access, users),
        announcements=announcements,
        broadcasts=broadcasts,
        surveys=SurveyService(db, SurveyRepository(db), storage, sites, access, announcements, i18n, clock=clock),
        clock=clock,
    )


def build_announcements(settings: Settings, db: Database, bot: Bot, i18n: I18n, users: UserRepository,
                        access: AccessService, clock: Callable[[], datetime],
                        **engine_options) -> tuple[AnnouncementService, BroadcastEngine]:
    """The composer's service and the engine that sends for it; every other message the bot
    sends passes the engine's session middleware, so replies to people go ahead of bulk.
    `engine_options` override the engine's wiring (the benchmark watches it that way)."""
    repo = CampaignRepository(db)
    paid = settings.broadcast_rate >= TELEGRAM_GLOBAL_RATE
    announcements = AnnouncementService(bot, repo, users, access, i18n, default_locale=settings.default_locale,
                                        tz=settings.tz, paid_broadcast=paid, clock=clock)
    options = dict(
        send=announcements.deliver, rate=settings.broadcast_rate,
        # Paid broadcasts lift Telegram's overall limit to the paid rate; otherwise all messages share 30/s.
        global_rate=None if paid else TELEGRAM_GLOBAL_RATE,
        clock=clock, timezone=settings.tz, breaker_sample=settings.broadcast_breaker_sample,
        breaker_share=settings.broadcast_breaker_share, on_progress=announcements.on_progress,
        on_paused=announcements.on_paused, on_finished=announcements.on_finished,
    ) | engine_options
    engine = BroadcastEngine(repo, **options)
    announcements.engine = engine
    bot.session.middleware(engine.request_middleware())
    return announcements, engine


def build_dispatcher(services: Services, storage: SQLiteStorage, i18n: I18n) -> Dispatcher:
    dp = Dispatcher(storage=storage, events_isolation=PerChatEventIsolation())
    dp.update.outer_middleware(ServicesMiddleware(**vars(services)))
    UserLanguageMiddleware(i18n).setup(dp)
    dp.callback_query.middleware(CallbackAnswerMiddleware())
    dp.include_routers(*all_routers())
    dp.errors.register(_on_error)
    evaluate_sync_filters_inline(dp)
    return dp


def evaluate_sync_filters_inline(router: Router) -> None:
    """aiogram runs every synchronous filter (each magic `F` filter) in a worker thread: a thread
    hop and two GIL hand-overs per check, a dozen per update here. Ours are attribute look-ups
    that never block, so they are evaluated in the event loop instead."""
    for each in router.chain_tail:
        for observer in each.observers.values():
            for handler in (observer._handler, *observer.handlers):  # _handler: router-wide filters
                for filter_ in handler.filters or ():
                    if not filter_.awaitable:
                        filter_.callback = _awaitable(filter_.callback)
                        filter_.awaitable = True


def _awaitable(check: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    async def inline(*args: Any, **kwargs: Any) -> Any:
        return check(*args, **kwargs)

    return inline


async def _on_error(event: ErrorEvent) -> bool:
    """Log the failure (no user data, only the update id and the exception) and tell the user."""
    log.error("Update %s failed", event.update.update_id, exc_info=event.exception)
    text = _("Sorry, something went wrong on our side. Please try again, or send /cancel.")
    try:
        if isinstance(event.update.callback_query, CallbackQuery):
            await event.update.callback_query.answer(text, show_alert=True)
        elif isinstance(event.update.message, Message) and event.update.message.chat.type == "private":
            await event.update.message.answer(text)
    except Exception:  # noqa: BLE001 - the error report itself must never crash the loop
        log.warning("Could not tell the user about the failure")
    return True


async def open_app(settings: Settings, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> App:
    db = await Database.open(settings.database_path)
    await db.migrate()
    await seed_sites(SiteRepository(db))
    storage = SQLiteStorage(db)
    i18n = build_i18n(settings.default_locale)
    bot = build_bot(settings)
    services = build_services(settings, db, storage, bot, i18n, clock)
    return App(settings, db, storage, i18n, bot, services, build_dispatcher(services, storage, i18n))


async def catch_up(app: App) -> None:
    """What start-up owes: command menus, alerts that never went out, announcements a crash
    interrupted or that fell due while the bot was down, export files a killed bot left, then a
    digest missed while down. None of
    it may keep the bot from serving miners: a failure is logged and retried by the scheduler, and
    the digests (hundreds of messages on a Monday, with charts) go out while the bot serves."""
    services = app.services
    for step in (lambda: register_commands(app.bot, app.i18n), services.alerts.resume,
                 lambda: _refresh_admin_menus(app),
                 services.broadcasts.recover, services.broadcasts.start_due, services.surveys.close_due,
                 lambda: asyncio.to_thread(remove_leftover_exports)):
        await _start_up_step(step)
    app.digest_catch_up = asyncio.create_task(_start_up_step(lambda: services.digests.run_due(services.clock())))
    app.digest_catch_up.add_done_callback(_log_catch_up_failure)


def _log_catch_up_failure(task: asyncio.Task) -> None:
    """What `_start_up_step` lets through (Telegram refusing the token) is said in the log when it
    happens, instead of asyncio reporting it as "never retrieved" whenever the task is collected."""
    if not task.cancelled() and (error := task.exception()) is not None:
        log.error("The digests due at start-up stopped: %s; they go out at the next run", error)


async def _start_up_step(step: Callable[[], Awaitable[Any]]) -> None:
    try:
        await step()
    except TelegramUnauthorizedError:
        raise
    except Exception:
        log.exception("A start-up step failed; the bot starts anyway and retries it on schedule")


async def _refresh_admin_menus(app: App) -> None:
    for admin_id in app.settings.admin_ids:
        await app.services.menus.refresh(admin_id)


async def start_app(app: App) -> None:
    await catch_up(app)
    app.services.broadcasts.start()


async def close_app(app: App) -> None:
    """Announcements in flight finish and are recorded first; then the connections close. A digest
    still going out stops where it is and resumes at the next start (see bot/digests.py)."""
    if app.digest_catch_up is not None and not app.digest_catch_up.done():
        app.digest_catch_up.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await app.digest_catch_up
    await file_worker.shutdown()
    await app.services.broadcasts.stop()
    await app.services.alerts.close()
    await app.bot.session.close()
    await app.db.close()


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[App]:
    """The bot's life apart from how updates arrive (polling or webhook)."""
    app = await open_app(settings)
    scheduler = build_scheduler(settings, app.storage, app.services, app.db)
    app.scheduler = scheduler
    try:
        await start_app(app)
        settle_memory()
        scheduler.start()
        yield app
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=False)
        await close_app(app)


async def run_polling(settings: Settings) -> None:
    async with running(settings) as app:
        # A webhook left from webhook mode would make every getUpdates fail with 409 Conflict.
        await app.bot.delete_webhook(drop_pending_updates=False)
        await app.dispatcher.start_polling(
            app.bot, allowed_updates=app.dispatcher.resolve_used_update_types(), close_bot_session=False,
            tasks_concurrency_limit=UPDATES_IN_PROGRESS)
