"""Admins hand out roles with one-time codes; anyone can /join with a code and see /me."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message, User
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.access import COMMITTEE, ORGANIZER, AccessService, NotAllowed
from bot.commands import CommandMenus
from bot.config import LOCALES
from bot.sites import SiteAdmin, parse_names
from handlers.keyboards import show
from storage.roles import Role
from storage.sites import SiteRepository

router = Router(name="admin")
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)

class InviteCb(CallbackData, prefix="inv"):
    site_id: int


class RoleCb(CallbackData, prefix="role"):
    role_id: int


def display_name(user: User) -> str:
    """Committee members are named in case histories: their Telegram name and username."""
    return user.full_name + (f" @{user.username}" if user.username else "")


def _admins_only() -> str:
    return _("Only the bot's administrators can do this.")


async def describe_role(role: Role, sites: SiteRepository, language: str) -> str:
    if role.role == ORGANIZER:
        return _("Organizer")
    site = await sites.get(role.site_id)
    return _("OSH committee of {site}").format(site=html.escape(site.name(language) if site else "?"))


@router.message(Command("invite"))
async def invite(message: Message, command: CommandObject, access: AccessService, sites: SiteRepository,
                 i18n: I18n) -> None:
    if not access.is_admin(message.from_user.id):
        await message.answer(_admins_only())
        return
    kind, _sep, site_code = (command.args or "").strip().partition(" ")
    if kind == ORGANIZER:
        code = await access.invite(message.from_user.id, ORGANIZER, None)
        await message.answer(_invite_text(_("Organizer"), code))
        return
    if kind != COMMITTEE:
        await message.answer(_("Send <code>/invite committee</code> or <code>/invite organizer</code>."))
        return
    language = i18n.current_locale
    matching = [site for region in await sites.regions() for site in await sites.sites_in(region.code)
                if site_code and site.code == site_code.strip().lower()]
    if matching:
        await _send_committee_invite(message, access, sites, matching[0].id, language)
        return
    rows = [[InlineKeyboardButton(text=site.name(language), callback_data=InviteCb(site_id=site.id).pack())]
            for region in await sites.regions() for site in await sites.sites_in(region.code)]
    await message.answer(_("Which mine's committee is the invitation for?"),
                         reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


@router.callback_query(InviteCb.filter())
async def invite_for_site(callback: CallbackQuery, callback_data: InviteCb, access: AccessService,
                          sites: SiteRepository, i18n: I18n, callback_answer: CallbackAnswer) -> None:
    if not access.is_admin(callback.from_user.id):
        callback_answer.text = _admins_only()
        return
    await _send_committee_invite(callback.message, access, sites, callback_data.site_id, i18n.current_locale)


async def _send_committee_invite(message: Message, access: AccessService, sites: SiteRepository, site_id: int,
                                 language: str) -> None:
    site = await sites.get(site_id)
    if site is None:
        await message.answer(_("That mine is no longer in the list."))
        return
    code = await access.invite(message.chat.id, COMMITTEE, site.id)
    await message.answer(_invite_text(_("OSH committee of {site}").format(site=html.escape(site.name(language))), code))


def _invite_text(what: str, code: str) -> str:
    return _(
        "Invitation: {what}\n\n<code>/join {code}</code>\n\n"
        "Give it to one person. It works once, for 72 hours: they send it to this bot."
    ).format(what=what, code=code)


@router.message(Command("join"))
async def join(message: Message, command: CommandObject, access: AccessService, sites: SiteRepository,
               menus: CommandMenus, i18n: I18n) -> None:
    user = message.from_user
    wait = access.wait_before_joining(user.id)
    if wait:
        await message.answer(_("Too many attempts. Please try again in {minutes} min.").format(
            minutes=max(1, round(wait / 60))))
        return
    joined = await access.join(user.id, command.args or "", display_name(user)) if command.args else None
    if joined is None:
        await message.answer(_("This code does not work: it may be mistyped, already used or expired. "
                               "Ask the administrator for a new one."))
        return
    await menus.refresh(user.id)
    if joined.role == ORGANIZER:
        await message.answer(_("You are now an organizer: you can send announcements and run surveys."))
        return
    site = await sites.get(joined.site_id)
    await message.answer(_(
        "You are now a member of the OSH committee of {site}. You will get danger alerts at once and a digest "
        "every morning. Your cases: /cases"
    ).format(site=html.escape(site.name(i18n.current_locale) if site else "?")))


@router.message(Command("me"))
async def me(message: Message, access: AccessService, sites: SiteRepository, i18n: I18n) -> None:
    lines = [await describe_role(role, sites, i18n.current_locale) for role in await access.roles_of(message.from_user.id)]
    if access.is_admin(message.from_user.id):
        lines.insert(0, _("Administrator"))
    if not lines:
        await message.answer(_("You have no special role. Miners need none: every report is anonymous."))
        return
    await message.answer(_("Your roles:") + "\n" + "\n".join(f"• {line}" for line in lines))


@router.message(Command("roles"))
async def list_roles(message: Message, access: AccessService, sites: SiteRepository, i18n: I18n) -> None:
    if not access.is_admin(message.from_user.id):
        await message.answer(_admins_only())
        return
    await _show_roles(message, access, sites, i18n.current_locale)


@router.callback_query(RoleCb.filter())
async def revoke_role(callback: CallbackQuery, callback_data: RoleCb, access: AccessService, sites: SiteRepository,
                      menus: CommandMenus, i18n: I18n, callback_answer: CallbackAnswer) -> None:
    try:
        revoked = await access.revoke(callback.from_user.id, callback_data.role_id)
    except NotAllowed:
        callback_answer.text = _admins_only()
        return
    if revoked:
        await menus.refresh(revoked.user_id)
    callback_answer.text = _("Role removed.") if revoked else _("That role was already removed.")
    await _show_roles(callback, access, sites, i18n.current_locale)


async def _show_roles(event: Message | CallbackQuery, access: AccessService, sites: SiteRepository,
                      language: str) -> None:
    """As a new message for /roles, in place of the list after a tap."""
    roles = await access.everyone(event.from_user.id)
    rows = [[InlineKeyboardButton(
        text=_("✖️ {name} — {role}").format(name=role.display_name, role=await describe_role(role, sites, language))[:60],
        callback_data=RoleCb(role_id=role.id).pack())] for role in roles[:90]]
    text = _("Roles. Tap one to remove it.") if roles else _("Nobody has a role yet. Hand out codes with /invite.")
    markup = InlineKeyboardMarkup(inline_keyboard=rows)
    await show(event, text, markup)


# --- mines and enterprises -------------------------------------------------------------------------

class SiteCb(CallbackData, prefix="site"):
    action: str  # region | site | rename | archive | restore | add
    value: str


class SiteEdit(StatesGroup):
    names = State()


@router.message(Command("sites"))
async def list_regions(message: Message, access: AccessService, sites: SiteRepository, i18n: I18n) -> None:
    if not access.is_admin(message.from_user.id):
        await message.answer(_admins_only())
        return
    rows = [[InlineKeyboardButton(text=region.name(i18n.current_locale),
                                  callback_data=SiteCb(action="region", value=region.code).pack())]
            for region in await sites.all_regions()]
    await message.answer(_("Mines and enterprises: choose a region."), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


@router.callback_query(SiteCb.filter())
async def site_action(callback: CallbackQuery, callback_data: SiteCb, access: AccessService, site_admin: SiteAdmin,
                      sites: SiteRepository, state: FSMContext, i18n: I18n, callback_answer: CallbackAnswer) -> None:
    if not access.is_admin(callback.from_user.id):
        callback_answer.text = _admins_only()
        callback_answer.show_alert = True
        return
    language, action, value = i18n.current_locale, callback_data.action, callback_data.value
    if action == "region":
        rows = [[InlineKeyboardButton(text=("🗄 " if site.archived else "") + site.name(language),
                                      callback_data=SiteCb(action="site", value=str(site.id)).pack())]
                for site in await sites.every_site_in(value)]
        rows.append([InlineKeyboardButton(text=_("➕ Add a mine here"), callback_data=SiteCb(action="add", value=value).pack())])
        await show(callback, _("Tap a mine to rename or archive it."), InlineKeyboardMarkup(inline_keyboard=rows))
        return
    if action in {"add", "rename"}:
        await state.set_state(SiteEdit.names)
        await state.set_data({"action": action, "value": value})
        await callback.message.answer(_("Send the name in all three languages, separated by |, for example:\n"
                                        "<code>Ленин атындағы шахта | Шахта им. Ленина | Lenin mine</code>"))
        return
    site = await sites.get(int(value)) if value.isdigit() else None
    if site is None:
        callback_answer.text = _("That mine is no longer in the list.")
        return
    if action in {"archive", "restore"}:
        await site_admin.archive(callback.from_user.id, site.id, action == "archive")
        site = await sites.get(site.id)
        callback_answer.text = _("Archived: it is no longer offered to miners.") if site.archived else _("Restored.")
    toggle = ("restore", _("♻️ Restore")) if site.archived else ("archive", _("🗄 Archive"))
    names = "\n".join(html.escape(site.names[language]) for language in LOCALES)  # data, not UI text
    await show(callback, names, InlineKeyboardMarkup(inline_keyboard=[[
        InlineKeyboardButton(text=_("✏️ Rename"), callback_data=SiteCb(action="rename", value=str(site.id)).pack()),
        InlineKeyboardButton(text=toggle[1], callback_data=SiteCb(action=toggle[0], value=str(site.id)).pack()),
    ]]))


@router.message(SiteEdit.names, F.text)
async def got_site_names(message: Message, state: FSMContext, site_admin: SiteAdmin) -> None:
    names = parse_names(message.text)
    if names is None:
        await message.answer(_("Please send three names separated by |: Kazakh | Russian | English, "
                               "each up to 40 characters. Or send /cancel."))
        return
    data = await state.get_data()
    await state.clear()
    try:
        if data.get("action") == "add":
            await site_admin.add(message.from_user.id, data["value"], names)
        else:
            await site_admin.rename(message.from_user.id, int(data["value"]), names)
    except NotAllowed:
        await message.answer(_admins_only())
        return
    await message.answer(_("Saved: {name}.").format(name=html.escape(names["ru"])))


@router.message(SiteEdit.names)
async def site_names_not_text(message: Message) -> None:
    await message.answer(_("Please send three names separated by |: Kazakh | Russian | English, "
                           "each up to 40 characters. Or send /cancel."))
