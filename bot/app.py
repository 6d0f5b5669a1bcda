"""Wiring: database, services, dispatcher, scheduler, and the polling loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import TelegramUnauthorizedError
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import CallbackQuery, ErrorEvent, Message
from aiogram.utils.callback_answer import CallbackAnswerMiddleware
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.access import AccessService
from bot.cases import CaseService
from bot.commands import CommandMenus, register_commands
from bot.config import Settings
from bot.digests import DigestService
from bot.exports import ExportService
from bot.i18n import UserLanguageMiddleware, build_i18n
from bot.middlewares import ServicesMiddleware
from bot.notify import AlertService, CommitteeNotifier
from bot.reports import ReportService
from bot.scheduler import build_scheduler
from bot.sites import SiteAdmin, seed_sites
from handlers import all_routers
from storage.db import Database
from storage.fsm import SQLiteStorage
from storage.reports import ReportRepository
from storage.roles import RoleRepository
from storage.sites import SiteRepository
from storage.users import UserRepository

log = logging.getLogger(__name__)


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
    clock: Callable[[], datetime]


def build_services(settings: Settings, db: Database, bot: Bot, i18n: I18n,
                   clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Services:
    sites = SiteRepository(db)
    report_repository = ReportRepository(db)
    roles = RoleRepository(db)
    access = AccessService(roles, settings.admin_ids)
    notifier = CommitteeNotifier(bot, roles, sites, report_repository, i18n, settings.admin_ids, settings.default_locale)
    users = UserRepository(db)
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
        clock=clock,
    )


def build_dispatcher(services: Services, storage: SQLiteStorage, i18n: I18n) -> Dispatcher:
    dp = Dispatcher(storage=storage, events_isolation=SimpleEventIsolation())
    dp.update.outer_middleware(ServicesMiddleware(**vars(services)))
    UserLanguageMiddleware(i18n).setup(dp)
    dp.callback_query.middleware(CallbackAnswerMiddleware())
    dp.include_routers(*all_routers())
    dp.errors.register(_on_error)
    return dp


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
    services = build_services(settings, db, bot, i18n, clock)
    return App(settings, db, storage, i18n, bot, services, build_dispatcher(services, storage, i18n))


async def catch_up(app: App) -> None:
    """What start-up owes: command menus, alerts that never went out, a digest missed while down.
    None of it may keep the bot from serving miners: a failure is logged and retried by the scheduler."""
    for step in (lambda: register_commands(app.bot, app.i18n), app.services.alerts.resume,
                 lambda: _refresh_admin_menus(app),
                 lambda: app.services.digests.run_due(app.services.clock())):
        try:
            await step()
        except TelegramUnauthorizedError:
            raise
        except Exception:
            log.exception("A start-up step failed; the bot starts anyway and retries it on schedule")


async def _refresh_admin_menus(app: App) -> None:
    for admin_id in app.settings.admin_ids:
        await app.services.menus.refresh(admin_id)


async def run_polling(settings: Settings) -> None:
    app = await open_app(settings)
    scheduler = build_scheduler(settings, app.storage, app.services)
    try:
        await catch_up(app)
        scheduler.start()
        await app.dispatcher.start_polling(
            app.bot, allowed_updates=app.dispatcher.resolve_used_update_types(), close_bot_session=True
        )
    finally:
        scheduler.shutdown(wait=False)
        await app.services.alerts.close()
        await app.db.close()
