"""Hazard reports, their photos and their timeline."""

from __future__ import annotations

from dataclasses import dataclass

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
            "SELECT status, at_hour, note FROM report_events WHERE report_id = ? ORDER BY id", (report_id,)
        )
        return [ReportEvent(row["status"], row["at_hour"], row["note"]) for row in rows]
