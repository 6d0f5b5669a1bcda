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


def committee_commands() -> list[BotCommand]:
    return [
        BotCommand(command="cases", description=_("Cases of your mine")),
        BotCommand(command="digest", description=_("The digest as it would be now")),
        BotCommand(command="export", description=_("Cases as a spreadsheet")),
        BotCommand(command="groupcode", description=_("Connect the committee's group")),
        BotCommand(command="survey", description=_("Launch a survey")),
        BotCommand(command="results", description=_("Results of closed surveys")),
    ]


def organizer_commands() -> list[BotCommand]:
    return [
        BotCommand(command="announce", description=_("Send an announcement to miners")),
        BotCommand(command="campaigns", description=_("Announcements: progress and controls")),
        BotCommand(command="survey", description=_("Launch a survey")),
        BotCommand(command="results", description=_("Results of closed surveys")),
    ]


def admin_commands() -> list[BotCommand]:
    return [
        BotCommand(command="invite", description=_("Invite a committee member or organizer")),
        BotCommand(command="roles", description=_("Who has which role")),
        BotCommand(command="sites", description=_("Mines and enterprises")),
    ]


class CommandMenus:
    """Committee members and admins see their extra commands in their own chat's menu."""

    def __init__(self, bot: Bot, i18n: I18n, access, users) -> None:
        self._bot = bot
        self._i18n = i18n
        self._access = access
        self._users = users

    async def refresh(self, user_id: int) -> None:
        from aiogram.exceptions import TelegramAPIError
        from aiogram.types import BotCommandScopeChat

        language = await self._users.language_of(user_id) or self._i18n.default_locale
        roles = await self._access.roles_of(user_id)
        scope = BotCommandScopeChat(chat_id=user_id)
        try:
            with self._i18n.context(), self._i18n.use_locale(language):
                extra = []
                if await self._access.is_organizer(user_id):  # admins are organizers too
                    extra += organizer_commands()
                if any(role.role == "committee" for role in roles):
                    extra += [command for command in committee_commands()
                              if command.command not in {known.command for known in extra}]
                if self._access.is_admin(user_id):
                    extra += admin_commands()
                if extra:
                    await self._bot.set_my_commands([*commands(), *extra,
                                                     BotCommand(command="me", description=_("My roles"))], scope=scope)
                else:
                    await self._bot.delete_my_commands(scope=scope)
        except TelegramAPIError:
            pass  # e.g. an admin who never opened a chat with the bot: the default menu stays
