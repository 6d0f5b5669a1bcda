"""/announce (organizers compose a campaign), /campaigns (its progress and controls), and the
buttons under every announcement ("I've read it", Unsubscribe). This router comes before the
other flows, so those buttons work whatever the miner is doing.

Composing: 1 audience (mines, languages, live count) → 2 the message, versions per language and
a link button → 3 when, quiet hours, the read button → 4 preview exactly as miners get it → confirm.
The draft lives in the organizer's FSM data until it is confirmed or cancelled.
"""

from __future__ import annotations

import html
from datetime import datetime

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.callback_answer import CallbackAnswer
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.announcements import (
    PREVIEW_CAMPAIGN_ID,
    AckCb,
    UnsubscribeCb,
    AnnouncementService,
    CampaignCb,
    Content,
    ContentProblem,
    Draft,
    check_link,
    content_from_message,
    parse_send_time,
)
from bot.config import LOCALES, Settings
from handlers.keyboards import NavCb, nav_row, show
from storage.sites import SiteRepository
from storage.users import UserRepository

router = Router(name="announce")
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)

CAMPAIGNS_PER_PAGE = 8
TOTAL_STEPS = 4


class Compose(StatesGroup):
    audience = State()
    sites = State()
    languages = State()
    content = State()
    versions = State()
    version = State()  # waiting for one language's version
    link = State()
    settings = State()
    when = State()
    confirm = State()


BACK = {
    Compose.sites: Compose.audience, Compose.languages: Compose.audience, Compose.content: Compose.audience,
    Compose.versions: Compose.content, Compose.version: Compose.versions, Compose.link: Compose.versions,
    Compose.settings: Compose.versions, Compose.when: Compose.settings, Compose.confirm: Compose.settings,
}
BY_NAME = {step.state: step for step in BACK} | {Compose.audience.state: Compose.audience}


class AnnCb(CallbackData, prefix="ann"):
    action: str
    value: str = ""


def _button(text: str, action: str, value: str = "") -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text, callback_data=AnnCb(action=action, value=value).pack())


def _language_name(code: str, i18n: I18n) -> str:
    return i18n.gettext("English", locale=code)


def _step(number: int) -> str:
    return _("<b>Step {step} of {total}</b>").format(step=number, total=TOTAL_STEPS)


def _organizers_only() -> str:
    return _("Only union organizers can send announcements.")


# --- the screens ------------------------------------------------------------------------------

async def _screen(step: State, draft: Draft, data: dict, announcements: AnnouncementService, sites: SiteRepository,
                  i18n: I18n, settings: Settings) -> tuple[str, InlineKeyboardMarkup]:
    language = i18n.current_locale
    if step == Compose.audience:
        chosen_sites = [site.name(language) for site_id in draft.sites or [] if (site := await sites.get(site_id))]
        text = "\n".join([
            _step(1) + " " + _("Who gets the announcement"),
            _("Mines: {mines}").format(mines=html.escape(", ".join(chosen_sites)) if draft.sites else _("all")),
            _("Languages: {languages}").format(languages=", ".join(_language_name(code, i18n) for code in draft.languages)
                                                if draft.languages else _("all")),
            _("Recipients now: <b>{count}</b> (subscribers who can be reached)").format(
                count=await announcements.count(draft)),
        ])
        rows = [[_button(_("⛏ Choose mines"), "sites"), _button(_("🌐 Choose languages"), "languages")]]
        if draft.sites is not None or draft.languages is not None:
            rows.append([_button(_("👥 Everyone"), "everyone")])
        rows.append([_button(_("➡️ Next"), "next")])
        rows.append(nav_row(back=False))
        return text, InlineKeyboardMarkup(inline_keyboard=rows)
    if step == Compose.sites:
        chosen = set(draft.sites or [])
        rows = []
        for region in await sites.regions():
            for site in await sites.sites_in(region.code):
                mark = "✅ " if site.id in chosen else ""
                rows.append([_button(mark + site.name(language), "site", str(site.id))])
        rows.append([_button(_("✔️ Done"), "done")])
        text = _step(1) + " " + _("Tap the mines that get it, then Done. Nothing chosen means all mines.") + "\n" + \
            _("Recipients now: <b>{count}</b> (subscribers who can be reached)").format(count=await announcements.count(draft))
        return text, InlineKeyboardMarkup(inline_keyboard=rows)
    if step == Compose.languages:
        chosen = set(draft.languages or [])
        rows = [[_button(("✅ " if code in chosen else "") + _language_name(code, i18n), "language", code)]
                for code in LOCALES]
        rows.append([_button(_("✔️ Done"), "done")])
        text = _step(1) + " " + _("Tap the languages whose speakers get it, then Done. Nothing chosen means all.") + \
            "\n" + _("Recipients now: <b>{count}</b> (subscribers who can be reached)").format(
                count=await announcements.count(draft))
        return text, InlineKeyboardMarkup(inline_keyboard=rows)
    if step == Compose.content:
        return _step(2) + " " + _(
            "Send the announcement exactly as miners should see it: a text (bold, italics and links are kept) "
            "or one photo with a caption. This main version goes to everyone who has no version in their own "
            "language; you can add those next."
        ), InlineKeyboardMarkup(inline_keyboard=[nav_row()])
    if step == Compose.versions:
        lines = [_step(2) + " " + _("Versions and link"),
                 _("Main version: {start}").format(start=_first_line(draft.versions.get("fallback")))]
        rows = []
        for code in draft.languages or LOCALES:
            name = _language_name(code, i18n)
            if code in draft.versions:
                lines.append(_("{language}: its own version: {start}").format(
                    language=name, start=_first_line(draft.versions[code])))
                rows.append([_button(_("✏️ {language}").format(language=name), "version", code),
                             _button(_("🗑 {language}").format(language=name), "drop", code)])
            else:
                lines.append(_("{language}: gets the main version").format(language=name))
                rows.append([_button(_("➕ {language} version").format(language=name), "version", code)])
        rows.append([_button(_("✏️ Main version"), "version", "fallback")])
        if draft.link:
            lines.append(_("Link button: {link}").format(link=html.escape(draft.link)))
            rows.append([_button(_("🔗 Change the link"), "link"), _button(_("🗑 Remove the link"), "nolink")])
        else:
            lines.append(_("Link button: none"))
            rows.append([_button(_("🔗 Add a link button"), "link")])
        rows.append([_button(_("➡️ Next"), "next")])
        rows.append(nav_row())
        return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=rows)
    if step == Compose.version:
        code = data.get("version_for", "fallback")
        who = _("the main version") if code == "fallback" else _("the {language} version").format(
            language=_language_name(code, i18n))
        return _step(2) + " " + _("Send {version}: a text, or one photo with a caption.").format(version=who), \
            InlineKeyboardMarkup(inline_keyboard=[nav_row()])
    if step == Compose.link:
        return _step(2) + " " + _(
            "Send the web address for the button, starting with https://. Miners will see the site's name on the button."
        ), InlineKeyboardMarkup(inline_keyboard=[nav_row()])
    if step == Compose.settings:
        send_at = draft.send_time()
        when = send_at.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M") if send_at else _("now")

        def mark(on: bool) -> str:
            return "✅ " if on else ""

        text = "\n".join([
            _step(3) + " " + _("When and how"),
            _("When: {when} ({timezone})").format(when=when, timezone=settings.timezone),
            _("At night (22:00–07:00): {choice}").format(choice={
                "silent": _("deliver without sound"), "hold": _("hold until 07:00"), "none": _("send as usual"),
            }[draft.quiet_hours]),
            _("“I've read it” button: {choice}").format(choice=_("on") if draft.ack_button else _("off")),
        ])
        rows = [
            [_button(mark(send_at is None) + _("🕐 Now"), "now"), _button(mark(send_at is not None) + _("📅 Date and time"), "schedule")],
            [_button(mark(draft.quiet_hours == "silent") + _("🌙 Without sound"), "quiet", "silent"),
             _button(mark(draft.quiet_hours == "hold") + _("⏳ Hold till morning"), "quiet", "hold")],
            [_button(mark(draft.quiet_hours == "none") + _("🔔 As usual"), "quiet", "none"),
             _button(mark(draft.ack_button) + _("“I've read it” button"), "ack")],
            [_button(_("👁 Preview"), "preview")],
            nav_row(),
        ]
        return text, InlineKeyboardMarkup(inline_keyboard=rows)
    if step == Compose.when:
        return _step(3) + " " + _(
            "Send the date and time ({timezone}) as DD.MM.YYYY HH:MM, for example 25.12.2026 18:00."
        ).format(timezone=settings.timezone), InlineKeyboardMarkup(inline_keyboard=[nav_row()])
    # Compose.confirm
    send_at = draft.send_time()
    count = await announcements.count(draft)
    if send_at:
        text = _("It will go out on {when} to the subscribers then in the audience (now: {count}).").format(
            when=send_at.astimezone(settings.tz).strftime("%d.%m.%Y %H:%M"), count=count)
    else:
        text = _("It goes out now to <b>{count}</b> recipients.").format(count=count)
    return _step(4) + " " + _("Check the preview above: this is exactly what miners will get.") + "\n" + text, \
        InlineKeyboardMarkup(inline_keyboard=[[_button(_("✅ Confirm and send"), "confirm")], nav_row()])


def _first_line(version: dict | None) -> str:
    if not version:
        return "—"
    content = Content.from_json(version)
    line = (content.text.strip().split("\n")[0] if content.text.strip() else "")[:60]
    return ("🖼 " if content.photo else "") + (html.escape(line) or "—")


async def _go(step: State, event: Message | CallbackQuery, state: FSMContext, announcements: AnnouncementService,
              sites: SiteRepository, i18n: I18n, settings: Settings, draft: Draft | None = None, **extra) -> None:
    data = await state.get_data()
    draft = draft or Draft.from_data(data)
    await state.set_state(step)
    await state.update_data(draft.to_data(), **extra)
    text, markup = await _screen(step, draft, {**data, **extra}, announcements, sites, i18n, settings)
    await show(event, text, markup)


async def _ask_again(event: Message | CallbackQuery, state: FSMContext, announcements: AnnouncementService,
                     sites: SiteRepository, i18n: I18n, settings: Settings, hint: str) -> None:
    """Wrong input: what is expected, in one line, then the current step again."""
    step = BY_NAME.get(await state.get_state() or "", Compose.audience)
    data = await state.get_data()
    text, markup = await _screen(step, Draft.from_data(data), data, announcements, sites, i18n, settings)
    await event.bot.send_message(event.from_user.id, hint)
    await event.bot.send_message(event.from_user.id, text, reply_markup=markup)


# --- starting and navigating -------------------------------------------------------------------

@router.message(StateFilter(Compose), F.text.startswith("/"))
async def busy_composing(message: Message, state: FSMContext, announcements: AnnouncementService,
                         sites: SiteRepository, i18n: I18n, settings: Settings) -> None:
    await _ask_again(message, state, announcements, sites, i18n, settings,
                     _("You are composing an announcement. Carry on below, or send /cancel to drop it."))


@router.message(Command("announce"))
async def start_composing(message: Message, state: FSMContext, announcements: AnnouncementService,
                          sites: SiteRepository, i18n: I18n, settings: Settings) -> None:
    if not await announcements.can_announce(message.from_user.id):
        await message.answer(_organizers_only())
        return
    if await state.get_state() is not None:  # another flow, e.g. a report half-written: never overwrite it
        await message.answer(_("Please finish what you are doing first, or send /cancel."))
        return
    await state.set_data({})
    await _go(Compose.audience, message, state, announcements, sites, i18n, settings, Draft())


@router.callback_query(StateFilter(Compose), NavCb.filter(F.action == "cancel"))
async def cancel_composing(callback: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    await show(callback, _("Announcement dropped. Nothing was sent."), None)


@router.callback_query(StateFilter(Compose), NavCb.filter(F.action == "back"))
async def go_back(callback: CallbackQuery, state: FSMContext, announcements: AnnouncementService,
                  sites: SiteRepository, i18n: I18n, settings: Settings) -> None:
    current = BY_NAME.get(await state.get_state() or "", Compose.audience)
    await _go(BACK.get(current, Compose.audience), callback, state, announcements, sites, i18n, settings)


# --- 1: audience -------------------------------------------------------------------------------

@router.callback_query(Compose.audience, AnnCb.filter(F.action.in_({"sites", "languages", "everyone", "next"})))
async def audience(callback: CallbackQuery, callback_data: AnnCb, state: FSMContext, announcements: AnnouncementService,
                   sites: SiteRepository, i18n: I18n, settings: Settings, callback_answer: CallbackAnswer) -> None:
    draft = Draft.from_data(await state.get_data())
    action = callback_data.action
    if action == "everyone":
        draft.sites = draft.languages = None
        await _go(Compose.audience, callback, state, announcements, sites, i18n, settings, draft)
    elif action == "next":
        if not await announcements.count(draft):
            callback_answer.text = _("Nobody in this audience can get it now. Choose other mines or languages.")
            callback_answer.show_alert = True
            return
        step = Compose.versions if draft.versions else Compose.content
        await _go(step, callback, state, announcements, sites, i18n, settings, draft)
    else:
        await _go(Compose.sites if action == "sites" else Compose.languages, callback, state, announcements, sites,
                  i18n, settings, draft)


@router.callback_query(Compose.sites, AnnCb.filter(F.action == "site"))
async def toggle_site(callback: CallbackQuery, callback_data: AnnCb, state: FSMContext,
                      announcements: AnnouncementService, sites: SiteRepository, i18n: I18n, settings: Settings) -> None:
    draft = Draft.from_data(await state.get_data())
    if callback_data.value.isdigit() and await sites.get(int(callback_data.value)):
        chosen = set(draft.sites or []) ^ {int(callback_data.value)}
        draft.sites = sorted(chosen) or None
    await _go(Compose.sites, callback, state, announcements, sites, i18n, settings, draft)


@router.callback_query(Compose.languages, AnnCb.filter((F.action == "language") & F.value.in_(LOCALES)))
async def toggle_language(callback: CallbackQuery, callback_data: AnnCb, state: FSMContext,
                          announcements: AnnouncementService, sites: SiteRepository, i18n: I18n,
                          settings: Settings) -> None:
    draft = Draft.from_data(await state.get_data())
    chosen = set(draft.languages or []) ^ {callback_data.value}
    draft.languages = [code for code in LOCALES if code in chosen] or None
    await _go(Compose.languages, callback, state, announcements, sites, i18n, settings, draft)


@router.callback_query(StateFilter(Compose.sites, Compose.languages), AnnCb.filter(F.action == "done"))
async def audience_chosen(callback: CallbackQuery, state: FSMContext, announcements: AnnouncementService,
                          sites: SiteRepository, i18n: I18n, settings: Settings) -> None:
    await _go(Compose.audience, callback, state, announcements, sites, i18n, settings)


# --- 2: the message, its versions, the link ------------------------------------------------------

@router.message(StateFilter(Compose.content, Compose.version))
async def content_received(message: Message, state: FSMContext, announcements: AnnouncementService,
                           sites: SiteRepository, i18n: I18n, settings: Settings) -> None:
    try:
        content = content_from_message(message)
    except ContentProblem as problem:
        await _ask_again(message, state, announcements, sites, i18n, settings, str(problem))
        return
    data = await state.get_data()
    draft = Draft.from_data(data)
    target = data.get("version_for", "fallback") if await state.get_state() == Compose.version.state else "fallback"
    draft.versions[target] = content.to_json()
    await _go(Compose.versions, message, state, announcements, sites, i18n, settings, draft, version_for=None)


@router.callback_query(Compose.versions, AnnCb.filter(F.action.in_({"version", "drop", "link", "nolink", "next"})))
async def versions(callback: CallbackQuery, callback_data: AnnCb, state: FSMContext, announcements: AnnouncementService,
                   sites: SiteRepository, i18n: I18n, settings: Settings) -> None:
    draft = Draft.from_data(await state.get_data())
    action, value = callback_data.action, callback_data.value
    if action == "version" and (value in LOCALES or value == "fallback"):
        await _go(Compose.version, callback, state, announcements, sites, i18n, settings, draft, version_for=value)
        return
    if action == "link":
        await _go(Compose.link, callback, state, announcements, sites, i18n, settings, draft)
        return
    if action == "next":
        await _go(Compose.settings, callback, state, announcements, sites, i18n, settings, draft)
        return
    if action == "drop" and value in LOCALES:
        draft.versions.pop(value, None)
    elif action == "nolink":
        draft.link = None
    await _go(Compose.versions, callback, state, announcements, sites, i18n, settings, draft)


@router.message(Compose.link, F.text)
async def link_received(message: Message, state: FSMContext, announcements: AnnouncementService,
                        sites: SiteRepository, i18n: I18n, settings: Settings) -> None:
    link = check_link(message.text)
    if link is None:
        await _ask_again(message, state, announcements, sites, i18n, settings,
                         _("That is not a web address. It must start with https:// (or http://) and have no spaces."))
        return
    draft = Draft.from_data(await state.get_data())
    draft.link = link
    await _go(Compose.versions, message, state, announcements, sites, i18n, settings, draft)


# --- 3: when and how -----------------------------------------------------------------------------

@router.callback_query(Compose.settings, AnnCb.filter(F.action.in_({"now", "schedule", "quiet", "ack", "preview"})))
async def settings_step(callback: CallbackQuery, callback_data: AnnCb, state: FSMContext,
                        announcements: AnnouncementService, sites: SiteRepository, i18n: I18n,
                        settings: Settings) -> None:
    draft = Draft.from_data(await state.get_data())
    action = callback_data.action
    if action == "schedule":
        await _go(Compose.when, callback, state, announcements, sites, i18n, settings, draft)
        return
    if action == "preview":
        await _preview(callback, state, announcements, sites, i18n, settings, draft)
        return
    before = draft.to_data()
    if action == "now":
        draft.send_at = None
    elif action == "quiet" and callback_data.value in ("silent", "hold", "none"):
        draft.quiet_hours = callback_data.value
    elif action == "ack":
        draft.ack_button = not draft.ack_button
    if draft.to_data() == before:
        return  # a tap on the choice already made
    await _go(Compose.settings, callback, state, announcements, sites, i18n, settings, draft)


@router.message(Compose.when, F.text)
async def when_received(message: Message, state: FSMContext, announcements: AnnouncementService,
                        sites: SiteRepository, i18n: I18n, settings: Settings, clock) -> None:
    moment = parse_send_time(message.text, settings.tz, clock())
    if moment is None:
        await _ask_again(message, state, announcements, sites, i18n, settings, _(
            "I could not read that as a date and time in the next twelve months. Example: 25.12.2026 18:00"))
        return
    draft = Draft.from_data(await state.get_data())
    draft.send_at = moment.isoformat()
    await _go(Compose.settings, message, state, announcements, sites, i18n, settings, draft)


# --- 4: preview and confirm ----------------------------------------------------------------------

async def _preview(callback: CallbackQuery, state: FSMContext, announcements: AnnouncementService,
                   sites: SiteRepository, i18n: I18n, settings: Settings, draft: Draft) -> None:
    chat_id = callback.from_user.id
    languages = draft.languages or list(LOCALES)
    own = [code for code in languages if code in draft.versions]
    main = [code for code in languages if code not in own]
    if main:  # shown with the buttons in the organizer's language if it is among them
        await callback.bot.send_message(chat_id, _("👁 Preview: the main version, for {languages}:").format(
            languages=", ".join(_language_name(code, i18n) for code in main)))
        await announcements.preview(chat_id, draft, "fallback", i18n.current_locale if i18n.current_locale in main
                                    else main[0])
    for code in own:
        await callback.bot.send_message(chat_id, _("👁 Preview for {language}:").format(language=_language_name(code, i18n)))
        await announcements.preview(chat_id, draft, code, code)
    await state.set_state(Compose.confirm)
    data = await state.get_data()
    text, markup = await _screen(Compose.confirm, draft, data, announcements, sites, i18n, settings)
    await callback.bot.send_message(chat_id, text, reply_markup=markup)


@router.callback_query(Compose.confirm, AnnCb.filter(F.action == "confirm"))
async def confirm(callback: CallbackQuery, state: FSMContext, announcements: AnnouncementService, i18n: I18n,
                  clock, callback_answer: CallbackAnswer) -> None:
    draft = Draft.from_data(await state.get_data())
    send_at = draft.send_time()
    if send_at is not None and send_at <= clock():
        callback_answer.text = _("That time has passed. Go back and choose a new one, or send it now.")
        callback_answer.show_alert = True
        return
    if not draft.versions.get("fallback"):
        await state.clear()
        await show(callback, _("This draft is incomplete; please start again with /announce."), None)
        return
    await state.clear()
    campaign = await announcements.confirm(callback.from_user.id, draft)
    text, markup = announcements.progress_card(campaign, i18n.current_locale)
    if isinstance(callback.message, Message):
        message = await callback.message.edit_text(text, reply_markup=markup)
    else:  # the draft's message is too old to be shown: the progress card comes as a new one
        message = await callback.bot.send_message(callback.from_user.id, text, reply_markup=markup)
    if isinstance(message, Message):
        await announcements.remember_progress_message(campaign.id, message.chat.id, message.message_id)
    callback_answer.text = _("Confirmed.")


# --- wrong input while composing -----------------------------------------------------------------

@router.message(StateFilter(Compose.link, Compose.when))
async def not_text(message: Message, state: FSMContext, announcements: AnnouncementService, sites: SiteRepository,
                   i18n: I18n, settings: Settings) -> None:
    await _ask_again(message, state, announcements, sites, i18n, settings, _("Please type your answer as a text message."))


@router.message(StateFilter(Compose))
async def not_a_button(message: Message, state: FSMContext, announcements: AnnouncementService,
                       sites: SiteRepository, i18n: I18n, settings: Settings) -> None:
    await _ask_again(message, state, announcements, sites, i18n, settings, _("Please choose with the buttons below."))


@router.callback_query(StateFilter(Compose), AnnCb.filter())
async def earlier_step(callback: CallbackQuery, state: FSMContext, announcements: AnnouncementService,
                       sites: SiteRepository, i18n: I18n, settings: Settings, callback_answer: CallbackAnswer) -> None:
    callback_answer.text = _("That button belongs to an earlier step.")
    await _ask_again(callback, state, announcements, sites, i18n, settings, _("Here is where you are now:"))


@router.callback_query(AnnCb.filter())
async def composer_gone(callback: CallbackQuery, callback_answer: CallbackAnswer) -> None:
    callback_answer.text = _("This draft is no longer open. Start again with /announce.")


# --- /campaigns ------------------------------------------------------------------------------------

async def _campaign_list(announcements: AnnouncementService, i18n: I18n) -> tuple[str, InlineKeyboardMarkup]:
    campaigns = await announcements.repo.recent(CAMPAIGNS_PER_PAGE)
    if not campaigns:
        return _("No announcements yet. Compose one with /announce."), InlineKeyboardMarkup(inline_keyboard=[])
    rows = []
    for campaign in campaigns:
        title, _markup = announcements.progress_card(campaign, i18n.current_locale)
        first = title.split("\n")[0].replace("<b>", "").replace("</b>", "").replace("📣 ", "")
        rows.append([InlineKeyboardButton(text=first[:60], callback_data=CampaignCb(
            action="show", campaign_id=campaign.id).pack())])
    return _("Recent announcements (newest first). Tap one for its progress and controls."), \
        InlineKeyboardMarkup(inline_keyboard=rows)


@router.message(Command("campaigns"))
async def list_campaigns(message: Message, announcements: AnnouncementService, i18n: I18n) -> None:
    if not await announcements.can_announce(message.from_user.id):
        await message.answer(_organizers_only())
        return
    text, markup = await _campaign_list(announcements, i18n)
    await message.answer(text, reply_markup=markup)


@router.callback_query(CampaignCb.filter())
async def campaign_action(callback: CallbackQuery, callback_data: CampaignCb, announcements: AnnouncementService,
                          i18n: I18n, callback_answer: CallbackAnswer) -> None:
    if not await announcements.can_announce(callback.from_user.id):
        callback_answer.text = _organizers_only()
        callback_answer.show_alert = True
        return
    action, campaign_id = callback_data.action, callback_data.campaign_id
    if action == "list":
        text, markup = await _campaign_list(announcements, i18n)
        await show(callback, text, markup)
        return
    campaign = await announcements.repo.get(campaign_id)
    if campaign is None:
        callback_answer.text = _("This button is no longer active.")
        return
    if action == "cancel":
        await show(callback, _("Cancel announcement #{number}? Messages already delivered stay delivered.").format(
            number=campaign_id), InlineKeyboardMarkup(inline_keyboard=[[
                InlineKeyboardButton(text=_("Yes, cancel it"), callback_data=CampaignCb(
                    action="cancel_yes", campaign_id=campaign_id).pack()),
                InlineKeyboardButton(text=_("No, keep it"), callback_data=CampaignCb(
                    action="show", campaign_id=campaign_id).pack())]]))
        return
    if action in ("pause", "resume", "cancel_yes"):
        done = await announcements.control(campaign_id, "cancel" if action == "cancel_yes" else action)
        callback_answer.text = {"pause": _("Paused."), "resume": _("Sending again."), "cancel_yes": _("Cancelled.")}[
            action] if done else _("Not possible in its present state.")
        campaign = await announcements.repo.get(campaign_id)
    text, markup = announcements.progress_card(campaign, i18n.current_locale)
    markup.inline_keyboard.append([InlineKeyboardButton(text=_("⬅️ All announcements"), callback_data=CampaignCb(
        action="list").pack())])
    await show(callback, text, markup)


# --- under every announcement --------------------------------------------------------------------

@router.callback_query(UnsubscribeCb.filter())
async def unsubscribe_button(callback: CallbackQuery, users: UserRepository, callback_answer: CallbackAnswer) -> None:
    await users.set_subscribed(callback.from_user.id, False)
    callback_answer.text = _("Unsubscribed. To get announcements again: /subscribe")
    callback_answer.show_alert = True


@router.callback_query(AckCb.filter())
async def acknowledged(callback: CallbackQuery, callback_data: AckCb, announcements: AnnouncementService,
                       callback_answer: CallbackAnswer) -> None:
    if callback_data.campaign_id == PREVIEW_CAMPAIGN_ID:
        callback_answer.text = _("This is the preview: nothing was counted.")
        return
    if not await announcements.repo.acknowledge(callback_data.campaign_id):
        callback_answer.text = _("This button is no longer active.")
        return
    callback_answer.text = _("Thank you!")
    # The button goes away, so one person counts once; who pressed it is not kept anywhere.
    markup = callback.message.reply_markup if isinstance(callback.message, Message) else None
    if markup is not None:
        rows = [row for row in markup.inline_keyboard
                if not any((button.callback_data or "").startswith(f"{AckCb.__prefix__}:") for button in row)]
        await callback.message.edit_reply_markup(reply_markup=InlineKeyboardMarkup(inline_keyboard=rows))
