"""The command menu Telegram shows next to the input field, in each language."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BotCommand
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.config import LOCALES


def commands() -> list[BotCommand]:
    return [
        BotCommand(command="report", description=_("Report a hazard anonymously")),
        BotCommand(command="status", description=_("Check a report you sent")),
        BotCommand(command="privacy", description=_("What is stored and who sees what")),
        BotCommand(command="profile", description=_("My mine, language and announcements")),
        BotCommand(command="language", description=_("Change the language")),
        BotCommand(command="help", description=_("What the bot can do")),
        BotCommand(command="cancel", description=_("Stop what you are doing")),
    ]


async def register_commands(bot: Bot, i18n: I18n) -> None:
    with i18n.context():
        for language in LOCALES:
            with i18n.use_locale(language):
                await bot.set_my_commands(commands(), language_code=language)
        with i18n.use_locale(i18n.default_locale):
            await bot.set_my_commands(commands())
