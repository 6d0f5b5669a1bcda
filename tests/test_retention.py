"""Retention: closed cases lose their free text and photo references after RETENTION_DAYS; counts stay."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.reports import current_hour
from bot.retention import apply_retention, removed_after_days, removed_marker
from bot.scheduler import enforce_retention
from bot.sites import seed_sites
from storage.db import Database
from storage.digests import DigestRepository
from storage.reports import NewReport, ReportRepository
from storage.roles import RoleRepository
from storage.sites import SiteRepository

NOW = datetime(2027, 12, 1, 9, 0, tzinfo=UTC)
DAYS = 365
MEMBER = 4242


class Bed:
    def __init__(self, db: Database, site_id: int) -> None:
        self.db = db
        self.site_id = site_id
        self.reports = ReportRepository(db)
        self.numbers = itertools.count(1)

    async def case(self, *, created: datetime, closed: datetime | None = None, status: str = "resolved",
                   photos: int = 2, location: str | None = "Panel 12") -> tuple[int, dict[str, str]]:
        """A case with unique free text everywhere; returns its id and that text."""
        number = next(self.numbers)
        text = {
            # Longer than a page: the text also lives in overflow pages, which must be wiped too.
            "description": f"secret-description-{number}: methane sensor taped over at face 7 "
                           + " ".join(f"d{number}w{word:04d}" for word in range(600)),
            "location": f"secret-location-{number} conveyor 4",
            "note": f"secret-note-{number} we called the inspector",
            "reply": f"secret-reply-{number} it is still taped",
            "photo": f"secret-photo-{number}",
        }
        report_id = await self.reports.add(NewReport(
            f"MV-{number:05d}", "scrypt$test", self.site_id, "gas", "danger", location and text["location"],
            text["description"], "ru", tuple(f"{text['photo']}-{index}" for index in range(photos)),
            current_hour(created)))
        if not location:
            del text["location"]
        if not photos:
            del text["photo"]
        step = created + timedelta(hours=2)
        await self.reports.change_status(report_id, "in_progress", MEMBER, "Aigerim", _exact(step), current_hour(step),
                                         None)
        await self.reports.add_note(report_id, text["note"], MEMBER, "Aigerim", _exact(step), current_hour(step))
        await self.reports.add_reporter_message(report_id, text["reply"], current_hour(step))
        if closed is not None:
            await self.reports.change_status(report_id, status, MEMBER, "Aigerim", _exact(closed), current_hour(closed),
                                             "closing note " + text["note"])
        return report_id, text


def _exact(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
async def bed(tmp_path: Path):
    db = await Database.open(tmp_path / "data" / "minevoice.sqlite3")
    try:
        await db.migrate()
        await seed_sites(SiteRepository(db))
        site_id = (await db.fetchone("SELECT min(id) FROM sites"))[0]
        yield Bed(db, site_id)
    finally:
        await db.close()


async def statistics(bed: Bed) -> tuple:
    digests = DigestRepository(bed.db)
    return (await digests.counts_by_hour(bed.site_id, "2000-01-01T00:00Z", "2100-01-01T00:00Z"),
            await digests.status_counts(bed.site_id, ("received", "in_progress", "resolved", "not_confirmed")),
            await bed.db.fetchall("SELECT category, severity, count(*) FROM reports GROUP BY 1, 2"))


def pieces(text: dict[str, str]) -> set[bytes]:
    """Every word of the case's free text that is unique to it."""
    return {word.encode() for value in text.values() for word in value.split() if "-" in word or word[:1] == "d"}


def pieces_in(data: bytes) -> set[bytes]:
    return set(re.findall(rb"secret-[a-z]+-\d+(?:-\d+)?:?|d\d+w\d{4}", data))


def on_disk(path: Path) -> bytes:
    return b"".join(file.read_bytes() for file in (path, Path(f"{path}-wal")) if file.exists())


async def test_closed_cases_lose_their_text_after_the_limit_and_still_count(bed: Bed) -> None:
    long_ago = NOW - timedelta(days=DAYS + 40)
    old_resolved, old_text = await bed.case(created=long_ago, closed=NOW - timedelta(days=DAYS + 1))
    old_dismissed, dismissed_text = await bed.case(created=long_ago, closed=NOW - timedelta(days=DAYS + 3),
                                                   status="not_confirmed", location=None, photos=0)
    recent, recent_text = await bed.case(created=long_ago, closed=NOW - timedelta(days=DAYS - 1))
    still_open, open_text = await bed.case(created=long_ago)
    before = await statistics(bed)
    await bed.db.checkpoint()
    assert len(pieces(old_text) & pieces_in(on_disk(bed.db.path))) > 500  # the scan below can see the text

    result = await apply_retention(bed.db, days=DAYS, now=NOW)

    assert (result.cases.cases, result.cases.photos) == (2, 2)
    marker = removed_marker(DAYS)
    assert removed_after_days(marker) == DAYS and removed_after_days("[removed after soon days]") is None
    for report_id, location in ((old_resolved, marker), (old_dismissed, None)):
        case = await bed.reports.case(report_id)
        assert (case.description, case.location, case.photo_file_ids) == (marker, location, ())
        timeline = await bed.reports.timeline(report_id)
        assert {event.note for event in timeline if event.note is not None} == {marker}
        # What the committee did, and when, stays: only the free text went.
        assert [event.status for event in timeline if event.kind == "status"][-1] in ("resolved", "not_confirmed")
    for report_id, text in ((recent, recent_text), (still_open, open_text)):
        case = await bed.reports.case(report_id)
        assert case.description == text["description"] and case.location == text["location"]
        assert len(case.photo_file_ids) == 2
        assert {text["note"], text["reply"]} <= {event.note for event in await bed.reports.timeline(report_id)}
    assert await statistics(bed) == before

    # Nothing of the cleared text is left in the database file or its WAL (the words of the long
    # description were in overflow pages; the others in table and index pages).
    data = on_disk(bed.db.path)
    for text in (old_text, dismissed_text):
        assert not pieces(text) & pieces_in(data)
        for value in text.values():
            assert value.encode()[:24] not in data, value[:24]
    assert len(pieces(recent_text) & pieces_in(data)) > 500
    wal = Path(f"{bed.db.path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0

    # Running again changes nothing.
    again = await apply_retention(bed.db, days=DAYS, now=NOW)
    assert again.cases.cases == 0 and again.invites == 0


async def test_a_case_reopened_after_closing_keeps_its_text(bed: Bed) -> None:
    report_id, text = await bed.case(created=NOW - timedelta(days=800), closed=NOW - timedelta(days=700))
    reopened = NOW - timedelta(days=10)
    await bed.reports.change_status(report_id, "in_progress", MEMBER, "Aigerim", _exact(reopened),
                                    current_hour(reopened), None)
    assert (await apply_retention(bed.db, days=DAYS, now=NOW)).cases.cases == 0
    assert (await bed.reports.case(report_id)).description == text["description"]

    # Closed again, it is counted from the new closing.
    closed = NOW - timedelta(days=5)
    await bed.reports.change_status(report_id, "resolved", MEMBER, "Aigerim", _exact(closed), current_hour(closed),
                                    None)
    assert (await apply_retention(bed.db, days=DAYS, now=NOW)).cases.cases == 0
    assert (await apply_retention(bed.db, days=DAYS, now=NOW + timedelta(days=DAYS))).cases.cases == 1


async def test_expired_invitations_go_and_valid_ones_stay(bed: Bed) -> None:
    roles = RoleRepository(bed.db)
    now = int(NOW.timestamp())
    await roles.add_invite("hash-expired", "organizer", None, MEMBER, now - 1)
    await roles.add_invite("hash-valid", "committee", bed.site_id, MEMBER, now + 3600)
    result = await apply_retention(bed.db, days=DAYS, now=NOW)
    assert result.invites == 1
    rows = await bed.db.fetchall("SELECT code_hash FROM invites")
    assert [row[0] for row in rows] == ["hash-valid"]


async def test_the_scheduled_job_uses_the_settings_and_the_services_clock(bed: Bed) -> None:
    report_id, _ = await bed.case(created=NOW - timedelta(days=100), closed=NOW - timedelta(days=40))
    settings = SimpleNamespace(retention_days=30)
    await enforce_retention(bed.db, settings, SimpleNamespace(clock=lambda: NOW))
    assert (await bed.reports.case(report_id)).description == removed_marker(30)
