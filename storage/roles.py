"""Committee members, organizers, invitation codes and committee groups."""

from __future__ import annotations

from dataclasses import dataclass

from storage import storable
from storage.db import Database


@dataclass(frozen=True, slots=True)
class Recipient:
    """A committee member's private chat (chat id = user id) or a committee group, and its language."""

    chat_id: int
    language: str


@dataclass(frozen=True, slots=True)
class Role:
    id: int
    user_id: int
    role: str
    site_id: int | None
    display_name: str


@dataclass(frozen=True, slots=True)
class Invite:
    role: str
    site_id: int | None
    created_by: int


@dataclass(frozen=True, slots=True)
class CommitteeChat:
    chat_id: int
    site_id: int
    title: str
    language: str


def _role(row) -> Role:
    return Role(row["id"], row["user_id"], row["role"], row["site_id"], row["display_name"])


class RoleRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def grant(self, user_id: int, role: str, site_id: int | None, display_name: str, granted_at: str) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO roles (user_id, role, site_id, display_name, granted_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT DO UPDATE SET display_name = excluded.display_name",
                (user_id, role, site_id, display_name, granted_at),
            )
            if site_id is not None:
                await self._start_digests_now(tx, site_id)

    @staticmethod
    async def _start_digests_now(tx: Database, site_id: int) -> None:
        """A new committee's first digest starts from today, not from the mine's whole history
        (older open cases still show among the overdue ones)."""
        await tx.execute(
            "INSERT OR IGNORE INTO digest_watermarks (site_id, last_report_id) "
            "SELECT ?, coalesce(max(id), 0) FROM reports WHERE site_id = ?",
            (site_id, site_id),
        )

    async def revoke(self, role_id: int) -> Role | None:
        if not storable(role_id):
            return None
        row = await self._db.fetchone("SELECT * FROM roles WHERE id = ?", (role_id,))
        if row is not None:
            await self._db.execute("DELETE FROM roles WHERE id = ?", (role_id,))
        return _role(row) if row else None

    async def of_user(self, user_id: int) -> list[Role]:
        rows = await self._db.fetchall("SELECT * FROM roles WHERE user_id = ? ORDER BY role, site_id", (user_id,))
        return [_role(row) for row in rows]

    async def everyone(self) -> list[Role]:
        rows = await self._db.fetchall("SELECT * FROM roles ORDER BY role, site_id, display_name")
        return [_role(row) for row in rows]

    async def committee_recipients(self, site_id: int, default_language: str) -> list[Recipient]:
        """Whom a site's committee is told through (alerts, digests): each member's private chat, in
        the language they chose or else `default_language`, and each group bound to it; a chat once."""
        rows = await self._db.fetchall(
            "SELECT r.user_id AS chat_id, COALESCE(u.language, ?) AS language FROM roles r "
            "LEFT JOIN users u ON u.user_id = r.user_id WHERE r.role = 'committee' AND r.site_id = ? "
            "UNION SELECT chat_id, language FROM committee_chats WHERE site_id = ? ORDER BY 1",
            (default_language, site_id, site_id),
        )
        seen: dict[int, Recipient] = {}
        for row in rows:
            seen.setdefault(row["chat_id"], Recipient(row["chat_id"], row["language"]))
        return list(seen.values())

    # --- invitations -----------------------------------------------------------------------

    async def add_invite(self, code_hash: str, role: str, site_id: int | None, created_by: int, expires_at: int) -> None:
        await self._db.execute(
            "INSERT INTO invites (code_hash, role, site_id, created_by, expires_at) VALUES (?, ?, ?, ?, ?)",
            (code_hash, role, site_id, created_by, expires_at),
        )

    async def take_invite(self, code_hash: str, now: int) -> Invite | None:
        """Use up an invitation: it works once, and only before it expires."""
        async with self._db.transaction() as tx:
            row = await tx.fetchone("SELECT * FROM invites WHERE code_hash = ?", (code_hash,))
            if row is None:
                return None
            await tx.execute("DELETE FROM invites WHERE code_hash = ?", (code_hash,))
        if row["expires_at"] < now:
            return None
        return Invite(row["role"], row["site_id"], row["created_by"])

    async def forget_expired_invites(self, now: int) -> int:
        rows = await self._db.fetchall("SELECT code_hash FROM invites WHERE expires_at < ?", (now,))
        await self._db.execute("DELETE FROM invites WHERE expires_at < ?", (now,))
        return len(rows)

    # --- committee groups ------------------------------------------------------------------

    async def bind_chat(self, chat_id: int, site_id: int, title: str, language: str, bound_by: int) -> None:
        async with self._db.transaction() as tx:
            await tx.execute(
                "INSERT INTO committee_chats (chat_id, site_id, title, language, bound_by) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (chat_id) DO UPDATE SET site_id = excluded.site_id, title = excluded.title, "
                "language = excluded.language, bound_by = excluded.bound_by",
                (chat_id, site_id, title, language, bound_by),
            )
            await self._start_digests_now(tx, site_id)

    async def unbind_chat(self, chat_id: int) -> None:
        await self._db.execute("DELETE FROM committee_chats WHERE chat_id = ?", (chat_id,))

    async def move_chat(self, old_chat_id: int, new_chat_id: int) -> bool:
        """A group became a supergroup: same committee, new chat id."""
        async with self._db.transaction() as tx:
            row = await tx.fetchone("SELECT 1 FROM committee_chats WHERE chat_id = ?", (old_chat_id,))
            if row is None:
                return False
            await tx.execute("DELETE FROM committee_chats WHERE chat_id = ?", (new_chat_id,))
            await tx.execute("UPDATE committee_chats SET chat_id = ? WHERE chat_id = ?", (new_chat_id, old_chat_id))
        return True

    async def chat(self, chat_id: int) -> CommitteeChat | None:
        row = await self._db.fetchone("SELECT * FROM committee_chats WHERE chat_id = ?", (chat_id,))
        return CommitteeChat(row["chat_id"], row["site_id"], row["title"], row["language"]) if row else None
