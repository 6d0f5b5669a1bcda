"""Fuzzing the real dispatcher with generated and mutated Telegram updates (hypothesis).

The bot is wired exactly as bot/app.py's open_app wires it, on tests/mocked_bot.py's MockedBot with
a session that answers like Telegram where it matters (fuzz_updates.TelegramLikeSession). Users are put into
every state of every StatesGroup in handlers/ (the states are found by introspection, so a new
state without a way to reach it fails the suite), by driving the real flows once and copying
what the flow stored to fresh users. Then every kind of update is fed in every state: every
content type, empty and oversized texts, unknown and known commands, edited messages, group and
channel messages, my_chat_member, and stale, forged, mutated and other users' callback data,
also on messages Telegram no longer shows (InaccessibleMessage) and tapped twice.

After every update:
- no exception escaped and nothing was logged at ERROR (bot/app.py's errors handler logs there);
- every call the bot made is one Telegram accepts (text and caption limits, HTML that Telegram
  parses, callback data ≤ 64 bytes, no reply keyboard in a group);
- every callback query was answered exactly once; every private message got an answer; group
  messages got none (except the committee commands designed for groups); channel posts none;
- an input the bot must refuse left the user's FSM state and data, and the database, as they were
  (SQLite's total_changes() and the row counts of the report, survey and campaign tables).
The tests: every update kind in every state (a hypothesis matrix, one test per state); random
walks of a miner, an organizer and a committee member through the real flows; every button of
every step pressed at every other step of its flow; forged ids in every callback family, by every
role; the longest texts piling up in one case. The matrix tests, and the module's last test, end
with a whole normal report on the same dispatcher. About 10,000 updates in all, in under a minute.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import logging
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram.fsm.state import State, StatesGroup
from aiogram.fsm.storage.base import StorageKey
from aiogram.types import InlineKeyboardMarkup, Message, Update
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

import handlers
import handlers.report
import handlers.status
from bot.app import App, build_dispatcher, build_services, close_app
from bot.isolation import PerChatEventIsolation
from bot.config import LOCALES, load_settings
from bot.hazards import CATEGORIES, SEVERITIES
from bot.i18n import build_i18n
from bot.sites import seed_sites
from handlers.keyboards import HELP_BUTTON, REPORT_BUTTON, STATUS_BUTTON
from storage.db import Database
from storage.fsm import SQLiteStorage
from storage.roles import RoleRepository
from storage.sites import SiteRepository
from tests import fuzz_updates as fz
from tests.conftest import TOKEN
from tests.mocked_bot import MockedBot

ADMIN = 7_000_001
ADMIN_POOL = list(range(7_000_100, 7_000_700))
MINER_TEMPLATE = 1_000_001
COMMITTEE_TEMPLATE = 2_000_001
COMMITTEE_POOL = list(range(2_000_100, 2_000_140))
GROUP_IDS = itertools.count(-1_000_000_000_100, -1)

SEND_METHODS = {"sendMessage", "sendPhoto", "sendDocument", "sendMediaGroup", "editMessageText", "editMessageCaption",
                "editMessageReplyMarkup"}
# Commands the committee's Telegram group is designed to take (handlers/cases.py, handlers/cancel.py).
GROUP_COMMANDS = {"bind", "cases", "digest", "export", "cancel"}
TABLES = ("reports", "report_photos", "report_events", "danger_alerts", "users", "roles", "invites", "committee_chats",
          "sites", "campaigns", "campaign_outbox", "surveys", "survey_takers", "survey_responses", "fsm_states")

# Reproducible: no example database, and each test seeds hypothesis itself (see `seed` below).
FUZZ_SETTINGS = dict(deadline=None, database=None, print_blob=False,
                     # A failure prints the update, the state and every call the bot made: clear enough
                     # unshrunk, and shrinking would replay hundreds of updates per step.
                     phases=(Phase.explicit, Phase.generate),
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                            HealthCheck.data_too_large, HealthCheck.filter_too_much])


def all_states() -> list[State]:
    """Every State of every StatesGroup in handlers/: the suite covers whatever the flows define."""
    import importlib
    import pkgutil

    groups = []
    for module_info in pkgutil.iter_modules(handlers.__path__):
        module = importlib.import_module(f"handlers.{module_info.name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, StatesGroup) and value is not StatesGroup \
                    and value.__module__ == module.__name__:
                groups.append(value)
    return [state for group in groups for state in group.__all_states__]


STATES = {state.state: state for state in all_states()}
NO_STATE, NOT_STARTED = "none", "none, never sent /start"
# Where a text, a photo, an album or an oversized text may be taken (everywhere else it is refused).
TEXT_STATES = {"ReportFlow:location", "ReportFlow:description", "StatusFlow:waiting", "StatusFlow:replying",
               "Compose:content", "Compose:version", "Compose:link", "Compose:when", "SurveySetup:opens",
               "SiteEdit:names", "CaseNote:text"}
ACCEPTED_IN = {
    "text": TEXT_STATES,
    "text_entities": TEXT_STATES,
    "text_oversized": {"StatusFlow:replying", "Compose:content", "Compose:version", "CaseNote:text"},
    "photo": {"ReportFlow:photos", "Compose:content", "Compose:version"},
    "album": {"ReportFlow:photos"},
}
def must_refuse(state_name: str, kind: str) -> bool:
    """Whether the bot must refuse this kind of input in this state (and so store nothing)."""
    return kind in fz.NEVER_ACCEPTED or (kind in ACCEPTED_IN and state_name not in ACCEPTED_IN[kind])


# A report button belongs to one step: pressed in any other state it must change nothing.
REPORT_ACTION_STATE = {"region": "ReportFlow:region", "site": "ReportFlow:site", "category": "ReportFlow:category",
                       "severity": "ReportFlow:severity", "skip": "ReportFlow:location", "done": "ReportFlow:photos",
                       "edit": "ReportFlow:review", "submit": "ReportFlow:review"}


def short(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str) if not isinstance(value, str) else value
    text = re.sub(r"(.)\1{30,}", lambda m: f"{m.group(1)}×{len(m.group(0))}", text)
    return text if len(text) <= limit else text[:limit] + f"… ({len(text)} chars)"


def describe_call(call: Any) -> str:
    fields = {name: getattr(call, name) for name in ("chat_id", "text", "caption", "callback_query_id", "message_id")
              if getattr(call, name, None) is not None}
    markup = getattr(call, "reply_markup", None)
    if isinstance(markup, InlineKeyboardMarkup):
        fields["buttons"] = [button.callback_data for row in markup.inline_keyboard for button in row]
    return f"{call.__api_method__} {short(fields, 400)}"


class ErrorRecords(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class Template:
    """A state as the real flow left it: who was in it, its FSM data, and the screen shown."""

    state: str
    role: str  # miner | admin | committee
    data: dict[str, Any]
    screen: dict[str, Any] | None  # the bot's message with this step's buttons (JSON), if any
    press_to_enter: str | None = None  # callback data that enters the state (state kept in memory too)


@dataclass
class User:
    id: int
    language_code: str | None
    role: str

    @property
    def json(self) -> dict[str, Any]:
        return fz.user_json(self.id, self.language_code)

    @property
    def chat(self) -> dict[str, Any]:
        return fz.private_chat(self.id)


@dataclass(repr=False)
class Harness:
    loop: asyncio.AbstractEventLoop
    app: App
    bot: MockedBot
    errors: ErrorRecords
    tg: fz.Telegram = field(default_factory=fz.Telegram)
    templates: dict[str, list[Template]] = field(default_factory=dict)
    history: list[tuple[int, str, str]] = field(default_factory=list)  # (chat, state when shown, callback data)
    survey_id: int = 0
    report: dict[str, Any] = field(default_factory=dict)
    updates_fed: int = 0
    forged: st.SearchStrategy[str] | None = None
    walked: set[str] = field(default_factory=set)  # the states the random walks were in
    _miner_ids: Iterable[int] = field(default_factory=lambda: itertools.count(1_100_000))
    _admins: Iterable[int] = field(default_factory=lambda: itertools.cycle(ADMIN_POOL))
    _members: Iterable[int] = field(default_factory=lambda: itertools.cycle(COMMITTEE_POOL))

    def __repr__(self) -> str:  # hypothesis prints the fixture with a failing example
        return f"<Harness: {self.updates_fed} updates fed>"

    def run(self, coroutine):
        return self.loop.run_until_complete(coroutine)

    @property
    def storage(self) -> SQLiteStorage:
        return self.app.storage

    def key(self, chat_id: int, user_id: int) -> StorageKey:
        return StorageKey(bot_id=self.bot.id, chat_id=chat_id, user_id=user_id)

    # --- feeding ----------------------------------------------------------------------------------

    async def settle(self) -> None:
        """Let what handlers started in the background finish (album answers, danger alerts); their
        exceptions surface here. (Private attributes: nothing public lists these tasks.)"""
        for _ in range(3):
            tasks = [task for task in (*handlers.report._album_answers.values(), *self.app.services.alerts._tasks)
                     if not task.done()]
            if not tasks:
                return
            for task in tasks:
                try:
                    await task
                except asyncio.CancelledError:
                    pass

    async def snapshot(self, user_id: int | None) -> tuple:
        counts = await self.app.db.fetchone(
            "SELECT total_changes() AS changes, " + ", ".join(f"(SELECT count(*) FROM {table}) AS {table}"
                                                              for table in TABLES))
        fsm = None
        if user_id is not None:
            key = self.key(user_id, user_id)
            fsm = (await self.storage.get_state(key), await self.storage.get_data(key))
        return fsm, dict(counts)

    async def feed(self, raws: list[dict[str, Any]], *, context: str, refused: bool = False,
                   fsm_only: bool = False) -> list[Any]:
        """Feed updates (an album is several), then check everything the module docstring lists."""
        first = raws[0]
        kind = next(key for key in first if key != "update_id")
        event = first[kind]
        sender = (event.get("from") or {}).get("id")
        chat = event.get("chat") or (event.get("message") or {}).get("chat") or {}
        private_user = sender if chat.get("type") == "private" or kind == "callback_query" else None
        if kind == "callback_query" and chat.get("type") != "private":
            private_user = None
        before = await self.snapshot(private_user) if refused or fsm_only else None
        group_state = None
        if chat.get("type") in ("group", "supergroup") and sender is not None:
            group_state = await self.storage.get_state(self.key(chat["id"], sender))
        start, logged = len(self.bot.session.calls), len(self.errors.records)
        for raw in raws:
            update = Update.model_validate(raw, context={"bot": self.bot})
            self.updates_fed += 1
            try:
                await self.app.dispatcher.feed_update(self.bot, update)
            except Exception as error:
                raise AssertionError(f"{context}: feed_update raised {error!r} on {short(raw, 1500)}") from error
        await self.settle()
        calls = self.bot.session.calls[start:]
        problems = [problem for call in calls for problem in fz.call_problems(call)]
        problems += [f"logged at {record.levelname}: {record.getMessage()} {record.exc_info[1]!r}"
                     if record.exc_info else f"logged at {record.levelname}: {record.getMessage()}"
                     for record in self.errors.records[logged:]]
        to_chat = [call for call in calls if call.__api_method__ in SEND_METHODS and getattr(call, "chat_id", None) == chat.get("id")]
        if kind == "callback_query":
            answers = [call for call in calls if call.__api_method__ == "answerCallbackQuery"
                       and call.callback_query_id == event["id"]]
            if len(answers) != 1:
                problems.append(f"the callback query was answered {len(answers)} times")
        elif kind in ("message", "edited_message") and chat.get("type") == "private":
            if not to_chat:
                problems.append("a private message got no answer")
        elif kind in ("message", "edited_message"):
            text = event.get("text") or ""
            command = re.match(r"/([A-Za-z0-9_]+)(@\w+)?", text)
            designed = kind == "message" and command is not None and command.group(1).lower() in GROUP_COMMANDS and \
                command.group(2) in (None, "@" + fz.BOT_USERNAME)
            if to_chat and not designed and group_state is None:
                problems.append("answered in a group")
        elif kind in ("channel_post", "edited_channel_post", "my_chat_member"):
            if to_chat:
                problems.append(f"answered a {kind}")
        if before is not None:
            after = await self.snapshot(private_user)
            if before[0] != after[0]:
                problems.append(f"FSM changed from {short(before[0])} to {short(after[0])}")
            if refused and before[1] != after[1]:
                changed = {name: (before[1][name], after[1][name]) for name in before[1] if before[1][name] != after[1][name]}
                problems.append(f"the database changed: {changed}")
        if problems:
            raise AssertionError(
                f"{context}\nupdate: {short(raws if len(raws) > 1 else first, 2000)}\nproblems:\n  "
                + "\n  ".join(problems) + "\ncalls:\n  " + "\n  ".join(describe_call(call) for call in calls))
        for call in calls:
            markup = getattr(call, "reply_markup", None)
            chat_id = getattr(call, "chat_id", None)
            if isinstance(markup, InlineKeyboardMarkup) and isinstance(chat_id, int):
                state = await self.storage.get_state(self.key(chat_id, chat_id)) if chat_id > 0 else None
                for row in markup.inline_keyboard:
                    self.history.extend((chat_id, state or NO_STATE, button.callback_data) for button in row
                                        if button.callback_data)
        del self.history[:-5000]
        return calls

    # --- playing a user ---------------------------------------------------------------------------

    async def send(self, user: User, content: dict[str, Any] | str, **checks) -> list[Any]:
        content = {"text": content} if isinstance(content, str) else content
        if isinstance(content.get("text"), str) and content["text"].startswith("/") and "entities" not in content:
            length = len(content["text"].split(" ")[0].encode("utf-16-le")) // 2
            content = content | {"entities": [{"type": "bot_command", "offset": 0, "length": length}]}
        return await self.feed([self.tg.message(user.chat, user.json, content)],
                               context=checks.pop("context", f"user {user.id} sends {short(content, 80)}"), **checks)

    def screen(self, chat_id: int, match: Callable[[str], bool]) -> tuple[Message, str]:
        """The newest message of the bot in this chat with a button whose data matches."""
        for (chat, _message_id), message in sorted(self.bot.session.messages.items(), key=lambda item: -item[0][1]):
            if chat != chat_id or not isinstance(message.reply_markup, InlineKeyboardMarkup):
                continue
            for row in message.reply_markup.inline_keyboard:
                for button in row:
                    if button.callback_data and match(button.callback_data):
                        return message, button.callback_data
        raise AssertionError(f"no button matching in chat {chat_id}")

    def newest_screen(self, chat_id: int) -> Message | None:
        """The bot's newest message in this chat that has buttons."""
        try:
            return self.screen(chat_id, lambda data: True)[0]
        except AssertionError:
            return None

    async def press(self, user: User, prefix: str, **checks) -> list[Any]:
        message, data = self.screen(user.id, lambda data: data.startswith(prefix))
        return await self.feed([self.tg.callback(user.json, data, fz.bot_message_json(message))],
                               context=checks.pop("context", f"user {user.id} presses {data}"), **checks)

    async def press_data(self, user: User, data: str | None, message: dict[str, Any] | None, **checks) -> list[Any]:
        return await self.feed([self.tg.callback(user.json, data, message)],
                               context=checks.pop("context", f"user {user.id} presses {data!r}"), **checks)

    def last_text(self, chat_id: int) -> str:
        for call in reversed(self.bot.session.calls):
            if call.__api_method__ in ("sendMessage", "editMessageText") and call.chat_id == chat_id:
                return call.text
        return ""

    async def state_of(self, user: User) -> str | None:
        return await self.storage.get_state(self.key(user.id, user.id))

    async def data_of(self, user: User) -> dict[str, Any]:
        return await self.storage.get_data(self.key(user.id, user.id))

    async def record(self, user: User, role: str, *, screen_prefix: str | None = None,
                     press_to_enter: str | None = None) -> None:
        state = await self.state_of(user)
        assert state is not None, f"the flow did not reach a state ({self.last_text(user.id)!r})"
        screen = None
        if screen_prefix is not None:
            message, _data = self.screen(user.id, lambda data: data.startswith(screen_prefix))
            screen = fz.bot_message_json(message)
        self.templates.setdefault(state, []).append(
            Template(state, role, copy.deepcopy(await self.data_of(user)), screen, press_to_enter))

    async def new_user(self, role: str, language: str | None, language_code: str | None) -> User:
        user_id = {"miner": lambda: next(self._miner_ids), "admin": lambda: next(self._admins),
                   "committee": lambda: next(self._members)}[role]()
        user = User(user_id, language_code, role)
        if language is not None:
            await self.app.services.users.set_language(user_id, language)
        key = self.key(user_id, user_id)
        if await self.storage.get_state(key) is not None or await self.storage.get_data(key):  # a reused admin or member
            await self.storage.set_state_and_data(key, None, {})
        return user

    async def enter(self, template: Template, user: User) -> None:
        """Put a fresh user where the template's user was."""
        if template.press_to_enter is not None:
            await self.press_data(user, template.press_to_enter, template.screen and self.own(template.screen, user),
                                  context=f"entering {template.state}")
            assert await self.state_of(user) == template.state
            return
        await self.storage.set_state_and_data(self.key(user.id, user.id), template.state, copy.deepcopy(template.data))

    @staticmethod
    def own(screen: dict[str, Any], user: User) -> dict[str, Any]:
        """The template's screen as if shown in this user's chat."""
        return screen | {"chat": user.chat}


# --- building the app and driving every flow once ----------------------------------------------------

async def open_harness(tmp_path, loop) -> Harness:
    errors = ErrorRecords()
    logging.getLogger().addHandler(errors)
    settings_ = load_settings(bot_token=TOKEN, database_path=tmp_path / "fuzz.sqlite3", _env_file=None,
                              admin_ids=frozenset([ADMIN, *ADMIN_POOL]), reports_per_hour=1000)
    # As bot/app.py's open_app, with the MockedBot in place of a real one.
    db = await Database.open(settings_.database_path)
    await db.migrate()
    await seed_sites(SiteRepository(db))
    storage = SQLiteStorage(db)
    i18n = build_i18n(settings_.default_locale)
    bot = fz.telegram_like_bot()
    services = build_services(settings_, db, storage, bot, i18n)
    app = App(settings_, db, storage, i18n, bot, services, build_dispatcher(services, storage, i18n))
    harness = Harness(loop, app, bot, errors)
    fz.MENU_WORDS = frozenset(menu_text(harness, button, code)
                              for button in (REPORT_BUTTON, STATUS_BUTTON, HELP_BUTTON) for code in LOCALES)
    return harness


def menu_text(harness: Harness, button, language: str) -> str:
    with harness.app.i18n.context(), harness.app.i18n.use_locale(language):
        return str(button)


async def drive_every_flow(h: Harness) -> None:
    """Reach every state through the real flows, recording each as a template."""
    miner = User(MINER_TEMPLATE, "ru", "miner")
    await h.send(miner, "/start")
    await h.press(miner, "lang:ru")
    await h.send(miner, menu_text(h, REPORT_BUTTON, "ru"))
    await h.record(miner, "miner", screen_prefix="rp:region:")
    await h.press(miner, "rp:region:")
    await h.record(miner, "miner", screen_prefix="rp:site:")
    await h.press(miner, "rp:site:")
    await h.record(miner, "miner", screen_prefix="rp:category:")
    await h.press(miner, "rp:category:gas")
    await h.record(miner, "miner", screen_prefix="rp:severity:")
    await h.press(miner, "rp:severity:serious")  # danger fans out alerts: the walks choose it now and then
    await h.record(miner, "miner", screen_prefix="rp:skip")
    await h.send(miner, "Участок 5, горизонт −450")
    await h.record(miner, "miner", screen_prefix="nav:")
    await h.send(miner, "Датчик метана заклеен, вентилятор не работает с утра")
    await h.record(miner, "miner", screen_prefix="rp:done")
    await h.send(miner, {"photo": [{"file_id": "photo-template", "file_unique_id": "u1", "width": 90, "height": 90}]})
    await h.record(miner, "miner", screen_prefix="rp:done")
    await h.press(miner, "rp:done")
    await h.record(miner, "miner", screen_prefix="rp:submit")
    await h.press(miner, "rp:submit")
    found = re.search(r"(MV-[0-9A-Z]{5}).*?([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})", h.last_text(miner.id), re.S)
    assert found, h.last_text(miner.id)
    row = await h.app.db.fetchone("SELECT id, site_id FROM reports WHERE case_code = ?", (found.group(1),))
    h.report = {"code": found.group(1), "receipt": found.group(2), "id": row["id"], "site_id": row["site_id"]}
    assert await h.state_of(miner) is None

    await h.send(miner, "/status")
    await h.record(miner, "miner")
    await h.send(miner, f"{h.report['code']} {h.report['receipt']}")
    assert await h.state_of(miner) is None, "a right receipt ends the status flow"
    status_card, reply_data = h.screen(miner.id, lambda data: data.startswith("rw:"))
    await h.press(miner, "rw:")
    await h.record(miner, "miner", screen_prefix="rw:", press_to_enter=reply_data)
    await h.send(miner, "/cancel")

    # The committee of the report's mine, through an invitation.
    admin = User(ADMIN, "en", "admin")
    await h.send(admin, "/start")
    await h.press(admin, "lang:en")
    await h.send(admin, "/invite committee")
    await h.press(admin, f"inv:{h.report['site_id']}")
    code = re.search(r"/join ([0-9A-Z-]+)", h.last_text(admin.id)).group(1)
    member = User(COMMITTEE_TEMPLATE, "kk", "committee")
    await h.send(member, f"/join {code}")
    roles = RoleRepository(h.app.db)
    for member_id in COMMITTEE_POOL:
        await roles.grant(member_id, "committee", h.report["site_id"], f"Member {member_id}", "2026-01-01T00:00:00Z")
    alert = {"message_id": 7, "date": 1_700_000_000, "chat": member.chat, "text": f"🔴 {h.report['code']}",
             "from": {"id": fz.BOT_ID, "is_bot": True, "first_name": "MineVoice"}}
    await h.press_data(member, f"case:note:{h.report['id']}:", alert)
    await h.record(member, "committee")
    await h.send(member, "/cancel")

    # An organizer launches a survey (every SurveySetup state on the way), a miner answers it.
    await h.send(admin, "/survey")
    await h.record(admin, "admin", screen_prefix="ss:instrument:")
    await h.press(admin, "ss:instrument:who5")
    await h.record(admin, "admin", screen_prefix="ss:sites_done")
    await h.press(admin, "ss:sites_done")
    await h.record(admin, "admin", screen_prefix="ss:languages_done")
    await h.press(admin, "ss:languages_done")
    await h.record(admin, "admin", screen_prefix="ss:now")
    await h.press(admin, "ss:now")
    await h.record(admin, "admin", screen_prefix="ss:days:")
    await h.press(admin, "ss:days:7")
    await h.record(admin, "admin", screen_prefix="ss:launch")
    await h.press(admin, "ss:launch")
    survey = (await h.app.services.surveys.repo.recent(1))[0]
    h.survey_id = survey.id

    taker = User(MINER_TEMPLATE + 1, "ru", "miner")
    invitation = {"message_id": 5, "date": 1_700_000_000, "chat": taker.chat, "text": "📋 survey",
                  "from": {"id": fz.BOT_ID, "is_bot": True, "first_name": "MineVoice"},
                  "reply_markup": {"inline_keyboard": [[{"text": "Start", "callback_data": f"sv:start:{survey.id}:0:"}]]}}
    await h.press_data(taker, f"sv:start:{survey.id}:0:", invitation)
    await h.record(taker, "miner", screen_prefix="sv:begin")
    await h.press(taker, "sv:begin")
    await h.record(taker, "miner", screen_prefix="sv:region")
    await h.press(taker, "sv:region")
    await h.record(taker, "miner", screen_prefix="sv:site")
    await h.press(taker, "sv:site")
    await h.record(taker, "miner", screen_prefix="sv:area")
    await h.press(taker, "sv:area")
    for _question in range(5):
        await h.record(taker, "miner", screen_prefix="sv:answer")
        await h.press(taker, "sv:answer")
    await h.record(taker, "miner", screen_prefix="sv:submit")

    # An announcement, every Compose state on the way.
    await h.send(admin, "/announce")
    await h.record(admin, "admin", screen_prefix="ann:next")
    await h.press(admin, "ann:sites")
    await h.record(admin, "admin", screen_prefix="ann:done")
    await h.press(admin, "ann:done")
    await h.press(admin, "ann:languages")
    await h.record(admin, "admin", screen_prefix="ann:done")
    await h.press(admin, "ann:done")
    await h.press(admin, "ann:next")
    await h.record(admin, "admin", screen_prefix="nav:")
    await h.send(admin, {"text": "Собрание профкома в пятницу", "entities": [{"type": "bold", "offset": 0, "length": 8}]})
    await h.record(admin, "admin", screen_prefix="ann:next")
    await h.press(admin, "ann:version:kk")
    await h.record(admin, "admin", screen_prefix="nav:")
    await h.send(admin, "Кәсіподақ жиналысы жұма күні")
    await h.press(admin, "ann:link")
    await h.record(admin, "admin", screen_prefix="nav:")
    await h.send(admin, "https://union.example.org/news")
    await h.press(admin, "ann:next")
    await h.record(admin, "admin", screen_prefix="ann:preview")
    await h.press(admin, "ann:schedule")
    await h.record(admin, "admin", screen_prefix="nav:")
    tomorrow = datetime.now(UTC).astimezone(h.app.settings.tz) + timedelta(days=1)
    await h.send(admin, tomorrow.strftime("%d.%m.%Y 10:00"))
    await h.press(admin, "ann:preview")
    await h.record(admin, "admin", screen_prefix="ann:confirm")
    await h.send(admin, "/cancel")

    # Mines: adding and renaming wait for the names.
    await h.send(admin, "/sites")
    await h.press(admin, "site:region:")
    await h.press(admin, "site:add:")
    await h.record(admin, "admin")
    await h.send(admin, "/cancel")
    await h.send(admin, "/sites")
    await h.press(admin, "site:region:")
    await h.press(admin, "site:site:")
    await h.press(admin, "site:rename:")
    await h.record(admin, "admin")
    await h.send(admin, "/cancel")

    missing = set(STATES) - set(h.templates)
    assert not missing, f"states the suite cannot reach yet: {sorted(missing)}"
    h.forged = await forged(h)


async def normal_report_flow(h: Harness) -> None:
    """After all the fuzzing, the same dispatcher still takes a whole report from a new miner."""
    miner = await h.new_user("miner", None, "kk")
    before = (await h.app.db.fetchone("SELECT count(*) AS n FROM reports"))["n"]
    await h.send(miner, "/start")
    await h.press(miner, "lang:kk")
    await h.send(miner, "/report")
    for prefix in ("rp:region:", "rp:site:", "rp:category:ventilation", "rp:severity:serious"):
        await h.press(miner, prefix)
    await h.send(miner, "Горизонт 300")
    await h.send(miner, "Желдеткіш екі күннен бері істемейді")
    await h.press(miner, "rp:done")
    await h.press(miner, "rp:submit")
    code = re.search(r"MV-[0-9A-Z]{5}", h.last_text(miner.id))
    assert code, h.last_text(miner.id)
    row = await h.app.db.fetchone("SELECT category, severity, description FROM reports WHERE case_code = ?", (code.group(0),))
    assert row is not None and (row["category"], row["severity"]) == ("ventilation", "serious")
    assert row["description"] == "Желдеткіш екі күннен бері істемейді"
    assert (await h.app.db.fetchone("SELECT count(*) AS n FROM reports"))["n"] == before + 1
    assert await h.state_of(miner) is None


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    loop = asyncio.new_event_loop()
    quiet = handlers.report.ALBUM_QUIET_SECONDS
    handlers.report.ALBUM_QUIET_SECONDS = 0.02  # photos of an album arrive within milliseconds here
    harness = loop.run_until_complete(open_harness(tmp_path_factory.mktemp("fuzz"), loop))
    try:
        loop.run_until_complete(drive_every_flow(harness))
        yield harness
    finally:
        handlers.report.ALBUM_QUIET_SECONDS = quiet
        logging.getLogger().removeHandler(harness.errors)
        # aiogram's routers are module-level and attach to one dispatcher for life: let them go, so
        # that later tests in this process can build theirs (as tests/e2e_support.py does).
        for router in harness.app.dispatcher.sub_routers:
            router._parent_router = None  # noqa: SLF001
        harness.app.dispatcher.sub_routers.clear()
        loop.run_until_complete(close_app(harness.app))
        loop.close()


# --- the strategies that need the running app -----------------------------------------------------

async def forged(h: Harness) -> st.SearchStrategy[str]:
    sites = h.app.services.sites
    regions = await sites.all_regions()
    return fz.forged_callback_data(
        real_survey_id=h.survey_id, site_ids=[site.id for region in regions for site in await sites.every_site_in(region.code)],
        region_codes=[region.code for region in regions], categories=CATEGORIES, severities=SEVERITIES,
        instruments=h.app.services.surveys.instruments)


def pick(data: st.DataObject, items: list, label: str):
    """One of `items`, drawn as a plain number: hypothesis must not see how many there are, since
    that depends on what earlier examples did to the shared bot (it would call the test flaky)."""
    return items[data.draw(st.integers(0, 2**16), label=label) % len(items)]


LANGUAGES = st.sampled_from([None, None, "kk", "ru", "en"])
LANGUAGE_CODES = st.sampled_from([None, "kk", "ru", "en", "de", "zh-hans", ""])


MESSAGE_KINDS = [*fz.CONTENT, "album", "known_command", "menu_button"]
OTHER_KINDS = ["edited", "group_message", "group_command", "channel_post", "my_chat_member", "group_member"]
CALLBACK_KINDS = ["forged", "mutated", "stale", "other_users", "no_data"]
SCREEN_KINDS = ["current", "current_inaccessible", "current_twice"]  # the buttons of the state's own screen


def kinds_for(h: Harness, state_name: str) -> list[str]:
    screens = any(template.screen for template in h.templates.get(state_name, ()))
    return MESSAGE_KINDS + OTHER_KINDS + CALLBACK_KINDS + (SCREEN_KINDS if screens else [])


async def one_kind(h: Harness, data: st.DataObject, state_name: str, kind: str) -> None:
    """A fresh user in `state_name` gets one update of `kind`; the checks run in Harness.feed."""
    if state_name in (NO_STATE, NOT_STARTED):
        template = None
        user = await h.new_user("miner", None if state_name == NOT_STARTED else data.draw(st.sampled_from(LOCALES)),
                                data.draw(LANGUAGE_CODES))
    else:
        template = data.draw(st.sampled_from(h.templates[state_name]), label="template")
        user = await h.new_user(template.role, data.draw(LANGUAGES, label="language"), data.draw(LANGUAGE_CODES))
        await h.enter(template, user)
    context = f"state {state_name}, kind {kind}, user {user.id} ({user.role})"
    refused = must_refuse(state_name, kind)

    if kind in fz.CONTENT:
        content = data.draw(fz.CONTENT[kind], label=kind)
        await h.feed([h.tg.message(user.chat, user.json, content)], context=context, refused=refused)
    elif kind == "album":
        group = str(data.draw(st.integers(1, 10**9)))
        photos = data.draw(st.lists(fz.photo(), min_size=2, max_size=7))
        await h.feed([h.tg.message(user.chat, user.json, photo | {"media_group_id": group}) for photo in photos],
                     context=context, refused=refused)
    elif kind == "known_command":
        await h.send(user, data.draw(fz.known_command()), context=context)
    elif kind == "menu_button":
        button = data.draw(st.sampled_from([REPORT_BUTTON, STATUS_BUTTON, HELP_BUTTON]))
        await h.send(user, menu_text(h, button, data.draw(st.sampled_from(LOCALES))), context=context)
    elif kind == "edited":
        content = data.draw(st.sampled_from(sorted(fz.CONTENT)).flatmap(lambda name: fz.CONTENT[name]))
        await h.feed([h.tg.message(user.chat, user.json, content, edited=True)], context=context, refused=True)
    elif kind in ("group_message", "group_command"):
        chat = fz.group_chat(next(GROUP_IDS), data.draw(st.sampled_from(["group", "supergroup"])))
        if kind == "group_message":
            content = data.draw(st.sampled_from(sorted(fz.CONTENT)).flatmap(lambda name: fz.CONTENT[name]))
        else:
            text = data.draw(st.one_of(fz.known_command(), fz.unknown_command))
            content = {"text": text, "entities": [{"type": "bot_command", "offset": 0,
                                                   "length": len(text.split(" ")[0].encode("utf-16-le")) // 2}]}
        edited = data.draw(st.booleans()) if kind == "group_message" else False
        await h.feed([h.tg.message(chat, user.json, content, edited=edited)], context=context,
                     refused=kind == "group_message", fsm_only=True)
    elif kind == "channel_post":
        chat = {"id": next(GROUP_IDS), "type": "channel", "title": "Union news"}
        content = data.draw(st.sampled_from(sorted(fz.CONTENT)).flatmap(lambda name: fz.CONTENT[name]))
        await h.feed([h.tg.message(chat, None, content, channel=True, edited=data.draw(st.booleans()))],
                     context=context, refused=True)
    elif kind == "my_chat_member":
        old, new = data.draw(st.sampled_from([("member", "kicked"), ("kicked", "member"), ("member", "member")]))
        await h.feed([h.tg.my_chat_member(user.chat, user.json, old, new)], context=context, fsm_only=True)
    elif kind == "group_member":
        chat = fz.group_chat(next(GROUP_IDS), data.draw(st.sampled_from(["group", "supergroup"])))
        old, new = data.draw(st.sampled_from([("left", "member"), ("member", "left"), ("member", "kicked")]))
        await h.feed([h.tg.my_chat_member(chat, user.json, old, new)], context=context, refused=True)
    else:
        await press_kind(h, data, user, template, state_name, kind, context)


async def press_kind(h: Harness, data: st.DataObject, user: User, template: Template | None, state_name: str,
                     kind: str, context: str) -> None:
    screen = h.own(template.screen, user) if template is not None and template.screen else None
    old_message = {"message_id": data.draw(st.integers(1, 9_999)), "date": 1_700_000_000, "chat": user.chat,
                   "from": {"id": fz.BOT_ID, "is_bot": True, "first_name": "MineVoice"}, "text": "…"}
    message = data.draw(st.sampled_from([screen or old_message, old_message,
                                         fz.inaccessible_json(user.chat, old_message["message_id"])]), label="message")
    if kind == "forged":
        await h.press_data(user, data.draw(h.forged, label="data"), message, context=context, refused=True)
    elif kind == "no_data":
        await h.press_data(user, None, message, context=context, refused=True)
    elif kind == "mutated":
        real = pick(data, h.history[-500:], "button")[2]
        mutated = fz.mutate(real, data.draw(fz.mutations, label="mutation"))
        await h.press_data(user, mutated, message, context=context + f" (from {real!r})")
    elif kind == "stale":  # a button of some step of some flow, on its old message
        source = pick(data, [template for templates in h.templates.values() for template in templates
                             if template.screen], "screen")
        buttons = [button["callback_data"] for row in source.screen["reply_markup"]["inline_keyboard"] for button in row
                   if button.get("callback_data")]
        button = pick(data, buttons, "button")
        prefix, *parts = button.split(":")
        refused = prefix == "rp" and bool(parts) and REPORT_ACTION_STATE.get(parts[0], state_name) != state_name
        await h.press_data(user, button, h.own(source.screen, user), context=context + f" (from {source.state})",
                           refused=refused)
    elif kind == "other_users":  # a button the bot showed someone else, forwarded into this chat
        chat_id, shown_in, button = pick(data, [entry for entry in h.history[-1000:] if entry[0] != user.id], "button")
        prefix = button.split(":")[0]
        refused = user.role == "miner" and prefix in ("ann", "ss", "cmp", "inv", "role", "site", "res", "cases", "exp")
        await h.press_data(user, button, message, context=context + f" (shown in chat {chat_id} in {shown_in})",
                           refused=refused)
    elif kind.startswith("current"):
        assert screen is not None, f"{state_name} has no screen to press"
        buttons = [button.get("callback_data") for row in screen["reply_markup"]["inline_keyboard"] for button in row
                   if button.get("callback_data")]
        button = pick(data, buttons, "button")
        if kind == "current_inaccessible":
            screen = fz.inaccessible_json(user.chat, screen["message_id"])
        await h.press_data(user, button, screen, context=context)
        if kind == "current_twice":
            await h.press_data(user, button, screen, context=context + " (tapped again)")


STATE_NAMES = [NO_STATE, NOT_STARTED, *STATES]


@pytest.mark.parametrize("state_name", STATE_NAMES)
def test_every_update_kind_in_every_state(harness: Harness, state_name: str) -> None:
    kinds = kinds_for(harness, state_name)
    fed = harness.updates_fed

    @seed(zlib.crc32(state_name.encode()))  # fixed, but different in every state
    @settings(max_examples=3, **FUZZ_SETTINGS)
    @given(data=st.data())
    def every_kind(data: st.DataObject) -> None:
        for kind in kinds:
            harness.run(one_kind(harness, data, state_name, kind))

    every_kind()
    assert harness.updates_fed - fed >= 3 * len(kinds)
    harness.run(normal_report_flow(harness))


# --- random walks: real flows, with stale, forwarded, forged and mutated buttons on the way -----------

WALK_ACTIONS = st.sampled_from(["tap"] * 8 + ["tap_old"] * 2 + ["tap_twice", "tap_inaccessible", "forward", "forged",
                                "mutated", "text"] + ["command"] * 3 + ["content"] * 2 + ["menu", "edited", "group"])
FLOW_TEXTS = st.one_of(
    fz.plain_text,
    st.sampled_from(["Участок 5, горизонт −450", "Датчик метана заклеен, вентилятор не работает с утра",
                     "https://union.example.org/news", "Жаңа кен | Новая шахта | New mine", "Note for the reporter"]),
    st.builds(lambda days: (datetime.now(UTC) + timedelta(days=days)).strftime("%d.%m.%Y 10:00"), st.integers(-3, 400)),
)
WALK_COMMANDS = ["report", "status", "survey", "announce", "profile", "cancel", "sites", "roles", "cases", "campaigns",
                 "results", "language", "start", "help", "stop", "subscribe", "me", "invite organizer",
                 "invite committee", "digest", "export", "groupcode"]


async def walk_step(h: Harness, data: st.DataObject, users: list[User]) -> None:
    user = data.draw(st.sampled_from(users), label="user")
    state = await h.state_of(user) or NO_STATE
    action = data.draw(WALK_ACTIONS, label="action")
    h.walked.add(state)
    context = f"walk: user {user.id} ({user.role}) in {state}, {action}"
    own = [message for (chat, _id), message in h.bot.session.messages.items()
           if chat == user.id and isinstance(message.reply_markup, InlineKeyboardMarkup)]
    if action in ("tap", "tap_twice", "tap_inaccessible", "tap_old"):
        which, index = data.draw(st.integers(0, 2**16), label="message"), data.draw(st.integers(0, 2**16), label="button")
        if not own:
            return
        message = own[-1] if action != "tap_old" else own[which % len(own)]
        buttons = [button.callback_data for row in message.reply_markup.inline_keyboard for button in row
                   if button.callback_data]
        if not buttons:
            return
        button = buttons[index % len(buttons)]
        shown = fz.inaccessible_json(user.chat, message.message_id) if action == "tap_inaccessible" \
            else fz.bot_message_json(message)
        prefix, *parts = button.split(":")
        refused = action == "tap_old" and prefix == "rp" and bool(parts) and \
            REPORT_ACTION_STATE.get(parts[0], state) != state
        for _ in range(2 if action == "tap_twice" else 1):
            await h.press_data(user, button, shown, context=f"{context} {button!r}", refused=refused)
    elif action == "forward":
        chat_id, shown_in, button = pick(data, h.history[-300:], "button")
        prefix = button.split(":")[0]
        refused = chat_id != user.id and user.role == "miner" and prefix in ("ann", "ss", "cmp", "inv", "role",
                                                                             "site", "res", "cases", "exp")
        message = {"message_id": 1, "date": 1_700_000_000, "chat": user.chat, "text": "forwarded",
                   "from": {"id": fz.BOT_ID, "is_bot": True, "first_name": "MineVoice"}}
        await h.press_data(user, button, message, context=f"{context} {button!r} from chat {chat_id}", refused=refused)
    elif action == "forged":
        button = data.draw(h.forged, label="data")
        message = own[-1] if own else None
        shown = fz.bot_message_json(message) if message is not None else fz.inaccessible_json(user.chat, 1)
        await h.press_data(user, button, shown, context=f"{context} {button!r}", refused=True)
    elif action == "mutated":
        button = fz.mutate(pick(data, h.history[-300:], "button")[2], data.draw(fz.mutations, label="mutation"))
        message = own[-1] if own else None
        shown = fz.bot_message_json(message) if message is not None else fz.inaccessible_json(user.chat, 1)
        await h.press_data(user, button, shown, context=f"{context} {button!r}")
    elif action == "text":
        text = data.draw(FLOW_TEXTS, label="text")
        await h.send(user, text, context=context, refused=must_refuse(state, "text"))
    elif action == "command":
        command = data.draw(st.sampled_from(WALK_COMMANDS), label="command")
        await h.send(user, "/" + command, context=context)
    elif action == "content":
        kind = data.draw(st.sampled_from(sorted(fz.CONTENT)), label="kind")
        content = data.draw(fz.CONTENT[kind], label=kind)
        await h.feed([h.tg.message(user.chat, user.json, content)], context=f"{context} {kind}",
                     refused=must_refuse(state, kind))
    elif action == "menu":
        button = data.draw(st.sampled_from([REPORT_BUTTON, STATUS_BUTTON, HELP_BUTTON]))
        language = await h.app.services.users.language_of(user.id) or "ru"
        await h.send(user, menu_text(h, button, language), context=context)
    elif action == "edited":
        content = data.draw(st.sampled_from(sorted(fz.CONTENT)).flatmap(lambda name: fz.CONTENT[name]))
        await h.feed([h.tg.message(user.chat, user.json, content, edited=True)], context=context, refused=True)
    elif action == "group":
        chat = fz.group_chat(next(GROUP_IDS), "supergroup")
        content = data.draw(st.sampled_from(sorted(fz.CONTENT)).flatmap(lambda name: fz.CONTENT[name]))
        await h.feed([h.tg.message(chat, user.json, content)], context=context, refused=True)


@seed(20261123)
@settings(max_examples=100, **FUZZ_SETTINGS)
@given(data=st.data())
def test_random_walks_through_the_flows(harness: Harness, data: st.DataObject) -> None:
    """A miner, an organizer and a committee member at once, each starting anywhere, press what
    the bot shows them (and older, forwarded, forged and mutated buttons), type and send things."""

    async def walk() -> None:
        users = []
        for role in ("miner", "admin", "committee"):
            start = data.draw(st.sampled_from([None, *(name for name, templates in harness.templates.items()
                                                       if templates[0].role == role)]), label=f"{role} starts in")
            user = await harness.new_user(role, data.draw(LANGUAGES, label="language"), data.draw(LANGUAGE_CODES))
            if start is not None:
                await harness.enter(data.draw(st.sampled_from(harness.templates[start])), user)
            users.append(user)
        for _ in range(data.draw(st.integers(5, 30), label="steps")):
            await walk_step(harness, data, users)

    harness.run(walk())


def test_the_walks_went_deep(harness: Harness) -> None:
    """After the walks (module order): they were in most states of the flows, not only at the start."""
    if not harness.walked:
        pytest.skip("runs together with test_random_walks_through_the_flows")
    assert len(harness.walked) >= len(STATES) // 2, sorted(harness.walked)


def test_stale_buttons_of_every_step_in_every_step(harness: Harness) -> None:
    """Every button of every step of a flow, pressed on its old message while the user is at
    another step of that flow (a double tap, a message scrolled back to, a flow cancelled and
    started again). Where the bot takes it, every button of the screen it then shows is pressed
    too, each by a user cloned at that point: a stale button must not leave the flow in a state
    that a later step cannot handle."""
    h = harness

    async def sweep() -> None:
        groups: dict[str, list[Template]] = {}
        for name, templates in h.templates.items():
            groups.setdefault(name.split(":")[0], []).extend(templates)
        for templates in groups.values():
            buttons = [(button.get("callback_data"), template) for template in templates if template.screen
                       for row in template.screen["reply_markup"]["inline_keyboard"] for button in row
                       if button.get("callback_data")]
            for target in {template.state: template for template in templates}.values():
                for button, source in buttons:
                    if source.state == target.state:
                        continue
                    user = await h.new_user(target.role, "en", "en")
                    await h.enter(target, user)
                    before = (await h.state_of(user), await h.data_of(user))
                    prefix, *parts = button.split(":")
                    refused = prefix == "rp" and bool(parts) and REPORT_ACTION_STATE.get(parts[0]) not in (None, target.state)
                    await h.press_data(user, button, h.own(source.screen, user), refused=refused,
                                       context=f"stale {button!r} (from {source.state}) in {target.state}")
                    after = (await h.state_of(user), await h.data_of(user))
                    if after == before or after[0] is None or prefix == "nav":  # Back and Cancel work at every step
                        continue
                    newest = h.newest_screen(user.id)
                    if newest is None:
                        continue
                    for row in newest.reply_markup.inline_keyboard:
                        for follow in row:
                            clone = await h.new_user(target.role, "en", "en")
                            await h.storage.set_state_and_data(h.key(clone.id, clone.id), after[0], copy.deepcopy(after[1]))
                            await h.press_data(clone, follow.callback_data, h.own(fz.bot_message_json(newest), clone),
                                               context=f"{follow.callback_data!r} after stale {button!r} (from "
                                                       f"{source.state}) in {target.state}")

    fed = h.updates_fed
    h.run(sweep())
    assert h.updates_fed - fed >= 1000, h.updates_fed - fed


# Ids no row has and SQLite cannot even hold, in every callback family that carries a number.
FORGED_ID_FAMILIES = ["er:ask:{}", "er:yes:{}", "er:no:{}", "cmp:show:{}", "cmp:pause:{}", "cmp:resume:{}",
                      "cmp:cancel:{}", "cmp:cancel_yes:{}", "ack:{}", "sv:start:{}:0:", "sv:begin:{}:0:",
                      "sv:answer:{survey}:{}:1", "sv:skip:{survey}:{}:", "sv:site:{survey}:0:{}", "res:show:{}",
                      "res:close:{}", "inv:{}", "role:{}", "case:view:{}:", "case:note:{}:",
                      "case:status:{}:acknowledged", "cases:open:{}", "cases:all:{}", "exp:{}", "rp:site:{}",
                      "pf:site:{}", "ann:site:{}", "ss:site:{}", "site:site:{}", "site:archive:{}"]


def test_forged_ids_in_every_callback_family(harness: Harness) -> None:
    """Every family of buttons that carries a number, with numbers that name nothing (zero,
    negative, huge, beyond 64 bits), pressed by a miner, an organizer and a committee member,
    outside any flow and in every state of their flows: refused, nothing stored."""
    h = harness

    async def sweep() -> None:
        for role in ("miner", "admin", "committee"):
            states = [None] + [templates[0] for templates in h.templates.values() if templates[0].role == role]
            for template in states:
                numbers = fz.HUGE_INTS if template is None else [2**63, -(2**63) - 1]
                for family in FORGED_ID_FAMILIES:
                    for number in numbers:
                        user = await h.new_user(role, "ru", "ru")
                        if template is not None:
                            await h.enter(template, user)
                        data = family.format(number, survey=h.survey_id)
                        message = h.own(template.screen, user) if template is not None and template.screen else \
                            fz.inaccessible_json(user.chat, 1)
                        await h.press_data(user, data, message, refused=True,
                                           context=f"{role} in {template.state if template else NO_STATE} presses {data!r}")

    fed = h.updates_fed
    h.run(sweep())
    assert h.updates_fed - fed >= 1000, h.updates_fed - fed


def test_the_longest_texts_pile_up_in_one_case(harness: Harness) -> None:
    """A danger report with the longest description and place, full of characters HTML must
    escape, and an album of more photos than allowed (the alert goes to the whole committee), then
    reporter messages and committee notes of the longest length, over and over: every
    screen that shows the case (the reporter's status card, the committee's case view, the
    case list, the digest preview, the export) stays something Telegram accepts."""
    h = harness
    nasty = "<&>\"' " * 400

    async def pile_up() -> None:
        miner = await h.new_user("miner", "ru", "ru")
        await h.send(miner, "/report")
        for prefix in ("rp:region:", "rp:site:", "rp:category:", "rp:severity:danger"):
            await h.press(miner, prefix)
        await h.send(miner, nasty[:200])
        await h.send(miner, nasty[:1500])
        await h.feed([h.tg.message(miner.chat, miner.json, {
            "photo": [{"file_id": f"pile-{n}", "file_unique_id": f"pile-{n}", "width": 90, "height": 90}],
            "media_group_id": "pile"}) for n in range(7)], context="an album of 7 photos")
        await h.press(miner, "rp:done")
        await h.press(miner, "rp:submit")
        found = re.search(r"(MV-[0-9A-Z]{5}).*?([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})",
                          h.last_text(miner.id), re.S)
        code, receipt = found.groups()
        row = await h.app.db.fetchone("SELECT id, site_id FROM reports WHERE case_code = ?", (code,))
        member = User(COMMITTEE_POOL[0], None, "committee")
        alert = {"message_id": 1, "date": 1_700_000_000, "chat": member.chat, "text": code,
                 "from": {"id": fz.BOT_ID, "is_bot": True, "first_name": "MineVoice"}}
        for round_ in range(8):
            await h.send(miner, f"/status {code} {receipt}")
            await h.press(miner, "rw:")
            await h.send(miner, f"{round_} " + nasty)
            await h.press_data(member, f"case:note:{row['id']}:", alert)
            await h.send(member, f"{round_} " + nasty)
            await h.press_data(member, f"case:status:{row['id']}:{('in_progress', 'acknowledged')[round_ % 2]}", alert)
        await h.send(miner, f"/status {code} {receipt}")
        await h.press_data(member, f"case:view:{row['id']}:", alert)
        await h.send(member, "/cases all")
        await h.send(member, "/digest")
        await h.send(member, "/export")
        await h.press(member, "exp:")

    h.run(pile_up())


def test_a_blank_announcement_is_refused(harness: Harness) -> None:
    async def blank() -> None:
        for template in harness.templates["Compose:content"] + harness.templates["Compose:version"]:
            user = await harness.new_user("admin", "en", "en")
            await harness.enter(template, user)
            await harness.send(user, " ", context=f"a blank announcement in {template.state}", refused=True)

    harness.run(blank())


def test_after_all_that_a_normal_report_still_goes_through(harness: Harness) -> None:
    harness.run(normal_report_flow(harness))


def test_no_per_person_lock_outlives_its_updates(harness: Harness) -> None:
    """Thousands of updates from hundreds of people: afterwards no chat's lock is left in memory
    (aiogram's SimpleEventIsolation would keep one per person for the life of the process)."""
    isolation = harness.app.dispatcher.fsm.events_isolation
    assert isinstance(isolation, PerChatEventIsolation), type(isolation)
    miners_made = next(harness._miner_ids) - 1_100_000
    assert harness.updates_fed > 5000 and miners_made > 100, (harness.updates_fed, miners_made)
    assert isolation.locks_held() == 0


def test_a_half_typed_status_check_is_forgotten_when_it_expires(harness: Harness, monkeypatch) -> None:
    """A case code typed before its receipt, or a case opened to write to, pairs a person with a
    case in memory. If the miner walks away, the pair must go when it expires, without waiting
    for the miner to come back."""
    monkeypatch.setattr(handlers.status._pending_codes, "seconds", 0.05)
    monkeypatch.setattr(handlers.status._replying_to, "seconds", 0.05)

    async def walk_away() -> None:
        code, receipt = harness.report["code"], harness.report["receipt"]
        miner = await harness.new_user("miner", "ru", "ru")
        await harness.send(miner, "/status")
        await harness.send(miner, code)  # ... and the receipt never comes
        assert handlers.status._pending_codes.get(miner.id) == code
        await asyncio.sleep(0.2)
        assert handlers.status._pending_codes.get(miner.id) is None
        await harness.send(miner, f"/status {code} {receipt}")
        await harness.press(miner, "rw:")  # "Write to the committee" ... and nothing is written
        assert handlers.status._replying_to.get(miner.id) == (code, receipt)
        await asyncio.sleep(0.2)
        assert handlers.status._replying_to.get(miner.id) is None

    harness.run(walk_away())
