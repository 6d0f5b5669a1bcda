"""Keyboards and labels shared by several flows."""

from __future__ import annotations

import html
import re

from aiogram import F
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


def _typed(text: str | None) -> bool:
    return isinstance(text, str) and bool(text.strip()) and not text.startswith("/")


# A text someone typed as an answer: not blank, and not a command (an unknown /command is not a note).
TYPED_TEXT = F.text.func(_typed)


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


_TAG = re.compile(r"<[^>]+>")
SHOWN_MAX = 4000  # Telegram takes 4096 characters as shown (tags and entities do not count); some to spare


def fit_history(head: list[str], history: list[str]) -> str:
    """A case with its history in one message Telegram accepts: whole lines only (a cut could
    split a tag or an &entity;), and when the history is too long its oldest lines give way to "…"."""
    def shown(lines: list[str]) -> int:
        return len(html.unescape(_TAG.sub("", "\n".join(lines))))

    kept = list(history)
    while kept and shown([*head, "…", *kept]) > SHOWN_MAX:
        kept.pop(0)
    return "\n".join([*head, *(["…"] if len(kept) < len(history) else []), *kept])


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
        # An InaccessibleMessage (too old, or deleted) still names its chat; a button may be in a group.
        chat_id = event.message.chat.id if event.message is not None else event.from_user.id
        await event.bot.send_message(chat_id, text, reply_markup=markup)
        return
    await event.answer(text, reply_markup=markup)
