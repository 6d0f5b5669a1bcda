"""Scheduled housekeeping (APScheduler 3, always with an explicit time zone)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import Settings
from bot.notify import AlertService
from storage.fsm import SQLiteStorage

if TYPE_CHECKING:
    from bot.app import Services

log = logging.getLogger(__name__)

# A draft nobody touched for this long is deleted: it would otherwise sit under its author's id.
ABANDONED_CONVERSATION_SECONDS = 3 * 24 * 3600


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
    """Scheduled announcements whose time has come (the engine sends them)."""
    await services.broadcasts.start_due(services.clock())


def build_scheduler(settings: Settings, storage: SQLiteStorage, services: Services) -> AsyncIOScheduler:
    scheduler = AsyncIOScheduler(timezone=settings.tz)
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
    return scheduler
