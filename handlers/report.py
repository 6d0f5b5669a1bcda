"""/report: region → mine → hazard → urgency → place → description → photos → review → submit.

Buttons first; Back and Cancel on every step. The draft lives in FSM data keyed by the user
until it is submitted or cancelled, and nothing about the sender goes into the report.
"""

from __future__ import annotations

import asyncio
import html

from aiogram import Bot, F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.hazards import CATEGORIES, DANGER, SEVERITIES
from bot.notify import AlertService
from bot.reports import (
    DESCRIPTION_MAX,
    DESCRIPTION_MIN,
    LOCATION_MAX,
    PHOTOS_MAX,
    Draft,
    ReportService,
    TextProblem,
    check_description,
    check_location,
)
from handlers.keyboards import HELP_BUTTON, REPORT_BUTTON, STATUS_BUTTON, NavCb, nav_row, show
from handlers.status import CheckCb
from storage.sites import SiteRepository

router = Router(name="report")
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)

ALBUM_QUIET_SECONDS = 1.0
ERASE_MAX_MESSAGES = 300


class ReportFlow(StatesGroup):
    region = State()
    site = State()
    category = State()
    severity = State()
    location = State()
    description = State()
    photos = State()
    review = State()


ORDER = [
    ReportFlow.region,
    ReportFlow.site,
    ReportFlow.category,
    ReportFlow.severity,
    ReportFlow.location,
    ReportFlow.description,
    ReportFlow.photos,
    ReportFlow.review,
]
STEP_NUMBER = {ReportFlow.region: 1, ReportFlow.site: 1, ReportFlow.category: 2, ReportFlow.severity: 3,
               ReportFlow.location: 4, ReportFlow.description: 5, ReportFlow.photos: 6}
TOTAL_STEPS = 6
BY_NAME = {step.state: step for step in ORDER}
EDITABLE = {"site": ReportFlow.region, "category": ReportFlow.category, "severity": ReportFlow.severity,
            "location": ReportFlow.location, "description": ReportFlow.description, "photos": ReportFlow.photos}


class ReportCb(CallbackData, prefix="rp"):
    action: str  # region | site | category | severity | skip | done | edit | submit
    value: str = ""


class EraseCb(CallbackData, prefix="er"):
    action: str  # ask | yes | no
    first: int


def _button(text: str, data: CallbackData) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=data.pack())


def _header(step: State, question: str) -> str:
    return _("<b>Step {step} of {total}</b>").format(step=STEP_NUMBER[step], total=TOTAL_STEPS) + "\n" + question


async def _prompt(step: State, data: dict, sites: SiteRepository, language: str) -> tuple[str, InlineKeyboardMarkup]:
    """The question and buttons of one step, built from the draft so far."""
    rows: list[list[InlineKeyboardButton]] = []
    if step == ReportFlow.region:
        text = _header(step, _("Which mine or enterprise is it about? First choose the region."))
        rows = [[_button(region.name(language), ReportCb(action="region", value=region.code))]
                for region in await sites.regions()]
        rows.append(nav_row(back=False))
    elif step == ReportFlow.site:
        region = await sites.region(data.get("region", ""))
        text = _header(step, _("Choose the mine or enterprise in {region}.").format(
            region=html.escape(region.name(language) if region else "?")))
        rows = [[_button(site.name(language), ReportCb(action="site", value=str(site.id)))]
                for site in await sites.sites_in(data.get("region", ""))]
        rows.append(nav_row())
    elif step == ReportFlow.category:
        text = _header(step, _("What kind of hazard is it?"))
        rows = [[_button(str(label), ReportCb(action="category", value=code))] for code, label in CATEGORIES.items()]
        rows.append(nav_row())
    elif step == ReportFlow.severity:
        text = _header(step, _("How urgent is it?"))
        rows = [[_button(str(label), ReportCb(action="severity", value=code))] for code, label in SEVERITIES.items()]
        rows.append(nav_row())
    elif step == ReportFlow.location:
        text = _header(step, _(
            "Where exactly? Section, horizon, face, conveyor number… Type it in a message, or press Skip.\n"
            "<i>Up to {limit} characters.</i>").format(limit=LOCATION_MAX))
        rows = [[_button(_("Skip ➡️"), ReportCb(action="skip"))], nav_row()]
    elif step == ReportFlow.description:
        text = _header(step, _(
            "What is happening? Describe the hazard in a message, in your own words.\n\n"
            "⚠️ Do not write names or personnel numbers, yours or anyone else's.\n"
            "<i>{min} to {max} characters.</i>").format(min=DESCRIPTION_MIN, max=DESCRIPTION_MAX))
        rows = [nav_row()]
    elif step == ReportFlow.photos:
        count = len(data.get("photos", []))
        question = _("Photos help the committee. Send up to {max} photos, or press Skip.").format(max=PHOTOS_MAX)
        if count:
            question = _("Photos attached: {count} of {max}. Send more, or press Done.").format(count=count, max=PHOTOS_MAX)
        text = _header(step, question + "\n" + _("<i>Send them as photos, not as files.</i>"))
        finish = _("Done ✅") if count else _("Skip ➡️")
        rows = [[_button(finish, ReportCb(action="done"))], nav_row()]
    else:
        text = await _review_text(Draft.from_data(data), sites, language)
        rows = [
            [_button(_("✏️ Mine"), ReportCb(action="edit", value="site")),
             _button(_("✏️ Hazard"), ReportCb(action="edit", value="category"))],
            [_button(_("✏️ Urgency"), ReportCb(action="edit", value="severity")),
             _button(_("✏️ Place"), ReportCb(action="edit", value="location"))],
            [_button(_("✏️ Description"), ReportCb(action="edit", value="description")),
             _button(_("✏️ Photos"), ReportCb(action="edit", value="photos"))],
            [_button(_("✅ Send report"), ReportCb(action="submit"))],
            nav_row(),
        ]
    return text, InlineKeyboardMarkup(inline_keyboard=rows)


async def _review_text(draft: Draft, sites: SiteRepository, language: str) -> str:
    site = await sites.get(draft.site_id) if draft.site_id is not None else None
    return _(
        "<b>Check your report before sending</b>\n\n"
        "<b>Mine:</b> {site}\n"
        "<b>Hazard:</b> {category}\n"
        "<b>Urgency:</b> {severity}\n"
        "<b>Where:</b> {location}\n"
        "<b>What is happening:</b> {description}\n"
        "<b>Photos:</b> {photos}\n\n"
        "Nothing has been sent yet."
    ).format(
        site=html.escape(site.name(language)) if site else "—",
        category=CATEGORIES[draft.category] if draft.category in CATEGORIES else "—",
        severity=SEVERITIES[draft.severity] if draft.severity in SEVERITIES else "—",
        location=html.escape(draft.location) if draft.location else _("not given"),
        description=html.escape(draft.description or "—"),
        photos=len(draft.photos),
    )


async def _go(step: State, event: Message | CallbackQuery, state: FSMContext, sites: SiteRepository,
              i18n: I18n, **changes) -> None:
    data = {**await state.get_data(), **changes}
    await state.storage.set_state_and_data(state.key, step, data)
    text, markup = await _prompt(step, data, sites, i18n.current_locale)
    await show(event, text, markup)


async def _advance(current: State, event: Message | CallbackQuery, state: FSMContext, sites: SiteRepository,
                   i18n: I18n, **changes) -> None:
    """After an answer: on to the next step, or straight back to the review when editing."""
    data = await state.get_data()
    following = ORDER[ORDER.index(current) + 1]
    if data.get("editing") and current != ReportFlow.region:
        following = ReportFlow.review
    await _go(following, event, state, sites, i18n, **changes)


async def _ask_again(event: Message | CallbackQuery, state: FSMContext, sites: SiteRepository, i18n: I18n,
                     hint: str) -> None:
    """Wrong input: one short line saying what is expected, then the current step again."""
    step = BY_NAME.get(await state.get_state() or "", ReportFlow.region)
    text, markup = await _prompt(step, await state.get_data(), sites, i18n.current_locale)
    await event.bot.send_message(event.from_user.id, hint)
    await event.bot.send_message(event.from_user.id, text, reply_markup=markup)


# --- starting ---------------------------------------------------------------------------------

@router.message(StateFilter(ReportFlow), F.text.startswith("/"))  # any command but /cancel (handled before)
@router.message(StateFilter(ReportFlow), F.text.func(lambda text: text in {str(REPORT_BUTTON), str(STATUS_BUTTON), str(HELP_BUTTON)}))
async def already_reporting(message: Message, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    await _ask_again(message, state, sites, i18n,
                     _("You are in the middle of a report. Carry on below, or send /cancel to drop it."))


@router.message(Command("report"))
@router.message(F.text == REPORT_BUTTON)
async def start_report(message: Message, state: FSMContext, reports: ReportService, sites: SiteRepository,
                       i18n: I18n) -> None:
    wait = reports.wait_before_next_report(message.from_user.id)
    if wait:
        await message.answer(_(
            "You have sent several reports in the last hour. To protect the bot from abuse, please wait "
            "{minutes} min before the next one.\n\nIf life is in danger, call the mine dispatcher now."
        ).format(minutes=max(1, round(wait / 60))))
        return
    await state.set_data({"first_message_id": message.message_id})
    await _go(ReportFlow.region, message, state, sites, i18n)


# --- navigation -------------------------------------------------------------------------------

@router.callback_query(StateFilter(ReportFlow), NavCb.filter(F.action == "cancel"))
async def cancel_report(callback: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await show(callback, _("Report cancelled. Nothing was sent, and the draft is deleted."), None)


@router.callback_query(StateFilter(ReportFlow), NavCb.filter(F.action == "back"))
async def go_back(callback: CallbackQuery, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    current = BY_NAME[await state.get_state()]
    data = await state.get_data()
    if data.get("editing") and current != ReportFlow.site:
        target = ReportFlow.review
    else:
        target = ORDER[max(0, ORDER.index(current) - 1)]
    await _go(target, callback, state, sites, i18n)


# --- the steps --------------------------------------------------------------------------------

@router.callback_query(ReportFlow.region, ReportCb.filter(F.action == "region"))
async def chose_region(callback: CallbackQuery, callback_data: ReportCb, state: FSMContext, sites: SiteRepository,
                       i18n: I18n) -> None:
    if not await sites.sites_in(callback_data.value):
        await _go(ReportFlow.region, callback, state, sites, i18n)
        return
    await _advance(ReportFlow.region, callback, state, sites, i18n, region=callback_data.value)


@router.callback_query(ReportFlow.site, ReportCb.filter(F.action == "site"))
async def chose_site(callback: CallbackQuery, callback_data: ReportCb, state: FSMContext, sites: SiteRepository,
                     i18n: I18n) -> None:
    site = await sites.get(int(callback_data.value)) if callback_data.value.isdigit() else None
    if site is None or site.region_code != (await state.get_data()).get("region"):
        await _go(ReportFlow.site, callback, state, sites, i18n)
        return
    await _advance(ReportFlow.site, callback, state, sites, i18n, site_id=site.id)


@router.callback_query(ReportFlow.category, ReportCb.filter((F.action == "category") & F.value.in_(CATEGORIES)))
async def chose_category(callback: CallbackQuery, callback_data: ReportCb, state: FSMContext,
                         sites: SiteRepository, i18n: I18n) -> None:
    await _advance(ReportFlow.category, callback, state, sites, i18n, category=callback_data.value)


@router.callback_query(ReportFlow.severity, ReportCb.filter((F.action == "severity") & F.value.in_(SEVERITIES)))
async def chose_severity(callback: CallbackQuery, callback_data: ReportCb, state: FSMContext,
                         sites: SiteRepository, i18n: I18n) -> None:
    if callback_data.value != DANGER:
        await _advance(ReportFlow.severity, callback, state, sites, i18n, severity=callback_data.value)
        return
    # Safety first: the guidance takes the place of the question, the flow goes on below it.
    await show(callback, _(
        "⚠️ <b>If you are in danger right now:</b>\n"
        "1. Leave the danger zone and take others with you.\n"
        "2. Warn your team and the mine dispatcher at once.\n"
        "3. You have the right to refuse work that threatens your life or health. "
        "The law protects you for using it.\n\n"
        "Then finish the report below so that the union's safety committee can act on it."
    ), None)
    await _advance(ReportFlow.severity, callback.message, state, sites, i18n, severity=DANGER)


@router.callback_query(ReportFlow.location, ReportCb.filter(F.action == "skip"))
async def skipped_location(callback: CallbackQuery, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    await _advance(ReportFlow.location, callback, state, sites, i18n, location=None)


@router.message(ReportFlow.location, F.text)
async def typed_location(message: Message, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    problem = check_location(message.text)
    if problem is TextProblem.TOO_SHORT:
        await _ask_again(message, state, sites, i18n, _("Please type your answer as a text message."))
        return
    if problem is TextProblem.TOO_LONG:
        await _ask_again(message, state, sites, i18n, _(
            "That is too long ({length} characters). Please keep the place under {limit} characters."
        ).format(length=len(message.text.strip()), limit=LOCATION_MAX))
        return
    await _advance(ReportFlow.location, message, state, sites, i18n, location=message.text.strip())


@router.message(ReportFlow.description, F.text)
async def typed_description(message: Message, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    problem = check_description(message.text)
    if problem is TextProblem.TOO_LONG:
        hint = _("That is too long ({length} characters). Please shorten it to {limit} characters.").format(
            length=len(message.text.strip()), limit=DESCRIPTION_MAX)
    elif problem is TextProblem.TOO_SHORT:
        hint = _("Please describe it in a few more words (at least {min} characters).").format(min=DESCRIPTION_MIN)
    else:
        await _advance(ReportFlow.description, message, state, sites, i18n, description=message.text.strip())
        return
    await _ask_again(message, state, sites, i18n, hint)


# Photos of one album arrive as separate updates; the miner gets one answer per album.
_album_answers: dict[int, asyncio.Task] = {}


@router.message(ReportFlow.photos, F.photo)
async def got_photo(message: Message, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    data = await state.get_data()
    photos = list(data.get("photos", []))
    overflow = data.get("overflow", False)
    if len(photos) < PHOTOS_MAX:
        photos.append(message.photo[-1].file_id)
    else:
        overflow = True
    await state.update_data(photos=photos, overflow=overflow)
    if message.media_group_id is None:
        await _answer_photos(message, state, sites, i18n)
        return
    pending = _album_answers.pop(message.chat.id, None)
    if pending is not None:
        pending.cancel()
    _album_answers[message.chat.id] = asyncio.create_task(_answer_album_later(message, state, sites, i18n))


async def _answer_album_later(message: Message, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    await asyncio.sleep(ALBUM_QUIET_SECONDS)
    if _album_answers.get(message.chat.id) is asyncio.current_task():
        del _album_answers[message.chat.id]
    if await state.get_state() == ReportFlow.photos.state:
        await _answer_photos(message, state, sites, i18n)


async def _answer_photos(message: Message, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    data = await state.get_data()
    if data.get("overflow"):
        await state.update_data(overflow=False)
        await message.answer(_("Only {max} photos can be attached; the others were not added.").format(max=PHOTOS_MAX))
    if len(data.get("photos", [])) >= PHOTOS_MAX:
        await _go(ReportFlow.review, message, state, sites, i18n)
    else:
        await _go(ReportFlow.photos, message, state, sites, i18n)


@router.callback_query(ReportFlow.photos, ReportCb.filter(F.action == "done"))
async def photos_done(callback: CallbackQuery, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    await _go(ReportFlow.review, callback, state, sites, i18n)


@router.message(ReportFlow.photos, F.document)
async def photo_as_file(message: Message, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    if (message.document.mime_type or "").startswith("image/"):
        hint = _("Please send it as a photo, not as a file: files keep hidden data, such as where the picture was taken.")
    else:
        hint = _("Only photos can be attached to a report.")
    await _ask_again(message, state, sites, i18n, hint)


@router.callback_query(ReportFlow.review, ReportCb.filter((F.action == "edit") & F.value.in_(EDITABLE)))
async def edit_field(callback: CallbackQuery, callback_data: ReportCb, state: FSMContext, sites: SiteRepository,
                     i18n: I18n) -> None:
    changes = {"editing": True}
    if callback_data.value == "photos":
        changes["photos"] = []  # photos are re-sent from scratch: simpler than picking which to drop
    await _go(EDITABLE[callback_data.value], callback, state, sites, i18n, **changes)


@router.callback_query(ReportFlow.review, ReportCb.filter(F.action == "submit"))
async def submit(callback: CallbackQuery, state: FSMContext, reports: ReportService, sites: SiteRepository,
                 alerts: AlertService, i18n: I18n, callback_answer: CallbackAnswer) -> None:
    data = await state.get_data()
    draft = Draft.from_data(data)
    if not draft.is_complete():
        await _go(ReportFlow.review, callback, state, sites, i18n)
        return
    first_message_id = int(data.get("first_message_id") or callback.message.message_id)
    submitted = await reports.submit(draft, i18n.current_locale, forget_draft=state.clear)
    reports.count_submission(callback.from_user.id)
    callback_answer.text = _("Report sent")
    try:
        if isinstance(callback.message, Message):
            await callback.message.edit_reply_markup(reply_markup=None)
    except TelegramBadRequest:
        pass  # the review message is gone or too old; the confirmation below is what matters
    await callback.message.answer(
        _(
            "✅ <b>Report sent to the union.</b>\n\n"
            "Case code: <code>{code}</code>\n"
            "Secret receipt: <code>{receipt}</code>\n\n"
            "Write both down or remember them. With them, and only with them, you can see what the "
            "committee does and answer its questions. Nobody can restore a lost receipt: we do not know who you are."
        ).format(code=submitted.case_code, receipt=submitted.receipt),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[
            [_button(_("🔎 Check status"), CheckCb(code=submitted.case_code, receipt=submitted.receipt))],
            [_button(_("🧹 Erase this conversation"), EraseCb(action="ask", first=first_message_id))],
        ]),
    )
    if draft.severity == DANGER:
        alerts.kick()


# --- erasing the conversation afterwards ----------------------------------------------------------

@router.callback_query(EraseCb.filter(F.action == "ask"))
async def erase_asked(callback: CallbackQuery, callback_data: EraseCb) -> None:
    await callback.message.answer(
        _("This deletes the whole report conversation from this chat, including the case code and receipt. "
          "Have you written them down?"),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[[
            _button(_("Yes, erase"), EraseCb(action="yes", first=callback_data.first)),
            _button(_("No, keep it"), EraseCb(action="no", first=callback_data.first)),
        ]]),
    )


@router.callback_query(EraseCb.filter(F.action == "no"))
async def erase_declined(callback: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    callback_answer.text = _("Kept.")
    await _delete_messages(callback.bot, callback.message.chat.id, [callback.message.message_id])


@router.callback_query(EraseCb.filter(F.action == "yes"))
async def erase_confirmed(callback: CallbackQuery, callback_data: EraseCb, callback_answer: CallbackAnswer) -> None:
    # The range lives only in the button, in the miner's own chat: the server keeps no message ids.
    last = callback.message.message_id
    first = max(callback_data.first, last - ERASE_MAX_MESSAGES, 1)
    await _delete_messages(callback.bot, callback.message.chat.id, list(range(first, last + 1)))
    callback_answer.text = _("Erased. Messages older than 48 hours cannot be deleted by the bot.")


async def _delete_messages(bot: Bot, chat_id: int, message_ids: list[int]) -> None:
    for start in range(0, len(message_ids), 100):
        try:
            await bot.delete_messages(chat_id, message_ids[start : start + 100])
        except TelegramBadRequest:
            pass  # some were already gone or too old: the rest are deleted anyway


# --- anything else while reporting ------------------------------------------------------------

@router.message(ReportFlow.location)
@router.message(ReportFlow.description)
async def not_text(message: Message, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    await _ask_again(message, state, sites, i18n, _("Please type your answer as a text message."))


@router.message(ReportFlow.photos)
async def not_photo(message: Message, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    await _ask_again(message, state, sites, i18n, _("Please send a photo, or use the buttons."))


@router.message(StateFilter(ReportFlow))
async def not_a_button(message: Message, state: FSMContext, sites: SiteRepository, i18n: I18n) -> None:
    await _ask_again(message, state, sites, i18n, _("Please choose with the buttons below."))


@router.callback_query(StateFilter(ReportFlow))
async def stale_button(callback: CallbackQuery, state: FSMContext, sites: SiteRepository, i18n: I18n,
                       callback_answer: CallbackAnswer) -> None:
    callback_answer.text = _("That button belongs to an earlier step.")
    await _ask_again(callback, state, sites, i18n, _("Here is where you are now:"))
