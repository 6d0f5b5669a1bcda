"""Surveys: their schedule, the keyed hashes of who already answered (only while open), and the
anonymous answer sets (group only)."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import datetime

from storage import storable
from storage.campaigns import Audience, parse_utc, utc_text
from storage.db import Database


@dataclass(frozen=True, slots=True)
class Survey:
    id: int
    instrument: str
    created_by: int
    audience: Audience
    opens_at: datetime
    closes_at: datetime
    state: str
    campaign_id: int | None

    def is_open(self, now: datetime) -> bool:
        return self.state == "open" and self.opens_at <= now < self.closes_at


@dataclass(frozen=True, slots=True)
class Response:
    site_id: int
    work_area: str
    answers: dict[str, str | None]


def _survey(row) -> Survey:
    return Survey(row["id"], row["instrument"], row["created_by"], Audience.from_json(row["audience"]),
                  parse_utc(row["opens_at"]), parse_utc(row["closes_at"]), row["state"], row["campaign_id"])


class SurveyRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, instrument: str, created_by: int, audience: Audience, opens_at: datetime,
                     closes_at: datetime, now: datetime, secret: bytes) -> int:
        return await self._db.execute(
            "INSERT INTO surveys (instrument, created_by, audience, opens_at, closes_at, secret, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (instrument, created_by, audience.to_json(), utc_text(opens_at), utc_text(closes_at), secret,
             utc_text(now)))

    async def set_campaign(self, survey_id: int, campaign_id: int) -> None:
        await self._db.execute("UPDATE surveys SET campaign_id = ? WHERE id = ?", (campaign_id, survey_id))

    async def get(self, survey_id: int) -> Survey | None:
        if not storable(survey_id):
            return None
        row = await self._db.fetchone("SELECT * FROM surveys WHERE id = ?", (survey_id,))
        return None if row is None else _survey(row)

    async def recent(self, limit: int) -> list[Survey]:
        return [_survey(row) for row in await self._db.fetchall("SELECT * FROM surveys ORDER BY id DESC LIMIT ?",
                                                                (limit,))]

    async def secret(self, survey_id: int) -> bytes | None:
        row = await self._db.fetchone("SELECT secret FROM surveys WHERE id = ? AND state = 'open'", (survey_id,))
        return None if row is None else row["secret"]

    async def has_answered(self, survey_id: int, taker: bytes) -> bool:
        return await self._db.fetchone("SELECT 1 FROM survey_takers WHERE survey_id = ? AND taker = ?",
                                       (survey_id, taker)) is not None

    async def submit(self, survey_id: int, taker: bytes, response: Response) -> bool:
        """The taker's hash and the answer set in one transaction; False (nothing written) when this
        taker already answered or the survey is closed. The two rows share nothing."""
        async with self._db.transaction() as tx:
            if await tx.fetchone("SELECT 1 FROM surveys WHERE id = ? AND state = 'open'", (survey_id,)) is None:
                return False
            inserted = await tx.execute_count(
                "INSERT OR IGNORE INTO survey_takers (survey_id, taker) VALUES (?, ?)", (survey_id, taker))
            if not inserted:
                return False
            await tx.execute(
                "INSERT INTO survey_responses (survey_id, id, site_id, work_area, answers) VALUES (?, ?, ?, ?, ?)",
                (survey_id, secrets.token_bytes(16), response.site_id, response.work_area,
                 json.dumps(response.answers, sort_keys=True, separators=(",", ":"))))
            return True

    async def due_to_close(self, now: datetime) -> list[int]:
        rows = await self._db.fetchall("SELECT id FROM surveys WHERE state = 'open' AND closes_at <= ?",
                                       (utc_text(now),))
        return [row[0] for row in rows]

    async def close(self, survey_id: int) -> bool:
        """Closed for good: the secret and every taker hash are deleted (with the unfinished answer
        sets, see SQLiteStorage.forget_survey, in the caller's transaction)."""
        async with self._db.transaction() as tx:
            tx.want_checkpoint()  # deleted hashes must not linger in the WAL
            closed = await tx.execute_count(
                "UPDATE surveys SET state = 'closed', secret = NULL WHERE id = ? AND state = 'open'", (survey_id,))
            await tx.execute("DELETE FROM survey_takers WHERE survey_id = ?", (survey_id,))
            return closed > 0

    async def responses(self, survey_id: int) -> list[Response]:
        rows = await self._db.fetchall(
            "SELECT site_id, work_area, answers FROM survey_responses WHERE survey_id = ?", (survey_id,))
        return [Response(row["site_id"], row["work_area"], json.loads(row["answers"])) for row in rows]

    async def count_responses(self, survey_id: int) -> int:
        row = await self._db.fetchone("SELECT count(*) FROM survey_responses WHERE survey_id = ?", (survey_id,))
        return int(row[0])

    async def taker_count(self) -> int:
        """Taker hashes over all surveys (a closed survey has none)."""
        row = await self._db.fetchone("SELECT count(*) FROM survey_takers")
        return int(row[0])
