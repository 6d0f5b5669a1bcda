"""Clearing the free text and photo references of cases closed long ago.

What stays is what statistics need: the case code, mine, category, urgency, status, the hour it
arrived and its timeline without free text. A case counts as closed from its latest status change
(the `at_hour` of its newest 'status' event), which is the change that closed it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.db import Database

_CHUNK = 500  # ids per statement, well below SQLite's limit on bound parameters


@dataclass(frozen=True, slots=True)
class PurgedCases:
    cases: int = 0
    photos: int = 0
    notes: int = 0


def _marks(values: Sequence[object]) -> str:
    return ",".join("?" * len(values))


class RetentionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def purge_closed_cases(self, closed_statuses: Sequence[str], closed_before_hour: str,
                                 marker: str) -> PurgedCases:
        """Replace description, place and every note of cases in `closed_statuses` whose last status
        change happened before `closed_before_hour` ("YYYY-MM-DDTHH:00Z", UTC) with `marker`, and
        delete their photo file ids. Cases already cleared are not touched again. One transaction;
        the WAL is checkpointed and truncated when it commits, and `secure_delete` (always on)
        zeroes the old text in the database file, so it does not linger on disk."""
        statuses = tuple(closed_statuses)
        if not statuses:
            return PurgedCases()
        async with self._db.transaction() as tx:
            rows = await tx.fetchall(
                f"SELECT r.id FROM reports r WHERE r.status IN ({_marks(statuses)}) "
                "AND (SELECT max(e.at_hour) FROM report_events e WHERE e.report_id = r.id AND e.kind = 'status') < ? "
                "AND (r.description != ? OR (r.location IS NOT NULL AND r.location != ?) "
                "OR EXISTS (SELECT 1 FROM report_photos p WHERE p.report_id = r.id) "
                "OR EXISTS (SELECT 1 FROM report_events e "
                "WHERE e.report_id = r.id AND e.note IS NOT NULL AND e.note != ?))",
                (*statuses, closed_before_hour, marker, marker, marker),
            )
            ids = [row[0] for row in rows]
            photos = notes = 0
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start:start + _CHUNK]
                photos += await tx.execute_count(
                    f"DELETE FROM report_photos WHERE report_id IN ({_marks(chunk)})", chunk)
                notes += await tx.execute_count(
                    f"UPDATE report_events SET note = ? WHERE report_id IN ({_marks(chunk)}) "
                    "AND note IS NOT NULL AND note != ?", (marker, *chunk, marker))
                await tx.execute(
                    "UPDATE reports SET description = ?, location = CASE WHEN location IS NULL THEN NULL ELSE ? END "
                    f"WHERE id IN ({_marks(chunk)})", (marker, marker, *chunk))
                # A closed case has no alert left to send; should one remain, it must not re-send the text.
                await tx.execute(f"DELETE FROM danger_alerts WHERE report_id IN ({_marks(chunk)})", chunk)
            if ids:
                tx.want_checkpoint()
        return PurgedCases(len(ids), photos, notes)
