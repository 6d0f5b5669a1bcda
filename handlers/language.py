"""Choosing the language: on the first /start, and any time with /language."""

from __future__ import annotations

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.commands import CommandMenus
from bot.config import LOCALES
from handlers.keyboards import main_menu, show
from storage.users import UserRepository

router = Router(name="language")
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)


class LanguageCb(CallbackData, prefix="lang"):
    code: str


def language_picker(i18n: I18n) -> tuple[str, InlineKeyboardMarkup]:
    """Asked in all three languages at once; each button names its language in that language."""
    # TRANSLATORS: shown together with the same question in the other two languages.
    text = "\n".join(i18n.gettext("Choose your language", locale=code) for code in LOCALES)
    buttons = [
        # TRANSLATORS: the name of YOUR language, written in it: Қазақша, Русский, English.
        [InlineKeyboardButton(text=i18n.gettext("English", locale=code), callback_data=LanguageCb(code=code).pack())]
        for code in LOCALES
    ]
    return text, InlineKeyboardMarkup(inline_keyboard=buttons)


@router.message(Command("language"))
async def ask_language(message: Message, i18n: I18n) -> None:
    text, markup = language_picker(i18n)
    await message.answer(text, reply_markup=markup)


@router.callback_query(LanguageCb.filter(F.code.in_(LOCALES)))
async def chose_language(callback: CallbackQuery, callback_data: LanguageCb, users: UserRepository,
                         menus: CommandMenus, i18n: I18n) -> None:
    first_time = await users.language_of(callback.from_user.id) is None
    await users.set_language(callback.from_user.id, callback_data.code)
    if not first_time:
        await menus.refresh(callback.from_user.id)  # members' and admins' menus follow their language
    with i18n.use_locale(callback_data.code):
        await show(callback, _("Language: English"), None)
        if first_time:
            await callback.message.answer(welcome_text(), reply_markup=main_menu())
        else:
            await callback.message.answer(_("Done. The menu is below."), reply_markup=main_menu())


def welcome_text() -> str:
    return _(
        "<b>MineVoice</b> — safety reports from miners to their trade union.\n\n"
        "• <b>Report a hazard</b> in your mine in under a minute. Nobody — not the union, not the employer — "
        "can learn who sent it.\n"
        "• <b>Check your report</b>: see what the union's safety committee did and answer its questions.\n"
        "• Get news and surveys from your union.\n\n"
        "Use the buttons below. How your anonymity is protected: /privacy"
    )
