"""/cancel works in every state, so it is checked before any flow."""

from __future__ import annotations

from aiogram import Router
from aiogram.enums import ChatType
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from handlers.keyboards import main_menu

router = Router(name="cancel")


@router.message(Command("cancel"))
async def cancel(message: Message, state: FSMContext) -> None:
    # In a committee's group (a note to a reporter can be written there) the miners' menu has no place.
    menu = main_menu() if message.chat.type == ChatType.PRIVATE else None
    if await state.get_state() is None:
        await message.answer(_("There is nothing to cancel."), reply_markup=menu)
        return
    await state.clear()
    await message.answer(_("Cancelled. Nothing was sent, and the draft is deleted."), reply_markup=menu)
