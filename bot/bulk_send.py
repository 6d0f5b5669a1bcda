"""One prepared Bot API call sent to many chats: the announcement engine's way out.

Through aiogram, each message of a campaign is built as a pydantic model, encoded as a form,
and its answer parsed back into a `Message` nobody reads: about 550 µs of CPU per message on
our 2-core server, most of a core at 1000 messages/s (benchmarks/broadcast.py). A campaign
sends the same call to every recipient of a language, so it is encoded once, with aiogram's own
value preparation, as a JSON body; each send splices in the chat id. Answers other than success
go through aiogram's own `check_response`, so errors arrive as the same exceptions as
everywhere else (see bot/telegram_errors.py).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError, TelegramNetworkError
from aiogram.methods import TelegramMethod
from aiohttp import ClientError, ClientTimeout
from yarl import URL

_JSON = {"Content-Type": "application/json"}


@dataclass(frozen=True, slots=True)
class PreparedCall:
    method: TelegramMethod[Any]  # as built, for aiogram's error mapping and for sending it whole
    url: URL  # parsed once: aiohttp would parse a string for every send
    body_after_chat_id: bytes  # the JSON object's other fields: b',"text":…}'

    def body(self, chat_id: int) -> bytes:
        return b'{"chat_id":%d%b' % (chat_id, self.body_after_chat_id)


class BulkSender:
    def __init__(self, bot: Bot) -> None:
        self._bot = bot
        self._timeout = ClientTimeout(total=bot.session.timeout)

    def prepare(self, method: TelegramMethod[Any]) -> PreparedCall:
        """`method` with any chat_id; it must not upload a file (campaigns carry file ids)."""
        session, files = self._bot.session, {}
        fields = {}
        for key, value in method.model_dump(warnings=False).items():
            if key == "chat_id":
                continue
            prepared = session.prepare_value(value, bot=self._bot, files=files, _dumps_json=False)
            if prepared is not None:
                fields[key] = prepared
        if files:
            raise ValueError("a bulk call cannot upload files")
        rest = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
        return PreparedCall(method, URL(session.api.api_url(token=self._bot.token, method=method.__api_method__)),
                            (b"," + rest[1:]) if fields else b"}")

    async def send(self, call: PreparedCall, chat_id: int) -> None:
        """Raises what aiogram would raise for the same answer."""
        session = self._bot.session
        client = await session.create_session()
        try:
            async with client.post(call.url, data=call.body(chat_id), headers=_JSON, timeout=self._timeout) as resp:
                status, raw = resp.status, await resp.read()
        except asyncio.TimeoutError as error:
            raise TelegramNetworkError(method=call.method, message="Request timeout error") from error
        except ClientError as error:
            raise TelegramNetworkError(method=call.method, message=f"{type(error).__name__}: {error}") from error
        # Telegram answers success with 200 and {"ok":true,…}; its result (the Message) is not
        # needed, and parsing it would cost as much as the rest of the send.
        if status == 200 and raw[:24].replace(b" ", b"").startswith(b'{"ok":true'):
            return
        method = call.method.model_copy(update={"chat_id": chat_id})
        session.check_response(bot=self._bot, method=method, status_code=status, content=raw.decode(errors="replace"))
        raise TelegramAPIError(method=method, message=f"Unexpected answer with status {status}")
