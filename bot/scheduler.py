"""Scheduled housekeeping (APScheduler 3, always with an explicit time zone)."""

from __future__ import annotations

import gc
import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.backup import back_up
from bot.config import Settings
from bot.notify import AlertService
from bot.retention import apply_retention
from storage.db import Database
from storage.fsm import SQLiteStorage

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

# A draft nobody touched for this long is deleted: it would otherwise sit under its author's id.
ABANDONED_CONVERSATION_SECONDS = 3 * 24 * 3600
# Retention runs this long before the backup, so that night's backup no longer holds what it cleared.
RETENTION_BEFORE_BACKUP_MINUTES = 30
SETTLE_MEMORY_AFTER = timedelta(minutes=5)


async def forget_abandoned_conversations(storage: SQLiteStorage) -> None:
    removed = await storage.purge_older_than(ABANDONED_CONVERSATION_SECONDS)
    if removed:
        log.info("Deleted %d abandoned conversations", removed)


async def follow_up_alerts(alerts: AlertService) -> None:
    """Alerts a crash kept from going out, and escalation of unanswered ones."""
    await alerts.deliver_pending()
    await alerts.escalate_due()


async def send_digests(services: Services) -> None:
    await services.digests.run_due(services.clock())


async def start_due_campaigns(services: Services) -> None:
    """Scheduled announcements whose time has come (the engine sends them), and surveys whose
    closing time has come (closing destroys what links answers to people)."""
    await services.broadcasts.start_due(services.clock())
    await services.surveys.close_due()


async def back_up_database(settings: Settings) -> None:
    """The nightly online backup (the bot keeps running); a failure keeps the older backups."""
    try:
        path = await back_up(settings.database_path, settings.backup_dir, settings.backup_keep)
    except Exception:
        log.exception("The daily backup failed; older backups are kept. Check free space and BACKUP_DIR")
        return
    log.info("Backup written: %s", path.name)


async def enforce_retention(db: Database, settings: Settings, services: Services) -> None:
    """Clear the text of cases closed more than RETENTION_DAYS ago; delete expired invitations."""
    await apply_retention(db, days=settings.retention_days, now=services.clock())


def settle_memory() -> None:
    """Objects alive now live as long as the process: modules, catalogs, and the validators of the
    Telegram types built so far (bot/lazy_models.py), which Python's cycle collector is slow to walk
    (a full collection took 60–80 ms, a pause every few seconds under load; benchmarks/latency.py).
    Frozen, they are left out of its collections. Done at start-up and again once the first
    minutes of traffic have built the types the bot uses."""
    gc.collect()
    gc.freeze()


def _at(hhmm: str, minus_minutes: int = 0) -> tuple[int, int]:
    hour, minute = (int(part) for part in hhmm.split(":"))
    return divmod((hour * 60 + minute - minus_minutes) % (24 * 60), 60)


def build_scheduler(settings: Settings, storage: SQLiteStorage, services: Services, db: Database) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=settings.tz)
    scheduler.add_job(settle_memory, DateTrigger(datetime.now(settings.tz) + SETTLE_MEMORY_AFTER, timezone=settings.tz),
                      id="settle_memory")
    scheduler.add_job(
        follow_up_alerts,
        IntervalTrigger(seconds=20, timezone=settings.tz),
        args=[services.alerts],
        id="follow_up_alerts",
        coalesce=True,
        max_instances=1,
    )
    hour, minute = (int(part) for part in settings.digest_time.split(":"))
    scheduler.add_job(
        send_digests,
        CronTrigger(hour=hour, minute=minute, timezone=settings.tz),
        args=[services],
        id="daily_digests",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=3600,
    )
    # Idempotent: picks up a digest whose delivery a network failure interrupted.
    scheduler.add_job(
        send_digests,
        IntervalTrigger(minutes=10, timezone=settings.tz),
        args=[services],
        id="digest_retries",
        coalesce=True,
        max_instances=1,
    )
    scheduler.add_job(
        start_due_campaigns,
        IntervalTrigger(minutes=1, timezone=settings.tz),
        args=[services],
        id="due_campaigns",
        coalesce=True,
        max_instances=1,
    )
    scheduler.add_job(
        forget_abandoned_conversations,
        IntervalTrigger(hours=1, timezone=settings.tz),
        args=[storage],
        id="forget_abandoned_conversations",
        coalesce=True,
        max_instances=1,
    )
    backup_hour, backup_minute = _at(settings.backup_time)
    scheduler.add_job(
        back_up_database,
        CronTrigger(hour=backup_hour, minute=backup_minute, timezone=settings.tz),
        args=[settings],
        id="daily_backup",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=3600,
    )
    retention_hour, retention_minute = _at(settings.backup_time, RETENTION_BEFORE_BACKUP_MINUTES)
    scheduler.add_job(
        enforce_retention,
        CronTrigger(hour=retention_hour, minute=retention_minute, timezone=settings.tz),
        args=[db, settings, services],
        id="daily_retention",
        coalesce=True,
        max_instances=1,
        misfire_grace_time=3600,
    )
    return scheduler
