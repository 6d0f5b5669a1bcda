"""The committees' daily digests: what goes into one (queries over reports), and the frozen digests
with their delivery records and each committee's watermark.

Nothing here reads or writes anything about who reported: reports have no such column."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Database


@dataclass(frozen=True, slots=True)
class Watermark:
    last_report_id: int
    last_digest_on: str | None


@dataclass(frozen=True, slots=True)
class NewReportRow:
    id: int
    case_code: str
    category: str
    severity: str
    location: str | None
    description: str
    created_hour: str
    photos: int


@dataclass(frozen=True, slots=True)
class OpenReportRow:
    id: int
    case_code: str
    category: str
    status: str
    created_hour: str


@dataclass(frozen=True, slots=True)
class FrozenDigest:
    id: int
    site_id: int
    digest_on: str
    from_report_id: int
    to_report_id: int
    language: str
    parts: tuple[str, ...]
    chart: bytes | None
    state: str


@dataclass(frozen=True, slots=True)
class DigestToFreeze:
    language: str
    parts: Sequence[str]
    chart: bytes | None


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


class DigestRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- committees and their recipients ------------------------------------------------------

    async def committee_sites(self) -> list[int]:
        """Sites that have a committee: at least one member or one bound group."""
        rows = await self._db.fetchall(
            "SELECT site_id FROM roles WHERE role = 'committee' AND site_id IS NOT NULL "
            "UNION SELECT site_id FROM committee_chats ORDER BY 1"
        )
        return [row[0] for row in rows]

    # --- watermark and frozen digests ---------------------------------------------------------

    async def watermark(self, site_id: int) -> Watermark:
        row = await self._db.fetchone(
            "SELECT last_report_id, last_digest_on FROM digest_watermarks WHERE site_id = ?", (site_id,)
        )
        return Watermark(row["last_report_id"], row["last_digest_on"]) if row else Watermark(0, None)

    async def covered_up_to(self, site_id: int) -> int:
        """The newest report id already given to a digest of this site: the watermark (delivered)
        or a digest frozen but still being delivered, whichever is further."""
        row = await self._db.fetchone(
            "SELECT max(COALESCE((SELECT last_report_id FROM digest_watermarks WHERE site_id = ?), 0), "
            "COALESCE((SELECT max(to_report_id) FROM digests WHERE site_id = ?), 0))",
            (site_id, site_id),
        )
        return int(row[0])

    async def has_digest_on(self, site_id: int, day: str) -> bool:
        row = await self._db.fetchone("SELECT 1 FROM digests WHERE site_id = ? AND digest_on = ? LIMIT 1", (site_id, day))
        return row is not None

    async def freeze(
        self, site_id: int, day: str, from_report_id: int, to_report_id: int, digests: Sequence[DigestToFreeze]
    ) -> bool:
        """Store the digests of one site and day in one transaction. Refuses (False) when the site
        already has a digest for that day, or when another digest took reports since
        `from_report_id` was read: the caller then simply builds again at its next run."""
        async with self._db.transaction() as tx:
            if await self.has_digest_on(site_id, day):
                return False
            watermark = await self.watermark(site_id)
            if watermark.last_digest_on is not None and watermark.last_digest_on >= day:
                return False
            if await self.covered_up_to(site_id) != from_report_id:
                return False
            for digest in digests:
                await tx.execute(
                    "INSERT INTO digests (site_id, digest_on, from_report_id, to_report_id, language, parts, chart) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (site_id, day, from_report_id, to_report_id, digest.language,
                     json.dumps(list(digest.parts), ensure_ascii=False), digest.chart),
                )
        return True

    async def sending(self) -> list[FrozenDigest]:
        rows = await self._db.fetchall("SELECT * FROM digests WHERE state = 'sending' ORDER BY id")
        return [
            FrozenDigest(row["id"], row["site_id"], row["digest_on"], row["from_report_id"], row["to_report_id"],
                         row["language"], tuple(json.loads(row["parts"])), row["chart"], row["state"])
            for row in rows
        ]

    async def languages_on(self, site_id: int, day: str) -> set[str]:
        rows = await self._db.fetchall("SELECT language FROM digests WHERE site_id = ? AND digest_on = ?", (site_id, day))
        return {row[0] for row in rows}

    async def delivered_parts(self, digest_id: int) -> set[tuple[int, int]]:
        rows = await self._db.fetchall("SELECT chat_id, part FROM digest_deliveries WHERE digest_id = ?", (digest_id,))
        return {(row[0], row[1]) for row in rows}

    async def record_delivery(self, digest_id: int, chat_id: int, part: int) -> None:
        await self._db.execute(
            "INSERT OR IGNORE INTO digest_deliveries (digest_id, chat_id, part) VALUES (?, ?, ?)",
            (digest_id, chat_id, part),
        )

    async def mark_delivered(self, digest_id: int) -> bool:
        """The digest reached everyone. Its copy of the text and chart is dropped (the reports
        themselves stay where they are). When this was the last of its site's digests of that day,
        the watermark moves past its reports, in the same transaction. True if it moved."""
        async with self._db.transaction() as tx:
            row = await tx.fetchone("SELECT site_id, digest_on FROM digests WHERE id = ?", (digest_id,))
            if row is None:
                return False
            site_id, day = row["site_id"], row["digest_on"]
            await tx.execute(
                "UPDATE digests SET state = 'delivered', parts = '[]', chart = NULL WHERE id = ?", (digest_id,)
            )
            still = await tx.fetchone(
                "SELECT 1 FROM digests WHERE site_id = ? AND digest_on = ? AND state = 'sending' LIMIT 1",
                (site_id, day),
            )
            if still is not None:
                return False
            await tx.execute(
                "INSERT INTO digest_watermarks (site_id, last_report_id, last_digest_on) "
                "SELECT ?, max(to_report_id), ? FROM digests WHERE site_id = ? AND digest_on = ? "
                "ON CONFLICT (site_id) DO UPDATE SET "
                "last_report_id = max(last_report_id, excluded.last_report_id), "
                "last_digest_on = max(COALESCE(last_digest_on, ''), excluded.last_digest_on)",
                (site_id, day, site_id, day),
            )
        return True

    # --- what goes into a digest --------------------------------------------------------------

    async def max_report_id(self, site_id: int) -> int:
        row = await self._db.fetchone("SELECT max(id) FROM reports WHERE site_id = ?", (site_id,))
        return int(row[0] or 0)

    async def new_reports(self, site_id: int, after_id: int, up_to_id: int) -> list[NewReportRow]:
        rows = await self._db.fetchall(
            "SELECT r.id, r.case_code, r.category, r.severity, r.location, r.description, r.created_hour, "
            "(SELECT count(*) FROM report_photos p WHERE p.report_id = r.id) AS photos "
            "FROM reports r WHERE r.site_id = ? AND r.id > ? AND r.id <= ? ORDER BY r.id",
            (site_id, after_id, up_to_id),
        )
        return [NewReportRow(**dict(row)) for row in rows]

    async def report_hours(
        self, site_id: int, categories: Sequence[str], from_hour: str, to_hour: str, up_to_id: int
    ) -> list[tuple[str, str, int]]:
        """(category, created_hour, id) of the site's reports in these categories with
        from_hour ≤ created_hour ≤ to_hour, among those that existed up to `up_to_id`."""
        if not categories:
            return []
        # Without statistics the planner would prefer (site_id, category, id) and read every report
        # of the mine in those categories; the hour range is far narrower.
        rows = await self._db.fetchall(
            "SELECT category, created_hour, id FROM reports INDEXED BY reports_by_site_hour "
            f"WHERE site_id = ? AND created_hour BETWEEN ? AND ? AND category IN ({_marks(categories)}) AND id <= ?",
            (site_id, from_hour, to_hour, *categories, up_to_id),
        )
        return [(row[0], row[1], row[2]) for row in rows]

    async def open_reports_created_before(
        self, site_id: int, open_statuses: Sequence[str], before: str, received_before: str
    ) -> list[OpenReportRow]:
        """Reports in one of the open statuses created before `before`, or still 'received' and
        created before `received_before`; oldest first. Naming the open statuses (rather than
        excluding the closed ones) lets SQLite visit only open reports, a few among thousands."""
        if not open_statuses:
            return []
        rows = await self._db.fetchall(
            "SELECT id, case_code, category, status, created_hour FROM reports INDEXED BY reports_by_status "
            f"WHERE site_id = ? AND status IN ({_marks(open_statuses)}) "
            "AND (created_hour < ? OR (status = 'received' AND created_hour < ?)) ORDER BY created_hour, id",
            (site_id, *open_statuses, before, received_before),
        )
        return [OpenReportRow(**dict(row)) for row in rows]

    async def status_counts(self, site_id: int, statuses: Sequence[str]) -> dict[str, int]:
        """How many of the site's reports are in each of these statuses (absent: none)."""
        if not statuses:
            return {}
        rows = await self._db.fetchall(
            f"SELECT status, count(*) FROM reports WHERE site_id = ? AND status IN ({_marks(statuses)}) GROUP BY status",
            (site_id, *statuses),
        )
        return {row[0]: row[1] for row in rows}

    async def counts_by_hour(self, site_id: int, from_hour: str, before_hour: str) -> list[tuple[str, str, int]]:
        """(created_hour, category, count) of the site's reports with from_hour ≤ created_hour < before_hour."""
        rows = await self._db.fetchall(
            "SELECT created_hour, category, count(*) FROM reports INDEXED BY reports_by_site_hour "
            "WHERE site_id = ? AND created_hour >= ? AND created_hour < ? GROUP BY created_hour, category",
            (site_id, from_hour, before_hour),
        )
        return [(row[0], row[1], row[2]) for row in rows]
