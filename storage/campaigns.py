"""Announcement campaigns and their durable outbox (schema: migration 0004).

An outbox row is 'queued' until the engine claims it ('sending', i.e. possibly in flight) and then
gets its outcome together with the campaign's counters, in one transaction. A crash therefore
repeats at most the rows left in 'sending'. When a campaign is finished its rows are deleted and
only the totals stay; acknowledgements are a bare count, never who pressed the button."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

from storage import storable
from storage.db import Database

STATES = ("draft", "scheduled", "sending", "paused", "done", "cancelled")
QUIET_HOURS = ("none", "silent", "hold")
OUTCOMES = ("delivered", "blocked", "failed")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_text(moment: datetime) -> str:
    """The schema's time format; sorts like the time it stands for."""
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def parse_utc(text: str | None) -> datetime | None:
    return None if text is None else datetime.strptime(text, _TIME_FORMAT).replace(tzinfo=UTC)


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


@dataclass(frozen=True, slots=True)
class Audience:
    """Which subscribers get a campaign; None means no restriction on that axis."""

    sites: tuple[int, ...] | None = None
    languages: tuple[str, ...] | None = None

    @classmethod
    def from_json(cls, text: str | dict[str, Any]) -> Audience:
        data = json.loads(text) if isinstance(text, str) else text
        sites, languages = data.get("sites"), data.get("languages")
        return cls(None if sites is None else tuple(int(site) for site in sites),
                   None if languages is None else tuple(str(language) for language in languages))

    def to_json(self) -> str:
        return json.dumps({"sites": None if self.sites is None else list(self.sites),
                           "languages": None if self.languages is None else list(self.languages)})

    def where(self) -> tuple[str, list[object]]:
        """The users who are in it: subscribed, still reachable, and in the chosen mines and languages."""
        clauses, params = ["subscribed = 1", "reachable = 1"], []
        if self.sites is not None:
            clauses.append(f"site_id IN ({_marks(self.sites)})")
            params.extend(self.sites)
        if self.languages is not None:
            clauses.append(f"language IN ({_marks(self.languages)})")
            params.extend(self.languages)
        return " AND ".join(clauses), params


@dataclass(frozen=True, slots=True)
class Counters:
    total: int
    delivered: int
    blocked: int
    failed: int
    acknowledged: int

    @property
    def done(self) -> int:
        return self.delivered + self.blocked + self.failed

    @property
    def remaining(self) -> int:
        return self.total - self.done


@dataclass(frozen=True, slots=True)
class Campaign:
    id: int
    created_by: int
    state: str
    audience: Audience
    contents: dict[str, Any] = field(hash=False, compare=False)
    ack_button: bool
    send_at: datetime | None
    quiet_hours: str
    pause_reason: str | None
    created_at: datetime
    counters: Counters
    # The organizer's message that shows the progress, if one was sent.
    progress_chat_id: int | None = None
    progress_message_id: int | None = None
    # Set by the engine on the copy it hands to `send`: quiet hours with quiet_hours='silent'.
    silent_now: bool = False

    def content_for(self, language: str) -> dict[str, Any] | None:
        """The message in the subscriber's language, else the fallback (a language code or a message)."""
        content = self.contents.get(language)
        if content is None:
            fallback = self.contents.get("fallback")
            content = self.contents.get(fallback) if isinstance(fallback, str) else fallback
        return content


@dataclass(slots=True)
class OutboxRow:
    chat_id: int
    language: str
    attempts: int


class Outcome(NamedTuple):
    campaign_id: int
    chat_id: int
    state: str  # delivered | blocked | failed
    attempts: int


def _counters(row) -> Counters:
    return Counters(row["total"], row["delivered"], row["blocked"], row["failed"], row["acknowledged"])


def _campaign(row) -> Campaign:
    return Campaign(
        id=row["id"], created_by=row["created_by"], state=row["state"], audience=Audience.from_json(row["audience"]),
        contents=json.loads(row["contents"]), ack_button=bool(row["ack_button"]), send_at=parse_utc(row["send_at"]),
        quiet_hours=row["quiet_hours"], pause_reason=row["pause_reason"], created_at=parse_utc(row["created_at"]),
        counters=_counters(row), progress_chat_id=row["progress_chat_id"],
        progress_message_id=row["progress_message_id"],
    )


class CampaignRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- drafting and the audience -------------------------------------------------------------

    async def create(self, created_by: int, audience: Audience | str | dict[str, Any],
                     contents: dict[str, Any] | str, *, now: datetime, ack_button: bool = False,
                     send_at: datetime | None = None, quiet_hours: str = "none") -> int:
        """A draft; nothing is queued until `enqueue`."""
        if not isinstance(audience, Audience):
            audience = Audience.from_json(audience)
        if quiet_hours not in QUIET_HOURS:
            raise ValueError(f"quiet_hours must be one of {QUIET_HOURS}")
        contents_json = contents if isinstance(contents, str) else json.dumps(contents, ensure_ascii=False)
        return await self._db.execute(
            "INSERT INTO campaigns (created_by, audience, contents, ack_button, send_at, quiet_hours, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (created_by, audience.to_json(), contents_json, int(ack_button),
             None if send_at is None else utc_text(send_at), quiet_hours, utc_text(now)),
        )

    async def get(self, campaign_id: int) -> Campaign | None:
        if not storable(campaign_id):
            return None
        row = await self._db.fetchone("SELECT * FROM campaigns WHERE id = ?", (campaign_id,))
        return None if row is None else _campaign(row)

    async def recent(self, limit: int, offset: int = 0) -> list[Campaign]:
        """Newest first, for /campaigns."""
        rows = await self._db.fetchall("SELECT * FROM campaigns WHERE state != 'draft' ORDER BY id DESC LIMIT ? OFFSET ?",
                                       (limit, offset))
        return [_campaign(row) for row in rows]

    async def set_progress_message(self, campaign_id: int, chat_id: int, message_id: int) -> None:
        await self._db.execute("UPDATE campaigns SET progress_chat_id = ?, progress_message_id = ? WHERE id = ?",
                               (chat_id, message_id, campaign_id))

    async def counters(self, campaign_id: int) -> Counters | None:
        row = await self._db.fetchone(
            "SELECT total, delivered, blocked, failed, acknowledged FROM campaigns WHERE id = ?", (campaign_id,))
        return None if row is None else _counters(row)

    async def count_audience(self, audience: Audience | str | dict[str, Any]) -> int:
        """Counted live: subscriptions and blocks change until the campaign is enqueued."""
        if not isinstance(audience, Audience):
            audience = Audience.from_json(audience)
        where, params = audience.where()
        row = await self._db.fetchone(f"SELECT count(*) FROM users WHERE {where}", params)
        return int(row[0])

    async def schedule(self, campaign_id: int) -> bool:
        """A draft with a send time waits for it ('scheduled')."""
        return await self._db.execute_count(
            "UPDATE campaigns SET state = 'scheduled' WHERE id = ? AND state = 'draft' AND send_at IS NOT NULL",
            (campaign_id,)) > 0

    async def due(self, now: datetime) -> list[int]:
        rows = await self._db.fetchall(
            "SELECT id FROM campaigns WHERE state = 'scheduled' AND send_at <= ? ORDER BY send_at, id",
            (utc_text(now),))
        return [row[0] for row in rows]

    # --- the outbox ------------------------------------------------------------------------------

    async def enqueue(self, campaign_id: int) -> int | None:
        """One outbox row per recipient, the total and state 'sending', all in one transaction.
        Returns how many were queued, or None when the campaign was not a draft or scheduled
        (so a second call, or a race with the scheduler, queues nobody twice)."""
        async with self._db.transaction() as tx:
            row = await tx.fetchone("SELECT state, audience FROM campaigns WHERE id = ?", (campaign_id,))
            if row is None or row["state"] not in ("draft", "scheduled"):
                return None
            where, params = Audience.from_json(row["audience"]).where()
            total = await tx.execute_count(
                "INSERT INTO campaign_outbox (campaign_id, chat_id, language) "
                f"SELECT ?, user_id, language FROM users WHERE {where}",
                [campaign_id, *params])
            await tx.execute("UPDATE campaigns SET state = 'sending', total = ?, pause_reason = NULL WHERE id = ?",
                             (total, campaign_id))
            return total

    async def sending(self) -> list[int]:
        """Campaigns being sent, oldest first."""
        return [row[0] for row in await self._db.fetchall("SELECT id FROM campaigns WHERE state = 'sending' ORDER BY id")]

    async def claim(self, campaign_id: int, limit: int) -> list[OutboxRow]:
        """The next `limit` queued rows, marked 'sending' before anything is sent; nothing unless
        the campaign is still being sent."""
        async with self._db.transaction() as tx:
            rows = await tx.fetchall(
                "UPDATE campaign_outbox SET state = 'sending' "
                "WHERE campaign_id = ?1 AND chat_id IN ("
                "    SELECT chat_id FROM campaign_outbox WHERE campaign_id = ?1 AND state = 'queued' "
                "    ORDER BY chat_id LIMIT ?2) "
                "AND EXISTS (SELECT 1 FROM campaigns WHERE id = ?1 AND state = 'sending') "
                "RETURNING chat_id, language, attempts",
                (campaign_id, limit))
        return sorted((OutboxRow(row[0], row[1], row[2]) for row in rows), key=lambda row: row.chat_id)

    async def record(self, outcomes: Sequence[Outcome], released: Sequence[tuple[int, int]] = ()) -> None:
        """Outcomes with the campaigns' counters, users found blocked marked unreachable, and
        claimed rows that were never sent put back in the queue: one transaction."""
        if not outcomes and not released:
            return
        tallies: dict[int, list[int]] = {}
        for outcome in outcomes:
            tallies.setdefault(outcome.campaign_id, [0, 0, 0])[OUTCOMES.index(outcome.state)] += 1
        cancelled: set[int] = set()
        async with self._db.transaction() as tx:
            if outcomes:
                await tx.executemany(
                    "UPDATE campaign_outbox SET state = ?, attempts = ? WHERE campaign_id = ? AND chat_id = ?",
                    [(o.state, o.attempts, o.campaign_id, o.chat_id) for o in outcomes])
            for campaign_id, (delivered, blocked, failed) in tallies.items():
                row = await tx.fetchone(
                    "UPDATE campaigns SET delivered = delivered + ?, blocked = blocked + ?, failed = failed + ? "
                    "WHERE id = ? RETURNING state", (delivered, blocked, failed, campaign_id))
                if row is not None and row[0] == "cancelled":
                    cancelled.add(campaign_id)
            gone = [(o.chat_id,) for o in outcomes if o.state == "blocked"]
            if gone:
                await tx.executemany("UPDATE users SET reachable = 0 WHERE user_id = ?", gone)
            if released:
                await tx.executemany(
                    "UPDATE campaign_outbox SET state = 'queued' WHERE campaign_id = ? AND chat_id = ? AND state = 'sending'",
                    list(released))
                for campaign_id in {campaign_id for campaign_id, _ in released} - set(tallies):
                    row = await tx.fetchone("SELECT state FROM campaigns WHERE id = ?", (campaign_id,))
                    if row is not None and row[0] == "cancelled":
                        cancelled.add(campaign_id)
            # A campaign cancelled while these were in flight keeps only its totals.
            for campaign_id in cancelled:
                await tx.execute("DELETE FROM campaign_outbox WHERE campaign_id = ? AND state != 'sending'",
                                 (campaign_id,))

    async def remaining(self, campaign_id: int) -> int:
        row = await self._db.fetchone(
            "SELECT count(*) FROM campaign_outbox WHERE campaign_id = ? AND state IN ('queued', 'sending')",
            (campaign_id,))
        return int(row[0])

    async def queued(self, campaign_id: int) -> int:
        row = await self._db.fetchone(
            "SELECT count(*) FROM campaign_outbox WHERE campaign_id = ? AND state = 'queued'", (campaign_id,))
        return int(row[0])

    async def in_flight(self) -> int:
        """Rows in 'sending' over all campaigns (what a crash now could repeat)."""
        row = await self._db.fetchone("SELECT count(*) FROM campaign_outbox WHERE state = 'sending'")
        return int(row[0])

    async def recover(self) -> int:
        """At start-up, before sending: rows a crash left in 'sending' go back to the queue (they
        may have reached Telegram: that is the window for duplicates); leftovers of finished or
        cancelled campaigns are deleted. Returns how many rows were re-queued."""
        async with self._db.transaction() as tx:
            requeued = await tx.execute_count(
                "UPDATE campaign_outbox SET state = 'queued' WHERE campaign_id IN "
                "(SELECT id FROM campaigns WHERE state IN ('sending', 'paused')) AND state = 'sending'")
            await tx.execute(
                "DELETE FROM campaign_outbox WHERE campaign_id IN "
                "(SELECT id FROM campaigns WHERE state IN ('done', 'cancelled', 'draft', 'scheduled'))")
            return requeued

    # --- the organizer's controls ------------------------------------------------------------

    async def pause(self, campaign_id: int, reason: str) -> bool:
        return await self._db.execute_count(
            "UPDATE campaigns SET state = 'paused', pause_reason = ? WHERE id = ? AND state = 'sending'",
            (reason, campaign_id)) > 0

    async def resume(self, campaign_id: int) -> bool:
        return await self._db.execute_count(
            "UPDATE campaigns SET state = 'sending', pause_reason = NULL WHERE id = ? AND state = 'paused'",
            (campaign_id,)) > 0

    async def cancel(self, campaign_id: int) -> bool:
        """Queued rows are dropped; rows in flight get their outcome counted, then go too."""
        async with self._db.transaction() as tx:
            changed = await tx.execute_count(
                "UPDATE campaigns SET state = 'cancelled' WHERE id = ? "
                "AND state IN ('draft', 'scheduled', 'sending', 'paused')", (campaign_id,)) > 0
            if changed:
                await tx.execute("DELETE FROM campaign_outbox WHERE campaign_id = ? AND state != 'sending'",
                                 (campaign_id,))
            return changed

    async def finish(self, campaign_id: int) -> bool:
        """'done' and the outbox rows deleted (the totals stay), if nothing is left to send."""
        async with self._db.transaction() as tx:
            if await self.remaining(campaign_id):
                return False
            if not await tx.execute_count("UPDATE campaigns SET state = 'done' WHERE id = ? AND state = 'sending'",
                                          (campaign_id,)):
                return False
            await tx.execute("DELETE FROM campaign_outbox WHERE campaign_id = ?", (campaign_id,))
            return True

    async def acknowledge(self, campaign_id: int) -> bool:
        """Someone pressed the acknowledge button: a count only, never who. False for a draft's
        preview or an unknown campaign."""
        if not storable(campaign_id):
            return False
        return await self._db.execute_count(
            "UPDATE campaigns SET acknowledged = acknowledged + 1 WHERE id = ? AND ack_button = 1 "
            "AND state IN ('sending', 'paused', 'done', 'cancelled')", (campaign_id,)) > 0

    # --- what Telegram tells us about chats ----------------------------------------------------

    async def mark_unreachable(self, user_ids: Iterable[int]) -> None:
        """Blocked the bot, deleted, or no such chat (UserRepository.reachable_again undoes it)."""
        await self._db.executemany("UPDATE users SET reachable = 0 WHERE user_id = ?", [(uid,) for uid in user_ids])

    async def move_chat(self, campaign_id: int, old_chat_id: int, new_chat_id: int) -> bool:
        """The chat became a supergroup: its outbox row and subscriber follow the new id. False
        when the new id is already a recipient of this campaign (the old row is then dropped)."""
        async with self._db.transaction() as tx:
            await tx.execute("UPDATE OR IGNORE users SET user_id = ? WHERE user_id = ?", (new_chat_id, old_chat_id))
            if await tx.fetchone("SELECT 1 FROM campaign_outbox WHERE campaign_id = ? AND chat_id = ?",
                                 (campaign_id, new_chat_id)):
                await tx.execute("DELETE FROM campaign_outbox WHERE campaign_id = ? AND chat_id = ?",
                                 (campaign_id, old_chat_id))
                await tx.execute("UPDATE campaigns SET total = total - 1 WHERE id = ?", (campaign_id,))
                return False
            return await tx.execute_count(
                "UPDATE campaign_outbox SET chat_id = ? WHERE campaign_id = ? AND chat_id = ?",
                (new_chat_id, campaign_id, old_chat_id)) > 0
