"""Organizers (any mine) and committees (their own mines) launch surveys with /survey and read
/results of closed ones: a PNG chart and an XLSX workbook of aggregated results, never answers."""

from __future__ import annotations

import html
from datetime import datetime

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import BufferedInputFile, CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.access import NotAllowed
from bot.announcements import parse_send_time
from bot.config import LOCALES, Settings
from bot.surveys import DURATIONS_DAYS, SurveyService, SurveyUnavailable
from handlers.keyboards import nav_row, show
from storage.sites import SiteRepository

router = Router(name="survey_admin")
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)


class SurveySetup(StatesGroup):
    instrument = State()
    sites = State()
    languages = State()
    opens = State()
    confirm = State()


class SetupCb(CallbackData, prefix="ss"):
    action: str  # instrument | site | allsites | sites_done | language | languages_done | now | days | launch
    value: str = ""


# The step of the setup whose screen carries each button.
STEP_OF_ACTION = {"instrument": "instrument", "site": "sites", "allsites": "sites", "sites_done": "sites",
                  "language": "languages", "languages_done": "languages", "now": "opens", "days": "days",
                  "launch": "confirm"}


class ResultsCb(CallbackData, prefix="res"):
    action: str  # show | close
    survey_id: int


def _button(text: str, action: str, value: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=SetupCb(action=action, value=value).pack())


def _not_allowed() -> str:
    return _("Only union organizers and OSH committees can run surveys.")


async def _setup_screen(data: dict, surveys: SurveyService, sites: SiteRepository, i18n: I18n,
                        settings: Settings, allowed: set[int] | None) -> tuple[str, InlineKeyboardMarkup]:
    language = i18n.current_locale
    step = data.get("step", "instrument")
    if step == "instrument":
        rows = [[_button(instrument.title.get(language), "instrument", instrument.id)]
                for instrument in surveys.instruments.values()]
        rows.append(nav_row(back=False))
        return _("Which questionnaire?"), InlineKeyboardMarkup(inline_keyboard=rows)
    if step == "sites":
        chosen = set(data.get("sites") or [])
        rows = []
        for region in await sites.regions():
            for site in await sites.sites_in(region.code):
                if allowed is None or site.id in allowed:
                    rows.append([_button(("✅ " if site.id in chosen else "") + site.name(language), "site", str(site.id))])
        if allowed is None:
            rows.append([_button(("✅ " if not chosen else "") + _("All mines"), "allsites")])
        rows.append([_button(_("✔️ Done"), "sites_done")])
        return _("Which mines are invited? Tap to choose, then Done."), InlineKeyboardMarkup(inline_keyboard=rows)
    if step == "languages":
        chosen = set(data.get("languages") or [])
        rows = [[_button(("✅ " if code in chosen else "") + i18n.gettext("English", locale=code), "language", code)]
                for code in LOCALES]
        rows.append([_button(_("✔️ Done"), "languages_done")])
        return _("Which languages' speakers are invited? Nothing chosen means all."), \
            InlineKeyboardMarkup(inline_keyboard=rows)
    if step == "opens":
        return _("When does it open? Press Now, or send a date and time ({timezone}) as DD.MM.YYYY HH:MM.").format(
            timezone=settings.timezone), InlineKeyboardMarkup(inline_keyboard=[
                [_button(_("🕐 Now"), "now")], nav_row(back=False)])
    if step == "days":
        return _("How long does it stay open?"), InlineKeyboardMarkup(inline_keyboard=[
            [_button(_("{days} days").format(days=days), "days", str(days)) for days in DURATIONS_DAYS],
            nav_row(back=False)])
    instrument = surveys.instruments[data["instrument"]]
    names = [site.name(language) for site_id in data.get("sites") or [] if (site := await sites.get(site_id))]
    opens = data.get("opens_at")
    return "\n".join([
        _("<b>Check and launch</b>"),
        _("Questionnaire: {title}").format(title=html.escape(instrument.title.get(language))),
        _("Mines: {mines}").format(mines=html.escape(", ".join(names)) if names else _("all")),
        _("Languages: {languages}").format(languages=", ".join(i18n.gettext("English", locale=code) for code in
                                                                 data["languages"]) if data.get("languages") else _("all")),
        _("Opens: {when}").format(when=_("now") if not opens else opens),
        _("Open for: {days} days").format(days=data["days"]),
        _("Subscribed miners of these mines get an invitation with a Start button."),
    ]), InlineKeyboardMarkup(inline_keyboard=[[_button(_("🚀 Launch"), "launch")], nav_row(back=False)])


async def _show_setup(event: Message | CallbackQuery, state: FSMContext, data: dict, surveys: SurveyService,
                      sites: SiteRepository, i18n: I18n, settings: Settings) -> None:
    await state.set_state({"instrument": SurveySetup.instrument, "sites": SurveySetup.sites,
                           "languages": SurveySetup.languages, "opens": SurveySetup.opens,
                           "days": SurveySetup.opens, "confirm": SurveySetup.confirm}[data["step"]])
    await state.set_data(data)
    allowed = await surveys.launchable_sites(event.from_user.id)
    text, markup = await _setup_screen(data, surveys, sites, i18n, settings, allowed)
    await show(event, text, markup)


@router.message(Command("survey"))
async def start_setup(message: Message, state: FSMContext, surveys: SurveyService, sites: SiteRepository,
                      i18n: I18n, settings: Settings) -> None:
    allowed = await surveys.launchable_sites(message.from_user.id)
    if allowed is not None and not allowed:
        await message.answer(_("No survey is waiting for you. When the union sends one, press Start under it."))
        return
    if await state.get_state() is not None:
        await message.answer(_("Please finish what you are doing first, or send /cancel."))
        return
    await _show_setup(message, state, {"step": "instrument", "sites": sorted(allowed) if allowed else None},
                      surveys, sites, i18n, settings)


@router.callback_query(StateFilter(SurveySetup), SetupCb.filter())
async def setup_step(callback: CallbackQuery, callback_data: SetupCb, state: FSMContext, surveys: SurveyService,
                     sites: SiteRepository, i18n: I18n, settings: Settings, callback_answer: CallbackAnswer) -> None:
    data = await state.get_data()
    action, value = callback_data.action, callback_data.value
    if STEP_OF_ACTION.get(action) != data.get("step", "instrument"):
        # A button of another step (an older message): taking it would skip what that step needs.
        callback_answer.text = _("That button belongs to an earlier step.")
        return
    allowed = await surveys.launchable_sites(callback.from_user.id)
    if action == "instrument" and value in surveys.instruments:
        data = {**data, "instrument": value, "step": "sites"}
    elif action == "site" and value.isdigit() and await sites.get(int(value)) and (allowed is None or int(value) in allowed):
        chosen = set(data.get("sites") or []) ^ {int(value)}
        data = {**data, "sites": sorted(chosen) or None}
    elif action == "allsites" and allowed is None:
        data = {**data, "sites": None}
    elif action == "sites_done":
        if allowed is not None and not data.get("sites"):
            callback_answer.text = _("Choose at least one of your mines.")
            return
        data = {**data, "step": "languages"}
    elif action == "language" and value in LOCALES:
        chosen = set(data.get("languages") or []) ^ {value}
        data = {**data, "languages": [code for code in LOCALES if code in chosen] or None}
    elif action == "languages_done":
        data = {**data, "step": "opens"}
    elif action == "now":
        data = {**data, "opens_at": None, "step": "days"}
    elif action == "days" and value.isdigit() and int(value) in DURATIONS_DAYS:
        data = {**data, "days": int(value), "step": "confirm"}
    elif action == "launch" and data.get("step") == "confirm":
        await _launch(callback, state, data, surveys, settings)
        return
    else:
        callback_answer.text = _("That button belongs to an earlier step.")
        return
    await _show_setup(callback, state, data, surveys, sites, i18n, settings)


@router.message(SurveySetup.opens, F.text)
async def opens_typed(message: Message, state: FSMContext, surveys: SurveyService, sites: SiteRepository,
                      i18n: I18n, settings: Settings, clock) -> None:
    moment = parse_send_time(message.text, settings.tz, clock())
    if moment is None:
        await message.answer(_("I could not read that as a date and time in the next twelve months. "
                               "Example: 25.12.2026 18:00"))
        return
    data = {**await state.get_data(), "opens_at": moment.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M"),
            "opens_utc": moment.isoformat(), "step": "days"}
    await _show_setup(message, state, data, surveys, sites, i18n, settings)


async def _launch(callback: CallbackQuery, state: FSMContext, data: dict, surveys: SurveyService,
                  settings: Settings) -> None:
    opens = datetime.fromisoformat(data["opens_utc"]) if data.get("opens_utc") else None
    try:
        survey = await surveys.launch(callback.from_user.id, data["instrument"], data.get("sites"), opens, data["days"],
                                      languages=data.get("languages"))
    except NotAllowed:
        await state.clear()
        await show(callback, _not_allowed(), None)
        return
    await state.clear()
    await show(callback, _("🚀 Survey #{number} launched. It closes on {closes}; results come with /results after that.")
               .format(number=survey.id, closes=survey.closes_at.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M")), None)


@router.message(StateFilter(SurveySetup))
async def setup_wrong_input(message: Message) -> None:
    await message.answer(_("Please choose with the buttons below."))


# --- results -------------------------------------------------------------------------------------

@router.message(Command("results"))
async def list_results(message: Message, surveys: SurveyService, i18n: I18n, settings: Settings) -> None:
    try:
        found = await surveys.surveys_for(message.from_user.id)
    except NotAllowed:
        await message.answer(_not_allowed())
        return
    if not found:
        await message.answer(_("No surveys yet. Launch one with /survey."))
        return
    rows = []
    for survey in found:
        title = surveys.instruments[survey.instrument].title.get(i18n.current_locale)
        state = _("closed") if survey.state == "closed" else _("open until {date}").format(
            date=survey.closes_at.astimezone(settings.tz).strftime("%d.%m"))
        rows.append([InlineKeyboardButton(text=f"#{survey.id} · {state} · {title}"[:64],
                                          callback_data=ResultsCb(action="show", survey_id=survey.id).pack())])
    await message.answer(_("Surveys (newest first):"), reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))


@router.callback_query(ResultsCb.filter())
async def show_results(callback: CallbackQuery, callback_data: ResultsCb, surveys: SurveyService, i18n: I18n,
                       settings: Settings, callback_answer: CallbackAnswer) -> None:
    user_id, survey_id = callback.from_user.id, callback_data.survey_id
    if callback_data.action == "close":
        survey = await surveys.repo.get(survey_id)
        if survey is None or not (survey.created_by == user_id or await surveys.launchable_sites(user_id) is None):
            callback_answer.text = _not_allowed()
            return
        await surveys.close(survey_id)
        callback_answer.text = _("Closed.")
    try:
        files = await surveys.results(user_id, survey_id, i18n.current_locale)
    except NotAllowed:
        callback_answer.text = _not_allowed()
        return
    except SurveyUnavailable:
        survey = await surveys.repo.get(survey_id)
        markup = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
            text=_("🔒 Close it now"), callback_data=ResultsCb(action="close", survey_id=survey_id).pack())]])
        await callback.bot.send_message(user_id, _(
            "Results are shown once the survey has closed ({date}): comparing results before and after one "
            "person's answer could reveal it.").format(
                date=survey.closes_at.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M")), reply_markup=markup)
        return
    title = files.instrument.title.get(i18n.current_locale)
    # No total count: it would give away the overall number even where the overall cell is hidden.
    caption = _("{title}, survey #{number}. Groups with fewer than 10 (20 for harassment) "
                "are shown only as “too few answers”.").format(title=title, number=survey_id)
    await callback.bot.send_photo(user_id, BufferedInputFile(files.chart_png, f"survey-{survey_id}.png"),
                                  caption=caption[:1024])
    await callback.bot.send_document(user_id, BufferedInputFile(files.xlsx, f"survey-{survey_id}.xlsx"))
