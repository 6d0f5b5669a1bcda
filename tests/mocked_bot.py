"""A Bot whose session answers every API call itself, for fast handler tests (after aiogram's
own tests/mocked_bot.py, but replying automatically so that flows can run without scripting)."""

from __future__ import annotations

import itertools
import time
from collections.abc import AsyncGenerator
from typing import Any

from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.base import BaseSession
from aiogram.enums import ParseMode
from aiogram.methods import TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import Chat, Message, User


MESSAGE_METHODS = {"sendMessage", "sendPhoto", "sendDocument", "editMessageText", "editMessageCaption",
                   "editMessageReplyMarkup"}


class AutoSession(BaseSession):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[TelegramMethod[Any]] = []
        self._message_ids = itertools.count(10_000)

    async def close(self) -> None:
        pass

    async def make_request(self, bot: Bot, method: TelegramMethod[TelegramType], timeout: int | None = None) -> TelegramType:
        self.calls.append(method)
        name = method.__api_method__
        if name in MESSAGE_METHODS:
            return Message(
                message_id=getattr(method, "message_id", None) or next(self._message_ids),
                date=int(time.time()),
                chat=Chat(id=int(method.chat_id), type="private"),
                from_user=User(id=bot.id, is_bot=True, first_name="MineVoice"),
                text=getattr(method, "text", None),
            )  # type: ignore[return-value]
        if name == "getMe":
            return User(id=bot.id, is_bot=True, first_name="MineVoice", username="minevoice_bot")  # type: ignore[return-value]
        return True  # type: ignore[return-value]

    async def stream_content(self, url: str, headers: dict | None = None, timeout: int = 30,
                             chunk_size: int = 65536, raise_for_status: bool = True) -> AsyncGenerator[bytes, None]:
        yield b""


class MockedBot(Bot):
    session: AutoSession

    def __init__(self) -> None:
        super().__init__("123456789:AAF-fake-token-for-tests-only-000000", session=AutoSession(),
                         default=DefaultBotProperties(parse_mode=ParseMode.HTML))

    def sent(self, method: str | None = None) -> list[TelegramMethod[Any]]:
        return [call for call in self.session.calls if method is None or call.__api_method__ == method]
