"""MineVoice: anonymous hazard reports, surveys and union announcements for miners, on Telegram."""

from bot.lazy_models import build_aiogram_models_on_first_use

build_aiogram_models_on_first_use()  # first thing, before any module imports aiogram
