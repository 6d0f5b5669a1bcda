"""Invitation codes: single use, 72 hours, the right role; group codes bind a group once."""

from pathlib import Path

import pytest

from bot.access import INVITE_TTL_SECONDS, AccessService, NotAllowed
from bot.sites import seed_sites
from storage.db import Database
from storage.roles import RoleRepository
from storage.sites import SiteRepository

ADMIN, MEMBER, STRANGER = 1, 2, 3


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def access(tmp_path: Path):
    db = await Database.open(tmp_path / "db.sqlite3")
    await db.migrate()
    await seed_sites(SiteRepository(db))
    clock = Clock()
    service = AccessService(RoleRepository(db), frozenset({ADMIN}), clock=clock)
    service.clock = clock
    try:
        yield service
    finally:
        await db.close()


async def test_invitation_works_once(access: AccessService) -> None:
    code = await access.invite(ADMIN, "committee", 1)
    assert (await access.join(MEMBER, code.lower().replace("-", " "), "Member")).site_id == 1
    assert await access.join(STRANGER, code, "Stranger") is None
    assert await access.committee_sites(MEMBER) == {1} and await access.committee_sites(STRANGER) == set()


async def test_invitation_expires_after_72_hours(access: AccessService) -> None:
    code = await access.invite(ADMIN, "organizer", None)
    access.clock.now += INVITE_TTL_SECONDS + 1
    assert await access.join(MEMBER, code, "Member") is None
    assert not await access.is_organizer(MEMBER)


async def test_only_admins_invite_and_only_members_make_group_codes(access: AccessService) -> None:
    with pytest.raises(NotAllowed):
        await access.invite(MEMBER, "organizer", None)
    with pytest.raises(NotAllowed):
        await access.group_code(STRANGER, 1)
    await access.join(MEMBER, await access.invite(ADMIN, "committee", 1), "Member")
    group_code = await access.group_code(MEMBER, 1)
    assert await access.join(STRANGER, group_code, "Stranger") is None  # a group code is no role
    # …and it was used up by that attempt: codes are single use whatever they were tried for.
    assert await access.bind_group(-100, group_code, "OSH", "ru", MEMBER) is None
    fresh = await access.group_code(MEMBER, 1)
    assert await access.bind_group(-100, fresh, "OSH", "ru", MEMBER) == 1
    assert (await access.committee_group(-100)).site_id == 1
    assert await access.group_migrated(-100, -1000100)
    assert await access.committee_group(-100) is None and (await access.committee_group(-1000100)).site_id == 1


async def test_guessing_codes_is_throttled(access: AccessService) -> None:
    for _ in range(5):
        await access.join(STRANGER, "AAAAA-BBBBB", "Stranger")
    assert access.wait_before_joining(STRANGER) > 0
    assert access.wait_before_joining(MEMBER) == 0
