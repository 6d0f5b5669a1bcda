"""A fake Telegram Bot API HTTP server for end-to-end tests and benchmarks.

The real bot (aiogram, possibly running as a separate ``python -m bot`` process)
talks to this server over HTTP exactly like it talks to api.telegram.org::

    from aiogram.client.session.aiohttp import AiohttpSession
    from aiogram.client.telegram import TelegramAPIServer
    session = AiohttpSession(api=TelegramAPIServer.from_base(fake.base_url))
    bot = Bot(fake.token, session=session)

URLs: ``{base_url}/bot{token}/{method}`` (POST urlencoded / multipart / JSON,
or GET with a query string) and ``{base_url}/file/bot{token}/{file_path}``.
Everything runs in the test's event loop; the fake is not thread-safe.

Quick start
-----------
::

    async with FakeTelegram() as tg:
        ...start the bot against tg.base_url / tg.token...
        await tg.wait_polling()                     # the bot called getUpdates
        alice = tg.user(1001, "Alice", language_code="ru")
        await alice.send("/start")
        hello = await alice.next_message()          # dict, a Telegram Message
        assert "Welcome" in hello["text"]
        qid = await alice.press("English")          # inline button of the newest bot message
        assert (await alice.callback_answer(qid)).get("text") is None
        tg.assert_no_errors()

FakeTelegram
------------
``FakeTelegram(token=DEFAULT_TOKEN, *, bot_username="minevoice_test_bot",
bot_first_name="MineVoice", host="127.0.0.1", port=0)``

* ``await start()`` / ``await stop()``, or ``async with FakeTelegram() as tg``.
* ``base_url`` ("http://127.0.0.1:PORT"), ``token``, ``bot_id``, ``bot_user`` (dict).
* ``user(user_id, first_name, *, last_name=None, username=None,
  language_code=None, started=False) -> FakeUser`` - a private chat (chat id ==
  user id). Until the user sends something (or ``started=True``) the bot gets
  403 "Forbidden: bot can't initiate conversation with a user", like on Telegram.
  Calling it again with the same id returns the same object.
* ``group(chat_id, title, *, supergroup=False, username=None) -> FakeGroup``
  (the bot is *not* a member until ``await group.add_bot(by=user)``).
* ``inject_error(*, chat_id=None, method=None, error_code, description,
  retry_after=None, migrate_to_chat_id=None, times=1) -> ErrorRule``: the next
  ``times`` calls matching ``chat_id`` (int) and/or ``method`` (case-insensitive)
  fail that way (``times=-1``: forever, until ``clear_injected_errors()``).
* ``block(chat_id, *, notify=True)`` / ``unblock(chat_id, *, notify=True)``:
  persistent 403 "Forbidden: bot was blocked by the user" for that private chat;
  with ``notify`` a ``my_chat_member`` update (kicked / member) is queued, as
  Telegram does.
* ``calls: list[ApiCall]`` - every API call (method as sent, decoded params,
  chat_id, monotonic ``time``, ``end_time``, ``ok``, ``result``, ``error``);
  ``calls_to(method, chat_id=None)`` uses per-method / per-chat indexes.
* ``errors: list[ApiError]`` - error responses the *bot caused* (validation,
  unknown method, wrong token, chat/message not found, not modified, ...).
  ``simulated_errors`` - errors produced on purpose (inject_error, blocked
  users, kicked bot, migrated groups). ``assert_no_errors()`` raises a readable
  AssertionError listing ``errors``. ``internal`` errors (bugs in the fake) are
  in ``errors`` too and answered with HTTP 500.
* ``pending_updates() -> int`` - queued updates the bot has not fetched yet.
* ``await wait_polling(timeout=10)`` - until the bot has called getUpdates.
* ``await wait_idle(quiet=0.2, timeout=10)`` - until no update is pending, no
  (non-getUpdates) request is in flight and nothing happened for ``quiet`` s.
* ``commands(scope=None, language_code="") -> list[dict] | None`` - what
  setMyCommands stored for exactly that scope (dict, or a type string such as
  "all_private_chats"; None = default) and language (None if never set).
  ``command_menu(chat_id, language_code="", *, user_id=None)`` resolves the
  menu a client would show, with Telegram's scope/language fallback order.
* ``callback_answers: dict[str, dict]`` (query id -> answerCallbackQuery
  params), ``callback_queries`` (id -> CallbackQueryRecord),
  ``unanswered_callbacks()``.
* ``get_file(file_id) -> StoredFile`` (``.data`` bytes, ``.file_name``,
  ``.mime_type``, ...) - files the bot uploaded (sendDocument/sendPhoto/...) and
  files users sent. ``file_content(file_id) -> bytes``.
* ``chat_messages(chat_id, include_deleted=False)``, ``message(chat_id, message_id)``.
* ``menu_buttons``, ``webhook``, ``my_descriptions`` etc. - stored settings.
* Latency: ``update_log: list[UpdateRecord]`` (update_id, type, chat_id,
  ``enqueued_at``, ``fetched_at``, ``first_reply_at``, ``first_reply_method``,
  ``latency`` = first_reply_at - enqueued_at) and ``reply_latencies(*,
  from_fetch=False) -> list[float]``. A "reply" is the first successful
  send*/copyMessage/forwardMessage/edit*/answerCallbackQuery for the update's
  chat after the update was fetched. Every bot message also carries its
  monotonic ``sent_at`` (see below).
* ``feed_update(update_type, payload, *, chat_id=None) -> int`` - queue any raw update.

Messages (dicts)
----------------
All messages returned to tests are *live* dicts in Telegram format (``message_id``,
``date``, ``chat``, ``from``, ``text``/``photo``/..., ``reply_markup`` for inline
keyboards) plus three bookkeeping keys that are never sent to the bot:
``deleted`` (bool), ``edit_count`` (int) and ``sent_at`` (time.monotonic()).
Edits by the bot update the dict in place (copy.deepcopy it for a snapshot).
Text/captions are stored as Telegram returns them: markup parsed away
(``parse_mode`` HTML/MarkdownV2/Markdown) into ``entities``, whitespace trimmed.
``editMessageText``/``editMessageCaption`` without ``reply_markup`` remove the
inline keyboard, like Telegram does. Reply keyboards are not part of the message
(as on Telegram); the chat remembers the last one (``reply_buttons()``).
The bot may delete its own messages anywhere, users' messages in private chats
and, as an administrator, in groups. deleteMessage of an unknown/deleted id ->
400 "message to delete not found"; deleteMessages skips such ids like Telegram
and fails with that error only if nothing could be deleted.
Update types outside the bot's ``allowed_updates`` (default: all but
chat_member/message_reaction*) are dropped when created, as on Telegram
(see ``dropped_updates``); a second concurrent getUpdates makes the older one
fail with 409 Conflict.

FakeUser (also the private chat view)
--------------------------------------
``id, first_name, last_name, username, language_code, user_dict, chat_id``

* ``await send(text) -> dict`` (commands get a bot_command entity),
  ``send_photo(*, caption=None, media_group_id=None, file_id=None, content=None)``,
  ``send_album(count, *, caption=None) -> list[dict]``,
  ``send_document(*, file_name="IMG_0001.jpg", mime_type="image/jpeg",
  content=None, caption=None)``, ``send_sticker()``, ``send_voice()``,
  ``send_location(lat, lon)``, ``send_contact(phone_number=..., first_name=None)``,
  ``send_video()``, ``send_animation()``, ``edit(message, new_text)``.
* ``await press(button, *, message=None) -> str`` - text (exact match first,
  over all bot messages newest first, then substring) or predicate on the button
  dict; sends a callback_query and returns its id. Reply-keyboard buttons are
  sent as messages (returns ""). Raises AssertionError listing the visible
  buttons when nothing matches, or when the button is not a callback button.
* ``await press_data(callback_data, *, message) -> str`` - a forged callback.
* ``buttons(message=None) -> list[str]``, ``keyboard(message=None) -> list[list[str]]``,
  ``reply_buttons() -> list[str]``.
* ``await next_message(timeout=10.0, *, include_deleted=True) -> dict`` - next
  bot message (sent, not edited) not yet consumed; AssertionError on timeout
  with what the bot sent last and the API errors for this chat.
* ``await collect(quiet=0.3, timeout=10.0) -> list[dict]``, ``skip_pending() -> int``.
* ``bot_messages() / history() -> list[dict]`` (not deleted), ``last_bot_message()``.
* ``await callback_answer(query_id, timeout=5.0) -> dict``.
* ``block_bot()`` / ``unblock_bot()``.

FakeGroup
---------
``id, title, type, chat``; ``await send(user, text)``, ``send_photo(user, ...)``,
``add_bot(by, *, admin=False)``, ``remove_bot(by)``, ``add_member(user, by=None)``,
``migrate_to_supergroup(new_id, *, by=None) -> FakeGroup`` (old id answers 400
"group chat was upgraded to a supergroup chat" with ``migrate_to_chat_id``),
``press(user, button, *, message=None)``, ``press_data(user, data, *, message)``,
plus the same read helpers as FakeUser (``next_message``, ``collect``, ``buttons``,
``bot_messages``, ``history``, ...). Privacy mode is not simulated: the bot gets
every group message.

Implemented Bot API methods (case-insensitive): getMe, getUpdates, deleteWebhook,
setWebhook, getWebhookInfo, setMyCommands, getMyCommands, deleteMyCommands,
sendMessage, sendPhoto, sendDocument, sendVideo, sendAnimation, sendAudio,
sendVoice, sendSticker, sendLocation, sendMediaGroup, copyMessage,
forwardMessage, editMessageText, editMessageCaption, editMessageReplyMarkup,
editMessageMedia, deleteMessage, deleteMessages, answerCallbackQuery, getChat,
getChatMember, leaveChat, sendChatAction, setChatMenuButton,
getChatMenuButton, getFile, set/getMyDescription, set/getMyShortDescription,
set/getMyName, close, logOut. Anything else answers 404 "Not Found: method not
found".
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import logging
import mimetypes
import re
import struct
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

__all__ = [
    "DEFAULT_TOKEN",
    "ApiCall",
    "ApiError",
    "CallbackQueryRecord",
    "ErrorRule",
    "FakeGroup",
    "FakeTelegram",
    "FakeUser",
    "StoredFile",
    "UpdateRecord",
    "UploadedFile",
    "parse_formatted_text",
]

log = logging.getLogger("fake_telegram")

DEFAULT_TOKEN = "123456789:AAF-fake-token-for-tests-only-000000"

META_KEYS = ("deleted", "edit_count", "sent_at")

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
MAX_CALLBACK_DATA_BYTES = 64

# A real 16x16 baseline JPEG (CPython's Lib/test/imghdrdata/python.jpg), used
# as the content of photos "sent" by fake users unless a test provides bytes.
TINY_JPEG = base64.b64decode(
    "/9j/4AAQSkZJRgABAQEAAQABAAD/2wBDAAMCAgICAgMCAgIDAwMDBAYEBAQEBAgGBgUGCQgKCgkI"
    "CQkKDA8MCgsOCwkJDRENDg8QEBEQCgwSExIQEw8QEBD/2wBDAQMDAwQDBAgEBAgQCwkLEBAQEBAQ"
    "EBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBD/wAARCAAQABADASIA"
    "AhEBAxEB/8QAFgABAQEAAAAAAAAAAAAAAAAABwQF/8QAJBAAAQQBBAICAwAAAAAAAAAAAQIDBAYF"
    "BwgSExEiABQJMTL/xAAVAQEBAAAAAAAAAAAAAAAAAAAABv/EACMRAAECBQMFAAAAAAAAAAAAAAEC"
    "EQMEBQYhABIxFRZhgeH/2gAMAwEAAhEDEQA/ABSm0mobc8HmExLUlRzzEWPkJWW+ulrsaUVAseUg"
    "slSlH9LKuPryIKuWPZdskzXmm3fX5m2nF4GlVxx/HOpx4ks51+MiU/Iaad7UcUo4tILoS4kqcWke"
    "zS0hO/HvuRp0rO6hWnWO1UisZVuFi4GFeyEpmGepa5S5SWVPuciFKRFLgSrwetnyPIB+Vb4N9mKh"
    "QMzo5po9XLdDs9d6ZVix2VEhiL9kuNPxw2gEKcDQ/rs8AuA8VAe0vdl7VOYn+27flGAUgmITjbhS"
    "mCg3BYlyeWDkMolvw4KOp1KM6iCNvngZHwetf//Z"
)

# Update types delivered when allowed_updates is [] / never set.
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

# Parameters whose form value is always a plain string (aiogram sends str raw and
# everything else JSON-encoded, so these must NOT be json-decoded: text="123").
_RAW_STRING_PARAMS = frozenset(
    {
        "text", "caption", "parse_mode", "callback_query_id", "url", "photo", "document",
        "video", "audio", "animation", "voice", "sticker", "video_note", "thumbnail",
        "description", "short_description", "name", "title", "language_code", "action",
        "inline_message_id", "business_connection_id", "message_effect_id", "emoji",
        "query", "switch_pm_text", "switch_pm_parameter", "next_offset", "custom_title",
        "phone_number", "first_name", "last_name", "vcard", "address", "foursquare_id",
        "foursquare_type", "google_place_id", "google_place_type", "question", "explanation",
        "secret_token", "ip_address", "file_id", "payload", "provider_token", "currency",
        "start_parameter", "invite_link", "sticker_set_name", "format", "certificate",
        "performer", "file_name", "web_app_query_id", "game_short_name", "icon_custom_emoji_id",
    }
)
_ID_PARAMS = frozenset({"chat_id", "from_chat_id", "user_id", "sender_chat_id"})

_FILE_ID_PREFIX = {
    "photo": "AgACAgIAAxkBAAI",
    "document": "BQACAgIAAxkBAAI",
    "video": "BAACAgIAAxkBAAI",
    "animation": "CgACAgIAAxkBAAI",
    "audio": "CQACAgIAAxkBAAI",
    "voice": "AwACAgIAAxkBAAI",
    "sticker": "CAACAgIAAxkBAAI",
}
_FILE_DIRS = {
    "photo": ("photos", ".jpg"),
    "document": ("documents", ""),
    "video": ("videos", ".mp4"),
    "animation": ("animations", ".mp4"),
    "audio": ("music", ".mp3"),
    "voice": ("voice", ".oga"),
    "sticker": ("stickers", ".webp"),
}
_CHAT_ACTIONS = frozenset(
    {
        "typing", "upload_photo", "record_video", "upload_video", "record_voice",
        "upload_voice", "upload_document", "choose_sticker", "find_location",
        "record_video_note", "upload_video_note",
    }
)
# Methods whose success counts as the bot "replying" in the call's chat.
_REPLY_METHODS = frozenset(
    {
        "sendmessage", "sendphoto", "senddocument", "sendvideo", "sendanimation", "sendaudio",
        "sendvoice", "sendsticker", "sendlocation", "sendmediagroup", "copymessage",
        "forwardmessage", "editmessagetext", "editmessagecaption", "editmessagereplymarkup",
        "editmessagemedia", "answercallbackquery",
    }
)
# Content keys copied by copyMessage.
_CONTENT_KEYS = (
    "text", "entities", "photo", "document", "video", "animation", "audio", "voice",
    "sticker", "location", "contact", "caption", "caption_entities", "link_preview_options",
)
_INLINE_BUTTON_ACTIONS = (
    "url", "callback_data", "web_app", "login_url", "switch_inline_query",
    "switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "copy_text",
    "callback_game", "pay",
)


# --------------------------------------------------------------------------- records


@dataclass
class UploadedFile:
    """A file part received in a multipart request."""

    field: str
    filename: str
    content_type: str
    data: bytes

    def __repr__(self) -> str:
        return f"UploadedFile({self.filename!r}, {self.content_type!r}, {len(self.data)} bytes)"


@dataclass
class ApiError:
    method: str
    chat_id: int | str | None
    error_code: int
    description: str
    parameters: dict[str, Any] | None
    kind: str  # "validation", "not_found", "auth", "conflict", "internal", "injected", "blocked", ...
    params: dict[str, Any]
    time: float
    simulated: bool = False  # True: produced on purpose by the test (in FakeTelegram.simulated_errors)

    def __str__(self) -> str:
        extra = f" parameters={self.parameters}" if self.parameters else ""
        return (
            f"{self.method}(chat_id={self.chat_id}) -> {self.error_code} {self.description!r}{extra}"
            f" [{self.kind}] params={_short(self.params)}"
        )


@dataclass
class ApiCall:
    method: str  # as sent by the client, e.g. "sendMessage"
    params: dict[str, Any]  # decoded: JSON values parsed, files as UploadedFile
    chat_id: int | str | None
    time: float  # time.monotonic() when the request arrived
    end_time: float | None = None
    ok: bool | None = None
    result: Any = None
    error: ApiError | None = None

    @property
    def name(self) -> str:
        return self.method.lower()


@dataclass
class ErrorRule:
    """Returned by FakeTelegram.inject_error; ``remaining`` < 0 means forever."""

    chat_id: int | None
    method: str | None
    error_code: int
    description: str
    retry_after: int | None = None
    migrate_to_chat_id: int | None = None
    remaining: int = 1
    hits: int = 0

    def matches(self, method_lower: str, chat_id: Any) -> bool:
        if self.remaining == 0:
            return False
        if self.method is not None and self.method.lower() != method_lower:
            return False
        if self.chat_id is not None and self.chat_id != chat_id:
            return False
        return True

    def parameters(self) -> dict[str, Any] | None:
        params: dict[str, Any] = {}
        if self.retry_after is not None:
            params["retry_after"] = self.retry_after
        if self.migrate_to_chat_id is not None:
            params["migrate_to_chat_id"] = self.migrate_to_chat_id
        return params or None


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str  # photo, document, video, animation, audio, voice, sticker
    data: bytes | None = None
    file_name: str | None = None
    mime_type: str | None = None
    file_size: int | None = None
    width: int | None = None
    height: int | None = None
    file_path: str | None = None
    photo_sizes: list[dict[str, Any]] | None = None  # for photos: the whole PhotoSize array


@dataclass
class UpdateRecord:
    update_id: int
    type: str
    chat_id: int | None
    enqueued_at: float
    fetched_at: float | None = None
    first_reply_at: float | None = None
    first_reply_method: str | None = None

    @property
    def latency(self) -> float | None:
        """Seconds from enqueue to the bot's first reply in that chat."""
        if self.first_reply_at is None:
            return None
        return self.first_reply_at - self.enqueued_at


@dataclass
class CallbackQueryRecord:
    id: str
    chat_id: int
    message_id: int
    user_id: int
    data: str | None
    created_at: float
    answer: dict[str, Any] | None = None
    answered_at: float | None = None
    future: asyncio.Future[dict[str, Any]] | None = field(default=None, repr=False)


class _ApiError(Exception):
    def __init__(
        self,
        error_code: int,
        description: str,
        parameters: dict[str, Any] | None = None,
        *,
        kind: str = "validation",
        simulated: bool = False,
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters
        self.kind = kind
        self.simulated = simulated


def _bad(description: str, **kw: Any) -> _ApiError:
    return _ApiError(400, f"Bad Request: {description}", **kw)


# --------------------------------------------------------------------------- helpers


def _short(value: Any, limit: int = 300) -> str:
    s = repr(value)
    return s if len(s) <= limit else s[: limit - 3] + "..."


def _utf16_len(s: str) -> int:
    return len(s) + sum(1 for ch in s if ord(ch) > 0xFFFF)


def _public(msg: dict[str, Any]) -> dict[str, Any]:
    """Shallow copy of a stored message without the fake's bookkeeping keys."""
    return {k: v for k, v in msg.items() if k not in META_KEYS}


def _describe(msg: dict[str, Any]) -> str:
    parts = [f"#{msg.get('message_id')}"]
    if msg.get("from", {}).get("is_bot"):
        parts.append("bot")
    for key in ("text", "caption"):
        if key in msg:
            text = msg[key]
            parts.append(f"{key}={text[:120] + ('...' if len(text) > 120 else '')!r}")
    for key in ("photo", "document", "video", "animation", "sticker", "voice", "audio", "location"):
        if key in msg:
            parts.append(f"[{key}]")
    kb = _inline_rows(msg)
    if kb:
        parts.append("buttons=" + " | ".join(" ".join(f"[{b.get('text')}]" for b in row) for row in kb))
    if msg.get("edit_count"):
        parts.append(f"edited x{msg['edit_count']}")
    if msg.get("deleted"):
        parts.append("DELETED")
    return " ".join(parts)


def _inline_rows(msg: dict[str, Any]) -> list[list[dict[str, Any]]]:
    markup = msg.get("reply_markup")
    if isinstance(markup, dict):
        rows = markup.get("inline_keyboard")
        if isinstance(rows, list):
            return rows
    return []


def _command_entities(text: str) -> list[dict[str, Any]]:
    m = re.match(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,64})?", text)
    if not m:
        return []
    return [{"type": "bot_command", "offset": 0, "length": len(m.group(0))}]


def _image_dimensions(data: bytes) -> tuple[int, int] | None:
    """Width/height of a PNG or JPEG, or None."""
    try:
        if data[:8] == b"\x89PNG\r\n\x1a\n":
            w, h = struct.unpack(">II", data[16:24])
            return w, h
        if data[:2] == b"\xff\xd8":
            i = 2
            while i + 9 < len(data):
                if data[i] != 0xFF:
                    i += 1
                    continue
                marker = data[i + 1]
                if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                    i += 2
                    continue
                seg_len = struct.unpack(">H", data[i + 2 : i + 4])[0]
                if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                    h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                    return w, h
                i += 2 + seg_len
    except (struct.error, IndexError):
        return None
    return None


def _guess_mime(filename: str | None, declared: str | None = None) -> str:
    if declared and declared != "application/octet-stream":
        return declared
    guessed = mimetypes.guess_type(filename or "")[0]
    return guessed or "application/octet-stream"


# --------------------------------------------------------------------------- text parsing


class _ParseError(Exception):
    pass


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8", "surrogatepass"))


_HTML_TAGS = {
    "a": "text_link", "b": "bold", "strong": "bold", "i": "italic", "em": "italic",
    "s": "strikethrough", "strike": "strikethrough", "del": "strikethrough",
    "u": "underline", "ins": "underline", "tg-spoiler": "spoiler", "span": "spoiler",
    "tg-emoji": "custom_emoji", "pre": "pre", "code": "code", "blockquote": "blockquote",
}
_HTML_SPACE = " \t\r\n\v\0"


def _decode_html_entity(text: str, pos: int) -> tuple[str, int] | None:
    """Port of tdlib's decode_html_entity; text[pos] == '&'."""
    n = len(text)
    end = pos + 1
    if end < n and text[end] == "#":
        end += 1
        value = 0
        if end < n and text[end] == "x":
            end += 1
            while end < n and text[end] in "0123456789abcdefABCDEF":
                value = value * 16 + int(text[end], 16)
                end += 1
                if value >= 0x10FFFF:
                    return None
        else:
            while end < n and text[end].isdigit() and text[end].isascii():
                value = value * 10 + int(text[end])
                end += 1
                if value >= 0x10FFFF:
                    return None
        if value == 0 or value >= 0x10FFFF or 0xD800 <= value <= 0xDFFF:
            return None
        ch = chr(value)
    else:
        while end < n and text[end].isascii() and text[end].isalpha():
            end += 1
        name = text[pos + 1 : end]
        ch = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}.get(name, "")
        if not ch:
            return None
    if end < n and text[end] == ";":
        end += 1
    return ch, end


def _parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Port of tdlib's parse_html: returns (plain text, entities) or raises _ParseError."""
    out: list[str] = []
    u16 = 0
    entities: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = []
    n = len(text)
    i = 0

    def at(k: int) -> str:
        return text[k] if k < n else "\0"

    while i < n:
        c = text[i]
        if c == "&":
            decoded = _decode_html_entity(text, i)
            if decoded is not None:
                ch, i = decoded
                out.append(ch)
                u16 += 2 if ord(ch) > 0xFFFF else 1
                continue
        if c != "<":
            out.append(c)
            u16 += 2 if ord(c) > 0xFFFF else 1
            i += 1
            continue
        begin = i
        i += 1
        if at(i) != "/":
            while at(i) not in _HTML_SPACE and at(i) != ">":
                i += 1
            if i >= n:
                raise _ParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
            tag = text[begin + 1 : i].lower()
            if tag not in _HTML_TAGS:
                raise _ParseError(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
            attrs: dict[str, str] = {}
            while at(i) != ">":
                while i < n and at(i) in _HTML_SPACE:
                    i += 1
                if at(i) == ">":
                    break
                if i >= n:
                    raise _ParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                attr_begin = i
                while at(i) not in _HTML_SPACE and at(i) not in "=>":
                    i += 1
                attr_name = text[attr_begin:i].lower()
                if not attr_name:
                    raise _ParseError(
                        f'Empty attribute name in the tag "{tag}" at byte offset {_byte_offset(text, begin)}'
                    )
                while i < n and at(i) in _HTML_SPACE:
                    i += 1
                if at(i) != "=":
                    if tag == "blockquote" and attr_name == "expandable":
                        attrs["expandable"] = "1"
                        continue
                    raise _ParseError(
                        f'Expected equal sign in declaration of an attribute of the tag "{tag}"'
                        f" at byte offset {_byte_offset(text, begin)}"
                    )
                i += 1
                while i < n and at(i) in _HTML_SPACE:
                    i += 1
                if i >= n:
                    raise _ParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                if at(i) not in "'\"":
                    token_end = i
                    while token_end < n and (text[token_end].isalnum() or text[token_end] in ".-"):
                        token_end += 1
                    value = text[i:token_end].lower()
                    i = token_end
                    if at(i) not in _HTML_SPACE and at(i) != ">":
                        raise _ParseError(f"Unexpected end of name token at byte offset {_byte_offset(text, i)}")
                else:
                    quote = text[i]
                    i += 1
                    buf: list[str] = []
                    while i < n and text[i] != quote:
                        if text[i] == "&":
                            decoded = _decode_html_entity(text, i)
                            if decoded is not None:
                                buf.append(decoded[0])
                                i = decoded[1]
                                continue
                        buf.append(text[i])
                        i += 1
                    if at(i) == quote:
                        i += 1
                    if i >= n:
                        raise _ParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
                    value = "".join(buf)
                attrs[attr_name] = value
            if tag == "span" and attrs.get("class") != "tg-spoiler":
                raise _ParseError(
                    f'Tag "span" must have class "tg-spoiler" at byte offset {_byte_offset(text, begin)}'
                )
            stack.append({"tag": tag, "attrs": attrs, "offset": u16})
            i += 1  # skip '>'
        else:
            if not stack:
                raise _ParseError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
            i += 1
            while at(i) not in _HTML_SPACE and at(i) != ">":
                i += 1
            end_tag = text[begin + 2 : i].lower()
            while i < n and at(i) in _HTML_SPACE:
                i += 1
            if at(i) != ">":
                raise _ParseError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
            top = stack.pop()
            tag = top["tag"]
            if end_tag and end_tag != tag:
                raise _ParseError(
                    f'Unmatched end tag at byte offset {_byte_offset(text, begin)}, expected "</{tag}>", '
                    f'found "</{end_tag}>"'
                )
            i += 1
            length = u16 - top["offset"]
            if length <= 0:
                continue
            etype = _HTML_TAGS[tag]
            entity: dict[str, Any] = {"type": etype, "offset": top["offset"], "length": length}
            attrs = top["attrs"]
            if tag == "a":
                href = attrs.get("href", "")
                if not href:
                    continue
                m = re.match(r"tg://user\?id=(\d+)$", href)
                if m:
                    entity = {
                        "type": "text_mention", "offset": top["offset"], "length": length,
                        "user": {"id": int(m.group(1)), "is_bot": False, "first_name": "User"},
                    }
                else:
                    entity["url"] = href
            elif tag == "tg-emoji":
                entity["custom_emoji_id"] = attrs.get("emoji-id", "")
            elif tag == "blockquote" and "expandable" in attrs:
                entity["type"] = "expandable_blockquote"
            elif tag == "code":
                lang = attrs.get("class", "")
                if lang.startswith("language-") and stack and stack[-1]["tag"] == "pre":
                    stack[-1]["language"] = lang[len("language-") :]
                    stack[-1]["code_offset"] = top["offset"]
                    stack[-1]["code_length"] = length
                    continue
            elif tag == "pre" and "language" in top:
                if top["code_offset"] == top["offset"] and top["code_length"] == length:
                    entity["language"] = top["language"]
                else:  # <pre>x<code class="language-y">z</code></pre>: keep both
                    entities.append(
                        {"type": "code", "offset": top["code_offset"], "length": top["code_length"]}
                    )
            entities.append(entity)
    if stack:
        raise _ParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1]["tag"]}"')
    return "".join(out), entities


_MDV2_RESERVED = "_*[]()~`>#+-=|{}.!"
_MDV2_TYPE_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline", "strikethrough": "Strikethrough",
    "spoiler": "Spoiler", "code": "Code", "pre": "Pre", "pre_code": "PreCode",
    "text_link": "TextUrl", "custom_emoji": "CustomEmoji",
}


def _parse_markdown_v2(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Port of tdlib's parse_markdown_v2 (blockquote markers are accepted and dropped)."""
    out: list[str] = []
    out_len = 0  # in code points, to slice `out` for text_link fallbacks
    u16 = 0
    entities: list[dict[str, Any]] = []
    stack: list[dict[str, Any]] = []
    n = len(text)

    def at(k: int) -> str:
        return text[k] if k < n else "\0"

    def add(ch: str) -> None:
        nonlocal u16, out_len
        out.append(ch)
        out_len += 1
        u16 += 2 if ord(ch) > 0xFFFF else 1

    i = 0
    while i < n:
        c = text[i]
        if c == "\\" and 0 < ord(at(i + 1)) <= 126:
            add(text[i + 1])
            i += 2
            continue
        reserved = _MDV2_RESERVED
        if stack and stack[-1]["type"] in ("code", "pre", "pre_code"):
            reserved = "`"
        if c not in reserved:
            add(c)
            i += 1
            continue
        if c == ">" and reserved is _MDV2_RESERVED and (i == 0 or text[i - 1] == "\n"):
            i += 1  # blockquote line marker
            continue
        if c == "*" and text.startswith("**>", i) and (i == 0 or text[i - 1] == "\n"):
            i += 3  # expandable blockquote marker
            continue
        is_end = False
        if stack:
            t = stack[-1]["type"]
            if t == "bold":
                is_end = c == "*"
            elif t == "italic":
                is_end = c == "_" and at(i + 1) != "_"
            elif t == "code":
                is_end = c == "`"
            elif t in ("pre", "pre_code"):
                is_end = c == "`" and at(i + 1) == "`" and at(i + 2) == "`"
            elif t in ("text_link", "custom_emoji"):
                is_end = c == "]"
            elif t == "underline":
                is_end = c == "_" and at(i + 1) == "_"
            elif t == "strikethrough":
                is_end = c == "~"
            elif t == "spoiler":
                is_end = c == "|" and at(i + 1) == "|"
        if not is_end:
            begin = i
            argument = ""
            if c == "_":
                if at(i + 1) == "_":
                    etype = "underline"
                    i += 1
                else:
                    etype = "italic"
            elif c == "*":
                etype = "bold"
            elif c == "~":
                etype = "strikethrough"
            elif c == "|" and at(i + 1) == "|":
                etype = "spoiler"
                i += 1
            elif c == "[":
                etype = "text_link"
            elif c == "`":
                if at(i + 1) == "`" and at(i + 2) == "`":
                    i += 3
                    etype = "pre"
                    lang_end = i
                    while at(lang_end) not in _HTML_SPACE and at(lang_end) != "`":
                        lang_end += 1
                    if i != lang_end and lang_end < n and text[lang_end] != "`":
                        etype = "pre_code"
                        argument = text[i:lang_end]
                        i = lang_end
                    if at(i) in "\r\n" and i < n:
                        if at(i + 1) in "\r\n" and at(i) != at(i + 1) and i + 1 < n:
                            i += 2
                        else:
                            i += 1
                    i -= 1
                else:
                    etype = "code"
            elif c == "!" and at(i + 1) == "[":
                etype = "custom_emoji"
                i += 1
            else:
                raise _ParseError(f"Character '{c}' is reserved and must be escaped with the preceding '\\'")
            stack.append(
                {"type": etype, "arg": argument, "offset": u16, "byte": _byte_offset(text, begin), "pos": out_len}
            )
            i += 1
            continue
        top = stack.pop()
        etype = top["type"]
        url = ""
        if etype in ("underline", "spoiler"):
            i += 1
        elif etype in ("pre", "pre_code"):
            i += 2
        elif etype in ("text_link", "custom_emoji"):
            if at(i + 1) != "(":
                url = "".join(out[top["pos"] :])
            else:
                i += 2
                url_begin = i
                buf: list[str] = []
                while i < n and text[i] != ")":
                    if text[i] == "\\" and 0 < ord(at(i + 1)) <= 126:
                        buf.append(text[i + 1])
                        i += 2
                        continue
                    buf.append(text[i])
                    i += 1
                if at(i) != ")":
                    raise _ParseError(f"Can't find end of a URL at byte offset {_byte_offset(text, url_begin)}")
                url = "".join(buf)
        i += 1
        length = u16 - top["offset"]
        if length <= 0:
            continue
        entity: dict[str, Any] = {"type": etype, "offset": top["offset"], "length": length}
        if etype == "pre_code":
            entity = {"type": "pre", "offset": top["offset"], "length": length, "language": top["arg"]}
        elif etype == "text_link":
            m = re.match(r"tg://user\?id=(\d+)$", url)
            if m:
                entity = {
                    "type": "text_mention", "offset": top["offset"], "length": length,
                    "user": {"id": int(m.group(1)), "is_bot": False, "first_name": "User"},
                }
            else:
                entity["url"] = url
        elif etype == "custom_emoji":
            entity["custom_emoji_id"] = url.rsplit("id=", 1)[-1]
        entities.append(entity)
    if stack:
        top = stack[-1]
        raise _ParseError(
            f"Can't find end of {_MDV2_TYPE_NAMES[top['type']]} entity at byte offset {top['byte']}"
        )
    return "".join(out), entities


def _parse_markdown_legacy(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Port of tdlib's parse_markdown (the legacy "Markdown" parse mode)."""
    out: list[str] = []
    u16 = 0
    entities: list[dict[str, Any]] = []
    n = len(text)

    def at(k: int) -> str:
        return text[k] if k < n else "\0"

    i = 0
    while i < n:
        c = text[i]
        if c == "\\" and at(i + 1) in "_*`[":
            out.append(text[i + 1])
            u16 += 1
            i += 2
            continue
        if c not in "_*`[":
            out.append(c)
            u16 += 2 if ord(c) > 0xFFFF else 1
            i += 1
            continue
        begin = i
        end_char = "]" if c == "[" else c
        is_pre = False
        language = ""
        i += 1
        if c == "`" and at(i) == "`" and at(i + 1) == "`":
            i += 2
            is_pre = True
            lang_end = i
            while at(lang_end) not in _HTML_SPACE and at(lang_end) != "`":
                lang_end += 1
            if i != lang_end and lang_end < n and text[lang_end] != "`":
                language = text[i:lang_end]
                i = lang_end
            if at(i) in "\r\n" and i < n:
                if at(i + 1) in "\r\n" and at(i) != at(i + 1) and i + 1 < n:
                    i += 2
                else:
                    i += 1
        start_u16 = u16
        start_pos = len(out)
        while i < n and (text[i] != end_char or (is_pre and not (at(i + 1) == "`" and at(i + 2) == "`"))):
            out.append(text[i])
            u16 += 2 if ord(text[i]) > 0xFFFF else 1
            i += 1
        if i >= n:
            raise _ParseError(f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}")
        length = u16 - start_u16
        if c == "[":
            if at(i + 1) == "(":
                i += 2
                url_chars: list[str] = []
                while i < n and text[i] != ")":
                    url_chars.append(text[i])
                    i += 1
                url = "".join(url_chars)
            else:
                url = "".join(out[start_pos:])
            if length > 0 and url:
                entities.append({"type": "text_link", "offset": start_u16, "length": length, "url": url})
        elif length > 0:
            etype = {"_": "italic", "*": "bold", "`": "pre" if is_pre else "code"}[c]
            entity: dict[str, Any] = {"type": etype, "offset": start_u16, "length": length}
            if language:
                entity["language"] = language
            entities.append(entity)
        if is_pre:
            i += 2
        i += 1
    return "".join(out), entities


_TRIM_CHARS = " \t\r\n\v\f"


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Strip leading/trailing whitespace like Telegram, fixing entity offsets."""
    stripped_left = text.lstrip(_TRIM_CHARS)
    shift = _utf16_len(text[: len(text) - len(stripped_left)])
    result = stripped_left.rstrip(_TRIM_CHARS)
    total = _utf16_len(result)
    fixed: list[dict[str, Any]] = []
    for e in entities:
        start = max(0, e["offset"] - shift)
        end = min(total, e["offset"] + e["length"] - shift)
        if end > start:
            e = dict(e)
            e["offset"], e["length"] = start, end - start
            fixed.append(e)
    fixed.sort(key=lambda e: (e["offset"], -e["length"]))
    return result, fixed


def parse_formatted_text(
    text: str, parse_mode: str | None, entities: list[dict[str, Any]] | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Telegram's text processing: returns (plain text, entities) after parse_mode
    (ignored when explicit ``entities`` are given) and whitespace trimming.
    Raises ``_ApiError`` 400 "can't parse entities: ..." on malformed markup."""
    if entities is not None:
        if not isinstance(entities, list):
            raise _bad("can't parse entities JSON object")
        return _trim(text, [dict(e) for e in entities if isinstance(e, dict)])
    if parse_mode:
        mode = parse_mode.lower()
        try:
            if mode == "html":
                plain, ents = _parse_html(text)
            elif mode == "markdownv2":
                plain, ents = _parse_markdown_v2(text)
            elif mode == "markdown":
                plain, ents = _parse_markdown_legacy(text)
            else:
                raise _bad("unsupported parse_mode")
        except _ParseError as e:
            raise _bad(f"can't parse entities: {e}") from None
        return _trim(plain, ents)
    return _trim(text, [])


# --------------------------------------------------------------------------- chat state


class _ChatState:
    __slots__ = (
        "id", "type", "chat", "messages", "bot_messages", "consumed", "waiters", "next_message_id",
        "blocked", "started", "migrated_to", "bot_status", "members", "reply_keyboard", "awaiting",
        "menu_button", "view", "username",
    )

    def __init__(self, chat: dict[str, Any]) -> None:
        self.id: int = chat["id"]
        self.type: str = chat["type"]
        self.chat = chat  # public Chat dict embedded in messages
        self.username: str | None = chat.get("username")
        self.messages: dict[int, dict[str, Any]] = {}
        self.bot_messages: list[dict[str, Any]] = []
        self.consumed = 0
        self.waiters: list[asyncio.Future[None]] = []
        self.next_message_id = 1
        self.blocked = False
        self.started = False
        self.migrated_to: int | None = None
        self.bot_status = "member" if self.type == "private" else "left"
        self.members: dict[int, str] = {}
        self.reply_keyboard: dict[str, Any] | None = None
        self.awaiting: list[UpdateRecord] = []
        self.menu_button: dict[str, Any] | None = None
        self.view: _ChatView | None = None

    def notify(self) -> None:
        waiters, self.waiters = self.waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def new_id(self) -> int:
        mid = self.next_message_id
        self.next_message_id += 1
        return mid


# --------------------------------------------------------------------------- server


class FakeTelegram:
    """Fake Telegram Bot API server; see the module docstring."""

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        bot_username: str = "minevoice_test_bot",
        bot_first_name: str = "MineVoice",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.token = token
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.bot_user: dict[str, Any] = {
            "id": self.bot_id, "is_bot": True, "first_name": bot_first_name, "username": bot_username,
        }
        self.host = host
        self.port = port
        self.base_url = ""

        self.calls: list[ApiCall] = []
        self._calls_by_method: dict[str, list[ApiCall]] = {}
        self._calls_by_chat: dict[Any, list[ApiCall]] = {}
        self.errors: list[ApiError] = []
        self.simulated_errors: list[ApiError] = []
        self._errors_by_chat: dict[Any, list[ApiError]] = {}
        self._rules: list[ErrorRule] = []

        self._chats: dict[int, _ChatState] = {}
        self._chats_by_username: dict[str, _ChatState] = {}
        self._users: dict[int, FakeUser] = {}
        self._known_users: dict[int, dict[str, Any]] = {}

        # updates
        self._update_ids = itertools.count(100_000_001)
        self._last_update_id = 100_000_000
        self._fetched_upto = 100_000_000
        self._queue: deque[tuple[int, dict[str, Any], UpdateRecord]] = deque()
        self._update_waiters: list[asyncio.Future[None]] = []
        self._allowed_updates: frozenset[str] | None = None  # None: Telegram's default set
        self.update_log: list[UpdateRecord] = []
        self.dropped_updates: list[dict[str, Any]] = []
        self._poller: object | None = None
        self._poller_conflicts: set[int] = set()
        self._polling_event: asyncio.Event | None = None

        # callbacks
        self.callback_queries: dict[str, CallbackQueryRecord] = {}
        self.callback_answers: dict[str, dict[str, Any]] = {}
        self._callback_ids = itertools.count(1)

        # files
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._file_counter = itertools.count(1)

        # settings
        self._commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.menu_buttons: dict[int | None, dict[str, Any]] = {}
        self.webhook: dict[str, Any] = {}
        self.my_descriptions: dict[str, str] = {}
        self.my_short_descriptions: dict[str, str] = {}
        self.my_names: dict[str, str] = {}

        self._media_group_ids = itertools.count(13_000_000_000_000_001)
        self._in_flight = 0
        self._last_activity = time.monotonic()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Callable[[dict[str, Any], ApiCall], Any]] = {
            name[len("_m_") :]: getattr(self, name) for name in dir(self) if name.startswith("_m_")
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        self._closing = False
        self._polling_event = asyncio.Event()
        app = web.Application(client_max_size=128 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://{self.host}:{self.port}"

    async def stop(self) -> None:
        self._closing = True
        self._wake_pollers()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    # ------------------------------------------------------------------ actors

    def user(
        self,
        user_id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
        started: bool = False,
    ) -> FakeUser:
        existing = self._users.get(user_id)
        if existing is not None:
            if started:
                existing._state.started = True
            return existing
        user = FakeUser(self, user_id, first_name, last_name=last_name, username=username,
                        language_code=language_code)
        chat = {"id": user_id, "type": "private", "first_name": first_name}
        if last_name:
            chat["last_name"] = last_name
        if username:
            chat["username"] = username
        state = self._register_chat(chat)
        state.started = started
        state.view = user
        user._state = state
        self._users[user_id] = user
        self._known_users[user_id] = user.user_dict
        return user

    def group(self, chat_id: int, title: str, *, supergroup: bool = False, username: str | None = None) -> FakeGroup:
        state = self._chats.get(chat_id)
        if state is not None and isinstance(state.view, FakeGroup):
            return state.view
        chat: dict[str, Any] = {"id": chat_id, "type": "supergroup" if supergroup else "group", "title": title}
        if username:
            chat["username"] = username
        state = self._register_chat(chat)
        group = FakeGroup(self, state)
        state.view = group
        return group

    def _register_chat(self, chat: dict[str, Any]) -> _ChatState:
        if chat["id"] in self._chats:
            raise ValueError(f"chat {chat['id']} already exists")
        state = _ChatState(chat)
        self._chats[state.id] = state
        if state.username:
            self._chats_by_username[state.username.lower()] = state
        return state

    # ------------------------------------------------------------------ errors / blocking

    def inject_error(
        self,
        *,
        chat_id: int | None = None,
        method: str | None = None,
        error_code: int,
        description: str,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        times: int = 1,
    ) -> ErrorRule:
        rule = ErrorRule(chat_id, method, error_code, description, retry_after, migrate_to_chat_id, times)
        self._rules.append(rule)
        return rule

    def clear_injected_errors(self) -> None:
        self._rules.clear()

    def block(self, chat_id: int, *, notify: bool = True) -> None:
        state = self._chat_state(chat_id)
        if state.blocked:
            return
        state.blocked = True
        if notify and state.type == "private":
            self._enqueue_my_chat_member(state, state.view.user_dict, "member", "kicked")  # type: ignore[union-attr]

    def unblock(self, chat_id: int, *, notify: bool = True) -> None:
        state = self._chat_state(chat_id)
        if not state.blocked:
            return
        state.blocked = False
        if notify and state.type == "private":
            self._enqueue_my_chat_member(state, state.view.user_dict, "kicked", "member")  # type: ignore[union-attr]

    def assert_no_errors(self) -> None:
        if self.errors:
            lines = "\n".join(f"  - {e}" for e in self.errors[:50])
            raise AssertionError(f"the bot caused {len(self.errors)} Bot API error(s):\n{lines}")

    # ------------------------------------------------------------------ queries for tests

    def calls_to(self, method: str | None = None, chat_id: int | None = None) -> list[ApiCall]:
        if method is None and chat_id is None:
            return list(self.calls)
        if method is None:
            return list(self._calls_by_chat.get(chat_id, ()))
        name = method.lower()
        if chat_id is None:
            return list(self._calls_by_method.get(name, ()))
        return [c for c in self._calls_by_chat.get(chat_id, ()) if c.name == name]

    def chat_messages(self, chat_id: int, *, include_deleted: bool = False) -> list[dict[str, Any]]:
        state = self._chat_state(chat_id)
        return [m for m in state.messages.values() if include_deleted or not m["deleted"]]

    def message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        state = self._chats.get(chat_id)
        return None if state is None else state.messages.get(message_id)

    def get_file(self, file_id: str) -> StoredFile:
        try:
            return self._files[file_id]
        except KeyError:
            raise KeyError(f"unknown file_id {file_id!r}") from None

    def file_content(self, file_id: str) -> bytes:
        data = self.get_file(file_id).data
        if data is None:
            raise AssertionError(f"file {file_id!r} has no content (sent by URL?)")
        return data

    def commands(self, scope: dict[str, Any] | str | None = None, language_code: str = "") -> list[dict[str, Any]] | None:
        if isinstance(scope, str):
            scope = {"type": scope}
        return self._commands.get((self._scope_key(scope), language_code or ""))

    def command_menu(self, chat_id: int, language_code: str = "", *, user_id: int | None = None) -> list[dict[str, Any]]:
        """The command list a client in ``chat_id`` with ``language_code`` would show."""
        state = self._chats.get(chat_id)
        is_private = state is None or state.type == "private"
        scopes: list[dict[str, Any]] = []
        if is_private:
            scopes += [{"type": "chat", "chat_id": chat_id}, {"type": "all_private_chats"}]
        else:
            if user_id is not None:
                scopes.append({"type": "chat_member", "chat_id": chat_id, "user_id": user_id})
                if state is not None and state.members.get(user_id) in ("administrator", "creator"):
                    scopes.append({"type": "chat_administrators", "chat_id": chat_id})
            scopes.append({"type": "chat", "chat_id": chat_id})
            if user_id is not None and state is not None and state.members.get(user_id) in ("administrator", "creator"):
                scopes.append({"type": "all_chat_administrators"})
            scopes.append({"type": "all_group_chats"})
        scopes.append({"type": "default"})
        for scope in scopes:
            key = self._scope_key(scope)
            for lang in ([language_code] if language_code else []) + [""]:
                cmds = self._commands.get((key, lang))
                if cmds is not None:
                    return cmds
        return []

    def pending_updates(self) -> int:
        return min(len(self._queue), max(0, self._last_update_id - self._fetched_upto))

    def reply_latencies(self, *, from_fetch: bool = False) -> list[float]:
        out = []
        for rec in self.update_log:
            if rec.first_reply_at is None:
                continue
            start = rec.fetched_at if from_fetch else rec.enqueued_at
            if start is not None:
                out.append(rec.first_reply_at - start)
        return out

    def unanswered_callbacks(self) -> list[CallbackQueryRecord]:
        return [r for r in self.callback_queries.values() if r.answer is None]

    async def wait_polling(self, timeout: float = 10.0) -> None:
        assert self._polling_event is not None, "FakeTelegram is not started"
        try:
            await asyncio.wait_for(self._polling_event.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                f"the bot did not call getUpdates within {timeout}s; calls so far: "
                f"{[c.method for c in self.calls[-10:]]}; errors: {[str(e) for e in self.errors[-5:]]}"
            ) from None

    async def wait_idle(self, quiet: float = 0.2, timeout: float = 10.0) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            now = time.monotonic()
            if self.pending_updates() == 0 and self._in_flight == 0 and now - self._last_activity >= quiet:
                return
            if loop.time() > deadline:
                raise AssertionError(
                    f"fake Telegram not idle after {timeout}s: pending_updates={self.pending_updates()}, "
                    f"in_flight={self._in_flight}, last activity {now - self._last_activity:.3f}s ago"
                )
            await asyncio.sleep(min(0.02, quiet / 4 or 0.005))

    # ------------------------------------------------------------------ updates

    def feed_update(self, update_type: str, payload: dict[str, Any], *, chat_id: int | None = None) -> int:
        """Queue an update; returns its update_id (0 if dropped by allowed_updates)."""
        allowed = self._allowed_updates
        if (allowed is None and update_type in _DEFAULT_EXCLUDED_UPDATES) or (
            allowed is not None and update_type not in allowed
        ):
            self.dropped_updates.append({update_type: payload})
            return 0
        update_id = next(self._update_ids)
        self._last_update_id = update_id
        now = time.monotonic()
        rec = UpdateRecord(update_id, update_type, chat_id, now)
        self.update_log.append(rec)
        self._queue.append((update_id, {"update_id": update_id, update_type: payload}, rec))
        self._last_activity = now
        self._wake_pollers()
        return update_id

    def _wake_pollers(self) -> None:
        waiters, self._update_waiters = self._update_waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    def _enqueue_message(self, state: _ChatState, msg: dict[str, Any], update_type: str = "message") -> None:
        self.feed_update(update_type, _public(msg), chat_id=state.id)

    def _enqueue_my_chat_member(
        self, state: _ChatState, by: dict[str, Any], old: str, new: str, *, admin: bool = False
    ) -> None:
        payload = {
            "chat": state.chat,
            "from": by,
            "date": int(time.time()),
            "old_chat_member": self._member_obj(self.bot_user, old),
            "new_chat_member": self._member_obj(self.bot_user, new),
        }
        self.feed_update("my_chat_member", payload, chat_id=state.id)

    def _add_user_message(
        self, state: _ChatState, user: dict[str, Any], content: dict[str, Any], *, enqueue: bool = True
    ) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "message_id": state.new_id(), "from": user, "chat": state.chat, "date": int(time.time()), **content,
            "deleted": False, "edit_count": 0, "sent_at": time.monotonic(),
        }
        state.messages[msg["message_id"]] = msg
        if state.type == "private":
            state.started = True
        elif user["id"] not in state.members:
            state.members[user["id"]] = "member"
        if enqueue:
            self._enqueue_message(state, msg)
        return msg

    # ------------------------------------------------------------------ callback queries

    def _make_callback(self, state: _ChatState, user: dict[str, Any], msg: dict[str, Any], data: str) -> str:
        qid = str(4_300_000_000_000_000_000 + next(self._callback_ids) * 7919)
        if msg.get("deleted"):
            message: dict[str, Any] = {"chat": state.chat, "message_id": msg["message_id"], "date": 0}
        else:
            message = _public(msg)
        rec = CallbackQueryRecord(
            qid, state.id, msg["message_id"], user["id"], data, time.monotonic(),
            future=asyncio.get_running_loop().create_future(),
        )
        self.callback_queries[qid] = rec
        payload = {
            "id": qid, "from": user, "message": message,
            "chat_instance": str((state.id * 6364136223846793005 + self.bot_id) % (2**63)),
            "data": data,
        }
        if state.type == "private":
            state.started = True
        self.feed_update("callback_query", payload, chat_id=state.id)
        return qid

    # ------------------------------------------------------------------ HTTP

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None or stored.data is None:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        return web.Response(body=stored.data, content_type=stored.mime_type or "application/octet-stream")

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        raw: dict[str, Any] = dict(request.query)
        typed: dict[str, Any] = {}
        files: dict[str, UploadedFile] = {}
        if request.body_exists:
            ctype = request.content_type
            if ctype == "application/json":
                body = await request.json()
                if isinstance(body, dict):
                    typed.update(body)
            elif ctype.startswith("multipart/"):
                reader = await request.multipart()
                async for part in reader:
                    if part is None or not hasattr(part, "name"):
                        continue
                    name = part.name or ""
                    if part.filename is not None:
                        data = bytes(await part.read(decode=False))
                        ctype_part = part.headers.get("Content-Type")
                        files[name] = UploadedFile(name, part.filename, _guess_mime(part.filename, ctype_part), data)
                    else:
                        raw[name] = await part.text()
            else:
                form = await request.post()
                for k, v in form.items():
                    raw[k] = v if isinstance(v, str) else str(v)
        params: dict[str, Any] = {k: self._decode_value(k, v, files) for k, v in raw.items()}
        params.update(typed)
        for name, f in files.items():
            if name not in params:  # a file sent directly as the parameter (not via attach://)
                params[name] = f
        # resolve attach:// inside InputMedia lists / objects
        for key in ("media",):
            value = params.get(key)
            if isinstance(value, list):
                params[key] = [self._resolve_attach(item, files) for item in value]
            elif isinstance(value, dict):
                params[key] = self._resolve_attach(value, files)
        return params

    @staticmethod
    def _resolve_attach(item: Any, files: dict[str, UploadedFile]) -> Any:
        if isinstance(item, dict):
            item = dict(item)
            for k in ("media", "thumbnail", "cover"):
                v = item.get(k)
                if isinstance(v, str) and v.startswith("attach://") and v[9:] in files:
                    item[k] = files[v[9:]]
        return item

    @staticmethod
    def _decode_value(key: str, value: str, files: dict[str, UploadedFile]) -> Any:
        if value.startswith("attach://") and value[9:] in files:
            return files[value[9:]]
        if key in _ID_PARAMS:
            try:
                return int(value)
            except ValueError:
                return value
        if key in _RAW_STRING_PARAMS:
            return value
        try:
            return json.loads(value)
        except ValueError:
            return value

    def _call_chat_id(self, name: str, params: dict[str, Any]) -> Any:
        chat_id = params.get("chat_id")
        if chat_id is None and name == "answercallbackquery":
            rec = self.callback_queries.get(str(params.get("callback_query_id")))
            return rec.chat_id if rec else None
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            state = self._chats_by_username.get(chat_id[1:].lower())
            return state.id if state else chat_id
        return chat_id

    async def _handle_api(self, request: web.Request) -> web.Response:
        started = time.monotonic()
        method = request.match_info["method"]
        name = method.lower()
        is_poll = name == "getupdates"
        if not is_poll:
            self._in_flight += 1
            self._last_activity = started
        call: ApiCall | None = None
        try:
            try:
                params = await self._read_params(request)
            except Exception as exc:  # noqa: BLE001
                params = {}
                call = self._record_call(method, params, None, started)
                return self._error_response(call, _bad(f"can't parse request: {exc}"))
            call = self._record_call(method, params, self._call_chat_id(name, params), started)
            if request.match_info["token"] != self.token:
                return self._error_response(call, _ApiError(401, "Unauthorized", kind="auth"))
            handler = self._methods.get(name)
            if handler is None:
                return self._error_response(call, _ApiError(404, "Not Found: method not found", kind="not_found"))
            try:
                for rule in self._rules:
                    if rule.matches(name, call.chat_id):
                        if rule.remaining > 0:
                            rule.remaining -= 1
                        rule.hits += 1
                        raise _ApiError(rule.error_code, rule.description, rule.parameters(),
                                        kind="injected", simulated=True)
                if is_poll:
                    result = await self._get_updates(params, call, request)
                else:
                    result = handler(params, call)
            except _ApiError as err:
                return self._error_response(call, err)
            except Exception:  # noqa: BLE001 - a bug in the fake: make it loud
                tb = traceback.format_exc()
                log.error("fake_telegram internal error in %s: %s", method, tb)
                return self._error_response(
                    call, _ApiError(500, f"Internal Server Error: fake_telegram bug: {tb.splitlines()[-1]}",
                                    kind="internal"),
                )
            call.ok = True
            call.result = result
            call.end_time = time.monotonic()
            if name in _REPLY_METHODS and isinstance(call.chat_id, int):
                self._mark_reply(call.chat_id, call)
            if is_poll and result:
                self._last_activity = call.end_time
            return web.Response(
                text=json.dumps({"ok": True, "result": result}, ensure_ascii=False),
                content_type="application/json",
            )
        finally:
            if not is_poll:
                self._in_flight -= 1
                self._last_activity = time.monotonic()

    def _record_call(self, method: str, params: dict[str, Any], chat_id: Any, started: float) -> ApiCall:
        call = ApiCall(method=method, params=params, chat_id=chat_id, time=started)
        self.calls.append(call)
        self._calls_by_method.setdefault(method.lower(), []).append(call)
        if chat_id is not None:
            self._calls_by_chat.setdefault(chat_id, []).append(call)
        return call

    def _error_response(self, call: ApiCall, err: _ApiError) -> web.Response:
        error = ApiError(call.method, call.chat_id, err.error_code, err.description, err.parameters, err.kind,
                         call.params, call.time, err.simulated)
        call.ok = False
        call.error = error
        call.end_time = time.monotonic()
        (self.simulated_errors if err.simulated else self.errors).append(error)
        if call.chat_id is not None:
            self._errors_by_chat.setdefault(call.chat_id, []).append(error)
        body: dict[str, Any] = {"ok": False, "error_code": err.error_code, "description": err.description}
        if err.parameters:
            body["parameters"] = err.parameters
        return web.Response(text=json.dumps(body, ensure_ascii=False), status=err.error_code,
                            content_type="application/json")

    def _mark_reply(self, chat_id: int, call: ApiCall) -> None:
        state = self._chats.get(chat_id)
        if state is None or not state.awaiting:
            return
        for rec in state.awaiting:
            rec.first_reply_at = call.time
            rec.first_reply_method = call.method
        state.awaiting = []

    # ------------------------------------------------------------------ getUpdates

    async def _get_updates(self, p: dict[str, Any], call: ApiCall, request: web.Request) -> list[dict[str, Any]]:
        if self._closing:  # don't let a still-running bot spin on [] while the fake shuts down
            raise _ApiError(502, "Bad Gateway", kind="closing", simulated=True)
        if self.webhook.get("url"):
            raise _ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                                 "use deleteWebhook to delete the webhook first", kind="conflict")
        offset = int(p.get("offset") or 0)
        limit = min(100, max(1, int(p.get("limit") or 100)))
        timeout = max(0.0, float(p.get("timeout") or 0))
        if "allowed_updates" in p and p["allowed_updates"] is not None:
            allowed = p["allowed_updates"]
            self._allowed_updates = frozenset(allowed) if allowed else None
        # confirm
        if offset > 0:
            while self._queue and self._queue[0][0] < offset:
                self._queue.popleft()
        elif offset < 0:
            while len(self._queue) > -offset:
                self._queue.popleft()
        # one poller at a time, like Telegram (the older request gets 409)
        if self._poller is not None:
            self._poller_conflicts.add(id(self._poller))
            self._wake_pollers()
        token = object()
        self._poller = token
        assert self._polling_event is not None
        self._polling_event.set()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                if id(token) in self._poller_conflicts:
                    self._poller_conflicts.discard(id(token))
                    transport = request.transport
                    gone = transport is None or transport.is_closing()
                    raise _ApiError(409, "Conflict: terminated by other getUpdates request; make sure that only "
                                         "one bot instance is running", kind="conflict", simulated=gone)
                if self._queue or self._closing:
                    break
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                fut = loop.create_future()
                self._update_waiters.append(fut)
                await asyncio.wait((fut,), timeout=remaining)
        finally:
            if self._poller is token:
                self._poller = None
        batch = list(itertools.islice(self._queue, limit))
        if not batch:
            return []
        now = time.monotonic()
        for update_id, _, rec in batch:
            if update_id > self._fetched_upto:
                rec.fetched_at = now
                if rec.chat_id is not None:
                    state = self._chats.get(rec.chat_id)
                    if state is not None:
                        state.awaiting.append(rec)
        self._fetched_upto = max(self._fetched_upto, batch[-1][0])
        return [u for _, u, _ in batch]

    # ------------------------------------------------------------------ common validation

    def _chat_state(self, chat_id: Any) -> _ChatState:
        state = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if state is None:
            raise KeyError(f"unknown chat {chat_id!r}")
        return state

    def _chat(self, p: dict[str, Any], *, write: bool = True, key: str = "chat_id") -> _ChatState:
        chat_id = p.get(key)
        if chat_id is None or chat_id == "":
            raise _bad("chat_id is empty" if key == "chat_id" else "chat not found")
        state: _ChatState | None = None
        if isinstance(chat_id, int):
            state = self._chats.get(chat_id)
        elif isinstance(chat_id, str) and chat_id.startswith("@"):
            state = self._chats_by_username.get(chat_id[1:].lower())
        if state is None:
            raise _bad("chat not found")
        if state.migrated_to is not None:
            raise _bad("group chat was upgraded to a supergroup chat",
                       parameters={"migrate_to_chat_id": state.migrated_to}, kind="migrated", simulated=True)
        if write:
            self._check_can_write(state)
        return state

    def _check_can_write(self, state: _ChatState) -> None:
        if state.type == "private":
            if state.blocked:
                raise _ApiError(403, "Forbidden: bot was blocked by the user", kind="blocked", simulated=True)
            if not state.started:
                raise _ApiError(403, "Forbidden: bot can't initiate conversation with a user", kind="validation")
        else:
            kind = "supergroup" if state.type == "supergroup" else "group"
            if state.bot_status == "kicked" or state.blocked:
                raise _ApiError(403, f"Forbidden: bot was kicked from the {kind} chat", kind="kicked", simulated=True)
            if state.bot_status == "left":
                raise _ApiError(403, f"Forbidden: bot is not a member of the {kind} chat", kind="kicked",
                                simulated=True)

    def _text(self, p: dict[str, Any], key: str = "text", entities_key: str = "entities") -> tuple[str, list[dict[str, Any]]]:
        raw = p.get(key)
        if raw is None:
            raw = ""
        if not isinstance(raw, str):
            raw = str(raw)
        ents = p.get(entities_key)
        return parse_formatted_text(raw, p.get("parse_mode"), ents if ents is not None else None)

    def _message_text(self, p: dict[str, Any]) -> dict[str, Any]:
        text, entities = self._text(p)
        if not text:
            raise _bad("message text is empty")
        if len(text) > MAX_TEXT_LENGTH:
            raise _bad("message is too long")
        content: dict[str, Any] = {"text": text}
        if entities:
            content["entities"] = entities
        lpo = p.get("link_preview_options")
        if isinstance(lpo, dict) and lpo:
            content["link_preview_options"] = lpo
        return content

    def _caption(self, p: dict[str, Any]) -> dict[str, Any]:
        if p.get("caption") in (None, ""):
            return {}
        text, entities = self._text(p, "caption", "caption_entities")
        if len(text) > MAX_CAPTION_LENGTH:
            raise _bad("message caption is too long")
        content: dict[str, Any] = {}
        if text:
            content["caption"] = text
            if entities:
                content["caption_entities"] = entities
        return content

    @staticmethod
    def _validate_markup(markup: Any) -> dict[str, Any] | None:
        if markup is None or markup == "":
            return None
        if not isinstance(markup, dict):
            raise _bad("can't parse reply keyboard markup JSON object")
        if "inline_keyboard" in markup:
            rows = markup["inline_keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
            for row in rows:
                for button in row:
                    if not isinstance(button, dict):
                        raise _bad("can't parse inline keyboard button: InlineKeyboardButton must be an Object")
                    text = button.get("text")
                    if not isinstance(text, str) or not text.strip():
                        raise _bad("BUTTON_TEXT_INVALID")
                    actions = [k for k in _INLINE_BUTTON_ACTIONS if k in button]
                    if not actions:
                        raise _bad("text buttons are unallowed in the inline keyboard")
                    if "callback_data" in button:
                        data = button["callback_data"]
                        if not isinstance(data, str) or not 1 <= len(data.encode("utf-8")) <= MAX_CALLBACK_DATA_BYTES:
                            raise _bad("BUTTON_DATA_INVALID")
                    if "url" in button:
                        url = button["url"]
                        if not isinstance(url, str) or not re.match(r"(https?|tg)://\S+$", url):
                            raise _bad(f"inline keyboard button URL '{url}' is invalid: Wrong HTTP URL")
            return markup
        if "keyboard" in markup:
            rows = markup["keyboard"]
            if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
                raise _bad("can't parse reply keyboard markup JSON object")
            for row in rows:
                for button in row:
                    text = button.get("text") if isinstance(button, dict) else button
                    if not isinstance(text, str) or not text:
                        raise _bad("can't parse keyboard button: Text must be non-empty")
            return markup
        if markup.get("remove_keyboard") or markup.get("force_reply"):
            return markup
        raise _bad("can't parse reply keyboard markup JSON object")

    @staticmethod
    def _apply_markup(state: _ChatState, msg: dict[str, Any], markup: dict[str, Any] | None) -> None:
        if markup is None:
            return
        if "inline_keyboard" in markup:
            msg["reply_markup"] = markup
        elif "keyboard" in markup:
            state.reply_keyboard = markup
        elif markup.get("remove_keyboard"):
            state.reply_keyboard = None

    def _reply_to(self, state: _ChatState, p: dict[str, Any]) -> dict[str, Any] | None:
        rp = p.get("reply_parameters")
        message_id = None
        allow_without = bool(p.get("allow_sending_without_reply"))
        if isinstance(rp, dict):
            message_id = rp.get("message_id")
            allow_without = bool(rp.get("allow_sending_without_reply", allow_without))
            if rp.get("chat_id") not in (None, state.id, state.username and f"@{state.username}"):
                other = self._chats.get(rp["chat_id"]) if isinstance(rp["chat_id"], int) else None
                target = other.messages.get(message_id) if other else None
                if target is None or target["deleted"]:
                    if allow_without:
                        return None
                    raise _bad("message to be replied not found")
                return {"external_reply": {"origin": {"type": "user", "sender_user": target["from"],
                                                      "date": target["date"]}, "chat": other.chat,
                                           "message_id": message_id}}
        elif p.get("reply_to_message_id") is not None:
            message_id = p.get("reply_to_message_id")
        if message_id is None:
            return None
        target = state.messages.get(message_id)
        if target is None or target["deleted"]:
            if allow_without:
                return None
            raise _bad("message to be replied not found")
        reply = _public(target)
        reply.pop("reply_to_message", None)
        return {"reply_to_message": reply}

    def _new_bot_message(
        self,
        state: _ChatState,
        content: dict[str, Any],
        p: dict[str, Any],
        *,
        markup: dict[str, Any] | None = None,
        reply: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        msg: dict[str, Any] = {
            "message_id": state.new_id(), "from": self.bot_user, "chat": state.chat, "date": int(time.time()),
        }
        if reply:
            msg.update(reply)
        if extra:
            msg.update(extra)
        msg.update(content)
        if p.get("protect_content"):
            msg["has_protected_content"] = True
        self._apply_markup(state, msg, markup)
        msg["deleted"] = False
        msg["edit_count"] = 0
        msg["sent_at"] = time.monotonic()
        state.messages[msg["message_id"]] = msg
        state.bot_messages.append(msg)
        state.notify()
        return msg

    # ------------------------------------------------------------------ files

    def _new_file(self, kind: str, *, data: bytes | None = None, file_name: str | None = None,
                  mime_type: str | None = None, file_id: str | None = None, width: int | None = None,
                  height: int | None = None) -> StoredFile:
        n = next(self._file_counter)
        digest = hashlib.sha1(f"{self.bot_id}:{kind}:{n}".encode()).digest()
        if file_id is None:
            tail = base64.urlsafe_b64encode(digest[:18]).decode()
            file_id = f"{_FILE_ID_PREFIX.get(kind, 'BQACAgIAAxkBAAI')}{n:06d}{tail}AAMeBA"
        unique = f"AQAD{n:05d}" + base64.urlsafe_b64encode(digest[18:]).decode().rstrip("=")
        directory, ext = _FILE_DIRS.get(kind, ("documents", ""))
        if kind == "document" and file_name and "." in file_name:
            ext = "." + file_name.rsplit(".", 1)[1]
        stored = StoredFile(
            file_id=file_id, file_unique_id=unique, kind=kind, data=data, file_name=file_name,
            mime_type=mime_type, file_size=len(data) if data is not None else 12_345 + n, width=width,
            height=height, file_path=f"{directory}/file_{n}{ext}",
        )
        self._files[file_id] = stored
        self._files_by_path[stored.file_path] = stored  # type: ignore[index]
        return stored

    def _new_photo(self, data: bytes | None, *, file_id: str | None = None,
                   dims: tuple[int, int] | None = None) -> list[dict[str, Any]]:
        """Register a photo; returns its PhotoSize array (90/320/800/1280/2560 px sides, like Telegram)."""
        if dims is None and data:
            dims = _image_dimensions(data)
        w, h = dims or (1280, 960)
        sizes: list[dict[str, Any]] = []
        targets = [90, 320, 800, 1280]
        chosen = [t for t in targets if t < max(w, h)] + [max(w, h)]
        chosen = sorted(set(min(t, 2560) for t in chosen))
        for idx, side in enumerate(chosen):
            scale = side / max(w, h)
            sw, sh = max(1, round(w * scale)), max(1, round(h * scale))
            is_largest = idx == len(chosen) - 1
            stored = self._new_file("photo", data=data, mime_type="image/jpeg", width=sw, height=sh,
                                    file_id=file_id if is_largest else None)
            if data is None:
                stored.file_size = max(1000, sw * sh // 6)
            size = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                    "file_size": stored.file_size, "width": sw, "height": sh}
            sizes.append(size)
        for size in sizes:
            self._files[size["file_id"]].photo_sizes = sizes
        return sizes

    def _input_file(self, kind: str, value: Any, p: dict[str, Any] | None = None) -> dict[str, Any] | list[dict[str, Any]]:
        """Resolve an InputFile/file_id/URL into the message field value for ``kind``."""
        if value is None or value == "":
            raise _bad(f"there is no {kind} in the request")
        if isinstance(value, UploadedFile):
            if kind == "photo":
                return self._new_photo(value.data)
            dims = _image_dimensions(value.data) if kind in ("document", "sticker") else None
            stored = self._new_file(kind, data=value.data, file_name=value.filename,
                                    mime_type=_guess_mime(value.filename, value.content_type))
            return self._file_object(kind, stored, dims)
        if not isinstance(value, str):
            raise _bad(f"wrong type of the {kind} parameter")
        if re.match(r"https?://", value):
            if kind == "photo":
                return self._new_photo(None)
            name = value.rsplit("/", 1)[-1].split("?", 1)[0] or "file"
            stored = self._new_file(kind, file_name=name, mime_type=_guess_mime(name))
            return self._file_object(kind, stored, None)
        stored_or_none = self._files.get(value)
        if stored_or_none is None:
            raise _bad("wrong file identifier/HTTP URL specified")
        stored = stored_or_none
        if kind == "photo":
            if stored.kind != "photo" or not stored.photo_sizes:
                raise _bad(f"can't use file of type {stored.kind.capitalize()} as Photo")
            return list(stored.photo_sizes)
        if stored.kind != kind and not (kind == "document" and stored.kind == "animation"):
            raise _bad(f"can't use file of type {stored.kind.capitalize()} as {kind.capitalize()}")
        return self._file_object(kind, stored, None)

    @staticmethod
    def _file_object(kind: str, stored: StoredFile, dims: tuple[int, int] | None) -> dict[str, Any]:
        obj: dict[str, Any] = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id}
        if stored.file_size is not None:
            obj["file_size"] = stored.file_size
        if kind in ("document", "video", "animation", "audio"):
            if stored.file_name:
                obj["file_name"] = stored.file_name
            if stored.mime_type:
                obj["mime_type"] = stored.mime_type
        if kind in ("video", "animation"):
            obj.update(width=stored.width or 1280, height=stored.height or 720, duration=5)
        elif kind in ("audio", "voice"):
            obj["duration"] = 3
            if kind == "voice":
                obj["mime_type"] = stored.mime_type or "audio/ogg"
        elif kind == "sticker":
            w, h = dims or (512, 512)
            obj.update(type="regular", width=w, height=h, is_animated=False, is_video=False)
        return obj

    # ------------------------------------------------------------------ message lookup for edits / deletes

    def _target_message(self, p: dict[str, Any], *, what: str) -> tuple[_ChatState, dict[str, Any]]:
        if p.get("inline_message_id"):
            raise _bad("MESSAGE_ID_INVALID")
        state = self._chat(p, write=False)
        if state.type == "private" and state.blocked:
            raise _ApiError(403, "Forbidden: bot was blocked by the user", kind="blocked", simulated=True)
        mid = p.get("message_id")
        msg = state.messages.get(mid) if isinstance(mid, int) else None
        if msg is None or msg["deleted"]:
            raise _bad(f"message to {what} not found")
        return state, msg

    def _edit_target(self, p: dict[str, Any]) -> tuple[_ChatState, dict[str, Any]]:
        state, msg = self._target_message(p, what="edit")
        if msg["from"].get("id") != self.bot_id:
            raise _bad("message can't be edited")
        return state, msg

    def _finish_edit(self, state: _ChatState, msg: dict[str, Any], changes: dict[str, Any],
                     removed: Iterable[str], p: dict[str, Any]) -> dict[str, Any] | bool:
        new_markup = self._validate_markup(p.get("reply_markup"))
        if new_markup is not None and "inline_keyboard" not in new_markup:
            raise _bad("inline keyboard expected")
        new = dict(msg)
        new.update(changes)
        for key in removed:
            new.pop(key, None)
        if new_markup is None:
            new.pop("reply_markup", None)
        else:
            new["reply_markup"] = new_markup
        ignored = {*META_KEYS, "edit_date", "link_preview_options"}
        if all(new.get(k) == msg.get(k) for k in set(new) | set(msg) if k not in ignored):
            raise _bad("message is not modified: specified new message content and reply markup are exactly "
                       "the same as a current content and reply markup of the message")
        for key in list(msg):
            if key not in new:
                del msg[key]
        msg.update(new)
        msg["edit_date"] = int(time.time())
        msg["edit_count"] += 1
        return _public(msg)

    # ------------------------------------------------------------------ Bot API methods

    def _m_getme(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        return {**self.bot_user, "can_join_groups": True, "can_read_all_group_messages": False,
                "supports_inline_queries": False, "can_connect_to_business": False, "has_main_web_app": False}

    def _m_getupdates(self, p: dict[str, Any], call: ApiCall) -> Any:  # dispatched specially (async)
        raise AssertionError("unreachable")

    def _m_logout(self, p: dict[str, Any], call: ApiCall) -> bool:
        return True

    def _m_close(self, p: dict[str, Any], call: ApiCall) -> bool:
        return True

    def _m_deletewebhook(self, p: dict[str, Any], call: ApiCall) -> bool:
        self.webhook = {}
        if p.get("drop_pending_updates"):
            self._queue.clear()
            self._fetched_upto = self._last_update_id
        return True

    def _m_setwebhook(self, p: dict[str, Any], call: ApiCall) -> bool:
        url = p.get("url") or ""
        if url and not url.startswith("https://"):
            raise _bad("bad webhook: An HTTPS URL must be provided for webhook")
        self.webhook = {k: v for k, v in p.items() if k != "certificate"} if url else {}
        if p.get("drop_pending_updates"):
            self._queue.clear()
            self._fetched_upto = self._last_update_id
        return True

    def _m_getwebhookinfo(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        info: dict[str, Any] = {"url": self.webhook.get("url", ""), "has_custom_certificate": False,
                                "pending_update_count": len(self._queue)}
        if self.webhook.get("allowed_updates"):
            info["allowed_updates"] = self.webhook["allowed_updates"]
        return info

    # --- commands

    @staticmethod
    def _scope_key(scope: Any) -> str:
        if not scope:
            return json.dumps({"type": "default"})
        if not isinstance(scope, dict) or "type" not in scope:
            raise _bad("can't parse BotCommandScope JSON object")
        return json.dumps({k: scope[k] for k in sorted(scope)}, sort_keys=True)

    @staticmethod
    def _lang(p: dict[str, Any]) -> str:
        lang = p.get("language_code") or ""
        if lang and not re.fullmatch(r"[a-z]{2}", lang):
            raise _bad("invalid language code specified")
        return lang

    def _m_setmycommands(self, p: dict[str, Any], call: ApiCall) -> bool:
        commands = p.get("commands")
        if not isinstance(commands, list):
            raise _bad("can't parse commands JSON object")
        if len(commands) > 100:
            raise _bad("too many commands specified")
        clean = []
        for cmd in commands:
            if not isinstance(cmd, dict):
                raise _bad("can't parse BotCommand JSON object")
            name = str(cmd.get("command", "")).lstrip("/").lower()
            if not re.fullmatch(r"[a-z0-9_]{1,32}", name):
                raise _bad("BOT_COMMAND_INVALID")
            desc = cmd.get("description")
            if not isinstance(desc, str) or not 1 <= len(desc.strip()) <= 256:
                raise _bad("command description must be non-empty")
            clean.append({"command": name, "description": desc})
        key = (self._scope_key(p.get("scope")), self._lang(p))
        if clean:
            self._commands[key] = clean
        else:
            self._commands.pop(key, None)
        return True

    def _m_getmycommands(self, p: dict[str, Any], call: ApiCall) -> list[dict[str, Any]]:
        return list(self._commands.get((self._scope_key(p.get("scope")), self._lang(p)), []))

    def _m_deletemycommands(self, p: dict[str, Any], call: ApiCall) -> bool:
        self._commands.pop((self._scope_key(p.get("scope")), self._lang(p)), None)
        return True

    def _m_setmydescription(self, p: dict[str, Any], call: ApiCall) -> bool:
        self.my_descriptions[self._lang(p)] = p.get("description") or ""
        return True

    def _m_getmydescription(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        return {"description": self.my_descriptions.get(self._lang(p), "")}

    def _m_setmyshortdescription(self, p: dict[str, Any], call: ApiCall) -> bool:
        self.my_short_descriptions[self._lang(p)] = p.get("short_description") or ""
        return True

    def _m_getmyshortdescription(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        return {"short_description": self.my_short_descriptions.get(self._lang(p), "")}

    def _m_setmyname(self, p: dict[str, Any], call: ApiCall) -> bool:
        self.my_names[self._lang(p)] = p.get("name") or ""
        return True

    def _m_getmyname(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        return {"name": self.my_names.get(self._lang(p)) or self.bot_user["first_name"]}

    def _m_setchatmenubutton(self, p: dict[str, Any], call: ApiCall) -> bool:
        button = p.get("menu_button") or {"type": "default"}
        if not isinstance(button, dict) or button.get("type") not in ("default", "commands", "web_app"):
            raise _bad("can't parse menu button JSON object")
        if p.get("chat_id") is not None:
            state = self._chat(p, write=False)
            if state.type != "private":
                raise _bad("menu button can be changed only in private chats")
            state.menu_button = button
            self.menu_buttons[state.id] = button
        else:
            self.menu_buttons[None] = button
        return True

    def _m_getchatmenubutton(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        if p.get("chat_id") is not None:
            state = self._chat(p, write=False)
            button = state.menu_button or self.menu_buttons.get(None)
        else:
            button = self.menu_buttons.get(None)
        if not button or button.get("type") == "default":
            return {"type": "commands"}
        return button

    # --- sending

    def _m_sendmessage(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        state = self._chat(p)
        content = self._message_text(p)
        markup = self._validate_markup(p.get("reply_markup"))
        reply = self._reply_to(state, p)
        return _public(self._new_bot_message(state, content, p, markup=markup, reply=reply))

    def _send_media(self, kind: str, p: dict[str, Any]) -> dict[str, Any]:
        state = self._chat(p)
        caption = self._caption(p) if kind not in ("sticker",) else {}
        markup = self._validate_markup(p.get("reply_markup"))
        reply = self._reply_to(state, p)
        media = self._input_file(kind, p.get(kind), p)
        content: dict[str, Any] = {kind: media, **caption}
        if kind == "animation":
            content["document"] = {k: v for k, v in media.items()  # type: ignore[union-attr]
                                   if k in ("file_id", "file_unique_id", "file_name", "mime_type", "file_size")}
        if p.get("has_spoiler"):
            content["has_media_spoiler"] = True
        return _public(self._new_bot_message(state, content, p, markup=markup, reply=reply))

    def _m_sendphoto(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        return self._send_media("photo", p)

    def _m_senddocument(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        return self._send_media("document", p)

    def _m_sendvideo(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        return self._send_media("video", p)

    def _m_sendanimation(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        return self._send_media("animation", p)

    def _m_sendaudio(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        return self._send_media("audio", p)

    def _m_sendvoice(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        return self._send_media("voice", p)

    def _m_sendsticker(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        return self._send_media("sticker", p)

    def _m_sendlocation(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        state = self._chat(p)
        try:
            lat, lon = float(p["latitude"]), float(p["longitude"])
        except (KeyError, TypeError, ValueError):
            raise _bad("wrong latitude or longitude specified") from None
        markup = self._validate_markup(p.get("reply_markup"))
        reply = self._reply_to(state, p)
        return _public(self._new_bot_message(state, {"location": {"latitude": lat, "longitude": lon}}, p,
                                             markup=markup, reply=reply))

    def _m_sendmediagroup(self, p: dict[str, Any], call: ApiCall) -> list[dict[str, Any]]:
        state = self._chat(p)
        media = p.get("media")
        if not isinstance(media, list):
            raise _bad("can't parse media JSON object")
        if not 2 <= len(media) <= 10:
            raise _bad("wrong number of media in the album: must be 2-10")
        types = []
        for item in media:
            if not isinstance(item, dict) or item.get("type") not in ("photo", "video", "document", "audio"):
                raise _bad("can't parse InputMedia JSON object")
            types.append(item["type"])
        if ("document" in types or "audio" in types) and len(set(types)) > 1:
            raise _bad(f"{'document' if 'document' in types else 'audio'} can't be mixed with other media types")
        reply = self._reply_to(state, p)
        prepared = []
        for item in media:
            caption = self._caption(item)
            prepared.append((item["type"], item.get("media"), caption, item))
        group_id = str(next(self._media_group_ids))
        results = []
        resolved = [(kind, self._input_file(kind, value), caption, item) for kind, value, caption, item in prepared]
        for kind, value, caption, item in resolved:
            content: dict[str, Any] = {"media_group_id": group_id, kind: value, **caption}
            if item.get("has_spoiler"):
                content["has_media_spoiler"] = True
            results.append(_public(self._new_bot_message(state, content, p, reply=reply)))
        return results

    def _find_source(self, p: dict[str, Any], what: str) -> dict[str, Any]:
        src_state = self._chat(p, write=False, key="from_chat_id")
        mid = p.get("message_id")
        src = src_state.messages.get(mid) if isinstance(mid, int) else None
        if src is None or src["deleted"]:
            raise _bad(f"message to {what} not found")
        return src

    def _m_copymessage(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        state = self._chat(p)
        src = self._find_source(p, "copy")
        content = {k: src[k] for k in _CONTENT_KEYS if k in src}
        if not content:
            raise _bad("message can't be copied")
        if "caption" in p:
            content.pop("caption", None)
            content.pop("caption_entities", None)
            content.update(self._caption(p))
        markup = self._validate_markup(p.get("reply_markup"))
        reply = self._reply_to(state, p)
        msg = self._new_bot_message(state, content, p, markup=markup, reply=reply)
        return {"message_id": msg["message_id"]}

    def _m_forwardmessage(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        state = self._chat(p)
        src = self._find_source(p, "forward")
        content = {k: src[k] for k in _CONTENT_KEYS if k in src}
        origin = {"type": "user", "sender_user": src["from"], "date": src["date"]}
        msg = self._new_bot_message(state, content, p, extra={"forward_origin": origin, "forward_date": src["date"]})
        return _public(msg)

    # --- editing

    def _m_editmessagetext(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any] | bool:
        state, msg = self._edit_target(p)
        if "text" not in msg:
            raise _bad("there is no text in the message to edit")
        content = self._message_text(p)
        removed = [k for k in ("entities", "link_preview_options") if k not in content]
        return self._finish_edit(state, msg, content, removed, p)

    def _m_editmessagecaption(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any] | bool:
        state, msg = self._edit_target(p)
        if not any(k in msg for k in ("photo", "document", "video", "animation", "audio", "voice")):
            raise _bad("there is no caption in the message to edit")
        content = self._caption(p)
        removed = [k for k in ("caption", "caption_entities") if k not in content]
        return self._finish_edit(state, msg, content, removed, p)

    def _m_editmessagereplymarkup(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any] | bool:
        state, msg = self._edit_target(p)
        return self._finish_edit(state, msg, {}, (), p)

    def _m_editmessagemedia(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any] | bool:
        state, msg = self._edit_target(p)
        media = p.get("media")
        if not isinstance(media, dict) or media.get("type") not in ("photo", "video", "document", "audio", "animation"):
            raise _bad("can't parse InputMedia JSON object")
        kinds = ("photo", "video", "document", "audio", "animation")
        if not any(k in msg for k in kinds):
            raise _bad("there is no media in the message to edit")
        kind = media["type"]
        value = self._input_file(kind, media.get("media"))
        content: dict[str, Any] = {kind: value, **self._caption(media)}
        removed = [k for k in (*kinds, "caption", "caption_entities") if k not in content]
        return self._finish_edit(state, msg, content, removed, p)

    # --- deleting

    def _can_delete(self, state: _ChatState, msg: dict[str, Any]) -> bool:
        if msg["from"].get("id") == self.bot_id:
            return True
        if state.type == "private":
            return True
        return state.bot_status in ("administrator", "creator")

    def _m_deletemessage(self, p: dict[str, Any], call: ApiCall) -> bool:
        state, msg = self._target_message(p, what="delete")
        if not self._can_delete(state, msg):
            raise _bad("message can't be deleted")
        msg["deleted"] = True
        state.notify()
        return True

    def _m_deletemessages(self, p: dict[str, Any], call: ApiCall) -> bool:
        state = self._chat(p, write=False)
        ids = p.get("message_ids")
        if not isinstance(ids, list) or not ids:
            raise _bad("message identifiers are not specified")
        if len(ids) > 100:
            raise _bad("too many message identifiers specified")
        deleted = 0
        for mid in ids:
            msg = state.messages.get(mid) if isinstance(mid, int) else None
            if msg is None or msg["deleted"] or not self._can_delete(state, msg):
                continue  # Telegram skips messages that can't be found/deleted
            msg["deleted"] = True
            deleted += 1
        if not deleted:
            raise _bad("message to delete not found")
        state.notify()
        return True

    # --- callbacks

    def _m_answercallbackquery(self, p: dict[str, Any], call: ApiCall) -> bool:
        qid = str(p.get("callback_query_id") or "")
        rec = self.callback_queries.get(qid)
        if rec is None or rec.answer is not None:
            raise _bad("query is too old and response timeout expired or query ID is invalid")
        text = p.get("text")
        if text is not None and len(str(text)) > 200:
            raise _bad("MESSAGE_TOO_LONG")
        rec.answer = dict(p)
        rec.answered_at = call.time
        self.callback_answers[qid] = rec.answer
        if rec.future is not None and not rec.future.done():
            rec.future.set_result(rec.answer)
        return True

    # --- chats

    def _m_getchat(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        state = self._chat(p, write=False)
        info = dict(state.chat)
        info.update(accent_color_id=0, max_reaction_count=11,
                    accepted_gift_types={"unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                                         "premium_subscription": False, "gifts_from_channels": False})
        return info

    def _member_obj(self, user: dict[str, Any], status: str) -> dict[str, Any]:
        obj: dict[str, Any] = {"status": status, "user": user}
        if status == "administrator":
            obj.update(
                can_be_edited=False, is_anonymous=False, can_manage_chat=True, can_delete_messages=True,
                can_manage_video_chats=False, can_restrict_members=True, can_promote_members=False,
                can_change_info=False, can_invite_users=True, can_post_stories=False, can_edit_stories=False,
                can_delete_stories=False, can_send_welcome_messages=False,
            )
        elif status == "creator":
            obj["is_anonymous"] = False
        elif status == "kicked":
            obj["until_date"] = 0
        elif status == "restricted":
            obj["status"] = "member"
        return obj

    def _m_getchatmember(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        state = self._chat(p, write=False)
        user_id = p.get("user_id")
        if not isinstance(user_id, int):
            raise _bad("invalid user_id specified")
        if user_id == self.bot_id:
            status = state.bot_status
            if state.type == "private":
                status = "kicked" if state.blocked else "member"
            return self._member_obj(self.bot_user, status)
        user = self._known_users.get(user_id)
        if user is None:
            raise _bad("user not found")
        if state.type == "private":
            if user_id != state.id:
                raise _bad("user not found")
            return self._member_obj(user, "member")
        return self._member_obj(user, state.members.get(user_id, "left"))

    def _m_leavechat(self, p: dict[str, Any], call: ApiCall) -> bool:
        state = self._chat(p, write=False)
        if state.type == "private":
            raise _bad("chat member status can't be changed in private chats")
        if state.bot_status in ("left", "kicked"):
            raise _ApiError(403, f"Forbidden: bot is not a member of the {state.type} chat", kind="kicked",
                            simulated=True)
        old = state.bot_status
        state.bot_status = "left"
        self._enqueue_my_chat_member(state, self.bot_user, old, "left")
        return True

    def _m_sendchataction(self, p: dict[str, Any], call: ApiCall) -> bool:
        self._chat(p)
        if p.get("action") not in _CHAT_ACTIONS:
            raise _bad("wrong parameter action in request")
        return True

    def _m_getfile(self, p: dict[str, Any], call: ApiCall) -> dict[str, Any]:
        stored = self._files.get(str(p.get("file_id") or ""))
        if stored is None:
            raise _bad("invalid file_id")
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id,
                "file_size": stored.file_size, "file_path": stored.file_path}


# --------------------------------------------------------------------------- chat views


class _ChatView:
    """Read helpers shared by FakeUser (private chat) and FakeGroup."""

    _tg: FakeTelegram
    _state: _ChatState

    @property
    def chat_id(self) -> int:
        return self._state.id

    @property
    def fake(self) -> FakeTelegram:
        return self._tg

    def bot_messages(self) -> list[dict[str, Any]]:
        return [m for m in self._state.bot_messages if not m["deleted"]]

    def history(self) -> list[dict[str, Any]]:
        return [m for m in self._state.messages.values() if not m["deleted"]]

    def last_bot_message(self) -> dict[str, Any] | None:
        for msg in reversed(self._state.bot_messages):
            if not msg["deleted"]:
                return msg
        return None

    def errors(self) -> list[ApiError]:
        """Bot-caused API errors in this chat."""
        return [e for e in self._tg._errors_by_chat.get(self._state.id, ()) if not e.simulated]

    def skip_pending(self) -> int:
        """Mark every bot message sent so far as consumed by next_message; returns how many."""
        n = len(self._state.bot_messages) - self._state.consumed
        self._state.consumed = len(self._state.bot_messages)
        return n

    def _timeout_report(self, what: str) -> str:
        tg = self._tg
        last = [_describe(m) for m in self._state.bot_messages[-3:]]
        errs = [str(e) for e in tg._errors_by_chat.get(self._state.id, [])[-5:]]
        polling = "yes" if tg._poller is not None else "no"
        return (
            f"{what} in chat {self._state.id}.\n"
            f"  last bot messages: {last or 'none'}\n"
            f"  API errors in this chat: {errs or 'none'}\n"
            f"  pending updates: {tg.pending_updates()}, bot long-polling now: {polling}, "
            f"last calls: {[c.method for c in tg.calls[-8:]]}"
        )

    async def next_message(self, timeout: float = 10.0, *, include_deleted: bool = True) -> dict[str, Any]:
        state = self._state
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            while state.consumed < len(state.bot_messages):
                msg = state.bot_messages[state.consumed]
                state.consumed += 1
                if include_deleted or not msg["deleted"]:
                    return msg
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(self._timeout_report(f"no new bot message within {timeout}s"))
            fut = loop.create_future()
            state.waiters.append(fut)
            await asyncio.wait((fut,), timeout=remaining)

    async def collect(self, quiet: float = 0.3, timeout: float = 10.0) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        out: list[dict[str, Any]] = []
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return out
            try:
                out.append(await self.next_message(timeout=min(quiet, remaining)))
            except AssertionError:
                return out

    def _keyboard_message(self, message: dict[str, Any] | None) -> dict[str, Any] | None:
        if message is not None:
            return message
        for msg in reversed(self._state.bot_messages):
            if not msg["deleted"] and _inline_rows(msg):
                return msg
        return None

    def keyboard(self, message: dict[str, Any] | None = None) -> list[list[str]]:
        msg = self._keyboard_message(message)
        if msg is None:
            return []
        return [[b.get("text", "") for b in row] for row in _inline_rows(msg)]

    def buttons(self, message: dict[str, Any] | None = None) -> list[str]:
        return [text for row in self.keyboard(message) for text in row]

    def reply_buttons(self) -> list[str]:
        kb = self._state.reply_keyboard
        if not kb:
            return []
        return [b.get("text", "") if isinstance(b, dict) else str(b) for row in kb["keyboard"] for b in row]

    def _visible_buttons_report(self) -> str:
        lines = []
        for msg in reversed(self._state.bot_messages):
            if not msg["deleted"] and _inline_rows(msg):
                lines.append("  " + _describe(msg))
                if len(lines) >= 5:
                    break
        if self._state.reply_keyboard:
            lines.append(f"  reply keyboard: {self.reply_buttons()}")
        return "\n".join(lines) or "  (no bot message with buttons)"

    async def _press(
        self, user: FakeUser, button: str | Callable[[dict[str, Any]], bool], message: dict[str, Any] | None
    ) -> str:
        state = self._state
        if message is not None:
            if message.get("deleted"):
                raise AssertionError(f"cannot press {button!r}: message #{message.get('message_id')} was deleted")
            candidates = [message]
        else:
            candidates = [m for m in reversed(state.bot_messages) if not m["deleted"] and _inline_rows(m)]
        found: tuple[dict[str, Any], dict[str, Any]] | None = None
        if callable(button):
            matchers: list[Callable[[dict[str, Any]], bool]] = [button]
        else:
            matchers = [lambda b: b.get("text") == button, lambda b: button in str(b.get("text", ""))]
        for matcher in matchers:
            for msg in candidates:
                for row in _inline_rows(msg):
                    for b in row:
                        if matcher(b):
                            found = (msg, b)
                            break
                    if found:
                        break
                if found:
                    break
            if found:
                break
        if found is not None:
            msg, b = found
            if "callback_data" not in b:
                kind = next((k for k in _INLINE_BUTTON_ACTIONS if k in b), "?")
                raise AssertionError(
                    f"button {b.get('text')!r} in message #{msg['message_id']} is a {kind} button "
                    f"({kind}={b.get(kind)!r}); it cannot be pressed"
                )
            qid = self._tg._make_callback(state, user.user_dict, msg, b["callback_data"])
            await asyncio.sleep(0)
            return qid
        if message is None and state.reply_keyboard and not callable(button):
            rows = state.reply_keyboard.get("keyboard", [])
            flat = [b if isinstance(b, dict) else {"text": str(b)} for row in rows for b in row]
            hit = next((b for b in flat if b.get("text") == button), None) or next(
                (b for b in flat if button in b.get("text", "")), None
            )
            if hit is not None:
                if hit.get("request_contact"):
                    await self._send_as(user, {"contact": {"phone_number": "+77010000000",
                                                           "first_name": user.first_name, "user_id": user.id}})
                elif hit.get("request_location"):
                    await self._send_as(user, {"location": {"latitude": 47.8, "longitude": 67.7}})
                else:
                    await self._send_as(user, {"text": hit["text"]})
                return ""
        raise AssertionError(
            f"no button matching {button!r} in chat {state.id}. Visible buttons:\n{self._visible_buttons_report()}"
        )

    async def _press_data(self, user: FakeUser, callback_data: str, message: dict[str, Any]) -> str:
        qid = self._tg._make_callback(self._state, user.user_dict, message, callback_data)
        await asyncio.sleep(0)
        return qid

    async def _send_as(self, user: FakeUser, content: dict[str, Any]) -> dict[str, Any]:
        if "text" in content and "entities" not in content:
            ents = _command_entities(content["text"])
            if ents:
                content = {**content, "entities": ents}
        msg = self._tg._add_user_message(self._state, user.user_dict, content)
        await asyncio.sleep(0)
        return msg

    async def callback_answer(self, query_id: str, timeout: float = 5.0) -> dict[str, Any]:
        rec = self._tg.callback_queries.get(query_id)
        if rec is None:
            raise AssertionError(f"unknown callback query id {query_id!r}")
        if rec.answer is not None:
            return rec.answer
        assert rec.future is not None
        try:
            return await asyncio.wait_for(asyncio.shield(rec.future), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(
                self._timeout_report(f"the bot never answered callback query {query_id} (data={rec.data!r}) "
                                     f"within {timeout}s")
            ) from None


class FakeUser(_ChatView):
    """A Telegram user and their private chat with the bot (chat id == user id)."""

    def __init__(
        self,
        tg: FakeTelegram,
        user_id: int,
        first_name: str,
        *,
        last_name: str | None = None,
        username: str | None = None,
        language_code: str | None = None,
    ) -> None:
        self._tg = tg
        self.id = user_id
        self.first_name = first_name
        self.last_name = last_name
        self.username = username
        self.language_code = language_code
        self.user_dict: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if last_name:
            self.user_dict["last_name"] = last_name
        if username:
            self.user_dict["username"] = username
        if language_code:
            self.user_dict["language_code"] = language_code
        self._state: _ChatState  # set by FakeTelegram.user()

    def __repr__(self) -> str:
        return f"FakeUser({self.id}, {self.first_name!r})"

    # --- sending

    async def send(self, text: str, *, entities: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """A text message; `entities` as Telegram sends them (a formatted message the user typed)."""
        return await self._send_as(self, {"text": text, **({"entities": entities} if entities else {})})

    async def send_photo(
        self,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        file_id: str | None = None,
        content: bytes | None = None,
    ) -> dict[str, Any]:
        return await self._send_as(self, self._photo_content(caption, media_group_id, file_id, content))

    def _photo_content(self, caption: str | None, media_group_id: str | None, file_id: str | None,
                       content: bytes | None) -> dict[str, Any]:
        known = self._tg._files.get(file_id) if file_id is not None else None
        if known is not None and known.photo_sizes:
            sizes = known.photo_sizes
        elif content is not None:
            sizes = self._tg._new_photo(content, file_id=file_id)
        else:  # a camera photo: TINY_JPEG bytes, but realistic 1280x960 sizes
            sizes = self._tg._new_photo(TINY_JPEG, file_id=file_id, dims=(1280, 960))
        result: dict[str, Any] = {"photo": list(sizes)}
        if media_group_id:
            result["media_group_id"] = media_group_id
        if caption:
            result["caption"] = caption
        return result

    async def send_album(self, count: int, *, caption: str | None = None) -> list[dict[str, Any]]:
        """``count`` photos sharing a media_group_id, queued back-to-back as separate updates."""
        group_id = str(next(self._tg._media_group_ids))
        msgs = [
            self._tg._add_user_message(
                self._state, self.user_dict,
                self._photo_content(caption if i == 0 else None, group_id, None, None),
            )
            for i in range(count)
        ]
        await asyncio.sleep(0)
        return msgs

    async def send_document(
        self,
        *,
        file_name: str = "IMG_0001.jpg",
        mime_type: str = "image/jpeg",
        content: bytes | None = None,
        caption: str | None = None,
    ) -> dict[str, Any]:
        data = content if content is not None else (TINY_JPEG if mime_type.startswith("image/") else b"fake-doc")
        stored = self._tg._new_file("document", data=data, file_name=file_name, mime_type=mime_type)
        doc = {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_name": file_name,
               "mime_type": mime_type, "file_size": stored.file_size}
        payload: dict[str, Any] = {"document": doc}
        if caption:
            payload["caption"] = caption
        return await self._send_as(self, payload)

    def _media(self, kind: str, mime: str | None = None) -> dict[str, Any]:
        stored = self._tg._new_file(kind, data=b"\x00" * 2048, mime_type=mime,
                                    file_name=f"{kind}.mp4" if kind in ("video", "animation") else None)
        return self._tg._file_object(kind, stored, None)

    async def send_sticker(self) -> dict[str, Any]:
        sticker = self._media("sticker")
        sticker["emoji"] = "👍"
        return await self._send_as(self, {"sticker": sticker})

    async def send_voice(self) -> dict[str, Any]:
        return await self._send_as(self, {"voice": self._media("voice", "audio/ogg")})

    async def send_video(self) -> dict[str, Any]:
        return await self._send_as(self, {"video": self._media("video", "video/mp4")})

    async def send_animation(self) -> dict[str, Any]:
        anim = self._media("animation", "video/mp4")
        doc = {k: anim[k] for k in ("file_id", "file_unique_id", "file_name", "mime_type", "file_size") if k in anim}
        return await self._send_as(self, {"animation": anim, "document": doc})

    async def send_location(self, lat: float, lon: float) -> dict[str, Any]:
        return await self._send_as(self, {"location": {"latitude": lat, "longitude": lon}})

    async def send_contact(self, phone_number: str = "+77010000000", first_name: str | None = None) -> dict[str, Any]:
        return await self._send_as(
            self, {"contact": {"phone_number": phone_number, "first_name": first_name or self.first_name,
                               "user_id": self.id}}
        )

    async def edit(self, message: dict[str, Any], new_text: str) -> dict[str, Any]:
        if message.get("from", {}).get("id") != self.id:
            raise AssertionError("a user can only edit their own messages")
        state = self._tg._chats[message["chat"]["id"]]
        msg = state.messages[message["message_id"]]
        key = "text" if "text" in msg else "caption"
        msg[key] = new_text
        ents = _command_entities(new_text) if key == "text" else []
        ek = "entities" if key == "text" else "caption_entities"
        if ents:
            msg[ek] = ents
        else:
            msg.pop(ek, None)
        msg["edit_date"] = int(time.time())
        msg["edit_count"] += 1
        self._tg._enqueue_message(state, msg, "edited_message")
        await asyncio.sleep(0)
        return msg

    # --- buttons

    async def press(self, button: str | Callable[[dict[str, Any]], bool], *,
                    message: dict[str, Any] | None = None) -> str:
        return await self._press(self, button, message)

    async def press_data(self, callback_data: str, *, message: dict[str, Any]) -> str:
        return await self._press_data(self, callback_data, message)

    # --- blocking

    def block_bot(self) -> None:
        self._tg.block(self.id)

    def unblock_bot(self) -> None:
        self._tg.unblock(self.id)


class FakeGroup(_ChatView):
    """A group or supergroup chat."""

    def __init__(self, tg: FakeTelegram, state: _ChatState) -> None:
        self._tg = tg
        self._state = state

    def __repr__(self) -> str:
        return f"FakeGroup({self.id}, {self.title!r}, {self.type})"

    @property
    def id(self) -> int:
        return self._state.id

    @property
    def title(self) -> str:
        return self._state.chat.get("title", "")

    @property
    def type(self) -> str:
        return self._state.type

    @property
    def chat(self) -> dict[str, Any]:
        return self._state.chat

    @property
    def bot_status(self) -> str:
        return self._state.bot_status

    def _check_bot_member(self) -> None:
        if self._state.bot_status not in ("member", "administrator", "creator"):
            raise AssertionError(f"the bot is not a member of {self!r}; call `await group.add_bot(by=user)` first")
        if self._state.migrated_to is not None:
            raise AssertionError(f"{self!r} was migrated to {self._state.migrated_to}")

    async def send(self, user: FakeUser, text: str) -> dict[str, Any]:
        self._check_bot_member()
        return await self._send_as(user, {"text": text})

    async def send_photo(self, user: FakeUser, *, caption: str | None = None, file_id: str | None = None,
                         content: bytes | None = None) -> dict[str, Any]:
        self._check_bot_member()
        return await self._send_as(user, user._photo_content(caption, None, file_id, content))

    async def add_member(self, user: FakeUser, by: FakeUser | None = None, *, status: str = "member") -> None:
        self._state.members[user.id] = status
        if self._state.bot_status in ("member", "administrator"):
            self._tg._add_user_message(self._state, (by or user).user_dict, {"new_chat_members": [user.user_dict]})
            await asyncio.sleep(0)

    async def add_bot(self, by: FakeUser, *, admin: bool = False) -> None:
        state = self._state
        old = state.bot_status
        state.bot_status = "administrator" if admin else "member"
        state.members.setdefault(by.id, "creator")
        self._tg._enqueue_my_chat_member(state, by.user_dict, old, state.bot_status)
        self._tg._add_user_message(state, by.user_dict, {"new_chat_members": [self._tg.bot_user]})
        await asyncio.sleep(0)

    async def remove_bot(self, by: FakeUser) -> None:
        state = self._state
        old = state.bot_status
        state.bot_status = "kicked"
        self._tg._add_user_message(state, by.user_dict, {"left_chat_member": self._tg.bot_user}, enqueue=False)
        self._tg._enqueue_my_chat_member(state, by.user_dict, old, "kicked")
        await asyncio.sleep(0)

    async def migrate_to_supergroup(self, new_id: int, *, by: FakeUser | None = None) -> FakeGroup:
        state = self._state
        if state.type != "group":
            raise AssertionError("only basic groups can be migrated")
        actor = by.user_dict if by else next(
            (self._tg._known_users[uid] for uid, st in state.members.items() if st == "creator"
             and uid in self._tg._known_users), self._tg.bot_user)
        new = self._tg.group(new_id, self.title, supergroup=True)
        new._state.bot_status = state.bot_status
        new._state.members = dict(state.members)
        self._tg._add_user_message(state, actor, {"migrate_to_chat_id": new_id})
        state.migrated_to = new_id
        self._tg._add_user_message(new._state, actor, {"migrate_from_chat_id": state.id})
        await asyncio.sleep(0)
        return new

    async def press(self, user: FakeUser, button: str | Callable[[dict[str, Any]], bool], *,
                    message: dict[str, Any] | None = None) -> str:
        return await self._press(user, button, message)

    async def press_data(self, user: FakeUser, callback_data: str, *, message: dict[str, Any]) -> str:
        return await self._press_data(user, callback_data, message)
