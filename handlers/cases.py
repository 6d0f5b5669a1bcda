"""The committee's side: case buttons (on alerts, in lists), notes for reporters, /cases,
and binding a Telegram group to the committee."""

from __future__ import annotations

import html
from collections.abc import Callable
from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, FSInputFile, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.access import AccessService, NotAllowed
from bot.cases import FILTERS, NOTE_MAX, PAGE_SIZE, CaseService
from bot.config import Settings
from bot.digests import DigestService
from bot.exports import PERIODS, ExportService
from bot.hazards import CATEGORIES, STATUSES
from bot.notify import CaseCb, case_keyboard, case_summary
from bot.reports import parse_stamp
from handlers.admin import display_name
from handlers.keyboards import TYPED_TEXT, fit_history, show
from storage.sites import SiteRepository

router = Router(name="cases")


class CaseNote(StatesGroup):
    text = State()


class CasesPageCb(CallbackData, prefix="cases"):
    which: str
    page: int


MAX_PAGE = 10**6  # a forged page number must not overflow SQLite's OFFSET


def _not_yours() -> str:
    return _("Only the OSH committee of that mine can do this.")


def _members_only() -> str:
    return _("This is for members of a union OSH committee.")


def _refuse(callback_answer: CallbackAnswer, text: str) -> None:
    """A refused button: an alert the user must dismiss, and nothing changed."""
    callback_answer.text = text
    callback_answer.show_alert = True


@router.callback_query(CaseCb.filter(F.action == "status"))
async def set_status(callback: CallbackQuery, callback_data: CaseCb, cases: CaseService,
                     callback_answer: CallbackAnswer) -> None:
    try:
        case = await cases.change_status(callback.from_user.id, display_name(callback.from_user),
                                         callback_data.report_id, callback_data.status)
    except (NotAllowed, ValueError):
        _refuse(callback_answer, _not_yours())
        return
    callback_answer.text = str(STATUSES[case.status])
    await callback.message.answer(
        _("Case <code>{code}</code>: {status} — {member}").format(
            code=case.case_code, status=STATUSES[case.status], member=html.escape(display_name(callback.from_user))),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=_("✉️ Note to reporter"), callback_data=CaseCb(action="note", report_id=case.id).pack())]]),
    )


@router.callback_query(CaseCb.filter(F.action == "note"))
async def ask_note(callback: CallbackQuery, callback_data: CaseCb, cases: CaseService, state: FSMContext,
                   callback_answer: CallbackAnswer) -> None:
    try:
        case, _timeline = await cases.view(callback.from_user.id, callback_data.report_id)
    except NotAllowed:
        _refuse(callback_answer, _not_yours())
        return
    await state.set_state(CaseNote.text)
    await state.set_data({"report_id": case.id})
    await callback.message.answer(_(
        "Write the note for the reporter of <code>{code}</code> in one message. They will see it with /status. "
        "Send /cancel to stop.").format(code=case.case_code))


@router.message(CaseNote.text, TYPED_TEXT)
async def got_note(message: Message, cases: CaseService, state: FSMContext) -> None:
    report_id = (await state.get_data()).get("report_id")
    await state.clear()
    try:
        case = await cases.add_note(message.from_user.id, display_name(message.from_user), int(report_id),
                                    message.text[:NOTE_MAX])
    except (NotAllowed, TypeError, ValueError):
        await message.answer(_not_yours())
        return
    await message.answer(_("Note saved for case <code>{code}</code>. The reporter will see it with /status.").format(
        code=case.case_code))


@router.message(CaseNote.text)
async def note_not_text(message: Message) -> None:
    await message.answer(_("Please write the note as a text message, or send /cancel."))


@router.callback_query(CaseCb.filter(F.action == "view"))
async def view_case(callback: CallbackQuery, callback_data: CaseCb, cases: CaseService, sites: SiteRepository,
                    settings: Settings, i18n: I18n, callback_answer: CallbackAnswer) -> None:
    try:
        case, timeline = await cases.view(callback.from_user.id, callback_data.report_id)
    except NotAllowed:
        _refuse(callback_answer, _not_yours())
        return
    language = i18n.current_locale
    site = await sites.get(case.site_id)
    head = [case_summary(case, site.name(language)), "", _("Status: <b>{status}</b>").format(status=STATUSES[case.status]),
            "", _("<b>History</b>")]
    lines = []
    for event in timeline:
        when = _local(event.at or event.at_hour, settings)
        if event.kind == "reporter_message":
            lines.append(_("{when} — the reporter wrote: «{text}»").format(when=when, text=html.escape(event.note or "")))
        elif event.kind == "note":
            lines.append(_("{when} — note to the reporter by {member}: «{text}»").format(
                when=when, member=html.escape(event.actor_name or ""), text=html.escape(event.note or "")))
        else:
            by = f" — {html.escape(event.actor_name)}" if event.actor_name else ""
            lines.append(f"{when} — {STATUSES.get(event.status, event.status)}{by}")
    await callback.message.answer(fit_history(head, lines), reply_markup=case_keyboard(case.id))


def _local(stamp: str, settings: Settings) -> str:
    return f"{parse_stamp(stamp).astimezone(settings.tz):%d.%m.%Y %H:%M}"


@router.message(Command("cases"))
async def list_cases(message: Message, command: CommandObject, cases: CaseService, sites: SiteRepository,
                     i18n: I18n) -> None:
    which = (command.args or "open").strip().lower()
    await _show_page(message, cases, sites, i18n.current_locale, message.from_user.id, which, 0)


@router.callback_query(CasesPageCb.filter())
async def turn_page(callback: CallbackQuery, callback_data: CasesPageCb, cases: CaseService, sites: SiteRepository,
                    i18n: I18n) -> None:
    await _show_page(callback, cases, sites, i18n.current_locale, callback.from_user.id, callback_data.which,
                     callback_data.page)


async def _show_page(event: Message | CallbackQuery, cases: CaseService, sites: SiteRepository, language: str,
                     user_id: int, which: str, page: int) -> None:
    """A new message for /cases, the list itself turned to another page after a tap."""
    message = event.message if isinstance(event, CallbackQuery) else event
    which = which if which in FILTERS else "open"
    page = min(max(0, page), MAX_PAGE)
    try:
        found, total = await cases.list(user_id, which, page)
    except NotAllowed:
        await message.answer(_members_only())
        return
    titles = {"open": _("Open cases"), "closed": _("Closed cases"), "all": _("All cases")}
    pages = max(1, -(-total // PAGE_SIZE))
    text = _("<b>{title}</b>: {total} · page {page} of {pages}").format(
        title=titles[which], total=total, page=page + 1, pages=pages)
    rows = []
    several_sites = len({case.site_id for case in found}) > 1
    for case in found:
        label = f"{case.case_code} · {CATEGORIES.get(case.category, case.category)} · {STATUSES[case.status]}"
        if several_sites:
            label += f" · {(await sites.get(case.site_id)).name(language)}"
        rows.append([InlineKeyboardButton(text=label[:60], callback_data=CaseCb(action="view", report_id=case.id).pack())])
    navigation = []
    if page > 0:
        navigation.append(InlineKeyboardButton(text="⬅️", callback_data=CasesPageCb(which=which, page=page - 1).pack()))
    if page + 1 < pages:
        navigation.append(InlineKeyboardButton(text="➡️", callback_data=CasesPageCb(which=which, page=page + 1).pack()))
    filters = [InlineKeyboardButton(text=("• " if key == which else "") + str(title),
                                    callback_data=CasesPageCb(which=key, page=0).pack()) for key, title in titles.items()]
    markup = InlineKeyboardMarkup(inline_keyboard=[*rows, navigation, filters] if navigation else [*rows, filters])
    await show(event, text, markup)


# --- the digest as it would be now ----------------------------------------------------------------

@router.message(Command("digest"))
async def preview_digest(message: Message, access: AccessService, digests: DigestService, clock: Callable,
                         i18n: I18n) -> None:
    mine = sorted(await access.committee_sites(message.from_user.id))
    if not mine:
        await message.answer(_members_only())
        return
    for site_id in mine:
        for part in await digests.preview(site_id, i18n.current_locale, clock()):
            await message.answer(part)


# --- exports ----------------------------------------------------------------------------------

class ExportCb(CallbackData, prefix="exp"):
    days: int


@router.message(Command("export"))
async def ask_export_period(message: Message, access: AccessService) -> None:
    if not await access.committee_sites(message.from_user.id):
        await message.answer(_members_only())
        return
    labels = {7: _("7 days"), 30: _("30 days"), 90: _("90 days"), 365: _("A year")}
    await message.answer(_("Export your mine's cases for which period?"), reply_markup=InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=labels[days], callback_data=ExportCb(days=days).pack())
                          for days in PERIODS]]))


@router.callback_query(ExportCb.filter(F.days.in_(PERIODS)))
async def export(callback: CallbackQuery, callback_data: ExportCb, exports: ExportService, settings: Settings,
                 i18n: I18n, callback_answer: CallbackAnswer) -> None:
    stem = f"minevoice-cases-{callback_data.days}d"
    try:
        async with exports.export(callback.from_user.id, callback_data.days, i18n.current_locale,
                                  settings.tz) as result:
            caption = _("Cases of the last {days} days: {count}. No reporter data exists to be exported.").format(
                days=callback_data.days, count=result.rows)
            await callback.message.answer_document(FSInputFile(result.xlsx, f"{stem}.xlsx"), caption=caption)
            await callback.message.answer_document(FSInputFile(result.csv, f"{stem}.csv"))
    except NotAllowed:
        _refuse(callback_answer, _members_only())


# --- committee groups ---------------------------------------------------------------------------

@router.message(Command("groupcode"), F.chat.type == ChatType.PRIVATE)
async def group_code(message: Message, access: AccessService, sites: SiteRepository, i18n: I18n) -> None:
    mine = sorted(await access.committee_sites(message.from_user.id))
    if not mine:
        await message.answer(_members_only())
        return
    site = await sites.get(mine[0])
    code = await access.group_code(message.from_user.id, site.id)
    await message.answer(_(
        "Add me to your committee's Telegram group, then send this there:\n\n<code>/bind {code}</code>\n\n"
        "The group will then get danger alerts and digests for {site}. The code works once, for 72 hours."
    ).format(code=code, site=html.escape(site.name(i18n.current_locale))))


@router.message(Command("bind"), F.chat.type.in_({ChatType.GROUP, ChatType.SUPERGROUP}))
async def bind_group(message: Message, command: CommandObject, access: AccessService, sites: SiteRepository,
                     i18n: I18n) -> None:
    site_id = await access.bind_group(message.chat.id, command.args or "", message.chat.title or "",
                                      i18n.current_locale, message.from_user.id) if command.args else None
    if site_id is None:
        await message.answer(_("This code does not work: it may be mistyped, already used or expired. "
                               "A committee member gets a new one with /groupcode in a private chat with me."))
        return
    site = await sites.get(site_id)
    await message.answer(_("This group now receives danger alerts and digests for {site}.").format(
        site=html.escape(site.name(i18n.current_locale))))


@router.message(F.migrate_to_chat_id)
async def group_became_supergroup(message: Message, access: AccessService) -> None:
    await access.group_migrated(message.chat.id, message.migrate_to_chat_id)
