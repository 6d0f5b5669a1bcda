"""Wiring: database, services, dispatcher, scheduler, and the polling loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import CallbackQuery, ErrorEvent, Message
from aiogram.utils.callback_answer import CallbackAnswerMiddleware
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.commands import register_commands
from bot.config import Settings
from bot.i18n import UserLanguageMiddleware, build_i18n
from bot.middlewares import ServicesMiddleware
from bot.reports import ReportService
from bot.scheduler import build_scheduler
from bot.sites import seed_sites
from handlers import all_routers
from storage.db import Database
from storage.fsm import SQLiteStorage
from storage.reports import ReportRepository
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


def build_dispatcher(settings: Settings, db: Database, storage: SQLiteStorage, i18n: I18n) -> Dispatcher:
    users = UserRepository(db)
    sites = SiteRepository(db)
    reports = ReportService(db, ReportRepository(db), reports_per_hour=settings.reports_per_hour)
    dp = Dispatcher(storage=storage, events_isolation=SimpleEventIsolation())
    dp.update.outer_middleware(ServicesMiddleware(settings=settings, users=users, sites=sites, reports=reports))
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


async def open_app(settings: Settings) -> App:
    db = await Database.open(settings.database_path)
    await db.migrate()
    await seed_sites(SiteRepository(db))
    storage = SQLiteStorage(db)
    i18n = build_i18n(settings.default_locale)
    return App(settings, db, storage, i18n, build_bot(settings), build_dispatcher(settings, db, storage, i18n))


async def run_polling(settings: Settings) -> None:
    app = await open_app(settings)
    scheduler = build_scheduler(settings, app.storage)
    try:
        await register_commands(app.bot, app.i18n)
        scheduler.start()
        await app.dispatcher.start_polling(
            app.bot, allowed_updates=app.dispatcher.resolve_used_update_types(), close_bot_session=True
        )
    finally:
        scheduler.shutdown(wait=False)
        await app.db.close()
