"""Telling committees: danger alerts (re-sent photos by file_id, never forwarded), their
escalation when nobody answers, and messages from reporters."""

from __future__ import annotations

import asyncio
import enum
import html
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from aiogram import Bot
from aiogram.filters.callback_data import CallbackData
from aiogram.types import BufferedInputFile, InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.telegram_errors import Failure, classify
from bot.hazards import CATEGORIES, SEVERITIES
from storage.reports import Case, ReportRepository
from storage.roles import RoleRepository
from storage.sites import SiteRepository

log = logging.getLogger(__name__)
_CASE_CODE_IN_TEXT = re.compile(r"<code>(MV-[0-9A-Z]{5})</code>")


class Delivery(enum.Enum):
    SENT = "sent"
    GONE = "gone"  # blocked the bot, left or deleted the chat: trying again will not help
    LATER = "later"  # network trouble or flood control outlasting our retries


class CaseCb(CallbackData, prefix="case"):
    action: str  # status | note | view
    report_id: int
    status: str = ""


def case_keyboard(report_id: int) -> InlineKeyboardMarkup:
    def button(text: str, action: str, status: str = "") -> InlineKeyboardButton:
        return InlineKeyboardButton(text=text, callback_data=CaseCb(action=action, report_id=report_id, status=status).pack())

    return InlineKeyboardMarkup(inline_keyboard=[
        [button(_("✅ Acknowledge"), "status", "acknowledged"), button(_("🛠 In progress"), "status", "in_progress")],
        [button(_("🏭 To employer"), "status", "escalated_employer"),
         button(_("🏛 To inspection"), "status", "escalated_inspection")],
        [button(_("✔️ Resolved"), "status", "resolved"), button(_("✖️ Not confirmed"), "status", "not_confirmed")],
        [button(_("✉️ Note to reporter"), "note"), button(_("📋 History"), "view")],
    ])


def case_summary(case: Case, site_name: str) -> str:
    """The case as committees see it; everything the miner wrote is escaped."""
    return _(
        "{severity}\n<b>{site}</b>\nCase <code>{code}</code> · {category}\n<b>Where:</b> {location}\n\n{description}"
    ).format(
        severity=SEVERITIES[case.severity],
        site=html.escape(site_name),
        code=case.case_code,
        category=CATEGORIES.get(case.category, case.category),
        location=html.escape(case.location) if case.location else _("not given"),
        description=html.escape(case.description),
    )


class CommitteeNotifier:
    def __init__(self, bot: Bot, roles: RoleRepository, sites: SiteRepository, reports: ReportRepository, i18n: I18n,
                 admin_ids: frozenset[int], default_locale: str) -> None:
        self._bot = bot
        self._roles = roles
        self._sites = sites
        self._reports = reports
        self._i18n = i18n
        self._admins = admin_ids
        self._default = default_locale

    async def recipients(self, site_id: int) -> list[tuple[int, str]]:
        """(chat id, language) of every member of the site's committee and every group bound to it."""
        return [(recipient.chat_id, recipient.language)
                for recipient in await self._roles.committee_recipients(site_id, self._default)]

    async def danger_alert(self, report_id: int, *, unacknowledged_minutes: int | None = None) -> int:
        """Send the alert (again, marked, and to the admins too when escalating); how many chats got it."""
        case = await self._reports.case(report_id)
        if case is None:
            return 0
        site = await self._sites.get(case.site_id)
        targets = await self.recipients(case.site_id)
        if not targets or unacknowledged_minutes is not None:  # no committee yet: the admins must know
            targets += [(admin, self._default) for admin in sorted(self._admins)]
        delivered = 0
        for chat_id, language in dict(targets).items():
            with self._i18n.context(), self._i18n.use_locale(language):
                text = case_summary(case, site.name(language))
                if unacknowledged_minutes is not None:
                    text = _("⏰ <b>Nobody has acknowledged this for {minutes} min.</b>").format(
                        minutes=unacknowledged_minutes) + "\n\n" + text
                if await self._send_case(chat_id, case, text) is Delivery.SENT:
                    delivered += 1
        return delivered

    async def reporter_wrote(self, case: Case, text: str) -> None:
        site = await self._sites.get(case.site_id)
        for chat_id, language in await self.recipients(case.site_id):
            with self._i18n.context(), self._i18n.use_locale(language):
                message = _("✉️ The reporter of case <code>{code}</code> ({site}) wrote:\n\n{text}").format(
                    code=case.case_code, site=html.escape(site.name(language)), text=html.escape(text))
                await self.deliver(chat_id, lambda chat, m=message: self._bot.send_message(
                    chat, m, reply_markup=case_keyboard(case.id)))

    async def send_digest_part(self, chat_id: int, text: str | None = None, photo_png: bytes | None = None) -> bool:
        """For DigestService: False only when worth retrying later. A part listing cases gets a
        button per case, which opens it with the case buttons."""
        if photo_png is not None:
            photo = BufferedInputFile(photo_png, filename="digest.png")
            result = await self.deliver(chat_id, lambda chat: self._bot.send_photo(chat, photo))
        else:
            markup = await self._case_buttons(_CASE_CODE_IN_TEXT.findall(text))
            result = await self.deliver(chat_id, lambda chat: self._bot.send_message(chat, text, reply_markup=markup))
        return result is not Delivery.LATER

    async def _case_buttons(self, case_codes: list[str]) -> InlineKeyboardMarkup | None:
        ids = await self._reports.ids_by_case_code(list(dict.fromkeys(case_codes)))
        buttons = [InlineKeyboardButton(text=f"📋 {code}", callback_data=CaseCb(action="view", report_id=ids[code]).pack())
                   for code in dict.fromkeys(case_codes) if code in ids]
        if not buttons:
            return None
        return InlineKeyboardMarkup(inline_keyboard=[buttons[i : i + 3] for i in range(0, min(len(buttons), 99), 3)])

    async def _send_case(self, chat_id: int, case: Case, text: str) -> Delivery:
        photos = case.photo_file_ids
        if len(photos) == 1:
            await self.deliver(chat_id, lambda chat: self._bot.send_photo(chat, photos[0]))
        elif photos:
            media = [InputMediaPhoto(media=file_id) for file_id in photos]
            await self.deliver(chat_id, lambda chat: self._bot.send_media_group(chat, media))
        return await self.deliver(chat_id, lambda chat: self._bot.send_message(
            chat, text, reply_markup=case_keyboard(case.id)))

    async def deliver(self, chat_id: int, send: Callable, attempts: int = 3) -> Delivery:
        """One message to one committee chat: waits out 429s, follows a group that became a
        supergroup, and gives up on a chat that blocked the bot or is gone."""
        for attempt in range(attempts):
            try:
                await send(chat_id)
                return Delivery.SENT
            except Exception as error:
                failure = classify(error)
                if failure is Failure.WAIT:
                    await asyncio.sleep(error.retry_after)
                elif failure is Failure.MOVED:
                    await self._roles.move_chat(chat_id, error.migrate_to_chat_id)
                    chat_id = error.migrate_to_chat_id
                elif failure in (Failure.GONE, Failure.REFUSED):
                    log.warning("Committee chat unreachable: %s", error)
                    return Delivery.GONE
                elif failure is Failure.TRANSIENT:
                    await asyncio.sleep(2**attempt)
                else:
                    raise
        return Delivery.LATER


class AlertService:
    """Danger alerts go out as soon as the report is saved; an alert nobody answers within
    ESCALATE_AFTER_MINUTES is sent again, marked, and to the admins.

    No alert times are stored (they would date the report to the second): the deadlines live in
    memory, and after a restart every unanswered alert gets a full new period."""

    def __init__(self, reports: ReportRepository, notifier: CommitteeNotifier, escalate_after: timedelta,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._reports = reports
        self._notifier = notifier
        self._escalate_after = escalate_after
        self._clock = clock
        self._deadlines: dict[int, datetime] = {}
        self._sending = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()

    def kick(self) -> None:
        """Deliver new alerts now, without holding up whoever saved the report."""
        task = asyncio.create_task(self.deliver_pending())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def deliver_pending(self) -> None:
        async with self._sending:
            for report_id in await self._reports.alerts_in_state("pending"):
                await self._notifier.danger_alert(report_id)
                await self._reports.set_alert_state(report_id, "sent")
                self._deadlines[report_id] = self._clock() + self._escalate_after

    async def resume(self) -> None:
        """At start-up: alerts saved but not sent go out; sent ones get a new deadline."""
        for report_id in await self._reports.alerts_in_state("sent"):
            self._deadlines.setdefault(report_id, self._clock() + self._escalate_after)
        await self.deliver_pending()

    async def escalate_due(self) -> None:
        now = self._clock()
        waiting = set(await self._reports.alerts_in_state("sent"))
        for report_id, deadline in sorted(self._deadlines.items()):
            if report_id not in waiting:
                del self._deadlines[report_id]  # answered meanwhile
            elif deadline <= now:
                await self._notifier.danger_alert(
                    report_id, unacknowledged_minutes=int(self._escalate_after.total_seconds() // 60))
                await self._reports.set_alert_state(report_id, "escalated")
                del self._deadlines[report_id]
