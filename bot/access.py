"""Who may do what: admins (from ADMIN_IDS), committee members of sites, organizers;
one-time invitation codes and group binding codes."""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.limits import SlidingWindowLimit
from bot.receipts import CASE_CODE_ALPHABET
from storage.roles import CommitteeChat, Role, RoleRepository

INVITE_TTL_SECONDS = 72 * 3600
INVITE_CODE_LENGTH = 10  # 30^10 ≈ 2^49: unguessable within its 72 hours, single use
COMMITTEE, ORGANIZER, GROUP = "committee", "organizer", "group"


class NotAllowed(Exception):
    """The user lacks the role for this action; nothing was changed."""


@dataclass(frozen=True, slots=True)
class Joined:
    role: str
    site_id: int | None


def _hash_code(code: str) -> str:
    compact = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(compact.encode()).hexdigest()


def _new_code() -> str:
    symbols = "".join(secrets.choice(CASE_CODE_ALPHABET) for _ in range(INVITE_CODE_LENGTH))
    return f"{symbols[:5]}-{symbols[5:]}"


class AccessService:
    def __init__(self, roles: RoleRepository, admin_ids: frozenset[int], clock: Callable[[], float] = time.time) -> None:
        self._roles = roles
        self._admins = admin_ids
        self._clock = clock
        self._join_attempts = SlidingWindowLimit(5, 15 * 60)

    def is_admin(self, user_id: int) -> bool:
        return user_id in self._admins

    async def roles_of(self, user_id: int) -> list[Role]:
        return await self._roles.of_user(user_id)

    async def committee_sites(self, user_id: int) -> set[int]:
        return {role.site_id for role in await self._roles.of_user(user_id) if role.role == COMMITTEE}

    async def can_work_on(self, user_id: int, site_id: int) -> bool:
        return site_id in await self.committee_sites(user_id)

    async def is_organizer(self, user_id: int) -> bool:
        return self.is_admin(user_id) or any(role.role == ORGANIZER for role in await self._roles.of_user(user_id))

    async def invite(self, admin_id: int, role: str, site_id: int | None) -> str:
        if not self.is_admin(admin_id):
            raise NotAllowed
        if (role == COMMITTEE) != (site_id is not None):
            raise ValueError("a committee invitation names a site, an organizer invitation none")
        return await self._new_invite(role, site_id, admin_id)

    async def group_code(self, member_id: int, site_id: int) -> str:
        """A code that binds a Telegram group to this member's committee."""
        if not await self.can_work_on(member_id, site_id):
            raise NotAllowed
        return await self._new_invite(GROUP, site_id, member_id)

    async def _new_invite(self, role: str, site_id: int | None, created_by: int) -> str:
        code = _new_code()
        expires = int(self._clock()) + INVITE_TTL_SECONDS
        await self._roles.add_invite(_hash_code(code), role, site_id, created_by, expires)
        return code

    def wait_before_joining(self, user_id: int) -> float:
        """Seconds until this person may try another code (guessing codes is throttled)."""
        return self._join_attempts.retry_after(user_id)

    async def join(self, user_id: int, code: str, display_name: str) -> Joined | None:
        """Use an invitation; None when the code is wrong, used or expired (indistinguishably)."""
        self._join_attempts.record(user_id)
        invite = await self._roles.take_invite(_hash_code(code), int(self._clock()))
        if invite is None or invite.role == GROUP:
            return None
        await self._roles.grant(user_id, invite.role, invite.site_id, display_name, self._now_text())
        return Joined(invite.role, invite.site_id)

    async def bind_group(self, chat_id: int, code: str, title: str, language: str, user_id: int) -> int | None:
        """Bind a group to a committee with a group code from one of its members; the site id or None."""
        invite = await self._roles.take_invite(_hash_code(code), int(self._clock()))
        if invite is None or invite.role != GROUP:
            return None
        await self._roles.bind_chat(chat_id, invite.site_id, title, language, user_id)
        return invite.site_id

    async def revoke(self, admin_id: int, role_id: int) -> Role | None:
        if not self.is_admin(admin_id):
            raise NotAllowed
        return await self._roles.revoke(role_id)

    async def everyone(self, admin_id: int) -> list[Role]:
        if not self.is_admin(admin_id):
            raise NotAllowed
        return await self._roles.everyone()

    async def committee_group(self, chat_id: int) -> CommitteeChat | None:
        return await self._roles.chat(chat_id)

    async def group_migrated(self, old_chat_id: int, new_chat_id: int) -> bool:
        return await self._roles.move_chat(old_chat_id, new_chat_id)

    def _now_text(self) -> str:
        return datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
