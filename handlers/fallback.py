"""Whatever no flow took: every message and every button still gets an answer."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.types import CallbackQuery, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import gettext as _

from handlers.keyboards import main_menu

router = Router(name="fallback")


@router.message(F.chat.type == ChatType.PRIVATE, F.text.startswith("/"))
async def unknown_command(message: Message) -> None:
    await message.answer(_("I do not know this command. See /help for what I can do."), reply_markup=main_menu())


@router.message(F.chat.type == ChatType.PRIVATE)
async def anything_else(message: Message) -> None:
    await message.answer(_("Please use the menu buttons below, or see /help."), reply_markup=main_menu())


@router.edited_message(F.chat.type == ChatType.PRIVATE)
async def edited(message: Message) -> None:
    await message.answer(_("I cannot see changes to messages already sent. To change a report, "
                           "use the ✏️ buttons before sending it."))


@router.callback_query()
async def stale_button(callback: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    callback_answer.text = _("This button is no longer active.")
