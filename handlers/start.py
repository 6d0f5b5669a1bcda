"""/start, /help, /privacy and the main menu's Help button."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandStart
from aiogram.types import Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.access import AccessService
from handlers.keyboards import HELP_BUTTON, main_menu
from handlers.language import language_picker, welcome_text
from storage.users import UserRepository

router = Router(name="start")
router.message.filter(F.chat.type == ChatType.PRIVATE)


@router.message(CommandStart())
async def start(message: Message, users: UserRepository, i18n: I18n) -> None:
    if await users.language_of(message.from_user.id) is None:
        text, markup = language_picker(i18n)
        await message.answer(text, reply_markup=markup)
        return
    await users.reachable_again(message.from_user.id)
    await message.answer(welcome_text(), reply_markup=main_menu())


@router.message(Command("help"))
@router.message(F.text == HELP_BUTTON)
async def help_(message: Message, access: AccessService) -> None:
    sections = [_(
        "<b>What I can do</b>\n\n"
        "/report — report a hazard anonymously (also the ⚠️ button below)\n"
        "/status — check your report with its case code and secret receipt\n"
        "/privacy — what is stored and who can see what\n"
        "/profile — your mine, language and union announcements (/stop, /subscribe)\n"
        "/language — change the language\n"
        "/cancel — stop what you are doing\n\n"
        "If life is in danger right now, leave the danger zone and warn the mine dispatcher first."
    )]
    if await access.committee_sites(message.from_user.id):
        sections.append(_(
            "<b>For the OSH committee</b>\n"
            "/cases — your mine's cases · /digest — the digest as it would be now · "
            "/export — cases as a spreadsheet · /groupcode — connect the committee's group · /me — your roles · "
            "/survey — launch a survey · /results — results of closed surveys"
        ))
    if await access.is_organizer(message.from_user.id):
        sections.append(_(
            "<b>For union organizers</b>\n"
            "/announce — send an announcement to miners · /campaigns — announcements: progress, pause, cancel · "
            "/survey — launch a survey · /results — results of closed surveys"
        ))
    if access.is_admin(message.from_user.id):
        sections.append(_(
            "<b>For administrators</b>\n"
            "/invite — invite a committee member or organizer · /roles — who has which role · "
            "/sites — mines and enterprises"
        ))
    await message.answer("\n\n".join(sections), reply_markup=main_menu())


@router.message(Command("privacy"))
async def privacy(message: Message) -> None:
    await message.answer(
        _(
            "<b>What is stored</b>\n"
            "• Your Telegram account number and your language, so that the bot can answer you. "
            "They are kept apart from reports and never linked to them.\n"
            "• If you choose it in /profile: your mine, only to send you its union announcements.\n"
            "• Each report: mine, type of hazard, urgency, place, description, photos, the hour it arrived "
            "(not the minute), its case code and a scrambled copy of your receipt.\n\n"
            "<b>What is never stored</b>\n"
            "• Who sent a report: no name, username, phone or account number is kept with it or written in logs.\n"
            "• Your secret receipt itself, only a one-way scrambled copy. Nobody can restore a lost receipt.\n\n"
            "<b>Who sees what</b>\n"
            "• The union's safety committee of that mine sees the report and photos, never who sent it.\n"
            "• Photos are passed on as copies, never forwarded, so your name does not travel with them.\n"
            "• A report you are still filling in is kept under your account until you send or cancel it; "
            "then the draft is deleted.\n\n"
            "<b>Protect yourself</b>\n"
            "• Do not write names or personnel numbers in a report.\n"
            "• Send pictures as photos, not as files: files keep the place where they were taken.\n"
            "• After sending, you can erase the conversation from this chat."
        )
    )
