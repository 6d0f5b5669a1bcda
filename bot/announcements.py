"""Campaign announcements as organizers compose them and miners receive them.

One function renders a campaign into the Bot API call a recipient gets (`_call`); the preview
sends that very call, so what the organizer approves is what miners get. Delivery sends it
prepared once per campaign and language (bot/bulk_send.py).
The organizer's own text and formatting entities are sent unchanged (parse_mode off), with
the buttons in the recipient's language: the link (its web address shown, so nobody is lured
to a look-alike site), "I've read it" if asked for, and Unsubscribe, always.
"""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from urllib.parse import urlsplit

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters.callback_data import CallbackData
from aiogram.methods import SendMessage, SendPhoto
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, MessageEntity
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.access import AccessService
from bot.broadcasts import BroadcastEngine
from bot.bulk_send import BulkSender, PreparedCall
from bot.config import LOCALES
from storage.campaigns import Audience, Campaign, CampaignRepository, Counters
from storage.users import UserRepository

log = logging.getLogger(__name__)

TEXT_MAX = 4096
CAPTION_MAX = 1024
LINK_MAX = 512
PREVIEW_CAMPAIGN_ID = 0  # the buttons of a preview carry this id: pressing them counts nothing
_DATE_TIME = re.compile(r"^\s*(\d{1,2})[./-](\d{1,2})[./-](\d{4})\s+(\d{1,2})[:.](\d{2})\s*$")


class AckCb(CallbackData, prefix="ack"):
    campaign_id: int


class UnsubscribeCb(CallbackData, prefix="unsub"):
    """Under every announcement: one tap, no questions (handled with the profile)."""


class SurveyCb(CallbackData, prefix="sv"):
    """The survey flow's buttons; `index` is the question's position, so a tap on an old one is seen."""

    action: str  # start | begin | later | site | region | area | answer | skip | back | submit
    survey_id: int
    index: int = 0
    value: str = ""


class CampaignCb(CallbackData, prefix="cmp"):
    action: str  # show | pause | resume | cancel | cancel_yes | list
    campaign_id: int = 0


@dataclass(frozen=True, slots=True)
class Content:
    """One version of an announcement: a text, or a photo with a caption, with Telegram's entities."""

    text: str
    entities: tuple[dict[str, Any], ...] = ()
    photo: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text, "entities": list(self.entities), "photo": self.photo}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Content:
        return cls(data.get("text") or "", tuple(data.get("entities") or ()), data.get("photo"))


class ContentProblem(Exception):
    """The organizer's message cannot be an announcement; str() is the reason, in their language."""


def content_from_message(message: Message) -> Content:
    """The organizer's message exactly as written: its text or photo caption and their entities."""
    if message.media_group_id:
        raise ContentProblem(_("Please send one photo, not an album."))
    if message.photo:
        caption = message.caption or ""
        if len(caption) > CAPTION_MAX:  # Telegram refuses longer captions; a forwarded message may carry one
            raise ContentProblem(_("A photo caption can have at most {limit} characters.").format(limit=CAPTION_MAX))
        entities = message.caption_entities or []
        return Content(caption, _entities(entities), message.photo[-1].file_id)
    if message.text and message.text.strip() and not message.text.startswith("/"):
        return Content(message.text, _entities(message.entities or []))
    raise ContentProblem(_("Please send the announcement as a text message, or as one photo with a caption."))


def _entities(entities: list[MessageEntity]) -> tuple[dict[str, Any], ...]:
    return tuple(entity.model_dump(exclude_none=True, mode="json") for entity in entities)


def check_link(text: str) -> str | None:
    """An http(s) address with a host, or None."""
    candidate = text.strip()
    if len(candidate) > LINK_MAX or any(character.isspace() for character in candidate):
        return None
    parts = urlsplit(candidate)
    if parts.scheme not in ("http", "https") or not parts.hostname or "." not in parts.hostname:
        return None
    return candidate


def parse_send_time(text: str, tz: tzinfo, now: datetime) -> datetime | None:
    """'DD.MM.YYYY HH:MM' in the bot's time zone, in the future and within a year; UTC, or None."""
    found = _DATE_TIME.match(text)
    if not found:
        return None
    day, month, year, hour, minute = (int(part) for part in found.groups())
    try:
        moment = datetime(year, month, day, hour, minute, tzinfo=tz).astimezone(UTC)
    except ValueError:
        return None
    if not now < moment <= now + timedelta(days=366):
        return None
    return moment


@dataclass(slots=True)
class _Rendered:
    content: Content
    entities: list[MessageEntity]
    markup: InlineKeyboardMarkup


@dataclass
class Draft:
    """What the composer has gathered so far (kept in the organizer's FSM data as JSON)."""

    sites: list[int] | None = None
    languages: list[str] | None = None
    versions: dict[str, dict[str, Any]] = field(default_factory=dict)  # "fallback" and language codes
    link: str | None = None
    ack_button: bool = False
    quiet_hours: str = "silent"
    send_at: str | None = None  # UTC ISO text; None: now

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> Draft:
        return cls(**(data.get("draft") or {}))

    def to_data(self) -> dict[str, Any]:
        return {"draft": {"sites": self.sites, "languages": self.languages, "versions": self.versions,
                          "link": self.link, "ack_button": self.ack_button, "quiet_hours": self.quiet_hours,
                          "send_at": self.send_at}}

    @property
    def audience(self) -> Audience:
        return Audience(None if self.sites is None else tuple(self.sites),
                        None if self.languages is None else tuple(self.languages))

    def contents(self) -> dict[str, Any]:
        return {**self.versions, **({"link": self.link} if self.link else {})}

    def send_time(self) -> datetime | None:
        return datetime.fromisoformat(self.send_at) if self.send_at else None


class AnnouncementService:
    def __init__(self, bot: Bot, repo: CampaignRepository, users: UserRepository, access: AccessService, i18n: I18n, *,
                 default_locale: str, tz: tzinfo, paid_broadcast: bool,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._bot = bot
        self.repo = repo
        self._users = users
        self._access = access
        self._i18n = i18n
        self._default = default_locale
        self.tz = tz
        self._paid = paid_broadcast or None
        self._clock = clock
        self._bulk = BulkSender(bot)
        self._prepared: dict[tuple[int, str, bool], PreparedCall] = {}
        self.engine: BroadcastEngine | None = None  # set by the wiring (the engine calls `deliver`)

    # --- what recipients get -----------------------------------------------------------------

    async def deliver(self, chat_id: int, language: str, campaign: Campaign) -> None:
        """The engine's `send`: exactly one Bot API request per recipient; errors propagate."""
        key = (campaign.id, language, campaign.silent_now)
        prepared = self._prepared.get(key)
        if prepared is None:
            rendered = self._render(campaign.contents, language, campaign.id, campaign.ack_button)
            prepared = self._bulk.prepare(self._call(rendered, 0, silent=campaign.silent_now, paid=self._paid))
            if len(self._prepared) > 64:  # a few entries per campaign; old campaigns are done
                self._prepared.clear()
            self._prepared[key] = prepared
        await self._bulk.send(prepared, chat_id)

    async def preview(self, chat_id: int, draft: Draft, version: str, language: str) -> None:
        """One version exactly as its recipients in `language` will see it ("fallback": the main version)."""
        contents = draft.contents()
        if version == "fallback":
            contents = {**contents, language: contents["fallback"]}
        rendered = self._render(contents, language, PREVIEW_CAMPAIGN_ID, draft.ack_button)
        await self._bot(self._call(rendered, chat_id, silent=False, paid=None))

    def _render(self, contents: dict[str, Any], language: str, campaign_id: int, ack_button: bool) -> _Rendered:
        version = contents.get(language)
        if version is None:
            fallback = contents.get("fallback")
            version = contents.get(fallback) if isinstance(fallback, str) else fallback
        content = Content.from_json(version or {})
        with self._i18n.context(), self._i18n.use_locale(language):
            rows: list[list[InlineKeyboardButton]] = []
            survey = contents.get("survey")
            if survey:
                rows.append([InlineKeyboardButton(text=_("▶️ Start the survey"),
                                                  callback_data=SurveyCb(action="start", survey_id=survey).pack())])
            link = contents.get("link")
            if link:
                rows.append([InlineKeyboardButton(text=_("🔗 Open {site}").format(site=urlsplit(link).hostname), url=link)])
            if ack_button:
                rows.append([InlineKeyboardButton(text=_("✅ I've read it"),
                                                  callback_data=AckCb(campaign_id=campaign_id).pack())])
            rows.append([InlineKeyboardButton(text=_("🔕 Unsubscribe"), callback_data=UnsubscribeCb().pack())])
        entities = [MessageEntity.model_validate(entity) for entity in content.entities]
        return _Rendered(content, entities, InlineKeyboardMarkup(inline_keyboard=rows))

    @staticmethod
    def _call(rendered: _Rendered, chat_id: int, *, silent: bool, paid: bool | None) -> SendMessage | SendPhoto:
        content = rendered.content
        if content.photo:
            return SendPhoto(
                chat_id=chat_id, photo=content.photo, caption=content.text or None,
                caption_entities=rendered.entities or None, parse_mode=None, reply_markup=rendered.markup,
                disable_notification=silent or None, allow_paid_broadcast=paid)
        return SendMessage(
            chat_id=chat_id, text=content.text, entities=rendered.entities or None, parse_mode=None,
            reply_markup=rendered.markup, disable_notification=silent or None, allow_paid_broadcast=paid)

    # --- composing and controlling -------------------------------------------------------------

    async def can_announce(self, user_id: int) -> bool:
        return await self._access.is_organizer(user_id)

    async def count(self, draft: Draft) -> int:
        return await self.repo.count_audience(draft.audience)

    async def confirm(self, organizer_id: int, draft: Draft, *, survey_id: int | None = None) -> Campaign:
        """Save the campaign and hand it to the engine: sent now, or scheduled. A survey's
        invitation carries its Start button."""
        contents = draft.contents() | ({"survey": survey_id} if survey_id else {})
        campaign_id = await self.repo.create(
            organizer_id, draft.audience, contents, now=self._clock(), ack_button=draft.ack_button,
            send_at=draft.send_time(), quiet_hours=draft.quiet_hours)
        await self.engine.launch(campaign_id)
        return await self.repo.get(campaign_id)

    async def control(self, campaign_id: int, action: str) -> bool:
        if action == "pause":
            return await self.engine.pause(campaign_id)
        if action == "resume":
            return await self.engine.resume(campaign_id)
        if action == "cancel":
            return await self.engine.cancel(campaign_id)
        raise ValueError(action)

    # --- the organizer's progress message ------------------------------------------------------

    def progress_card(self, campaign: Campaign, language: str) -> tuple[str, InlineKeyboardMarkup]:
        """The campaign's state and counts, with the controls that apply; call in the reader's locale."""
        counters = campaign.counters
        lines = [_("📣 <b>Announcement #{number}</b> · {state}").format(
            number=campaign.id, state=self._state_label(campaign))]
        preview = Content.from_json(campaign.content_for(language) or {}).text.strip().split("\n")[0]
        if preview:
            lines.append(f"<i>{html.escape(preview[:80])}</i>")
        if campaign.state in ("draft", "scheduled"):
            lines.append(_("Recipients are counted when it starts."))
        else:
            lines.append(_("Recipients: {total}\nDelivered: {delivered} · Blocked the bot: {blocked} · "
                           "Failed: {failed} · Waiting: {waiting}").format(
                total=counters.total, delivered=counters.delivered, blocked=counters.blocked,
                failed=counters.failed, waiting=counters.remaining))
        if campaign.ack_button:
            lines.append(_("Pressed “I've read it”: {count}").format(count=counters.acknowledged))
        return "\n".join(lines), self.controls(campaign)

    def _state_label(self, campaign: Campaign) -> str:
        if campaign.state == "scheduled" and campaign.send_at is not None:
            return _("scheduled for {moment}").format(
                moment=campaign.send_at.astimezone(self.tz).strftime("%d.%m.%Y %H:%M"))
        if campaign.state == "paused":
            return {
                "blocked": _("paused: most of the first recipients have blocked the bot"),
                "unauthorized": _("paused: Telegram no longer accepts the bot's token"),
                "error": _("paused: an error in the bot, see the log"),
            }.get(campaign.pause_reason or "", _("paused"))
        return {
            "sending": _("sending"), "done": _("finished"), "cancelled": _("cancelled"), "draft": _("draft"),
        }.get(campaign.state, campaign.state)

    @staticmethod
    def controls(campaign: Campaign) -> InlineKeyboardMarkup:
        def button(text: str, action: str) -> InlineKeyboardButton:
            return InlineKeyboardButton(text=text, callback_data=CampaignCb(action=action, campaign_id=campaign.id).pack())

        row = []
        if campaign.state == "sending":
            row.append(button(_("⏸ Pause"), "pause"))
        if campaign.state == "paused":
            row.append(button(_("▶️ Resume"), "resume"))
        if campaign.state in ("scheduled", "sending", "paused"):
            row.append(button(_("✖️ Cancel"), "cancel"))
        rows = [row] if row else []
        rows.append([button(_("🔄 Refresh"), "show")])
        return InlineKeyboardMarkup(inline_keyboard=rows)

    async def show_progress(self, campaign_id: int, *, notify: str | None = None) -> None:
        """Update the organizer's progress message; `notify` also sends them a new line (which rings)."""
        campaign = await self.repo.get(campaign_id)
        if campaign is None or campaign.progress_chat_id is None:
            return
        chat_id = campaign.progress_chat_id
        language = await self._language_of(chat_id)
        with self._i18n.context(), self._i18n.use_locale(language):
            text, markup = self.progress_card(campaign, language)
            note = {
                "finished": _("📣 Announcement #{number} has gone out to everyone it could reach."),
                "paused": _("⏸ Announcement #{number} was paused. Open /campaigns to see why and resume or cancel it."),
            }.get(notify or "", "")
        try:
            await self._bot.edit_message_text(text=text, chat_id=chat_id, message_id=campaign.progress_message_id,
                                              reply_markup=markup)
        except TelegramBadRequest as error:
            if "not modified" not in error.message:
                log.info("Could not update the progress of announcement %d: %s", campaign_id, error.message)
        if note:
            await self._bot.send_message(chat_id, note.format(number=campaign_id))

    async def remember_progress_message(self, campaign_id: int, chat_id: int, message_id: int) -> None:
        await self.repo.set_progress_message(campaign_id, chat_id, message_id)

    async def _language_of(self, user_id: int) -> str:
        return await self._users.language_of(user_id) or self._default

    # Engine callbacks.
    async def on_progress(self, campaign_id: int, counters: Counters) -> None:
        await self.show_progress(campaign_id)

    async def on_finished(self, campaign_id: int, counters: Counters) -> None:
        await self.show_progress(campaign_id, notify="finished")

    async def on_paused(self, campaign_id: int, reason: str) -> None:
        await self.show_progress(campaign_id, notify="paused")
