"""Users: Telegram user id → chosen language, announcement subscription and (if they chose one)
their mine. The only table with a miner's user id; nothing in it is ever linked to a report."""

from __future__ import annotations

from dataclasses import dataclass

from storage.cache import RecentCache
from storage.db import Database

CACHED_LANGUAGES = 20_000


@dataclass(frozen=True, slots=True)
class Profile:
    language: str
    site_id: int | None
    subscribed: bool


class UserRepository:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._languages: RecentCache[int, str | None] = RecentCache(CACHED_LANGUAGES)

    async def language_of(self, user_id: int) -> str | None:
        """Asked for every update (see bot/i18n.py), so recent answers are kept in memory."""
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

    async def profile(self, user_id: int) -> Profile | None:
        row = await self._db.fetchone("SELECT language, site_id, subscribed FROM users WHERE user_id = ?", (user_id,))
        return Profile(row["language"], row["site_id"], bool(row["subscribed"])) if row else None

    async def set_subscribed(self, user_id: int, subscribed: bool) -> bool:
        """False when the user has no profile yet (never chose a language)."""
        return bool(await self._db.execute_count(
            "UPDATE users SET subscribed = ? WHERE user_id = ?", (int(subscribed), user_id)))

    async def set_site(self, user_id: int, site_id: int | None) -> None:
        await self._db.execute("UPDATE users SET site_id = ? WHERE user_id = ?", (site_id, user_id))

    async def set_reachable(self, user_id: int, reachable: bool) -> None:
        await self._db.execute("UPDATE users SET reachable = ? WHERE user_id = ?", (int(reachable), user_id))

    async def reachable_again(self, user_id: int) -> None:
        """They wrote to the bot, so it can write to them again (after a block, say)."""
        await self._db.execute("UPDATE users SET reachable = 1 WHERE user_id = ? AND reachable = 0", (user_id,))
