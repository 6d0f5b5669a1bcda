"""Users: Telegram user id → chosen language. The only place a user id is stored."""

from __future__ import annotations

from storage.db import Database


class UserRepository:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._languages: dict[int, str | None] = {}

    async def language_of(self, user_id: int) -> str | None:
        if user_id not in self._languages:
            row = await self._db.fetchone("SELECT language FROM users WHERE user_id = ?", (user_id,))
            self._languages[user_id] = row["language"] if row else None
        return self._languages[user_id]

    async def set_language(self, user_id: int, language: str) -> None:
        await self._db.execute(
            "INSERT INTO users (user_id, language) VALUES (?, ?) "
            "ON CONFLICT (user_id) DO UPDATE SET language = excluded.language",
            (user_id, language),
        )
        self._languages[user_id] = language
