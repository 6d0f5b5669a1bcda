"""Keyboards and labels shared by several flows."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, KeyboardButton, ReplyKeyboardMarkup
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
