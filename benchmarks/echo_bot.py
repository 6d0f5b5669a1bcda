"""The baselines: a bare aiogram echo bot, polling the same fake Bot API as MineVoice.

It echoes text; with an inline button under the echo, a tap is answered and the message edited —
the two calls Telegram requires for every button press, which a text-only echo never makes.
"""

import asyncio
import os

from aiogram import Bot, Dispatcher, F
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

dp = Dispatcher()
BUTTON = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="again", callback_data="again")]])


@dp.message(F.text.startswith("button "))
async def echo_with_button(message: Message) -> None:
    await message.answer(message.text, reply_markup=BUTTON)


@dp.message()
async def echo(message: Message) -> None:
    await message.answer(message.text or "?")


@dp.callback_query()
async def tapped(callback: CallbackQuery) -> None:
    await callback.message.edit_text(f"{callback.message.text}!", reply_markup=BUTTON)
    await callback.answer()


async def main() -> None:
    session = AiohttpSession(api=TelegramAPIServer.from_base(os.environ["TELEGRAM_API_BASE"]))
    bot = Bot(os.environ["BOT_TOKEN"], session=session)
    await dp.start_polling(bot, handle_signals=True)


if __name__ == "__main__":
    asyncio.run(main())
