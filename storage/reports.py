"""Hazard reports, their photos and their timeline."""

from __future__ import annotations

from dataclasses import dataclass

from storage import storable
from storage.db import Database


@dataclass(frozen=True, slots=True)
class NewReport:
    case_code: str
    receipt_hash: str
    site_id: int
    category: str
    severity: str
    location: str | None
    description: str
    language: str
    photo_file_ids: tuple[str, ...]
    created_hour: str


@dataclass(frozen=True, slots=True)
class StoredReport:
    id: int
    case_code: str
    receipt_hash: str
    site_id: int
    category: str
    severity: str
    status: str
    created_hour: str


@dataclass(frozen=True, slots=True)
class ReportEvent:
    status: str
    at_hour: str
    note: str | None
    kind: str = "status"
    actor_name: str | None = None
    at: str | None = None


@dataclass(frozen=True, slots=True)
class Case:
    """A report as a committee works on it."""

    id: int
    case_code: str
    site_id: int
    category: str
    severity: str
    location: str | None
    description: str
    status: str
    created_hour: str
    photo_file_ids: tuple[str, ...]


OPEN_STATUSES = ("received", "acknowledged", "in_progress", "escalated_employer", "escalated_inspection")


class ReportRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def case_code_taken(self, case_code: str) -> bool:
        return await self._db.fetchone("SELECT 1 FROM reports WHERE case_code = ?", (case_code,)) is not None

    async def add(self, report: NewReport) -> int:
        """Insert the report, its photos and its first timeline entry in one transaction."""
        async with self._db.transaction() as tx:
            report_id = await tx.execute(
                "INSERT INTO reports (case_code, receipt_hash, site_id, category, severity, location, "
                "description, language, status, created_hour) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'received', ?)",
                (
                    report.case_code,
                    report.receipt_hash,
                    report.site_id,
                    report.category,
                    report.severity,
                    report.location,
                    report.description,
                    report.language,
                    report.created_hour,
                ),
            )
            await tx.executemany(
                "INSERT INTO report_photos (report_id, position, file_id) VALUES (?, ?, ?)",
                [(report_id, position, file_id) for position, file_id in enumerate(report.photo_file_ids)],
            )
            await tx.execute(
                "INSERT INTO report_events (report_id, status, at_hour) VALUES (?, 'received', ?)",
                (report_id, report.created_hour),
            )
            if report.severity == "danger":
                await tx.execute("INSERT INTO danger_alerts (report_id) VALUES (?)", (report_id,))
        return report_id

    async def by_case_code(self, case_code: str) -> StoredReport | None:
        row = await self._db.fetchone(
            "SELECT id, case_code, receipt_hash, site_id, category, severity, status, created_hour "
            "FROM reports WHERE case_code = ?",
            (case_code,),
        )
        return StoredReport(**dict(row)) if row else None

    async def timeline(self, report_id: int) -> list[ReportEvent]:
        rows = await self._db.fetchall(
            "SELECT status, at_hour, note, kind, actor_name, at FROM report_events WHERE report_id = ? ORDER BY id",
            (report_id,),
        )
        return [ReportEvent(row["status"], row["at_hour"], row["note"], row["kind"], row["actor_name"], row["at"])
                for row in rows]

    async def ids_by_case_code(self, case_codes: list[str]) -> dict[str, int]:
        if not case_codes:
            return {}
        rows = await self._db.fetchall(
            f"SELECT case_code, id FROM reports WHERE case_code IN ({','.join('?' * len(case_codes))})", case_codes)
        return {row[0]: row[1] for row in rows}

    async def case(self, report_id: int) -> Case | None:
        if not storable(report_id):
            return None
        row = await self._db.fetchone(
            "SELECT id, case_code, site_id, category, severity, location, description, status, created_hour "
            "FROM reports WHERE id = ?",
            (report_id,),
        )
        if row is None:
            return None
        photos = await self._db.fetchall(
            "SELECT file_id FROM report_photos WHERE report_id = ? ORDER BY position", (report_id,)
        )
        return Case(**dict(row), photo_file_ids=tuple(photo[0] for photo in photos))

    async def cases(self, site_ids: list[int], statuses: tuple[str, ...], offset: int, limit: int) -> tuple[list[Case], int]:
        """A page of cases of these sites in these statuses, newest first, and how many there are in all."""
        if not site_ids:
            return [], 0
        where = (f"site_id IN ({','.join('?' * len(site_ids))}) AND status IN ({','.join('?' * len(statuses))})")
        params = [*site_ids, *statuses]
        total = (await self._db.fetchone(f"SELECT count(*) FROM reports WHERE {where}", params))[0]
        rows = await self._db.fetchall(
            "SELECT id, case_code, site_id, category, severity, location, description, status, created_hour "
            f"FROM reports WHERE {where} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [Case(**dict(row), photo_file_ids=()) for row in rows], total

    async def cases_page_since(self, site_ids: list[int], since_hour: str, after_id: int,
                               limit: int) -> list[tuple[Case, list[ReportEvent]]]:
        """The next `limit` cases (by id, after `after_id`) of these sites that arrived at or after
        `since_hour`, each with its photos and timeline: an export reads a period chunk by chunk
        (keyset pagination), so a year of a big mine is never in memory at once."""
        if not site_ids or limit <= 0:
            return []
        marks = ",".join("?" * len(site_ids))
        rows = await self._db.fetchall(
            "SELECT id, case_code, site_id, category, severity, location, description, status, created_hour "
            f"FROM reports WHERE site_id IN ({marks}) AND created_hour >= ? AND id > ? ORDER BY id LIMIT ?",
            [*site_ids, since_hour, after_id, limit],
        )
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        chunk = ",".join("?" * len(ids))
        photos = await self._db.fetchall(
            f"SELECT report_id, file_id FROM report_photos WHERE report_id IN ({chunk}) ORDER BY report_id, position",
            ids,
        )
        events = await self._db.fetchall(
            "SELECT report_id, status, at_hour, note, kind, actor_name, at FROM report_events "
            f"WHERE report_id IN ({chunk}) ORDER BY report_id, id",
            ids,
        )
        files: dict[int, list[str]] = {}
        for photo in photos:
            files.setdefault(photo["report_id"], []).append(photo["file_id"])
        timelines: dict[int, list[ReportEvent]] = {}
        for event in events:
            timelines.setdefault(event["report_id"], []).append(ReportEvent(
                event["status"], event["at_hour"], event["note"], event["kind"], event["actor_name"], event["at"]))
        return [(Case(**dict(row), photo_file_ids=tuple(files.get(row["id"], ()))), timelines.get(row["id"], []))
                for row in rows]

    async def change_status(self, report_id: int, status: str, actor_user_id: int, actor_name: str, at: str,
                            at_hour: str, note: str | None) -> None:
        async with self._db.transaction() as tx:
            await tx.execute("UPDATE reports SET status = ? WHERE id = ?", (status, report_id))
            await tx.execute(
                "INSERT INTO report_events (report_id, status, at_hour, note, kind, actor_user_id, actor_name, at) "
                "VALUES (?, ?, ?, ?, 'status', ?, ?, ?)",
                (report_id, status, at_hour, note, actor_user_id, actor_name, at),
            )
            # Any answer from the committee acknowledges a danger alert: no more escalation.
            await tx.execute("DELETE FROM danger_alerts WHERE report_id = ?", (report_id,))

    async def add_note(self, report_id: int, note: str, actor_user_id: int, actor_name: str, at: str,
                       at_hour: str) -> None:
        await self._db.execute(
            "INSERT INTO report_events (report_id, status, at_hour, note, kind, actor_user_id, actor_name, at) "
            "SELECT id, status, ?, ?, 'note', ?, ?, ? FROM reports WHERE id = ?",
            (at_hour, note, actor_user_id, actor_name, at, report_id),
        )

    async def add_reporter_message(self, report_id: int, text: str, at_hour: str) -> None:
        """From the anonymous reporter: no actor, only the hour."""
        await self._db.execute(
            "INSERT INTO report_events (report_id, status, at_hour, note, kind) "
            "SELECT id, status, ?, ?, 'reporter_message' FROM reports WHERE id = ?",
            (at_hour, text, report_id),
        )

    # --- danger alerts -------------------------------------------------------------------------

    async def alerts_in_state(self, state: str) -> list[int]:
        rows = await self._db.fetchall("SELECT report_id FROM danger_alerts WHERE state = ? ORDER BY report_id", (state,))
        return [row[0] for row in rows]

    async def set_alert_state(self, report_id: int, state: str) -> None:
        await self._db.execute("UPDATE danger_alerts SET state = ? WHERE report_id = ?", (state, report_id))
