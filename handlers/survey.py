"""A miner answers a survey: Start under the invitation → how anonymity works → group (mine,
underground or surface) → one question per message with buttons → send. Answers wait in the
miner's FSM data (so Back, stopping and resuming after a restart work) until they are sent; then
they are stored with the group only, and the conversation is wiped."""

from __future__ import annotations

import html

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.announcements import SurveyCb
from bot.instruments import Instrument
from bot.surveys import SurveyService, SurveyUnavailable, minutes_needed
from handlers.keyboards import main_menu, show
from storage.sites import SiteRepository

router = Router(name="survey")
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)


class SurveyFlow(StatesGroup):  # storage/fsm.py keeps these until the survey closes (SURVEY_STATES)
    intro = State()
    region = State()
    site = State()
    area = State()
    question = State()
    submit = State()


def _button(text: str, survey_id: int, action: str, index: int = 0, value: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=SurveyCb(action=action, survey_id=survey_id, index=index,
                                                                  value=value).pack())


def _unavailable(reason: str) -> str:
    return {
        "answered": _("You have already answered this survey. Thank you!"),
        "not_open": _("This survey has not opened yet."),
    }.get(reason, _("This survey is closed. Thank you for your interest."))


async def _screen(data: dict, surveys: SurveyService, sites: SiteRepository,
                  i18n: I18n) -> tuple[str, InlineKeyboardMarkup]:
    """The step the miner is at, from the FSM data alone (so it can be shown again at any time)."""
    language = i18n.current_locale
    survey_id = data["survey_id"]
    instrument = surveys.instruments[data["instrument"]]
    step = data.get("step", "intro")
    if step == "intro":
        lines = [f"<b>{html.escape(instrument.title.get(language))}</b>", html.escape(instrument.intro.get(language)),
                 _("It takes about {minutes} min. You can skip any question, go back, stop and carry on later.").format(
                     minutes=minutes_needed(instrument)),
                 _("<b>Anonymous:</b> your answers are stored only with your mine and whether you work underground "
                   "or on the surface. While the survey is open, the bot keeps a scrambled mark so that nobody answers "
                   "twice; when it closes, that mark is destroyed. Results are shown only for groups of at least 10 "
                   "people.")]
        if not instrument.translation_is_official(language):
            lines.append(_("This translation is our own, not an official version of the questionnaire."))
        lines.append(f"<i>{html.escape(instrument.attribution)}</i>")
        return "\n\n".join(lines), InlineKeyboardMarkup(inline_keyboard=[
            [_button(_("▶️ Begin"), survey_id, "begin")], [_button(_("Not now"), survey_id, "later")]])
    if step == "region":
        rows = [[_button(region.name(language), survey_id, "region", value=region.code)] for region in await sites.regions()]
        rows.append([_button(_("⬅️ Back"), survey_id, "back")])
        return _("Which region is your mine in? (Only to group the results.)"), InlineKeyboardMarkup(inline_keyboard=rows)
    if step == "site":
        if data.get("choices"):
            choices = [site for site_id in data["choices"] if (site := await sites.get(site_id))]
        else:
            choices = await sites.sites_in(data.get("region", ""))
        rows = [[_button(site.name(language), survey_id, "site", value=str(site.id))] for site in choices]
        rows.append([_button(_("⬅️ Back"), survey_id, "back")])
        return _("Which mine do you work at? (Only to group the results.)"), InlineKeyboardMarkup(inline_keyboard=rows)
    if step == "area":
        return _("Do you work mostly underground or on the surface?"), InlineKeyboardMarkup(inline_keyboard=[
            [_button(_("⛏ Underground"), survey_id, "area", value="underground"),
             _button(_("🏭 Surface"), survey_id, "area", value="surface")],
            [_button(_("⬅️ Back"), survey_id, "back")]])
    if step == "question":
        index = data["index"]
        question = surveys.questions(instrument, language)[index]
        chosen = data["answers"].get(question.item_id)
        text = "\n\n".join(part for part in (
            f"<b>{question.number}/{question.total}</b>", html.escape(question.stem) if question.stem else "",
            f"<b>{html.escape(question.text)}</b>") if part)
        rows = [[_button(("✅ " if choice.option_id == chosen else "") + choice.label, survey_id, "answer", index,
                         choice.option_id)] for choice in question.choices]
        rows.append([_button(_("⏭ Prefer not to answer"), survey_id, "skip", index)])
        rows.append([_button(_("⬅️ Back"), survey_id, "back", index), _button(_("⏸ Continue later"), survey_id, "later")])
        return text, InlineKeyboardMarkup(inline_keyboard=rows)
    answered = sum(1 for value in data["answers"].values() if value is not None)
    return _("That was the last question ({answered} of {total} answered). Send your answers? They cannot be changed "
             "afterwards.").format(answered=answered, total=len(instrument.items)), InlineKeyboardMarkup(inline_keyboard=[
                 [_button(_("✅ Send my answers"), survey_id, "submit")], [_button(_("⬅️ Back"), survey_id, "back")]])


_STATES = {"intro": SurveyFlow.intro, "region": SurveyFlow.region, "site": SurveyFlow.site, "area": SurveyFlow.area,
           "question": SurveyFlow.question, "submit": SurveyFlow.submit}


async def _remember(state: FSMContext, data: dict) -> None:
    """The step and the answers so far, in one write (each write is a round trip to the database)."""
    await state.storage.set_state_and_data(state.key, _STATES[data["step"]], data)


async def _go(event: Message | CallbackQuery, state: FSMContext, data: dict, surveys: SurveyService,
              sites: SiteRepository, i18n: I18n) -> None:
    await _remember(state, data)
    text, markup = await _screen(data, surveys, sites, i18n)
    await show(event, text, markup)


# --- starting and resuming ----------------------------------------------------------------------

@router.callback_query(SurveyCb.filter(F.action == "start"))
async def start(callback: CallbackQuery, callback_data: SurveyCb, state: FSMContext, surveys: SurveyService,
                sites: SiteRepository, i18n: I18n, callback_answer: CallbackAnswer) -> None:
    current = await state.get_state()
    data = await state.get_data()
    if current is not None and not current.startswith("SurveyFlow:"):
        callback_answer.text = _("Please finish what you are doing first, or send /cancel.")
        callback_answer.show_alert = True
        return
    if current is not None and data.get("survey_id") != callback_data.survey_id:
        callback_answer.text = _("You have another survey open. Finish it first, or send /cancel to drop it.")
        callback_answer.show_alert = True
        return
    try:
        survey, instrument = await surveys.open_survey(callback_data.survey_id, callback.from_user.id)
    except SurveyUnavailable as why:
        if current is not None:  # answers in progress for a survey that closed meanwhile
            await state.clear()
        callback_answer.text = _unavailable(why.reason)
        callback_answer.show_alert = True
        return
    if current is None:  # resuming keeps the answers given so far
        data = {"survey_id": survey.id, "instrument": instrument.id, "step": "intro", "answers": {},
                "choices": await surveys.group_sites(survey)}
    await _go_new_message(callback, state, data, surveys, sites, i18n)


async def _go_new_message(callback: CallbackQuery, state: FSMContext, data: dict, surveys: SurveyService,
                          sites: SiteRepository, i18n: I18n) -> None:
    """The invitation stays as it is (it keeps its Start button); the survey goes on below it."""
    await _remember(state, data)
    text, markup = await _screen(data, surveys, sites, i18n)
    await callback.bot.send_message(callback.from_user.id, text, reply_markup=markup)


@router.message(StateFilter(SurveyFlow), Command("survey"))
async def resume_by_command(message: Message, state: FSMContext, surveys: SurveyService, sites: SiteRepository,
                            i18n: I18n) -> None:
    data = await state.get_data()
    text, markup = await _screen(data, surveys, sites, i18n)
    await message.answer(text, reply_markup=markup)


# --- the steps -----------------------------------------------------------------------------------

@router.callback_query(StateFilter(SurveyFlow), SurveyCb.filter(F.action.in_({"begin", "later", "region", "site",
                                                                              "area", "answer", "skip", "back",
                                                                              "submit"})))
async def step(callback: CallbackQuery, callback_data: SurveyCb, state: FSMContext, surveys: SurveyService,
               sites: SiteRepository, i18n: I18n, callback_answer: CallbackAnswer) -> None:
    data = await state.get_data()
    action, value = callback_data.action, callback_data.value
    if data.get("survey_id") != callback_data.survey_id:
        callback_answer.text = _("That button belongs to an earlier step.")
        return
    instrument: Instrument = surveys.instruments[data["instrument"]]
    here = data.get("step")
    if action == "later":
        await show(callback, _("Your answers so far are kept until the survey closes. To carry on, press Start under "
                               "the invitation again, or send /survey."), None)
        return
    if action in ("answer", "skip") and (here != "question" or callback_data.index != data.get("index")):
        callback_answer.text = _("That button belongs to an earlier step.")
        await _go(callback, state, data, surveys, sites, i18n)
        return
    if action == "begin" and here == "intro":
        choices = data.get("choices")
        if choices and len(choices) == 1:
            data = {**data, "site_id": choices[0], "step": "area"}
        else:
            data = {**data, "step": "site" if choices else "region"}
    elif action == "region" and here == "region" and await sites.region(value):
        data = {**data, "region": value, "step": "site"}
    elif action == "site" and here == "site" and value.isdigit() and await sites.get(int(value)) and (
            not data.get("choices") or int(value) in data["choices"]):
        data = {**data, "site_id": int(value), "step": "area"}
    elif action == "area" and here == "area" and value in ("underground", "surface"):
        data = {**data, "area": value, "step": "question", "index": data.get("index", 0)}
    elif action in ("answer", "skip"):
        item = instrument.items[data["index"]]
        if action == "answer":
            try:
                item.option_set.option(value)
            except KeyError:
                callback_answer.text = _("That button belongs to an earlier step.")
                return
        answers = {**data["answers"], item.id: value if action == "answer" else None}
        following = data["index"] + 1
        data = {**data, "answers": answers, "index": min(following, len(instrument.items) - 1),
                "step": "question" if following < len(instrument.items) else "submit"}
    elif action == "back":
        data = _back(data)
    elif action == "submit" and here == "submit":
        await _submit(callback, state, data, surveys, i18n)
        return
    else:
        callback_answer.text = _("That button belongs to an earlier step.")
    await _go(callback, state, data, surveys, sites, i18n)


def _back(data: dict) -> dict:
    here = data.get("step")
    if here == "submit":
        return {**data, "step": "question"}
    if here == "question" and data.get("index", 0) > 0:
        return {**data, "index": data["index"] - 1}
    if here == "question":
        return {**data, "step": "area"}
    if here == "area":
        choices = data.get("choices")
        if choices and len(choices) == 1:
            return {**data, "step": "intro"}
        return {**data, "step": "site"}
    if here == "site":
        return {**data, "step": "intro" if data.get("choices") else "region"}
    return {**data, "step": "intro"}


async def _submit(callback: CallbackQuery, state: FSMContext, data: dict, surveys: SurveyService, i18n: I18n) -> None:
    try:
        personal = await surveys.submit(data["survey_id"], callback.from_user.id, data["site_id"], data["area"],
                                        data["answers"], i18n.current_locale)
    except SurveyUnavailable as why:
        await state.clear()
        await show(callback, _unavailable(why.reason), None)
        return
    await state.clear()  # the answers in the conversation are wiped now that they are stored anonymously
    text = _("✅ Thank you! Your answers are saved, without your name or account.")
    if personal:
        text += "\n\n" + html.escape(personal)
    await show(callback, text, None)


# --- anything else while answering ----------------------------------------------------------------

@router.message(StateFilter(SurveyFlow))
async def not_a_button(message: Message, state: FSMContext, surveys: SurveyService, sites: SiteRepository,
                       i18n: I18n) -> None:
    await message.answer(_("Please answer with the buttons. To stop the survey: /cancel"), reply_markup=main_menu())
    text, markup = await _screen(await state.get_data(), surveys, sites, i18n)
    await message.answer(text, reply_markup=markup)


@router.callback_query(SurveyCb.filter())
async def not_in_survey(callback: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    callback_answer.text = _("This button is no longer active. Press Start under the invitation to answer.")
