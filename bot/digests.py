"""The committee's daily digest: what it says (DigestBuilder) and how it reaches every member and
group exactly once (DigestService).

A digest is *frozen* when it is due: the range of reports it covers, its text parts and its chart are
stored, one row per language, in one transaction. Delivery then sends part after part, recording
each one as soon as Telegram took it, so a crash resumes where it stopped. Only when every recipient
has everything does the committee's watermark move past those reports. A report that arrives after
the freeze has a higher id than the digest's `to_report_id` and goes into the next one.

The time is always passed in (`now`, timezone-aware); nothing here reads the clock or sleeps."""

from __future__ import annotations

import asyncio
import html
import logging
from bisect import bisect_left, bisect_right
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from babel.dates import format_date

from bot.charts import WeeklyCounts, draw_weekly_chart
from bot.config import Settings
from bot.hazards import CATEGORIES, SEVERITIES, STATUSES
from storage.db import Database
from storage.digests import DigestRepository, DigestToFreeze, FrozenDigest
from storage.roles import Recipient, RoleRepository
from storage.sites import SiteRepository

log = logging.getLogger(__name__)

CLOSED_STATUSES = ("resolved", "not_confirmed")
# Every other status is open (still needs the committee).
OPEN_STATUSES = tuple(status for status in STATUSES if status not in CLOSED_STATUSES)
# Telegram's limit is 4096 characters per message; the parts stay well below it.
PART_BUDGET = 3900
DESCRIPTION_CHARS = 200
LOCATION_CHARS = 120
SIMILAR_WINDOW = timedelta(days=7)
CHART_WEEKS = 8
SEPARATOR = " · "


class Send(Protocol):
    """Deliver one message to one chat: text (HTML) or a PNG photo.

    Returns True when the message was delivered, or can never be (the bot was blocked or removed
    from the group): either way it is not tried again. Returns False on a transient failure
    (network, flood limit, Telegram down): delivery stops and resumes at the next run."""

    def __call__(self, chat_id: int, text: str | None = None, photo_png: bytes | None = None) -> Awaitable[bool]: ...


# --- what a digest holds ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class NewCase:
    case_code: str
    category: str
    severity: str
    location: str | None
    description: str
    photos: int
    similar: int


@dataclass(frozen=True, slots=True)
class OverdueCase:
    case_code: str
    category: str
    status: str
    age_days: int
    unacknowledged: bool


@dataclass(frozen=True, slots=True)
class DigestContent:
    """Everything a digest says, in no language yet."""

    site_id: int
    site_names: dict[str, str]
    day: date
    from_report_id: int
    to_report_id: int
    new: tuple[NewCase, ...]
    overdue: tuple[OverdueCase, ...]
    open_counts: dict[str, int]
    weekly: WeeklyCounts | None


def _as_local(now: datetime, tz: ZoneInfo) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("`now` must be timezone-aware")
    return now.astimezone(tz)


def _hour_text(moment: datetime) -> str:
    """The shape of `reports.created_hour` ("YYYY-MM-DDTHH:00Z", here with the minutes), so that
    the strings compare as the times do."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _parse_hour(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)  # "…Z" is read as UTC


def shorten(text: str, limit: int) -> str:
    """Whitespace collapsed; at most `limit` characters, cut on a word boundary, with "…"."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit]
    space = cut.rfind(" ")
    if space >= limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,.;:-—") + "…"


def _esc(text: str) -> str:
    return html.escape(text, quote=False)


def _category(code: str) -> str:
    return _esc(str(CATEGORIES[code]) if code in CATEGORIES else code)


def _status(code: str) -> str:
    return _esc(str(STATUSES[code]) if code in STATUSES else code)


# --- splitting into messages -----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Piece:
    """A self-contained bit of HTML (every tag it opens, it closes), the separator before it when it
    does not start a message, and whether it must stay in the same message as the next piece."""

    text: str
    sep: str = "\n\n"
    keep_with_next: bool = False


def utf16_len(text: str) -> int:
    """Telegram counts message length in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _split(pieces: list[_Piece], budget: int, continuation: Callable[[int, int], str]) -> list[str]:
    """Pack pieces into messages of at most `budget` UTF-16 units, breaking only between pieces
    (and never right after a heading); messages after the first begin with `continuation(n, total)`."""
    reserve = utf16_len(continuation(999, 999)) + 2
    units: list[_Piece] = []
    group: list[_Piece] = []
    for piece in pieces:
        group.append(piece)
        if not piece.keep_with_next:
            joined = group[0].text + "".join(p.sep + p.text for p in group[1:])
            if len(group) > 1 and utf16_len(joined) > budget - reserve:
                units.extend(_Piece(p.text, p.sep) for p in group)  # too big to keep together after all
            else:
                units.append(_Piece(joined, group[0].sep))
            group = []
    if group:
        units.append(_Piece(group[0].text + "".join(p.sep + p.text for p in group[1:]), group[0].sep))
    parts: list[str] = []
    current: list[str] = []
    length = 0
    for unit in units:
        limit = budget if not parts else budget - reserve
        size = utf16_len(unit.text)
        if current and length + utf16_len(unit.sep) + size > limit:
            parts.append("".join(current))
            current, length = [], 0
        if current:
            current.append(unit.sep)
            length += utf16_len(unit.sep)
        current.append(unit.text)
        length += size
    parts.append("".join(current))
    total = len(parts)
    return [part if number == 1 else f"{continuation(number, total)}\n\n{part}" for number, part in enumerate(parts, 1)]


# --- building ----------------------------------------------------------------------------------------

class DigestBuilder:
    """Reads what a digest needs (`collect`, once per site) and writes it out in a language
    (`render`, `render_chart`). Stores nothing."""

    def __init__(
        self,
        digests: DigestRepository,
        sites: SiteRepository,
        i18n: I18n,
        *,
        timezone: ZoneInfo,
        overdue_acknowledge_hours: int,
        overdue_resolve_days: int,
    ) -> None:
        self._digests = digests
        self._sites = sites
        self._i18n = i18n
        self._tz = timezone
        self._acknowledge_within = timedelta(hours=overdue_acknowledge_hours)
        self._resolve_within = timedelta(days=overdue_resolve_days)
        self._acknowledge_hours = overdue_acknowledge_hours
        self._resolve_days = overdue_resolve_days

    async def collect(
        self, site_id: int, now: datetime, *, after_id: int | None = None, chart: bool | None = None
    ) -> DigestContent:
        """The digest of `site_id` for the day of `now` (in the time zone): new reports after
        `after_id` (default: what earlier digests covered) up to the newest one now. The chart
        comes on Mondays unless `chart` says otherwise."""
        day = _as_local(now, self._tz).date()
        if after_id is None:
            after_id = await self._digests.covered_up_to(site_id)
        to_id = max(after_id, await self._digests.max_report_id(site_id))
        site = await self._sites.get(site_id)
        names = dict(site.names) if site else {language: str(site_id) for language in ("kk", "ru", "en")}
        rows = await self._digests.new_reports(site_id, after_id, to_id) if to_id > after_id else []

        similar = await self._similar_counts(site_id, rows, to_id)
        new = tuple(
            NewCase(row.case_code, row.category, row.severity, row.location, row.description, row.photos, similar[row.id])
            for row in rows
        )
        weekly = await self._weekly(site_id, day) if (day.weekday() == 0 if chart is None else chart) else None
        return DigestContent(
            site_id=site_id,
            site_names=names,
            day=day,
            from_report_id=after_id,
            to_report_id=to_id,
            new=new,
            overdue=await self._overdue(site_id, now),
            open_counts=await self._digests.status_counts(site_id, OPEN_STATUSES),
            weekly=weekly,
        )

    async def _similar_counts(self, site_id: int, rows, to_id: int) -> dict[int, int]:
        """For each report: how many other reports of the site in its category were made within
        seven days of it (before or after), among those that existed when the digest was built."""
        if not rows:
            return {}
        hours = [_parse_hour(row.created_hour) for row in rows]
        nearby = await self._digests.report_hours(
            site_id, sorted({row.category for row in rows}),
            _hour_text(min(hours) - SIMILAR_WINDOW), _hour_text(max(hours) + SIMILAR_WINDOW), to_id,
        )
        by_category: dict[str, list[str]] = {}
        for category, created_hour, _id in nearby:
            by_category.setdefault(category, []).append(created_hour)
        for values in by_category.values():
            values.sort()
        counts = {}
        for row, hour in zip(rows, hours, strict=True):
            values = by_category.get(row.category, [])
            within = bisect_right(values, _hour_text(hour + SIMILAR_WINDOW)) - bisect_left(
                values, _hour_text(hour - SIMILAR_WINDOW))
            counts[row.id] = max(0, within - 1)  # not itself
        return counts

    async def _overdue(self, site_id: int, now: datetime) -> tuple[OverdueCase, ...]:
        received_before = _hour_text(now - self._acknowledge_within)
        rows = await self._digests.open_reports_created_before(
            site_id, OPEN_STATUSES, _hour_text(now - self._resolve_within), received_before
        )
        return tuple(
            OverdueCase(
                row.case_code, row.category, row.status,
                max(0, (now - _parse_hour(row.created_hour)) // timedelta(days=1)),
                row.status == "received" and row.created_hour < received_before,
            )
            for row in rows
        )

    async def _weekly(self, site_id: int, day: date) -> WeeklyCounts:
        """The last CHART_WEEKS whole weeks (Monday to Sunday, in the time zone) before `day`'s week."""
        monday = day - timedelta(days=day.weekday())
        weeks = tuple(monday - timedelta(weeks=CHART_WEEKS - index) for index in range(CHART_WEEKS))
        starts = [_hour_text(datetime.combine(week, time(), self._tz)) for week in weeks]
        end = _hour_text(datetime.combine(monday, time(), self._tz))
        counts: dict[str, list[int]] = {}
        for created_hour, category, count in await self._digests.counts_by_hour(site_id, starts[0], end):
            counts.setdefault(category, [0] * CHART_WEEKS)[bisect_right(starts, created_hour) - 1] += count
        return WeeklyCounts(weeks, {category: tuple(values) for category, values in counts.items()})

    # --- writing it out --------------------------------------------------------------------------

    def render(self, content: DigestContent, language: str, *, budget: int = PART_BUDGET) -> list[str]:
        """The digest's messages (HTML), each under `budget` UTF-16 units and valid on its own."""
        with self._i18n.context(), self._i18n.use_locale(language):
            site = _esc(content.site_names.get(language) or next(iter(content.site_names.values())))
            day = _esc(format_date(content.day, "full", locale=language))
            pieces = [_Piece("<b>{title}</b>\n{day}".format(
                title=_("Committee digest: {site}").format(site=site), day=day))]
            pieces += self._new_pieces(content)
            pieces += self._overdue_pieces(content)
            pieces += self._count_pieces(content)

            def continuation(number: int, total: int) -> str:
                # TRANSLATORS: the first line of the second, third… message of a long digest; {day} is a date.
                return "<i>{text}</i>".format(text=_("{site}, {day}: part {part} of {total}").format(
                    site=site, day=_esc(content.day.isoformat()), part=number, total=total))

            return _split(pieces, budget, continuation)

    def _new_pieces(self, content: DigestContent) -> list[_Piece]:
        if not content.new:
            return [_Piece(_("No new reports since the last digest."))]
        pieces = [_Piece("<b>{}</b>".format(_("New reports: {count}").format(count=len(content.new))), keep_with_next=True)]
        order = {code: index for index, code in enumerate(CATEGORIES)}
        for severity in [*SEVERITIES, *sorted({case.severity for case in content.new} - set(SEVERITIES))]:
            cases = sorted((case for case in content.new if case.severity == severity),
                           key=lambda case: order.get(case.category, len(order)))  # stable: ids stay in order
            if not cases:
                continue
            label = _esc(str(SEVERITIES[severity]) if severity in SEVERITIES else severity)
            # TRANSLATORS: a heading or a line of counts, e.g. "🔴 Danger to life right now: 3" or "In progress: 2".
            pieces.append(_Piece("<b>{}</b>".format(_("{label}: {count}").format(label=label, count=len(cases))),
                                 keep_with_next=True))
            pieces += [_Piece(self._case_html(case), "\n" if index == 0 else "\n\n") for index, case in enumerate(cases)]
        return pieces

    @staticmethod
    def _case_html(case: NewCase) -> str:
        lines = [f"<code>{_esc(case.case_code)}</code>{SEPARATOR}<b>{_category(case.category)}</b>"]
        if case.location and case.location.strip():
            lines.append(_("Where: {place}").format(place=_esc(shorten(case.location, LOCATION_CHARS))))
        lines.append(_esc(shorten(case.description, DESCRIPTION_CHARS)))
        facts = []
        if case.photos:
            facts.append(_("Photos: {count}").format(count=case.photos))
        if case.similar:
            # TRANSLATORS: other reports of the same hazard at the same mine within seven days of this one.
            facts.append(_("Similar reports this week: {count}").format(count=case.similar))
        if facts:
            lines.append(SEPARATOR.join(facts))
        return "\n".join(lines)

    def _overdue_pieces(self, content: DigestContent) -> list[_Piece]:
        if not content.overdue:
            return [_Piece(_("No overdue cases."))]
        pieces = [_Piece("<b>{}</b>".format(_("Overdue cases: {count}").format(count=len(content.overdue))),
                         keep_with_next=True)]
        unacknowledged = [case for case in content.overdue if case.unacknowledged]
        unresolved = [case for case in content.overdue if not case.unacknowledged]
        groups = (
            # TRANSLATORS: list headings; {hours} and {days} are the deadlines for acknowledging and resolving a case.
            (unacknowledged, _("Not acknowledged within {hours} h:").format(hours=self._acknowledge_hours), False),
            (unresolved, _("Not resolved within {days} d:").format(days=self._resolve_days), True),
        )
        first = True
        for cases, heading, with_status in groups:
            if not cases:
                continue
            pieces.append(_Piece(f"<i>{_esc(heading)}</i>", "\n" if first else "\n\n", keep_with_next=True))
            first = False
            for case in cases:
                fields = [f"<code>{_esc(case.case_code)}</code>", _category(case.category)]
                if with_status:
                    fields.append(_status(case.status))
                # TRANSLATORS: how long ago a case was reported, in days, short (a list line).
                fields.append(_("{days} d").format(days=case.age_days))
                pieces.append(_Piece(SEPARATOR.join(fields), "\n"))
        return pieces

    def _count_pieces(self, content: DigestContent) -> list[_Piece]:
        lines = ["<b>{}</b>".format(_esc(_("Open cases by status")))]
        for status in OPEN_STATUSES:
            if content.open_counts.get(status):
                lines.append(_("{label}: {count}").format(label=_status(status), count=content.open_counts[status]))
        total_open = sum(content.open_counts.values())
        lines.append(_("Total open: {count}").format(count=total_open) if total_open else _("No open cases."))
        lines.append(_("New reports: {count}").format(count=len(content.new)))
        return [_Piece("\n".join(lines))]

    async def render_chart(self, content: DigestContent, language: str) -> bytes | None:
        """The weekly chart in `language` (PNG), drawn in the file worker process (bot/file_worker.py);
        None without one, or when it cannot be drawn."""
        if content.weekly is None:
            return None
        name = content.site_names.get(language) or next(iter(content.site_names.values()))
        with self._i18n.context(), self._i18n.use_locale(language):
            try:
                # Its texts are translated here, in this language; the worker only draws.
                return await draw_weekly_chart(content.weekly, name, language)
            except Exception:  # the digest itself matters more than its picture: it goes without one
                log.exception("The weekly chart (%s) could not be drawn; the digest goes without it", language)
                return None


# --- freezing and delivering ---------------------------------------------------------------------

class DigestService:
    """Call `run_due(now)` at start-up, at DIGEST_TIME and every few minutes after (to retry
    deliveries): it freezes the digests that are due and delivers whatever is not delivered yet."""

    def __init__(
        self,
        db: Database,
        i18n: I18n,
        send: Send | Callable[..., Awaitable[bool]],
        *,
        timezone: str | ZoneInfo = "Asia/Almaty",
        digest_time: str | time = "08:00",
        overdue_acknowledge_hours: int = 24,
        overdue_resolve_days: int = 14,
        sites: SiteRepository | None = None,
    ) -> None:
        self._tz = ZoneInfo(timezone) if isinstance(timezone, str) else timezone
        self._at = time.fromisoformat(digest_time) if isinstance(digest_time, str) else digest_time
        self._digests = DigestRepository(db)
        self._roles = RoleRepository(db)
        self._default_language = i18n.default_locale  # of members who never chose one
        self._send = send
        self._lock = asyncio.Lock()
        self.builder = DigestBuilder(
            self._digests, sites or SiteRepository(db), i18n, timezone=self._tz,
            overdue_acknowledge_hours=overdue_acknowledge_hours, overdue_resolve_days=overdue_resolve_days,
        )

    @classmethod
    def from_settings(cls, db: Database, i18n: I18n, send: Send, settings: Settings,
                      sites: SiteRepository | None = None) -> DigestService:
        return cls(db, i18n, send, timezone=settings.tz, digest_time=settings.digest_time,
                   overdue_acknowledge_hours=settings.overdue_acknowledge_hours,
                   overdue_resolve_days=settings.overdue_resolve_days, sites=sites)

    def due_day(self, now: datetime) -> date | None:
        """Today's date in the time zone once today's DIGEST_TIME has come, else None."""
        local = _as_local(now, self._tz)
        return local.date() if local.time() >= self._at else None

    async def run_due(self, now: datetime) -> None:
        async with self._lock:
            day = self.due_day(now)
            if day is not None:
                for site_id in await self._digests.committee_sites():
                    try:
                        await self._freeze_if_due(site_id, day, now)
                    except Exception:
                        log.exception("The digest of site %d could not be built; retrying at the next run", site_id)
            await self._deliver_all()

    async def preview(self, site_id: int, language: str, now: datetime) -> list[str]:
        """The next digest of this site as it would read now; nothing stored, no watermark moved."""
        content = await self.builder.collect(site_id, now, chart=False)
        return self.builder.render(content, language)

    async def _freeze_if_due(self, site_id: int, day: date, now: datetime) -> None:
        day_text = day.isoformat()
        watermark = await self._digests.watermark(site_id)
        if watermark.last_digest_on is not None and watermark.last_digest_on >= day_text:
            return
        if await self._digests.has_digest_on(site_id, day_text):
            return
        languages = sorted({recipient.language
                            for recipient in await self._roles.committee_recipients(site_id, self._default_language)})
        if not languages:
            return
        from_id = await self._digests.covered_up_to(site_id)
        content = await self.builder.collect(site_id, now, after_id=from_id)
        frozen = [
            DigestToFreeze(language, self.builder.render(content, language), await self.builder.render_chart(content, language))
            for language in languages
        ]
        if await self._digests.freeze(site_id, day_text, from_id, content.to_report_id, frozen):
            log.info("Digest of site %d for %s frozen: %d new reports, %s", site_id, day_text, len(content.new),
                     ", ".join(f"{d.language}: {len(d.parts)} parts" for d in frozen))

    async def _deliver_all(self) -> None:
        for digest in await self._digests.sending():
            if not await self._deliver(digest):
                log.info("Digest delivery paused by a transient failure; it resumes at the next run")
                return

    def _items(self, digest: FrozenDigest) -> list[tuple[int, str | None, bytes | None]]:
        items: list[tuple[int, str | None, bytes | None]] = [(index, text, None) for index, text in enumerate(digest.parts)]
        if digest.chart is not None:
            items.append((len(digest.parts), None, digest.chart))
        return items

    async def _recipients(self, digest: FrozenDigest) -> list[Recipient]:
        """Recipients as of now. Someone whose language has no digest that day (they changed it, or
        joined after the freeze) gets the one in the bot's default language, or else any."""
        languages = await self._digests.languages_on(digest.site_id, digest.digest_on)
        fallback = self._default_language if self._default_language in languages else min(languages)
        return [
            recipient for recipient in await self._roles.committee_recipients(digest.site_id, self._default_language)
            if recipient.language == digest.language
            or (recipient.language not in languages and digest.language == fallback)
        ]

    async def _deliver(self, digest: FrozenDigest) -> bool:
        done = await self._digests.delivered_parts(digest.id)
        items = self._items(digest)
        for recipient in await self._recipients(digest):
            for part, text, photo in items:
                if (recipient.chat_id, part) in done:
                    continue
                if not await self._send(recipient.chat_id, text=text, photo_png=photo):
                    return False
                await self._digests.record_delivery(digest.id, recipient.chat_id, part)
        if await self._digests.mark_delivered(digest.id):
            log.info("Digests of site %d for %s delivered", digest.site_id, digest.digest_on)
        return True
