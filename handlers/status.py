"""/status: a reporter checks their case with the case code and secret receipt."""

from __future__ import annotations

import html
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.enums import ChatType
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject, StateFilter
from aiogram.filters.callback_data import CallbackData
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.cases import NOTE_MAX, CaseService
from bot.config import Settings
from bot.hazards import CATEGORIES, SEVERITIES, STATUSES
from bot.notify import CommitteeNotifier
from bot.pending import ShortLived
from bot.receipts import split_code_and_receipt
from bot.reports import ReportService, StatusAnswer, StatusOutcome, parse_stamp
from handlers.keyboards import STATUS_BUTTON, TYPED_TEXT, NavCb, fit_history, nav_row, show
from storage.sites import SiteRepository

router = Router(name="status")
router.message.filter(F.chat.type == ChatType.PRIVATE)
router.callback_query.filter(F.message.chat.type == ChatType.PRIVATE)

PENDING_CODE_SECONDS = 600


class StatusFlow(StatesGroup):
    waiting = State()
    replying = State()


class CheckCb(CallbackData, prefix="ck"):
    """On the confirmation after submitting: the code and receipt stay in the miner's own chat."""

    code: str
    receipt: str


class ReplyCb(CallbackData, prefix="rw"):
    """"Write to the committee" under a status card; like CheckCb, held only in the miner's chat."""

    code: str
    receipt: str


# A case code typed before its receipt, or the case (code, receipt) a reporter is writing to: in
# memory only, for minutes (see bot/pending.py), never in the FSM storage.
_pending_codes: ShortLived[str] = ShortLived(PENDING_CODE_SECONDS)
_replying_to: ShortLived[tuple[str, str]] = ShortLived(PENDING_CODE_SECONDS)


@router.message(Command("status"))
@router.message(F.text == STATUS_BUTTON)
async def ask_for_code(message: Message, state: FSMContext, reports: ReportService, sites: SiteRepository,
                       settings: Settings, i18n: I18n, command: CommandObject | None = None) -> None:
    await state.set_state(StatusFlow.waiting)
    if command is not None and command.args:
        await got_text(message, state, reports, sites, settings, i18n, text=command.args)
        return
    await message.answer(
        _("Send your case code and secret receipt, in one message or one after the other.\n"
          "They look like this: <code>MV-7K3Q9</code> and <code>7K3Q-9XHF-2M4T-8PRA</code>.\n\n"
          "I delete your message with the receipt as soon as I have checked it."),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[nav_row(back=False)]),
    )


@router.message(StatusFlow.waiting, F.text)
async def got_text(message: Message, state: FSMContext, reports: ReportService, sites: SiteRepository,
                   settings: Settings, i18n: I18n, text: str | None = None) -> None:
    user_id = message.from_user.id
    code, receipt = split_code_and_receipt(text or message.text)
    if code and not receipt:
        _pending_codes.put(user_id, code)
        await message.answer(_("Now send the secret receipt for {code}.").format(code=code))
        return
    code = code or _pending_codes.get(user_id)
    if not receipt or not code:
        await message.answer(
            _("Send the case code first (it looks like <code>MV-7K3Q9</code>).") if receipt else
            _("That does not look like a case code or receipt. A case code looks like <code>MV-7K3Q9</code>, "
              "a receipt like <code>7K3Q-9XHF-2M4T-8PRA</code>. Or send /cancel.")
        )
        return
    try:
        await message.delete()  # the receipt should not stay readable in the chat
    except TelegramBadRequest:
        pass
    _pending_codes.pop(user_id)
    answer = await reports.status(user_id, code, receipt)
    if answer.outcome is not StatusOutcome.WRONG:
        await state.clear()
    await message.answer(await _render(answer, sites, i18n.current_locale, settings.tz),
                         reply_markup=_card_keyboard(answer, code, receipt))


@router.message(StatusFlow.waiting)
async def not_text(message: Message) -> None:
    await message.answer(_("Please type the case code and receipt as text, or send /cancel."))


@router.callback_query(StateFilter(StatusFlow), NavCb.filter(F.action == "cancel"))
async def cancel(callback: CallbackQuery, state: FSMContext) -> None:
    await state.clear()
    _pending_codes.pop(callback.from_user.id)
    _replying_to.pop(callback.from_user.id)
    await show(callback, _("Cancelled."), None)


@router.callback_query(CheckCb.filter())
async def check_from_button(callback: CallbackQuery, callback_data: CheckCb, reports: ReportService,
                            sites: SiteRepository, settings: Settings, i18n: I18n) -> None:
    answer = await reports.status(callback.from_user.id, callback_data.code, callback_data.receipt)
    await callback.message.answer(await _render(answer, sites, i18n.current_locale, settings.tz),
                                  reply_markup=_card_keyboard(answer, callback_data.code, callback_data.receipt))


def _card_keyboard(answer: StatusAnswer, code: str, receipt: str) -> InlineKeyboardMarkup | None:
    if answer.outcome is not StatusOutcome.FOUND:
        return None
    return InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(
        text=_("✉️ Write to the committee"), callback_data=ReplyCb(code=answer.report.case_code, receipt=receipt).pack())]])


@router.callback_query(ReplyCb.filter())
async def start_reply(callback: CallbackQuery, callback_data: ReplyCb, state: FSMContext) -> None:
    _replying_to.put(callback.from_user.id, (callback_data.code, callback_data.receipt))
    await state.set_state(StatusFlow.replying)
    await callback.message.answer(
        _("Write your message to the committee in one message: more details, or an answer to its question. "
          "Do not write names or personnel numbers. It goes without your name."),
        reply_markup=InlineKeyboardMarkup(inline_keyboard=[nav_row(back=False)]),
    )


@router.message(StatusFlow.replying, TYPED_TEXT)
async def got_reply(message: Message, state: FSMContext, reports: ReportService, cases: CaseService,
                    notifier: CommitteeNotifier) -> None:
    code, receipt = _replying_to.pop(message.from_user.id) or (None, None)
    await state.clear()
    if code is None:
        await message.answer(_("Please open your case again with /status, then write your message."))
        return
    answer = await reports.status(message.from_user.id, code, receipt)
    if answer.outcome is not StatusOutcome.FOUND:
        await message.answer(await _render(answer, None, "", None))
        return
    case = await cases.from_reporter(answer.report.id, message.text)
    await notifier.reporter_wrote(case, message.text.strip()[:NOTE_MAX])
    await message.answer(_("Sent to the committee of your mine. Check for its answer with /status."))


@router.message(StatusFlow.replying)
async def reply_not_text(message: Message) -> None:
    await message.answer(_("Please type your message as text, or send /cancel."))


async def _render(answer: StatusAnswer, sites: SiteRepository | None, language: str, tz: ZoneInfo | None) -> str:
    if answer.outcome is StatusOutcome.THROTTLED:
        return _("Too many attempts. Please try again in {minutes} min.").format(
            minutes=max(1, round(answer.retry_after / 60)))
    if answer.outcome is not StatusOutcome.FOUND:
        return _("The case code or the receipt is not right. Check both and send them again, or send /cancel.")
    report = answer.report
    site = await sites.get(report.site_id)
    head = [
        _("<b>Case {code}</b>").format(code=report.case_code),
        f"{html.escape(site.name(language))} · {CATEGORIES.get(report.category, report.category)}",
        str(SEVERITIES.get(report.severity, report.severity)),
        "",
        _("Status: <b>{status}</b>").format(status=STATUSES.get(report.status, report.status)),
        "",
        _("<b>History</b>"),
    ]
    lines = []
    for event in answer.timeline:
        when = f"{parse_stamp(event.at_hour).astimezone(tz):%d.%m.%Y %H:00}"
        if event.kind == "reporter_message":
            lines.append(_("{when} — you wrote: «{text}»").format(when=when, text=html.escape(event.note or "")))
        elif event.kind == "note":
            lines.append(_("{when} — the committee: «{text}»").format(when=when, text=html.escape(event.note or "")))
        else:
            line = f"{when} — {STATUSES.get(event.status, event.status)}"
            if event.note:  # one entry with its status, so that the two give way together
                line += "\n" + _("   the committee: «{text}»").format(text=html.escape(event.note))
            lines.append(line)
    return fit_history(head, lines)
