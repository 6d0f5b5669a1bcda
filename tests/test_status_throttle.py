"""Guessing receipts is throttled per person and for everyone together (the global limit stops
many accounts sharing the guessing)."""

from pathlib import Path

import pytest

from bot.reports import (
    STATUS_FAILURES_GLOBAL_PER_MINUTE,
    STATUS_FAILURES_PER_USER,
    Draft,
    ReportService,
    StatusOutcome,
)
from bot.sites import seed_sites
from storage.db import Database
from storage.reports import ReportRepository
from storage.sites import SiteRepository

WRONG_RECEIPT = "0000-0000-0000-0000"


@pytest.fixture
async def service(tmp_path: Path):
    db = await Database.open(tmp_path / "minevoice.sqlite3")
    await db.migrate()
    await seed_sites(SiteRepository(db))
    site_id = (await db.fetchone("SELECT id FROM sites LIMIT 1"))[0]
    reports = ReportService(db, ReportRepository(db))
    draft = Draft(site_id=site_id, category="gas", severity="serious", description="Датчик метана заклеен с утра")

    async def forget_draft() -> None:
        pass

    submitted = await reports.submit(draft, "ru", forget_draft)
    yield reports, submitted
    await db.close()


async def test_one_person_is_stopped_after_a_few_wrong_receipts(service) -> None:
    reports, submitted = service
    for _ in range(STATUS_FAILURES_PER_USER):
        answer = await reports.status(1, submitted.case_code, WRONG_RECEIPT)
        assert answer.outcome is StatusOutcome.WRONG
    # Now even the right receipt waits: a guesser cannot tell a hit from the throttle.
    throttled = await reports.status(1, submitted.case_code, submitted.receipt)
    assert throttled.outcome is StatusOutcome.THROTTLED and throttled.retry_after > 60
    # Someone else is not affected, and right answers never count against anyone.
    for _ in range(STATUS_FAILURES_PER_USER + 2):
        assert (await reports.status(2, submitted.case_code, submitted.receipt)).outcome is StatusOutcome.FOUND


async def test_many_accounts_guessing_together_stop_everyone_for_a_while(service) -> None:
    reports, submitted = service
    guessers = range(1000, 1000 + STATUS_FAILURES_GLOBAL_PER_MINUTE)
    for guesser in guessers:  # one wrong guess each: far below the personal limit
        assert (await reports.status(guesser, submitted.case_code, WRONG_RECEIPT)).outcome is StatusOutcome.WRONG
    fresh = await reports.status(99, submitted.case_code, submitted.receipt)
    assert fresh.outcome is StatusOutcome.THROTTLED and 0 < fresh.retry_after <= 60
