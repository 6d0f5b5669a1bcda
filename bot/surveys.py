"""Running psychosocial surveys: launching with an invitation, one anonymous answer set per person,
closing (which destroys what links answers to people), and results for groups large enough.

Who answered is known only as HMAC-SHA256(per-survey secret, user id), kept only while the survey
is open and in a table that shares nothing with the answers. Closing deletes the secret, every
hash and every unfinished answer set; after that, nothing in the database is derived from a user id.
Results are shown only for closed surveys: comparing results before and after one person's answer
would reveal that answer, and after closing no more answers come.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _

from bot.access import AccessService, NotAllowed
from bot.announcements import AnnouncementService, Draft
from bot.config import LOCALES
from bot.instruments import Instrument, load_instruments, personal_result, questions, score
from bot.survey_report import draw_results_chart, make_results_xlsx
from bot.survey_results import WORK_AREAS, AnswerSet, aggregate
from storage.campaigns import Audience
from storage.db import Database
from storage.fsm import SQLiteStorage
from storage.sites import SiteRepository
from storage.surveys import Response, Survey, SurveyRepository

log = logging.getLogger(__name__)

SECONDS_PER_QUESTION = 12  # a tired miner on a phone: read, think, tap
DURATIONS_DAYS = (7, 14, 30)


class SurveyUnavailable(Exception):
    """Why this person cannot answer now: 'closed', 'not_open' or 'answered'."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ResultFiles:
    survey: Survey
    instrument: Instrument
    chart_png: bytes
    xlsx: bytes


def minutes_needed(instrument: Instrument) -> int:
    return max(1, math.ceil((len(instrument.items) + 1) * SECONDS_PER_QUESTION / 60))


class SurveyService:
    def __init__(self, db: Database, repo: SurveyRepository, storage: SQLiteStorage, sites: SiteRepository,
                 access: AccessService, announcements: AnnouncementService, i18n: I18n, *,
                 instruments: Mapping[str, Instrument] | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._db = db
        self.repo = repo
        self._storage = storage
        self._sites = sites
        self._access = access
        self._announcements = announcements
        self._i18n = i18n
        self.instruments = instruments or load_instruments()
        self._clock = clock

    # --- launching ---------------------------------------------------------------------------

    async def launchable_sites(self, user_id: int) -> set[int] | None:
        """None: any mine (organizers); else the committee's own mines (empty: not allowed)."""
        if await self._access.is_organizer(user_id):
            return None
        return await self._access.committee_sites(user_id)

    async def launch(self, user_id: int, instrument_id: str, sites: list[int] | None, opens_at: datetime | None,
                     days: int, *, languages: list[str] | None = None) -> Survey:
        """Create the survey and send (or schedule) its invitation with a Start button."""
        allowed = await self.launchable_sites(user_id)
        if allowed is not None and (not allowed or not sites or not set(sites) <= allowed):
            raise NotAllowed
        if instrument_id not in self.instruments or days not in DURATIONS_DAYS:
            raise ValueError("unknown instrument or duration")
        now = self._clock()
        opens_at = opens_at if opens_at and opens_at > now else now
        audience = Audience(tuple(sorted(sites)) if sites else None,
                            tuple(code for code in LOCALES if code in languages) if languages else None)
        survey_id = await self.repo.create(instrument_id, user_id, audience, opens_at, opens_at + timedelta(days=days),
                                           now, secrets.token_bytes(32))
        draft = Draft(sites=list(audience.sites) if audience.sites else None,
                      languages=list(audience.languages) if audience.languages else None,
                      versions=self._invitations(self.instruments[instrument_id], opens_at + timedelta(days=days)),
                      quiet_hours="hold", send_at=opens_at.isoformat() if opens_at > now else None)
        campaign = await self._announcements.confirm(user_id, draft, survey_id=survey_id)
        await self.repo.set_campaign(survey_id, campaign.id)
        log.info("Survey %d (%s) launched", survey_id, instrument_id)
        return await self.repo.get(survey_id)

    def _invitations(self, instrument: Instrument, closes_at: datetime) -> dict[str, dict]:
        versions = {}
        for language in LOCALES:
            with self._i18n.context(), self._i18n.use_locale(language):
                text = _("📋 The union asks for your view: {title}\n\n{minutes} min, anonymous: nobody, not the union "
                         "and not the employer, can see who answered what. Open until {closes}.").format(
                    title=instrument.title.get(language), minutes=minutes_needed(instrument),
                    closes=closes_at.astimezone(self._announcements.tz).strftime("%d.%m.%Y"))
            versions[language] = {"text": text, "entities": [], "photo": None}
        versions["fallback"] = versions[self._i18n.default_locale]
        return versions

    # --- answering ---------------------------------------------------------------------------

    def _taker(self, secret: bytes, user_id: int) -> bytes:
        return hmac.new(secret, str(user_id).encode(), hashlib.sha256).digest()

    async def open_survey(self, survey_id: int, user_id: int) -> tuple[Survey, Instrument]:
        """The survey if this person may answer it now; SurveyUnavailable says why not."""
        survey = await self.repo.get(survey_id)
        now = self._clock()
        if survey is None or survey.state != "open" or now >= survey.closes_at:
            raise SurveyUnavailable("closed")
        if now < survey.opens_at:
            raise SurveyUnavailable("not_open")
        secret = await self.repo.secret(survey_id)
        if secret is None or await self.repo.has_answered(survey_id, self._taker(secret, user_id)):
            raise SurveyUnavailable("answered" if secret is not None else "closed")
        return survey, self.instruments[survey.instrument]

    async def group_sites(self, survey: Survey) -> list[int] | None:
        """The mines to choose from in the first question (None: all, by region)."""
        return list(survey.audience.sites) if survey.audience.sites else None

    async def submit(self, survey_id: int, user_id: int, site_id: int, work_area: str,
                     answers: Mapping[str, str | None], language: str) -> str | None:
        """Store the answer set with its group only; returns the personal WHO-5 result to show, if any."""
        survey, instrument = await self.open_survey(survey_id, user_id)
        if work_area not in WORK_AREAS or await self._sites.get(site_id) is None or (
                survey.audience.sites and site_id not in survey.audience.sites):
            raise ValueError("bad group")
        known = {item.id: item for item in instrument.items}
        clean: dict[str, str | None] = {}
        for item_id, option_id in answers.items():
            if item_id not in known:
                raise ValueError("unknown item")
            if option_id is not None:
                known[item_id].option_set.option(option_id)  # KeyError for a forged option
            clean[item_id] = option_id
        secret = await self.repo.secret(survey_id)
        if secret is None:
            raise SurveyUnavailable("closed")
        if not await self.repo.submit(survey_id, self._taker(secret, user_id), Response(site_id, work_area, clean)):
            raise SurveyUnavailable("answered")
        return personal_result(instrument, score(instrument, clean), language)

    def questions(self, instrument: Instrument, language: str):
        return questions(instrument, language)

    # --- closing -----------------------------------------------------------------------------

    async def close_due(self) -> list[int]:
        closed = []
        for survey_id in await self.repo.due_to_close(self._clock()):
            await self.close(survey_id)
            closed.append(survey_id)
        return closed

    async def close(self, survey_id: int) -> None:
        """The secret, the taker hashes and unfinished answer sets go in one transaction; the
        invitation stops going out."""
        survey = await self.repo.get(survey_id)
        async with self._db.transaction():
            await self.repo.close(survey_id)
            await self._storage.forget_survey(survey_id)
        if survey is not None and survey.campaign_id is not None:
            await self._announcements.engine.cancel(survey.campaign_id)
        log.info("Survey %d closed; nothing links its answers to people any more", survey_id)

    # --- results -----------------------------------------------------------------------------

    async def visible_sites(self, user_id: int) -> set[int] | None:
        """None: all mines (organizers); a committee sees its own mines' groups and the totals."""
        if await self._access.is_organizer(user_id):
            return None
        sites = await self._access.committee_sites(user_id)
        if not sites:
            raise NotAllowed
        return sites

    async def surveys_for(self, user_id: int, limit: int = 10) -> list[Survey]:
        visible = await self.visible_sites(user_id)
        surveys = await self.repo.recent(limit * 3)
        return [survey for survey in surveys
                if visible is None or survey.audience.sites is None or set(survey.audience.sites) & visible][:limit]

    async def results(self, user_id: int, survey_id: int, language: str) -> ResultFiles:
        visible = await self.visible_sites(user_id)
        survey = await self.repo.get(survey_id)
        if survey is None or (visible is not None and survey.audience.sites is not None
                              and not set(survey.audience.sites) & visible):
            raise NotAllowed
        if survey.state != "closed":
            raise SurveyUnavailable("not_closed")
        instrument = self.instruments[survey.instrument]
        responses = await self.repo.responses(survey_id)
        # Computed once over every answer set, then only the requester's columns are shown: a
        # separately suppressed table per committee could be combined with another to undo it.
        results = aggregate(instrument, [AnswerSet((r.site_id, r.work_area), score(instrument, r.answers))
                                         for r in responses])
        names = {site_id: site.name(language) for site_id in results.sites
                 if (site := await self._sites.get(site_id)) is not None}
        with self._i18n.context(), self._i18n.use_locale(language):
            chart = await draw_results_chart(instrument, results, names, language, visible)  # in the file worker
            workbook = await make_results_xlsx([(instrument, results)], names, language, visible)  # likewise
        return ResultFiles(survey, instrument, chart, workbook)
