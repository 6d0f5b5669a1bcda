"""Building blocks of tests/test_fuzz.py: Telegram updates as Telegram sends them (raw JSON), the
hypothesis strategies that generate and mutate them, and the checks every call the bot makes
must pass (what Telegram itself would refuse)."""

from __future__ import annotations

import html
import itertools
import re
import time
from collections.abc import Iterable
from html.parser import HTMLParser
from typing import Any

from aiogram import Bot
from aiogram.client.default import Default
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import Chat, InlineKeyboardMarkup, Message, ReplyKeyboardMarkup, User
from hypothesis import strategies as st

from tests.mocked_bot import AutoSession, MockedBot

BOT_ID = 123456789
BOT_USERNAME = "minevoice_bot"

# Every command the bot knows (handlers/*.py); generated "unknown" commands avoid these.
KNOWN_COMMANDS = ("start", "help", "privacy", "report", "status", "language", "profile", "stop", "subscribe",
                  "cancel", "survey", "results", "announce", "campaigns", "invite", "join", "me", "roles", "sites",
                  "cases", "digest", "export", "groupcode", "bind")
# The prefixes of every CallbackData in bot/ and handlers/, with the number of fields each packs.
CALLBACK_FIELDS = {"nav": 1, "rp": 2, "er": 2, "ck": 2, "rw": 2, "lang": 1, "pf": 2, "ann": 2, "cmp": 2, "ack": 1,
                   "unsub": 0, "sv": 4, "ss": 2, "res": 2, "inv": 1, "role": 1, "site": 2, "case": 3, "cases": 2,
                   "exp": 1}

# Telegram's limits (https://core.telegram.org/bots/api).
TEXT_MAX = 4096
CAPTION_MAX = 1024
CALLBACK_DATA_MAX_BYTES = 64
CALLBACK_ANSWER_MAX = 200


# --- the Bot API side ------------------------------------------------------------------------------

EDIT_METHODS = {"editMessageText", "editMessageCaption", "editMessageReplyMarkup"}


def _markup_key(markup: Any) -> Any:
    return markup.model_dump(mode="json", exclude_none=True) if isinstance(markup, InlineKeyboardMarkup) else None


class TelegramLikeSession(AutoSession):
    """tests/mocked_bot.py's AutoSession, answering more like Telegram: it keeps the messages it
    "sent" (`messages`, by chat and message id, as last edited) so that their buttons can be
    pressed, answers sendMediaGroup with messages, and refuses an edit that changes nothing with
    "message is not modified", as Telegram does when a button is tapped twice."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: dict[tuple[int, int], Message] = {}

    async def make_request(self, bot: Bot, method: Any, timeout: int | None = None) -> Any:
        name = method.__api_method__
        if name == "sendMediaGroup":
            self.calls.append(method)
            return [Message(message_id=next(self._message_ids), date=int(time.time()), chat=_chat(int(method.chat_id)),
                            from_user=User(id=bot.id, is_bot=True, first_name="MineVoice")) for _ in method.media]
        if name not in ("sendMessage", "sendPhoto", "sendDocument", *EDIT_METHODS):
            return await super().make_request(bot, method, timeout)
        chat_id = int(method.chat_id)
        previous = self.messages.get((chat_id, getattr(method, "message_id", None) or 0))
        text, caption = getattr(method, "text", None), getattr(method, "caption", None)
        markup = getattr(method, "reply_markup", None)
        if name == "editMessageReplyMarkup" and previous is not None:
            text, caption = previous.text, previous.caption
        elif name == "editMessageCaption" and previous is not None:
            text = previous.text
        if name in EDIT_METHODS and previous is not None and (
                previous.text, previous.caption, _markup_key(previous.reply_markup)) == (text, caption, _markup_key(markup)):
            self.calls.append(method)
            raise TelegramBadRequest(method=method, message="Bad Request: message is not modified: specified new "
                                     "message content and reply markup are exactly the same as a current content "
                                     "and reply markup of the message")
        sent = await super().make_request(bot, method, timeout)
        message = Message(message_id=sent.message_id, date=sent.date, chat=_chat(chat_id), from_user=sent.from_user,
                          text=text, caption=caption,
                          reply_markup=markup if isinstance(markup, InlineKeyboardMarkup) else None)
        self.messages[(chat_id, message.message_id)] = message
        return message


def _chat(chat_id: int) -> Chat:
    return Chat(id=chat_id, type="private" if chat_id > 0 else "supergroup")


def telegram_like_bot() -> MockedBot:
    bot = MockedBot()
    bot.session = TelegramLikeSession()
    return bot


# --- raw updates ---------------------------------------------------------------------------------

def user_json(user_id: int, language_code: str | None = None) -> dict[str, Any]:
    user = {"id": user_id, "is_bot": False, "first_name": f"Miner{user_id % 1000}"}
    if language_code is not None:
        user["language_code"] = language_code
    return user


def private_chat(user_id: int) -> dict[str, Any]:
    return {"id": user_id, "type": "private", "first_name": f"Miner{user_id % 1000}"}


def group_chat(chat_id: int, kind: str) -> dict[str, Any]:
    return {"id": chat_id, "type": kind, "title": f"Group {chat_id}"}


class Telegram:
    """Numbers updates, messages and callback queries the way Telegram does (increasing, unique)."""

    def __init__(self) -> None:
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1)
        self._callback_ids = itertools.count(1)

    def update(self, **payload: Any) -> dict[str, Any]:
        return {"update_id": next(self._update_ids), **payload}

    def message(self, chat: dict, sender: dict | None, content: dict[str, Any], *, edited: bool = False,
                channel: bool = False) -> dict[str, Any]:
        now = int(time.time())
        message = {"message_id": next(self._message_ids), "date": now - (60 if edited else 0), "chat": chat, **content}
        if sender is not None:
            message["from"] = sender
        if channel:
            message["sender_chat"] = chat
        if edited:
            message["edit_date"] = now
        key = ("edited_channel_post" if edited else "channel_post") if channel else (
            "edited_message" if edited else "message")
        return self.update(**{key: message})

    def callback(self, sender: dict, data: str | None, message: dict[str, Any] | None) -> dict[str, Any]:
        query: dict[str, Any] = {"id": str(next(self._callback_ids)), "from": sender, "chat_instance": "fuzz"}
        if data is not None:
            query["data"] = data
        if message is None:
            query["inline_message_id"] = "AgAAAFuzz"
        else:
            query["message"] = message
        return self.update(callback_query=query)

    def my_chat_member(self, chat: dict, sender: dict, old: str, new: str) -> dict[str, Any]:
        bot = {"id": BOT_ID, "is_bot": True, "first_name": "MineVoice", "username": BOT_USERNAME}

        def member(status: str) -> dict[str, Any]:
            return {"status": status, "user": bot, **({"until_date": 0} if status == "kicked" else {})}

        return self.update(my_chat_member={"chat": chat, "from": sender, "date": int(time.time()),
                                           "old_chat_member": member(old), "new_chat_member": member(new)})


def bot_message_json(message: Message) -> dict[str, Any]:
    """A message the bot sent, as Telegram puts it into a callback query."""
    return message.model_dump(mode="json", exclude_none=True, by_alias=True)


def inaccessible_json(chat: dict, message_id: int) -> dict[str, Any]:
    """What Telegram sends instead of the message when it is old (or deleted): date 0, nothing else."""
    return {"chat": chat, "message_id": message_id, "date": 0}


# --- message contents ------------------------------------------------------------------------------

TRICKY = ["<", ">", "&", "&amp;", "\"", "'", "<b>", "</i>", "<a href='x'>", "\n", "\t", "\u200b", "\u202e", "\ufeff",
          "🙂", "👨‍👩‍👧", "Қ", "ё", "ß", "%s", "{0}", "{code}", "\\", "|", "MV-", "MV-7K3Q9", "7K3Q-9XHF-2M4T-8PRA",
          "https://", "@", "#", "/"]
_chars = st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"))
words = st.lists(st.one_of(_chars, _chars, _chars, st.sampled_from(TRICKY)), min_size=1, max_size=40).map("".join)
MENU_WORDS = frozenset()  # filled by test_fuzz with the menu buttons in every language


def _not_command(text: str) -> bool:
    return not text.startswith("/") and text.strip() != "" and text not in MENU_WORDS


plain_text = st.one_of(
    words,
    st.lists(words, min_size=1, max_size=8).map(" ".join),
    st.sampled_from(["Участок 5, горизонт −450", "Датчик метана заклеен, вентилятор не работает с утра",
                     "25.12.2030 18:00", "31.02.2030 25:61", "https://example.org/path?q=1", "http://x", "a | b | c",
                     "Шахта | Mine | Кен", "MV-7K3Q9 7K3Q-9XHF-2M4T-8PRA", "0" * 20]),
).filter(_not_command)
class Long(str):
    """A generated text that is long on purpose; shown short when hypothesis reports an example."""

    def __repr__(self) -> str:
        return f"<{len(self)} characters: {str.__repr__(self[:12])}…>"


blank_text = st.sampled_from(["", " ", "  ", "\n", "\n\n \t", "\u3000", "\u00a0", " \u2002 "])
oversized_text = st.builds(lambda unit, size: Long((unit * (size // len(unit) + 1))[:size]),
                           st.sampled_from(["a", "Қ", "🙂", "<&>", "word ", "x" * 7 + "\n"]),
                           st.integers(min_value=TEXT_MAX + 1, max_value=6000)).filter(_not_command)
unknown_command = st.builds(
    lambda name, mention, args: "/" + name + mention + args,
    st.from_regex(r"[a-z][a-z0-9_]{0,20}", fullmatch=True).filter(lambda name: name not in KNOWN_COMMANDS),
    st.sampled_from(["", "", "@" + BOT_USERNAME, "@other_bot"]),
    st.one_of(st.just(""), words.map(lambda text: " " + text)),
)


def known_command(commands: Iterable[str] = KNOWN_COMMANDS) -> st.SearchStrategy[str]:
    return st.builds(lambda name, mention, args: "/" + name + mention + args, st.sampled_from(sorted(commands)),
                     st.sampled_from(["", "", "@" + BOT_USERNAME]),
                     st.one_of(st.just(""), st.just(" organizer"), st.just(" committee"), words.map(lambda t: " " + t),
                               oversized_text.map(lambda t: " " + t)))


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@st.composite
def entities_for(draw, text: str) -> list[dict[str, Any]]:
    length = _utf16_len(text)
    if length == 0:
        return []
    found = []
    for _ in range(draw(st.integers(0, 3))):
        offset = draw(st.integers(0, length - 1))
        size = draw(st.integers(1, length - offset))
        kind = draw(st.sampled_from(["bold", "italic", "underline", "strikethrough", "spoiler", "code", "pre",
                                     "text_link", "url", "mention", "hashtag", "blockquote"]))
        entity = {"type": kind, "offset": offset, "length": size}
        if kind == "text_link":
            entity["url"] = draw(st.sampled_from(["https://example.org/", "http://union.kz/news?id=1"]))
        found.append(entity)
    return found


@st.composite
def text_with_entities(draw) -> dict[str, Any]:
    text = draw(plain_text)
    return {"text": text, "entities": draw(entities_for(text))}


def _file(prefix: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.integers(1, 10**6).map(lambda n: {"file_id": f"{prefix}{n}", "file_unique_id": f"u{prefix}{n}"})


@st.composite
def caption(draw) -> dict[str, Any]:
    choice = draw(st.sampled_from(["none", "plain", "entities", "oversized", "blank"]))
    if choice == "none":
        return {}
    if choice == "oversized":
        return {"caption": draw(st.integers(CAPTION_MAX + 1, 2000).map(lambda n: Long("c" * n)))}
    if choice == "blank":
        return {"caption": draw(blank_text)}
    text = draw(plain_text)
    return {"caption": text, **({"caption_entities": draw(entities_for(text))} if choice == "entities" else {})}


@st.composite
def photo(draw) -> dict[str, Any]:
    base = draw(_file("photo"))
    sizes = [{**base, "file_id": base["file_id"] + suffix, "width": width, "height": width}
             for suffix, width in (("s", 90), ("m", 320), ("x", 1280))[: draw(st.integers(1, 3))]]
    return {"photo": sizes, **draw(caption())}


@st.composite
def document(draw, image: bool = False) -> dict[str, Any]:
    mime = draw(st.sampled_from(["image/jpeg", "image/png", "image/heic"] if image else
                                [None, "application/pdf", "text/plain", "application/octet-stream", "video/mp4"]))
    file = draw(_file("doc")) | {"file_name": draw(st.sampled_from(["IMG_0001.jpg", "report.pdf", "a", "..", "x" * 200]))}
    if mime:
        file["mime_type"] = mime
    return {"document": file, **draw(caption())}


def _with(fields: dict[str, Any]):
    return lambda base: base | fields


CONTENT: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "text": plain_text.map(lambda text: {"text": text}),
    "text_entities": text_with_entities(),
    "text_blank": blank_text.map(lambda text: {"text": text}),
    "text_oversized": oversized_text.map(lambda text: {"text": text}),
    "command_unknown": unknown_command.map(lambda text: {"text": text, "entities": [
        {"type": "bot_command", "offset": 0, "length": _utf16_len(text.split(" ")[0])}]}),
    "photo": photo(),
    "document": document(),
    "document_image": document(image=True),
    "sticker": _file("stk").map(_with({"width": 512, "height": 512, "type": "regular", "is_animated": False,
                                       "is_video": False, "emoji": "🙂"})).map(lambda f: {"sticker": f}),
    "voice": _file("voi").map(_with({"duration": 3, "mime_type": "audio/ogg"})).map(lambda f: {"voice": f}),
    "video": st.tuples(_file("vid").map(_with({"width": 640, "height": 480, "duration": 5})), caption()).map(
        lambda pair: {"video": pair[0], **pair[1]}),
    "video_note": _file("vnt").map(_with({"length": 240, "duration": 5})).map(lambda f: {"video_note": f}),
    "audio": st.tuples(_file("aud").map(_with({"duration": 60, "title": "Song"})), caption()).map(
        lambda pair: {"audio": pair[0], **pair[1]}),
    "animation": _file("gif").map(_with({"width": 320, "height": 240, "duration": 2})).map(
        lambda f: {"animation": f, "document": {"file_id": f["file_id"], "file_unique_id": f["file_unique_id"]}}),
    "location": st.tuples(st.floats(-90, 90), st.floats(-180, 180)).map(
        lambda p: {"location": {"latitude": p[0], "longitude": p[1]}}),
    "venue": st.tuples(st.floats(-90, 90), st.floats(-180, 180), words).map(
        lambda p: {"venue": {"location": {"latitude": p[0], "longitude": p[1]}, "title": p[2], "address": p[2]},
                   "location": {"latitude": p[0], "longitude": p[1]}}),
    "contact": words.map(lambda name: {"contact": {"phone_number": "+77010000000", "first_name": name}}),
    "poll": words.map(lambda question: {"poll": {
        "id": "1", "question": question, "options": [{"persistent_id": "a", "text": "a", "voter_count": 0},
                                                  {"persistent_id": "b", "text": "b", "voter_count": 0}],
        "total_voter_count": 0, "is_closed": False, "is_anonymous": True, "type": "regular",
        "allows_multiple_answers": False, "allows_revoting": False, "members_only": False}}),
    "dice": st.tuples(st.sampled_from(["🎲", "🎯", "🏀", "⚽", "🎳", "🎰"]), st.integers(1, 6)).map(
        lambda p: {"dice": {"emoji": p[0], "value": p[1]}}),
}
TEXT_KINDS = {"text", "text_entities"}
# Content that no step of any flow takes: the bot must refuse it everywhere, and store nothing.
NEVER_ACCEPTED = {"document", "document_image", "sticker", "voice", "video", "video_note", "audio", "animation",
                  "location", "venue", "contact", "poll", "dice", "command_unknown", "text_blank"}


# --- callback data -------------------------------------------------------------------------------

HUGE_INTS = [-1, 0, 2**31, 2**63 - 1, 2**63, 2**64 + 7, 10**30, -(2**63) - 1, 999_999_999]
_bad_int = st.one_of(st.sampled_from(HUGE_INTS), st.integers(10**6, 10**12)).map(str)
_token = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"), exclude_characters=":"),
                 max_size=12)


def _fits(data: str) -> bool:
    return 0 < len(data.encode()) <= CALLBACK_DATA_MAX_BYTES


def _pack(prefix: str, *parts: str) -> str:
    return ":".join((prefix, *parts))


def forged_callback_data(*, real_survey_id: int, site_ids: Iterable[int], region_codes: Iterable[str],
                         categories: Iterable[str], severities: Iterable[str],
                         instruments: Iterable[str]) -> st.SearchStrategy[str]:
    """Callback data no button of the bot ever carries, for anyone, in any state: random strings,
    known prefixes with the wrong number of fields, and known prefixes whose fields name nothing
    that exists (huge, negative or unknown ids, unknown codes). The bot must refuse them all."""
    sites = {str(site_id) for site_id in site_ids}
    regions, categories, severities = set(region_codes), set(categories), set(severities)
    instruments = set(instruments)
    # Ids that no mine has: huge, negative or zero, or not a number at all (admins add mines while fuzzing).
    no_site = st.one_of(_bad_int, _token.filter(lambda value: not value.isdigit())).filter(lambda value: value not in sites)
    no_region = _token.filter(lambda value: value not in regions)

    def garbage(data: str) -> bool:
        prefix, *parts = data.split(":")
        return CALLBACK_FIELDS.get(prefix) != len(parts)

    random_strings = st.one_of(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=64),
        st.binary(min_size=1, max_size=64).map(lambda raw: raw.decode("latin-1")),
        st.builds(lambda prefix, parts: ":".join([prefix, *parts]), st.sampled_from(sorted(CALLBACK_FIELDS)),
                  st.lists(_token, max_size=6)),
    ).filter(garbage)
    in_range_but_nothing = st.one_of(
        _token.filter(lambda a: a not in ("back", "cancel")).map(lambda a: _pack("nav", a)),
        st.one_of(
            no_region.map(lambda v: _pack("rp", "region", v)),
            no_site.map(lambda v: _pack("rp", "site", v)),
            _token.filter(lambda v: v not in categories).map(lambda v: _pack("rp", "category", v)),
            _token.filter(lambda v: v not in severities).map(lambda v: _pack("rp", "severity", v)),
            _token.filter(lambda v: v not in {"site", "category", "severity", "location", "description", "photos"}).map(
                lambda v: _pack("rp", "edit", v)),
            st.tuples(_token.filter(lambda a: a not in {"region", "site", "category", "severity", "skip", "done",
                                                         "edit", "submit"}), _token).map(lambda p: _pack("rp", *p)),
        ),
        st.tuples(st.sampled_from(["ask", "no", "zz"]), _bad_int).map(lambda p: _pack("er", *p)),
        st.tuples(_token, _token).map(lambda p: _pack("ck", *p)),
        _token.filter(lambda v: v not in ("kk", "ru", "en")).map(lambda v: _pack("lang", v)),
        st.one_of(
            st.tuples(_token.filter(lambda a: a not in {"mine", "region", "site", "nosite", "language", "subscribe",
                                                         "unsubscribe"}), _token).map(lambda p: _pack("pf", *p)),
            no_site.map(lambda v: _pack("pf", "site", v)),
        ),
        st.one_of(
            st.tuples(_token.filter(lambda a: a not in {
                "sites", "languages", "everyone", "next", "site", "language", "done", "version", "drop", "link",
                "nolink", "now", "schedule", "quiet", "ack", "preview", "confirm"}), _token).map(lambda p: _pack("ann", *p)),
            no_site.map(lambda v: _pack("ann", "site", v)),
            _token.filter(lambda v: v not in ("kk", "ru", "en")).map(lambda v: _pack("ann", "language", v)),
            _token.filter(lambda v: v not in ("kk", "ru", "en", "fallback")).map(lambda v: _pack("ann", "version", v)),
            _token.filter(lambda v: v not in ("silent", "hold", "none")).map(lambda v: _pack("ann", "quiet", v)),
        ),
        st.tuples(st.sampled_from(["show", "pause", "resume", "cancel", "cancel_yes", "zz"]), _bad_int).map(
            lambda p: _pack("cmp", *p)),
        _bad_int.map(lambda v: _pack("ack", v)),
        st.tuples(st.sampled_from(["start", "begin", "later", "site", "region", "area", "answer", "skip", "back",
                                   "submit", "zz"]), _bad_int.filter(lambda v: v != str(real_survey_id)),
                  _bad_int, _token).map(lambda p: _pack("sv", *p)),
        st.one_of(  # the real survey, with fields that fit no step
            st.tuples(st.sampled_from(["answer", "skip"]), _bad_int, _token).map(
                lambda p: _pack("sv", p[0], str(real_survey_id), p[1], p[2])),
            st.tuples(st.sampled_from(["region"]), no_region).map(
                lambda p: _pack("sv", p[0], str(real_survey_id), "0", p[1])),
            st.tuples(st.sampled_from(["site"]), no_site).map(
                lambda p: _pack("sv", p[0], str(real_survey_id), "0", p[1])),
            _token.filter(lambda v: v not in ("underground", "surface")).map(
                lambda v: _pack("sv", "area", str(real_survey_id), "0", v)),
        ),
        st.one_of(
            st.tuples(_token.filter(lambda a: a not in {"instrument", "site", "allsites", "sites_done", "language",
                                                         "languages_done", "now", "days", "launch"}), _token).map(
                lambda p: _pack("ss", *p)),
            _token.filter(lambda v: v not in instruments).map(lambda v: _pack("ss", "instrument", v)),
            no_site.map(lambda v: _pack("ss", "site", v)),
            _token.filter(lambda v: v not in ("kk", "ru", "en")).map(lambda v: _pack("ss", "language", v)),
            st.one_of(_bad_int, _token).filter(lambda v: v not in ("7", "14", "30")).map(lambda v: _pack("ss", "days", v)),
        ),
        st.tuples(st.sampled_from(["show", "close", "zz"]), _bad_int.filter(lambda v: v != str(real_survey_id))).map(
            lambda p: _pack("res", *p)),
        no_site.filter(lambda v: v.lstrip("-").isdigit()).map(lambda v: _pack("inv", v)),
        _bad_int.map(lambda v: _pack("role", v)),
        st.tuples(st.sampled_from(["site", "archive", "restore", "zz"]), no_site).map(lambda p: _pack("site", *p)),
        st.tuples(st.sampled_from(["status", "note", "view", "zz"]), _bad_int,
                  st.sampled_from(["", "acknowledged", "resolved", "zz"])).map(lambda p: _pack("case", *p)),
        st.tuples(st.sampled_from(["open", "closed", "all", "zz", ""]), _bad_int).map(lambda p: _pack("cases", *p)),
        st.one_of(_bad_int, _token).filter(lambda v: v not in ("7", "30", "90", "365")).map(lambda v: _pack("exp", v)),
    )
    return st.one_of(random_strings, in_range_but_nothing).filter(_fits)


# How to change a real button's data; drawn before the button is known (see `mutate`).
mutations = st.tuples(st.sampled_from(["cut", "append", "upper", "replace"]), st.integers(0, 2**16),
                      st.one_of(_bad_int, _token))


def mutate(data: str, mutation: tuple[str, int, str]) -> str:
    """A real button's data, changed the way a client bug or a forger would."""
    how, position, value = mutation
    parts = data.split(":")
    if how == "cut":
        changed = data[: position % max(1, len(data))] or "x"
    elif how == "append":
        changed = data + ":" + value
    elif how == "upper":
        changed = data.upper()
    else:
        index = position % len(parts)
        changed = ":".join(parts[:index] + [value] + parts[index + 1:])
    return changed if _fits(changed) else changed.encode()[:CALLBACK_DATA_MAX_BYTES].decode(errors="ignore") or "x"


# --- what Telegram would refuse in the bot's own calls ----------------------------------------------

_TAGS = {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "span", "tg-spoiler", "a", "tg-emoji", "code",
         "pre", "blockquote"}
_ENTITY = re.compile(r"&(lt|gt|amp|quot|#\d+|#x[0-9a-fA-F]+);")


class _TelegramHTML(HTMLParser):
    """Telegram's HTML parse mode, strictly: only its tags, properly nested; `<`, `>` and `&`
    escaped everywhere else."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.problems: list[str] = []
        self.visible: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in _TAGS:
            self.problems.append(f"unsupported tag <{tag}>")
        self.open.append(tag)

    def handle_endtag(self, tag):
        if not self.open or self.open[-1] != tag:
            self.problems.append(f"unbalanced </{tag}>")
        else:
            self.open.pop()

    def handle_data(self, data):
        if "<" in data or ">" in data:
            self.problems.append(f"unescaped < or > in {data[:40]!r}")
        self.visible.append(data)

    def handle_entityref(self, name):
        if name not in ("lt", "gt", "amp", "quot"):
            self.problems.append(f"unknown entity &{name};")
        self.visible.append(html.unescape(f"&{name};"))

    def handle_charref(self, name):
        self.visible.append(html.unescape(f"&#{name};"))


def html_problems(text: str) -> tuple[list[str], str]:
    """What Telegram's HTML parser would reject in `text`, and the text as the user sees it."""
    problems = []
    for position in [match.start() for match in re.finditer("&", text)]:
        if not _ENTITY.match(text, position):
            problems.append(f"bare & at {position}: {text[max(0, position - 10):position + 10]!r}")
    parser = _TelegramHTML()
    parser.feed(text)
    parser.close()
    if parser.rawdata:
        problems.append(f"unterminated markup {parser.rawdata[:40]!r}")
    if parser.open:
        problems.append(f"unclosed <{parser.open[-1]}>")
    return problems + parser.problems, "".join(parser.visible)


def _is_html(call: Any, entities_field: str) -> bool:
    if getattr(call, entities_field, None):
        return False
    mode = getattr(call, "parse_mode", None)
    return isinstance(mode, Default) or mode == "HTML"


def _markup_problems(markup: Any, private: bool) -> list[str]:
    problems = []
    if isinstance(markup, InlineKeyboardMarkup):
        for row in markup.inline_keyboard:
            for button in row:
                if not (button.text or "").strip():
                    problems.append("a button without text")
                if button.callback_data is not None and not _fits(button.callback_data):
                    problems.append(f"callback_data of {len(button.callback_data.encode())} bytes: "
                                    f"{button.callback_data!r}")
    elif isinstance(markup, ReplyKeyboardMarkup) and not private:
        problems.append("a reply keyboard (the miners' main menu) sent to a group")
    return problems


def call_problems(call: Any) -> list[str]:
    """What Telegram would refuse (or show broken) in one call of the bot."""
    name = call.__api_method__
    problems: list[str] = []
    chat_id = getattr(call, "chat_id", None)
    private = not isinstance(chat_id, int) or chat_id > 0
    if name in ("sendMessage", "editMessageText"):
        text = call.text
        visible = text
        if _is_html(call, "entities"):
            found, visible = html_problems(text)
            problems += found
        if not visible.strip():
            problems.append("an empty message text")
        if len(visible) > TEXT_MAX:
            problems.append(f"a message text of {len(visible)} characters")
    caption = getattr(call, "caption", None) if name in ("sendPhoto", "sendDocument", "editMessageCaption",
                                                           "sendVideo", "sendAnimation") else None
    if caption is not None:
        visible = caption
        if _is_html(call, "caption_entities"):
            found, visible = html_problems(caption)
            problems += found
        if len(visible) > CAPTION_MAX:
            problems.append(f"a caption of {len(visible)} characters")
    if name == "answerCallbackQuery" and call.text is not None and len(call.text) > CALLBACK_ANSWER_MAX:
        problems.append(f"a callback answer of {len(call.text)} characters")
    if name == "deleteMessages" and not 1 <= len(call.message_ids) <= 100:
        problems.append(f"deleteMessages with {len(call.message_ids)} ids")
    if name == "setMyCommands":
        for command in call.commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", command.command) or not 1 <= len(command.description) <= 256:
                problems.append(f"a bad command {command.command!r}: {command.description!r}")
    problems += _markup_problems(getattr(call, "reply_markup", None), private)
    return [f"{name}: {problem}" for problem in problems]
