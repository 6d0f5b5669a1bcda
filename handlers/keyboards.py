"""Keyboards and labels shared by several flows."""

from __future__ import annotations

from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
)
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import lazy_gettext as __

REPORT_BUTTON = __("⚠️ Report a hazard")
STATUS_BUTTON = __("🔎 Check my report")
HELP_BUTTON = __("❓ Help")


class NavCb(CallbackData, prefix="nav"):
    """Back and Cancel, for whichever flow the user is in."""

    action: str  # "back" | "cancel"


def main_menu() -> ReplyKeyboardMarkup:
    return ReplyKeyboardMarkup(
        keyboard=[
            [KeyboardButton(text=str(REPORT_BUTTON))],
            [KeyboardButton(text=str(STATUS_BUTTON)), KeyboardButton(text=str(HELP_BUTTON))],
        ],
        resize_keyboard=True,
        is_persistent=True,
    )


def nav_row(*, back: bool = True) -> list[InlineKeyboardButton]:
    row = [InlineKeyboardButton(text=_("⬅️ Back"), callback_data=NavCb(action="back").pack())] if back else []
    row.append(InlineKeyboardButton(text=_("✖️ Cancel"), callback_data=NavCb(action="cancel").pack()))
    return row


async def show(event: Message | CallbackQuery, text: str, markup: InlineKeyboardMarkup | None) -> None:
    """Answer a button by turning its message into the next question; answer a message with a new one."""
    if isinstance(event, CallbackQuery):
        if isinstance(event.message, Message) and event.message.text is not None:
            try:
                await event.message.edit_text(text, reply_markup=markup)
                return
            except TelegramBadRequest as error:
                if "not modified" in error.message:
                    return  # the screen already shows this
                # too old to edit: send it afresh below
        await event.bot.send_message(event.from_user.id, text, reply_markup=markup)
        return
    await event.answer(text, reply_markup=markup)
