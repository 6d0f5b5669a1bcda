"""MineVoice: anonymous hazard reports, surveys and union announcements for miners, on Telegram."""
