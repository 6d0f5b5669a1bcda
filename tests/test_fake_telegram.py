"""Tests of the fake Telegram Bot API server, driven by a real aiogram Bot over HTTP."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.methods import SendDice
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyParameters,
)

from tests.fake_telegram import FakeTelegram

pytestmark = pytest.mark.asyncio


class FastSession(AiohttpSession):
    """AiohttpSession without the 250 ms graceful-close sleep (keeps the tests fast)."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


@pytest_asyncio.fixture
async def tg() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram() as fake:
        yield fake


@pytest_asyncio.fixture
async def bot(tg: FakeTelegram) -> AsyncIterator[Bot]:
    b = Bot(tg.token, session=FastSession(api=TelegramAPIServer.from_base(tg.base_url)))
    yield b
    await b.session.close()


@contextlib.asynccontextmanager
async def polling(dp: Dispatcher, bot: Bot, tg: FakeTelegram) -> AsyncIterator[None]:
    task = asyncio.create_task(dp.start_polling(bot, handle_signals=False, close_bot_session=False))
    try:
        await tg.wait_polling(timeout=5)
        yield
    finally:
        await dp.stop_polling()
        await task


def kb(*rows: list[tuple[str, str]]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d) for t, d in row] for row in rows]
    )


# --------------------------------------------------------------------------- dispatcher round trips


async def test_echo_round_trip(tg: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()
    seen: list[Message] = []

    @dp.message(CommandStart())
    async def start(message: Message, command: CommandObject) -> None:
        seen.append(message)
        await message.answer(f"<b>Hello</b>, {message.from_user.first_name}! payload={command.args}",
                             parse_mode="HTML")

    @dp.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(message.text)

    alice = tg.user(1001, "Alice", username="alice", language_code="ru")
    async with polling(dp, bot, tg):
        sent = await alice.send("/start ref_42")
        assert sent["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
        hello = await alice.next_message(timeout=3)
        assert hello["text"] == "Hello, Alice! payload=ref_42"  # HTML parsed away
        assert hello["entities"] == [{"type": "bold", "offset": 0, "length": 5}]
        assert hello["from"]["is_bot"] and hello["from"]["id"] == tg.bot_id
        assert hello["chat"]["id"] == alice.id and hello["deleted"] is False

        await alice.send("ping")
        echo_msg = await alice.next_message(timeout=3)
        assert echo_msg["text"] == "ping"
        assert echo_msg["message_id"] > sent["message_id"]
        await tg.wait_idle(quiet=0.05, timeout=3)

    assert seen[0].from_user.language_code == "ru"
    assert [m["text"] for m in alice.history()] == ["/start ref_42", "Hello, Alice! payload=ref_42", "ping", "ping"]
    assert tg.pending_updates() == 0
    latencies = tg.reply_latencies()
    assert len(latencies) == 2 and all(0 <= x < 3 for x in latencies)
    assert all(r.fetched_at is not None for r in tg.update_log)
    assert tg.calls_to("sendMessage", chat_id=alice.id)[0].params["parse_mode"] == "HTML"
    tg.assert_no_errors()


async def test_inline_button_press_and_callback_answer(tg: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()

    @dp.message(Command("menu"))
    async def menu(message: Message) -> None:
        markup = InlineKeyboardMarkup(
            inline_keyboard=[
                [InlineKeyboardButton(text="🇬🇧 English", callback_data="lang:en"),
                 InlineKeyboardButton(text="🇷🇺 Русский", callback_data="lang:ru")],
                [InlineKeyboardButton(text="Site", url="https://example.org")],
            ]
        )
        await message.answer("Choose a language", reply_markup=markup)

    @dp.callback_query(F.data.startswith("lang:"))
    async def choose(callback: CallbackQuery) -> None:
        await callback.answer(f"set {callback.data[5:]}")
        await callback.message.edit_text(f"Language: {callback.data[5:]}")

    bob = tg.user(1002, "Bob")
    async with polling(dp, bot, tg):
        await bob.send("/menu")
        menu_msg = await bob.next_message(timeout=3)
        assert bob.buttons() == ["🇬🇧 English", "🇷🇺 Русский", "Site"]
        assert bob.keyboard() == [["🇬🇧 English", "🇷🇺 Русский"], ["Site"]]

        with pytest.raises(AssertionError, match="(?s)no button matching 'Deutsch'.*English"):
            await bob.press("Deutsch")
        with pytest.raises(AssertionError, match="url button"):
            await bob.press("Site")

        qid = await bob.press("English")  # substring fallback
        answer = await bob.callback_answer(qid, timeout=3)
        assert answer["text"] == "set en"
        await tg.wait_idle(quiet=0.05, timeout=3)

        # the edit happened in place and (no reply_markup passed) removed the keyboard
        assert menu_msg["text"] == "Language: en" and menu_msg["edit_count"] == 1
        assert "reply_markup" not in menu_msg and bob.buttons() == []
        assert tg.callback_queries[qid].data == "lang:en"
        assert tg.unanswered_callbacks() == []

        # a forged/stale callback on the same message is still delivered and answered
        qid2 = await bob.press_data("lang:ru", message=menu_msg)
        assert (await bob.callback_answer(qid2, timeout=3))["text"] == "set ru"

    # answering twice / an unknown id fails like on Telegram
    for query_id in (qid, "999"):
        with pytest.raises(TelegramBadRequest, match="query is too old"):
            await bot.answer_callback_query(query_id)
    assert len(tg.errors) == 2
    assert tg.calls_to("answerCallbackQuery")[0].chat_id == bob.id


async def test_reply_keyboard_press_sends_text(tg: FakeTelegram, bot: Bot) -> None:
    carol = tg.user(1003, "Carol", started=True)
    markup = ReplyKeyboardMarkup(keyboard=[[KeyboardButton(text="📝 Report"), KeyboardButton(text="Help")]],
                                 resize_keyboard=True)
    sent = await bot.send_message(carol.id, "Main menu", reply_markup=markup)
    assert sent.reply_markup is None  # Telegram does not echo reply keyboards
    assert carol.reply_buttons() == ["📝 Report", "Help"]
    assert await carol.press("Report") == ""
    assert carol.history()[-1]["text"] == "📝 Report"
    assert carol.history()[-1]["from"]["id"] == carol.id


async def test_next_message_timeout_and_collect(tg: FakeTelegram, bot: Bot) -> None:
    dave = tg.user(1004, "Dave", started=True)
    with pytest.raises(AssertionError, match="no new bot message within 0.05s"):
        await dave.next_message(timeout=0.05)
    for i in range(3):
        await bot.send_message(dave.id, f"m{i}")
    got = await dave.collect(quiet=0.05, timeout=2)
    assert [m["text"] for m in got] == ["m0", "m1", "m2"]
    assert await dave.collect(quiet=0.02) == []


# --------------------------------------------------------------------------- getUpdates


async def test_get_updates_offset_semantics(tg: FakeTelegram, bot: Bot) -> None:
    eve = tg.user(1005, "Eve")
    for text in ("a", "b", "c"):
        await eve.send(text)
    assert tg.pending_updates() == 3

    first = await bot.get_updates(timeout=0)
    assert [u.message.text for u in first] == ["a", "b", "c"]
    ids = [u.update_id for u in first]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert tg.pending_updates() == 0

    again = await bot.get_updates(timeout=0)  # not confirmed yet -> returned again
    assert [u.update_id for u in again] == ids
    limited = await bot.get_updates(offset=ids[1], limit=1, timeout=0)  # confirms "a"
    assert [u.update_id for u in limited] == [ids[1]]
    assert [u.update_id for u in await bot.get_updates(timeout=0)] == ids[1:]
    assert await bot.get_updates(offset=ids[-1] + 1, timeout=0) == []

    # long polling returns as soon as an update arrives
    async def later() -> None:
        await asyncio.sleep(0.05)
        await eve.send("d")

    task = asyncio.create_task(later())
    t0 = time.monotonic()
    got = await bot.get_updates(offset=ids[-1] + 1, timeout=5)
    await task
    assert [u.message.text for u in got] == ["d"] and time.monotonic() - t0 < 1.5
    # ...and times out with [] when nothing comes (raw GET with a query string works too)
    url = f"{tg.base_url}/bot{tg.token}/getUpdates"
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as http:
        async with http.get(url, params={"offset": got[0].update_id + 1, "timeout": "0.2"}) as resp:
            assert await resp.json() == {"ok": True, "result": []}
    assert time.monotonic() - t0 >= 0.18

    # negative offset keeps only the newest updates
    for text in ("e", "f", "g"):
        await eve.send(text)
    assert [u.message.text for u in await bot.get_updates(offset=-1, timeout=0)] == ["g"]

    # allowed_updates is remembered and filters updates created afterwards
    last = (await bot.get_updates(timeout=0))[-1].update_id
    await bot.get_updates(offset=last + 1, timeout=0, allowed_updates=["callback_query"])
    await eve.send("dropped")
    assert await bot.get_updates(timeout=0) == []
    assert tg.dropped_updates[-1]["message"]["text"] == "dropped"
    tg.assert_no_errors()


# --------------------------------------------------------------------------- errors


async def test_injected_errors_surface_as_aiogram_exceptions(tg: FakeTelegram, bot: Bot) -> None:
    frank = tg.user(1006, "Frank", started=True)

    tg.inject_error(chat_id=frank.id, error_code=403, description="Forbidden: bot was blocked by the user")
    with pytest.raises(TelegramForbiddenError, match="blocked by the user"):
        await bot.send_message(frank.id, "x")

    tg.inject_error(method="sendMessage", error_code=429, description="Too Many Requests: retry after 7",
                    retry_after=7)
    with pytest.raises(TelegramRetryAfter) as retry:
        await bot.send_message(frank.id, "x")
    assert retry.value.retry_after == 7

    tg.inject_error(chat_id=frank.id, method="sendphoto", error_code=400,
                    description="Bad Request: group chat was upgraded to a supergroup chat",
                    migrate_to_chat_id=-1001234567890)
    await bot.send_message(frank.id, "not matched by method")  # the rule only matches sendPhoto
    with pytest.raises(TelegramMigrateToChat) as migrate:
        await bot.send_photo(frank.id, "https://example.org/a.jpg")
    assert migrate.value.migrate_to_chat_id == -1001234567890

    rule = tg.inject_error(chat_id=999, error_code=400, description="Bad Request: chat not found", times=2)
    for _ in range(2):
        with pytest.raises(TelegramBadRequest, match="chat not found"):
            await bot.send_message(999, "x")
    assert rule.remaining == 0 and rule.hits == 2
    with pytest.raises(TelegramBadRequest, match="chat not found"):  # a real error now: unknown chat
        await bot.send_message(999, "x")

    assert [e.error_code for e in tg.simulated_errors] == [403, 429, 400, 400, 400]
    assert [e.description for e in tg.errors] == ["Bad Request: chat not found"]
    ok = await bot.send_message(frank.id, "fine again")
    assert ok.text == "fine again"


async def test_block_unblock(tg: FakeTelegram, bot: Bot) -> None:
    gina = tg.user(1007, "Gina", started=True)
    gina.block_bot()
    for _ in range(2):  # persistent
        with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
            await bot.send_message(gina.id, "x")
    tg.unblock(gina.id)
    await bot.send_message(gina.id, "back")
    updates = await bot.get_updates(timeout=0)
    statuses = [u.my_chat_member.new_chat_member.status for u in updates]
    assert statuses == ["kicked", "member"]
    assert tg.errors == [] and len(tg.simulated_errors) == 2


async def test_validation_errors(tg: FakeTelegram, bot: Bot) -> None:
    hank = tg.user(1008, "Hank")
    with pytest.raises(TelegramForbiddenError, match="can't initiate conversation"):
        await bot.send_message(hank.id, "hi")  # the user never wrote to the bot
    await hank.send("/start")

    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(hank.id, "   ")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(hank.id, "x" * 4097)
    await bot.send_message(hank.id, "&lt;" * 4096, parse_mode="HTML")  # 4096 chars after parsing
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Unsupported start tag \"br\""):
        await bot.send_message(hank.id, "a<br>b", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(hank.id, "<b>bold", parse_mode="HTML")
    with pytest.raises(TelegramBadRequest, match="is reserved"):
        await bot.send_message(hank.id, "Done.", parse_mode="MarkdownV2")
    with pytest.raises(TelegramBadRequest, match="caption is too long"):
        await bot.send_photo(hank.id, "https://example.org/p.jpg", caption="c" * 1025)
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(424242, "hi")

    msg = await bot.send_message(hank.id, "Same", reply_markup=kb([("A", "a")]))
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(chat_id=hank.id, message_id=msg.message_id, text="Same",
                                    reply_markup=kb([("A", "a")]))
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(chat_id=hank.id, message_id=9999, text="x")
    edited = await bot.edit_message_reply_markup(chat_id=hank.id, message_id=msg.message_id,
                                                 reply_markup=kb([("B", "b")]))
    assert edited.reply_markup.inline_keyboard[0][0].text == "B"
    with pytest.raises(TelegramBadRequest, match="message to be replied not found"):
        await bot.send_message(hank.id, "r", reply_parameters=ReplyParameters(message_id=9999))
    reply = await bot.send_message(hank.id, "r", reply_parameters=ReplyParameters(message_id=msg.message_id))
    assert reply.reply_to_message.message_id == msg.message_id

    with pytest.raises(TelegramNotFound, match="method not found"):
        await bot(SendDice(chat_id=hank.id))  # not implemented by the fake
    bad_bot = Bot("42:wrong", session=FastSession(api=TelegramAPIServer.from_base(tg.base_url)))
    try:
        with pytest.raises(TelegramUnauthorizedError):
            await bad_bot.get_me()
    finally:
        await bad_bot.session.close()
    assert len(tg.errors) == 13
    with pytest.raises(AssertionError, match="13 Bot API error"):
        tg.assert_no_errors()


async def test_callback_data_64_bytes(tg: FakeTelegram, bot: Bot) -> None:
    ivan = tg.user(1009, "Ivan", started=True)
    await bot.send_message(ivan.id, "ok", reply_markup=kb([("x", "a" * 64)]))
    await bot.send_message(ivan.id, "ok", reply_markup=kb([("x", "ж" * 32)]))  # 64 bytes UTF-8
    assert tg.errors == []
    for data in ("a" * 65, "ж" * 33, ""):
        with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
            await bot.send_message(ivan.id, "bad", reply_markup=kb([("ok", "ok"), ("x", data)]))
    assert [e.description for e in tg.errors] == ["Bad Request: BUTTON_DATA_INVALID"] * 3
    assert len(ivan.bot_messages()) == 2  # failed sends create nothing


# --------------------------------------------------------------------------- messages


async def test_delete_messages(tg: FakeTelegram, bot: Bot) -> None:
    jane = tg.user(1010, "Jane")
    user_msg = await jane.send("secret")
    sent = [await bot.send_message(jane.id, f"b{i}") for i in range(3)]

    assert await bot.delete_messages(jane.id, [sent[0].message_id, sent[1].message_id, user_msg["message_id"]])
    assert [m["text"] for m in jane.history()] == ["b2"]
    assert user_msg["deleted"] is True
    assert len(tg.chat_messages(jane.id, include_deleted=True)) == 4

    assert await bot.delete_message(jane.id, sent[2].message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(jane.id, sent[2].message_id)
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_messages(jane.id, [777, 778])
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text(chat_id=jane.id, message_id=sent[0].message_id, text="x")
    assert jane.bot_messages() == []
    assert len(tg.errors) == 3


async def test_send_media_group_and_files(tg: FakeTelegram, bot: Bot) -> None:
    kate = tg.user(1011, "Kate")
    photo_msg = await kate.send_photo(caption="hazard")
    sizes = photo_msg["photo"]
    assert len(sizes) >= 3 and sizes[-1]["width"] > sizes[0]["width"]
    assert len({s["file_id"] for s in sizes}) == len(sizes)
    big = sizes[-1]["file_id"]

    album = await bot.send_media_group(
        kate.id,
        media=[
            InputMediaPhoto(media=BufferedInputFile(b"\x89PNG fake", "a.png"), caption="<b>first</b>",
                            parse_mode="HTML"),
            InputMediaPhoto(media=big),
        ],
    )
    assert len(album) == 2 and album[0].media_group_id == album[1].media_group_id is not None
    assert album[0].caption == "first" and album[0].caption_entities[0].type == "bold"
    assert album[1].photo[-1].file_id == big  # re-sent by file_id

    resent = await bot.send_photo(kate.id, big, caption="again")
    assert resent.photo[-1].file_id == big
    assert tg.calls_to("sendPhoto")[-1].params["photo"] == big

    doc = await bot.send_document(kate.id, BufferedInputFile(b"id;text\n1;leak\n", "export.csv"),
                                  caption="Export")
    stored = tg.get_file(doc.document.file_id)
    assert stored.data == b"id;text\n1;leak\n" and stored.file_name == "export.csv"
    assert doc.document.mime_type == "text/csv"
    downloaded = await bot.download(doc.document.file_id)
    assert downloaded.read() == b"id;text\n1;leak\n"

    copied = await bot.copy_message(kate.id, kate.id, photo_msg["message_id"])
    copy = tg.message(kate.id, copied.message_id)
    assert copy["photo"] == sizes and copy["caption"] == "hazard" and "forward_origin" not in copy
    assert tg.calls_to("forwardMessage") == []
    fwd = await bot.forward_message(kate.id, kate.id, photo_msg["message_id"])
    assert fwd.forward_origin.sender_user.id == kate.id
    assert len(tg.calls_to("forwardMessage")) == 1

    msgs = await kate.send_album(3)
    assert len({m["media_group_id"] for m in msgs}) == 1
    updates = await bot.get_updates(timeout=0)
    assert [u.message.media_group_id for u in updates[-3:]] == [msgs[0]["media_group_id"]] * 3
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_photo(kate.id, "AgACnot-a-real-id")
    assert len(tg.errors) == 1


async def test_my_commands_per_language(tg: FakeTelegram, bot: Bot) -> None:
    await bot.set_my_commands([BotCommand(command="start", description="Start"),
                               BotCommand(command="report", description="Report a hazard")])
    await bot.set_my_commands([BotCommand(command="start", description="Старт")], language_code="ru")
    await bot.set_my_commands([BotCommand(command="start", description="Бастау")],
                              scope=BotCommandScopeAllPrivateChats(), language_code="kk")
    await bot.set_my_commands([BotCommand(command="admin", description="Admin")],
                              scope=BotCommandScopeChat(chat_id=77))

    assert [c.description for c in await bot.get_my_commands()] == ["Start", "Report a hazard"]
    assert [c.description for c in await bot.get_my_commands(language_code="ru")] == ["Старт"]
    assert await bot.get_my_commands(language_code="kk") == []  # kk is only set for all_private_chats
    assert tg.commands("all_private_chats", "kk") == [{"command": "start", "description": "Бастау"}]
    assert tg.commands(language_code="ru") == [{"command": "start", "description": "Старт"}]

    assert [c["command"] for c in tg.command_menu(5, "kk")] == ["start"]
    assert tg.command_menu(5, "kk")[0]["description"] == "Бастау"
    assert tg.command_menu(5, "ru")[0]["description"] == "Старт"
    assert tg.command_menu(5, "de")[0]["description"] == "Start"
    assert tg.command_menu(77, "ru")[0]["command"] == "admin"

    assert await bot.delete_my_commands(language_code="ru")
    assert tg.commands(language_code="ru") is None
    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="Bad-Name", description="x")])


async def test_group_add_bot_and_migration(tg: FakeTelegram, bot: Bot) -> None:
    dp = Dispatcher()
    router = Router()

    @router.message(Command("hello"))
    async def hello(message: Message) -> None:
        await message.answer("hi group")

    dp.include_router(router)
    owner = tg.user(1012, "Owner")
    group = tg.group(-4001, "Committee")
    with pytest.raises(TelegramForbiddenError, match="not a member"):
        await bot.send_message(group.id, "x")
    await group.add_bot(by=owner)
    async with polling(dp, bot, tg):
        sent = await group.send(owner, f"/hello@{tg.bot_username}")
        assert sent["entities"][0]["length"] == len(f"/hello@{tg.bot_username}")
        assert (await group.next_message(timeout=3))["text"] == "hi group"
    member = await bot.get_chat_member(group.id, owner.id)
    assert member.status == "creator"
    chat = await bot.get_chat(group.id)
    assert chat.title == "Committee" and chat.type == "group"

    supergroup = await group.migrate_to_supergroup(-1009876543210)
    with pytest.raises(TelegramMigrateToChat) as exc:
        await bot.send_message(group.id, "x")
    assert exc.value.migrate_to_chat_id == supergroup.id
    msg = await bot.send_message(supergroup.id, "moved")
    assert msg.chat.type == "supergroup"
    assert (await supergroup.next_message(timeout=1))["text"] == "moved"
    assert [e.kind for e in tg.simulated_errors] == ["kicked", "migrated"]
    tg.assert_no_errors()
