"""/profile (mine and language, for announcements), /stop and /subscribe, and what Telegram tells
when a miner blocks or unblocks the bot. (The Unsubscribe button is handled in handlers/announce.)"""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import KICKED, MEMBER, ChatMemberUpdatedFilter, Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, ChatMemberUpdated, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from handlers.keyboards import show
from handlers.language import language_picker
from storage.sites import SiteRepository
from storage.users import UserRepository

router = Router(name="profile")
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)


class ProfileCb(CallbackData, prefix="pf"):
    action: str  # mine | region | site | nosite | language | subscribe | unsubscribe
    value: str = ""


def _button(text: str, action: str, value: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=ProfileCb(action=action, value=value).pack())


async def _profile_card(user_id: int, users: UserRepository, sites: SiteRepository,
                        i18n: I18n) -> tuple[str, InlineKeyboardMarkup]:
    profile = await users.profile(user_id)
    site = await sites.get(profile.site_id) if profile and profile.site_id else None
    subscribed = profile is None or profile.subscribed
    text = _(
        "<b>Your profile</b>\n"
        "Language: {language}\n"
        "Mine: {site}\n"
        "Union announcements: {subscription}\n\n"
        "Your mine is used only to send you its announcements. It is never linked to your reports."
    ).format(
        language=i18n.gettext("English"),
        site=html.escape(site.name(i18n.current_locale)) if site else _("not chosen"),
        subscription=_("on") if subscribed else _("off"),
    )
    toggle = _button(_("🔕 Stop announcements"), "unsubscribe") if subscribed else _button(_("🔔 Get announcements"), "subscribe")
    return text, InlineKeyboardMarkup(inline_keyboard=[
        [_button(_("⛏ Choose my mine"), "mine"), _button(_("🌐 Language"), "language")],
        [toggle],
    ])


@router.message(Command("profile"))
async def show_profile(message: Message, users: UserRepository, sites: SiteRepository, i18n: I18n) -> None:
    text, markup = await _profile_card(message.from_user.id, users, sites, i18n)
    await message.answer(text, reply_markup=markup)


@router.callback_query(ProfileCb.filter())
async def profile_action(callback: CallbackQuery, callback_data: ProfileCb, users: UserRepository,
                         sites: SiteRepository, i18n: I18n, callback_answer: CallbackAnswer) -> None:
    user_id, action, value, language = callback.from_user.id, callback_data.action, callback_data.value, i18n.current_locale
    if await users.profile(user_id) is None:
        text, markup = language_picker(i18n)
        await callback.message.answer(text, reply_markup=markup)
        return
    if action == "language":
        text, markup = language_picker(i18n)
        await callback.message.answer(text, reply_markup=markup)
        return
    if action == "mine":
        rows = [[_button(region.name(language), "region", region.code)] for region in await sites.regions()]
        rows.append([_button(_("No mine, please"), "nosite")])
        await show(callback, _("Which region is your mine in?"), InlineKeyboardMarkup(inline_keyboard=rows))
        return
    if action == "region":
        rows = [[_button(site.name(language), "site", str(site.id))] for site in await sites.sites_in(value)]
        await show(callback, _("Choose your mine."), InlineKeyboardMarkup(inline_keyboard=rows))
        return
    if action == "site" and value.isdigit() and await sites.get(int(value)):
        await users.set_site(user_id, int(value))
    elif action == "nosite":
        await users.set_site(user_id, None)
    elif action in {"subscribe", "unsubscribe"}:
        await users.set_subscribed(user_id, action == "subscribe")
    callback_answer.text = _("Saved.")
    text, markup = await _profile_card(user_id, users, sites, i18n)
    await show(callback, text, markup)


@router.message(Command("stop"))
async def stop(message: Message, users: UserRepository) -> None:
    await users.set_subscribed(message.from_user.id, False)
    await message.answer(_("You will no longer get union announcements. Reports and /status work as before. "
                           "To get them again: /subscribe"))


@router.message(Command("subscribe"))
async def subscribe(message: Message, users: UserRepository, i18n: I18n) -> None:
    if not await users.set_subscribed(message.from_user.id, True):
        text, markup = language_picker(i18n)
        await message.answer(text, reply_markup=markup)
        return
    await message.answer(_("You will get union announcements again. To stop them: /stop"))


@router.my_chat_member(F.chat.type == ChatType.PRIVATE, ChatMemberUpdatedFilter(member_status_changed=KICKED))
async def blocked_the_bot(event: ChatMemberUpdated, users: UserRepository) -> None:
    """No announcement is tried again until they come back."""
    await users.set_reachable(event.from_user.id, False)


@router.my_chat_member(F.chat.type == ChatType.PRIVATE, ChatMemberUpdatedFilter(member_status_changed=MEMBER))
async def unblocked_the_bot(event: ChatMemberUpdated, users: UserRepository) -> None:
    await users.reachable_again(event.from_user.id)
