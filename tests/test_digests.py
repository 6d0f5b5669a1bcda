"""The committee's daily digest: what it says, and delivery without gaps or repeats."""

from __future__ import annotations

import html
import itertools
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.digests import PART_BUDGET, DigestService, shorten, utf16_len
from bot.hazards import CATEGORIES, SEVERITIES
from bot.i18n import build_i18n
from bot.sites import seed_sites
from storage.db import Database
from storage.reports import NewReport, ReportRepository
from storage.sites import SiteRepository

ALMATY = ZoneInfo("Asia/Almaty")
MONDAY = datetime(2026, 11, 23, 9, 0, tzinfo=ALMATY)  # 2026-11-23 is a Monday
TUESDAY = MONDAY + timedelta(days=1)


def hour(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:00Z")


# --- the test bed ----------------------------------------------------------------------------

class Outbox:
    """A fake `send`: records what it delivered; can crash, or fail transiently, on a given call."""

    def __init__(self, *, raise_on: int | None = None, false_on: int | None = None,
                 false_for: set[int] | None = None) -> None:
        self.sent: list[tuple[int, str | None, bytes | None]] = []
        self.calls = 0
        self.raise_on = raise_on
        self.false_on = false_on
        self.false_for = false_for or set()

    async def __call__(self, chat_id: int, text: str | None = None, photo_png: bytes | None = None) -> bool:
        self.calls += 1
        if self.raise_on is not None and self.calls == self.raise_on:
            raise RuntimeError("the process died here")
        if (self.false_on is not None and self.calls == self.false_on) or chat_id in self.false_for:
            return False
        assert (text is None) != (photo_png is None)
        self.sent.append((chat_id, text, photo_png))
        return True

    def texts(self, chat_id: int) -> list[str]:
        return [text for chat, text, _ in self.sent if chat == chat_id and text is not None]

    def keys(self) -> Counter:
        return Counter((chat, text, photo) for chat, text, photo in self.sent)


@dataclass
class Bed:
    db: Database
    sites: SiteRepository
    reports: ReportRepository
    i18n: object
    site_ids: list[int]
    codes: itertools.count = field(default_factory=lambda: itertools.count(1))

    async def report(self, site_id: int, *, category: str = "gas", severity: str = "serious",
                     at: datetime = MONDAY - timedelta(hours=3), description: str = "Methane sensor taped over at the face",
                     location: str | None = "Panel 12", photos: int = 0, status: str | None = None) -> tuple[int, str]:
        code = f"MV-{next(self.codes):05d}"
        report_id = await self.reports.add(NewReport(
            code, "scrypt$test", site_id, category, severity, location, description, "ru",
            tuple(f"photo-{code}-{index}" for index in range(photos)), hour(at)))
        if status:
            await self.db.execute("UPDATE reports SET status = ? WHERE id = ?", (status, report_id))
        return report_id, code

    async def member(self, user_id: int, site_id: int, language: str | None = None) -> None:
        await self.db.execute(
            "INSERT INTO roles (user_id, role, site_id, display_name, granted_at) VALUES (?, 'committee', ?, 'M', '2026-01-01')",
            (user_id, site_id))
        if language:
            await self.db.execute("INSERT OR REPLACE INTO users (user_id, language) VALUES (?, ?)", (user_id, language))

    async def group(self, chat_id: int, site_id: int, language: str = "ru") -> None:
        await self.db.execute(
            "INSERT INTO committee_chats (chat_id, site_id, title, language, bound_by) VALUES (?, ?, 'OSH', ?, 1)",
            (chat_id, site_id, language))

    async def set_watermark(self, site_id: int, last_report_id: int, last_digest_on: str | None = None) -> None:
        await self.db.execute(
            "INSERT OR REPLACE INTO digest_watermarks (site_id, last_report_id, last_digest_on) VALUES (?, ?, ?)",
            (site_id, last_report_id, last_digest_on))

    async def watermark(self, site_id: int) -> tuple[int, str | None]:
        row = await self.db.fetchone(
            "SELECT last_report_id, last_digest_on FROM digest_watermarks WHERE site_id = ?", (site_id,))
        return (row[0], row[1]) if row else (0, None)

    def service(self, send, **options) -> DigestService:
        return DigestService(self.db, self.i18n, send, sites=self.sites, **options)


async def make_bed(path: Path) -> Bed:
    """A migrated, seeded database; the caller closes `bed.db` (an open connection hangs the exit)."""
    db = await Database.open(path)
    try:
        await db.migrate()
        sites = SiteRepository(db)
        await seed_sites(sites)
        site_ids = [row[0] for row in await db.fetchall("SELECT id FROM sites ORDER BY id LIMIT 2")]
    except BaseException:
        await db.close()
        raise
    return Bed(db, sites, ReportRepository(db), build_i18n("ru"), site_ids)


@pytest.fixture
async def bed(tmp_path: Path):
    bed = await make_bed(tmp_path / "digests.sqlite3")
    try:
        yield bed
    finally:
        await bed.db.close()


class HtmlCheck(HTMLParser):
    """Telegram's HTML subset: only the tags we use, balanced, entities known, no raw < or >."""

    ALLOWED = {"b", "i", "code"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.plain: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.ALLOWED or attrs:
            self.problems.append(f"tag {tag}")
        self.stack.append(tag)

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.problems.append(f"unbalanced </{tag}>")

    def handle_data(self, data):
        if "<" in data or ">" in data:
            self.problems.append(f"raw bracket in {data!r}")
        self.plain.append(data)

    def handle_entityref(self, name):
        if name not in {"lt", "gt", "amp", "quot"}:
            self.problems.append(f"entity {name}")
        self.plain.append(html.unescape(f"&{name};"))

    def handle_charref(self, name):
        self.plain.append(html.unescape(f"&#{name};"))


def new_section(text: str) -> str:
    """The new-reports part of a digest (old open cases come back in the overdue list)."""
    return text.split("<b>Overdue cases")[0].split("No overdue cases.")[0]


def check_html(text: str) -> str:
    """Asserts the part is valid on its own; returns its text as Telegram would show it."""
    checker = HtmlCheck()
    checker.feed(text)
    checker.close()
    assert checker.problems == [] and checker.stack == [], (checker.problems, checker.stack, text[:300])
    return "".join(checker.plain)


# --- the builder -------------------------------------------------------------------------------

def english(bed: Bed, label) -> str:
    with bed.i18n.context(), bed.i18n.use_locale("en"):
        return html.escape(str(label), quote=False)


async def build(bed: Bed, site_id: int, now: datetime, language: str = "en", **options) -> list[str]:
    return await bed.service(lambda *a, **k: None, **options).preview(site_id, language, now)


async def test_new_reports_grouped_by_severity_then_category(bed: Bed) -> None:
    site = bed.site_ids[0]
    _, attention_gas = await bed.report(site, severity="attention", category="gas")
    _, serious_water = await bed.report(site, severity="serious", category="water")
    _, danger_roof = await bed.report(site, severity="danger", category="roof")
    _, serious_gas = await bed.report(site, severity="serious", category="gas")
    _, danger_gas = await bed.report(site, severity="danger", category="gas")
    text = "\n".join(await build(bed, site, TUESDAY))
    order = [danger_gas, danger_roof, serious_gas, serious_water, attention_gas]
    positions = [text.index(f"<code>{code}</code>") for code in order]
    assert positions == sorted(positions)
    headings = [text.index(f"<b>{english(bed, SEVERITIES[s])}: {n}</b>")
                for s, n in (("danger", 2), ("serious", 2), ("attention", 1))]
    assert headings == sorted(headings)
    assert headings[0] < positions[0] and headings[1] < positions[2] < headings[2] < positions[4]
    assert "New reports: 5" in text
    assert f"<code>{danger_roof}</code> · <b>{english(bed, CATEGORIES['roof'])}</b>\nWhere: Panel 12" in text


async def test_similar_reports_are_counted_within_seven_days_only(bed: Bed) -> None:
    site, other_site = bed.site_ids
    now = TUESDAY
    await bed.report(site, category="gas", at=now - timedelta(days=6, hours=2))      # within 7 days: counted
    await bed.report(site, category="gas", at=now - timedelta(days=9))                # beyond: not
    await bed.report(site, category="water", at=now - timedelta(days=1))              # other category: not
    last_old, _ = await bed.report(other_site, category="gas", at=now - timedelta(days=1))  # other mine: not
    await bed.set_watermark(site, last_old)
    _, code = await bed.report(site, category="gas", at=now - timedelta(hours=2), photos=2)
    _, lonely = await bed.report(site, category="dust", at=now - timedelta(hours=2))
    text = "\n".join(await build(bed, site, now))
    entry = text.split(f"<code>{code}</code>")[1].split("<code>")[0]
    assert "Similar reports this week: 1" in entry and "Photos: 2" in entry
    lonely_entry = text.split(f"<code>{lonely}</code>")[1].split("<b>Overdue")[0].split("No overdue")[0]
    assert "Similar" not in lonely_entry and "Photos" not in lonely_entry


async def test_overdue_cases_of_both_kinds(bed: Bed) -> None:
    site = bed.site_ids[0]
    now = TUESDAY
    _, unacknowledged = await bed.report(site, at=now - timedelta(hours=30))
    _, fresh = await bed.report(site, at=now - timedelta(hours=10))
    _, slow = await bed.report(site, at=now - timedelta(days=20), status="in_progress")
    _, recent_work = await bed.report(site, at=now - timedelta(days=5), status="acknowledged")
    _, done = await bed.report(site, at=now - timedelta(days=40), status="resolved")
    _, dismissed = await bed.report(site, at=now - timedelta(days=40), status="not_confirmed")
    _, forgotten = await bed.report(site, at=now - timedelta(days=16))  # still 'received' after 16 days
    await bed.set_watermark(site, 10_000)
    text = "\n".join(await build(bed, site, now))
    overdue = text.split("<b>Overdue cases: 3</b>")[1].split("<b>Open cases by status</b>")[0]
    not_acknowledged, not_resolved = overdue.split("Not resolved within 14 d:")
    assert "Not acknowledged within 24 h:" in not_acknowledged
    gas = english(bed, CATEGORIES["gas"])
    assert f"<code>{forgotten}</code> · {gas} · 16 d\n" in not_acknowledged
    assert f"<code>{unacknowledged}</code> · {gas} · 1 d\n" in not_acknowledged
    assert f"<code>{slow}</code> · {gas} · In progress · 20 d\n" in not_resolved
    for code in (fresh, recent_work, done, dismissed):
        assert code not in overdue
    counts = text.split("<b>Open cases by status</b>")[1]
    assert "Received: 3" in counts and "In progress: 1" in counts and "Acknowledged by the committee: 1" in counts
    assert "Total open: 5" in counts and "Resolved" not in counts


async def test_a_day_without_new_reports_still_has_a_digest(bed: Bed) -> None:
    site = bed.site_ids[0]
    last, code = await bed.report(site, at=TUESDAY - timedelta(days=3))
    await bed.set_watermark(site, last)
    parts = await build(bed, site, TUESDAY)
    text = "\n".join(parts)
    assert "No new reports since the last digest." in text
    assert f"<code>{code}</code>" in text.split("Overdue cases: 1")[1]
    assert "Total open: 1" in text and "New reports: 0" in text
    assert "No overdue cases." in "\n".join(await build(bed, bed.site_ids[1], TUESDAY))


async def test_what_miners_wrote_is_escaped(bed: Bed) -> None:
    site = bed.site_ids[0]
    hostile = "<b>boss</b> said & ignore </code><i> it"
    await bed.report(site, description=hostile, location="</code> shaft <b>3</b> & co")
    parts = await build(bed, site, TUESDAY)
    for part in parts:
        check_html(part)
    text = "\n".join(parts)
    assert html.escape(hostile, quote=False) in text
    assert "Where: &lt;/code&gt; shaft &lt;b&gt;3&lt;/b&gt; &amp; co" in text
    assert "<b>boss</b>" not in text


async def test_long_digest_is_split_between_entries_into_valid_parts(bed: Bed) -> None:
    site = bed.site_ids[0]
    codes = []
    for index in range(200):
        words = " ".join(f"<b>&{index}</code>word{n}" for n in range(60))
        _, code = await bed.report(site, severity=list(SEVERITIES)[index % 3], category=list(CATEGORIES)[index % 15],
                                   description=words, location="шахта <i>" * 20, photos=index % 3,
                                   at=TUESDAY - timedelta(hours=2))
        codes.append(code)
    parts = await build(bed, site, TUESDAY, language="ru")
    assert len(parts) > 5
    seen = Counter()
    for part in parts:
        assert utf16_len(part) <= PART_BUDGET
        assert utf16_len(check_html(part)) < 4096
        for code in codes:
            seen[code] += part.count(f"<code>{code}</code>")
    assert all(seen[code] == 1 for code in codes)
    from tests.e2e_support import tr

    continuation = tr("ru", "{site}, {day}: part {part} of {total}").split("{day}")[1].split("{part}")[0]
    assert continuation and continuation in parts[1] and parts[0].startswith("<b>")


def test_descriptions_are_cut_on_a_word_boundary() -> None:
    text = "word " * 100
    short = shorten(text, 200)
    assert len(short) <= 201 and short.endswith("word…")
    assert shorten("  a  short\n text ", 200) == "a short text"


async def test_monday_digest_has_a_chart_other_days_none(bed: Bed) -> None:
    site = bed.site_ids[0]
    await bed.report(site, category="gas", at=MONDAY - timedelta(days=2))         # last week
    await bed.report(site, category="gas", at=MONDAY - timedelta(days=3))         # last week
    await bed.report(site, category="roof", at=MONDAY - timedelta(days=50))       # 8th week back
    await bed.report(site, category="roof", at=MONDAY - timedelta(days=60))       # too old
    await bed.report(site, category="dust", at=MONDAY - timedelta(hours=5))       # this week: not yet
    service = bed.service(lambda *a, **k: None)
    content = await service.builder.collect(site, MONDAY)
    assert content.weekly is not None and len(content.weekly.weeks) == 8
    assert content.weekly.weeks[-1] == MONDAY.date() - timedelta(days=7)
    assert content.weekly.counts == {"gas": (0, 0, 0, 0, 0, 0, 0, 2), "roof": (1, 0, 0, 0, 0, 0, 0, 0)}
    png = await service.builder.render_chart(content, "kk")
    assert png is not None and png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 5000
    tuesday = await service.builder.collect(site, TUESDAY)
    assert tuesday.weekly is None and await service.builder.render_chart(tuesday, "ru") is None


async def test_a_monday_digest_whose_chart_cannot_be_drawn_goes_without_it(bed: Bed, monkeypatch) -> None:
    import bot.digests

    async def broken(*args: object) -> bytes:
        raise TimeoutError  # as from a file worker task that ran over its time and was killed

    site = bed.site_ids[0]
    await bed.member(701, site, "kk")
    await bed.report(site, category="gas", at=MONDAY - timedelta(days=2))
    monkeypatch.setattr(bot.digests, "draw_weekly_chart", broken)
    outbox = Outbox()
    await bed.service(outbox).run_due(MONDAY)
    assert outbox.texts(701) and all(photo is None for _, _, photo in outbox.sent)
    assert await bed.watermark(site) != (0, None)  # delivered, not left to be retried for ever


# --- the service -------------------------------------------------------------------------------

async def test_due_only_from_digest_time_in_almaty(bed: Bed) -> None:
    site = bed.site_ids[0]
    await bed.member(501, site, "en")
    await bed.report(site)
    outbox = Outbox()
    service = bed.service(outbox)
    await service.run_due(datetime(2026, 11, 24, 2, 59, tzinfo=UTC))   # 07:59 in Almaty
    assert outbox.sent == [] and (await bed.db.fetchone("SELECT count(*) FROM digests"))[0] == 0
    await service.run_due(datetime(2026, 11, 24, 3, 0, tzinfo=UTC))    # 08:00 in Almaty
    assert len(outbox.texts(501)) == 1 and "New reports: 1" in outbox.texts(501)[0]
    await service.run_due(datetime(2026, 11, 24, 13, 0, tzinfo=UTC))   # later that day: nothing more
    assert len(outbox.sent) == 1


async def test_watermark_advances_only_after_delivery(bed: Bed) -> None:
    site = bed.site_ids[0]
    await bed.member(501, site, "kk")     # the kk digest is delivered first
    await bed.group(-100501, site, "ru")
    await bed.report(site)
    last, _ = await bed.report(site)
    down = Outbox(false_for={-100501})
    await bed.service(down).run_due(TUESDAY)
    assert len(down.texts(501)) == 1                      # the member got it, the group not yet
    assert await bed.watermark(site) == (0, None)
    states = await bed.db.fetchall("SELECT language, state FROM digests ORDER BY language")
    assert [tuple(row) for row in states] == [("kk", "delivered"), ("ru", "sending")]  # one of two: no advance
    up = Outbox()
    await bed.service(up).run_due(TUESDAY + timedelta(hours=1))
    assert [chat for chat, _, _ in up.sent] == [-100501]  # only what was missing
    assert await bed.watermark(site) == (last, TUESDAY.date().isoformat())
    row = await bed.db.fetchone("SELECT count(*), sum(parts = '[]') FROM digests WHERE state = 'delivered'")
    assert tuple(row) == (2, 2)                           # delivered digests keep no copy of the text


async def populate(bed: Bed) -> None:
    """Two committees; members in three languages and a group; enough reports for several parts."""
    site, other = bed.site_ids
    await bed.member(601, site, "kk")
    await bed.member(602, site)           # never chose: Russian
    await bed.group(-100601, site, "en")
    await bed.member(603, other, "en")
    for index in range(70):
        await bed.report(site, category=list(CATEGORIES)[index % 15], description="x" * 190 + f" case {index}")
    await bed.report(other, category="fire")


async def reference_delivery(tmp_path: Path, now: datetime) -> Counter:
    bed = await make_bed(tmp_path / "reference.sqlite3")
    try:
        await populate(bed)
        outbox = Outbox()
        await bed.service(outbox).run_due(now)
        return outbox.keys()
    finally:
        await bed.db.close()


@pytest.mark.parametrize("crash_on", [1, 2, 7, 8, 15, 22, 23])  # 7: a chart; 22: the second mine
async def test_a_crash_mid_delivery_then_a_rerun_delivers_everything_once(tmp_path: Path, crash_on: int) -> None:
    expected = await reference_delivery(tmp_path, MONDAY)
    assert sum(1 for _, _, photo in expected if photo) == 4     # Monday: a chart for each recipient
    assert len(expected) == sum(expected.values()) == 23       # 6 parts + chart ×3 languages, 1 + chart
    bed = await make_bed(tmp_path / "crash.sqlite3")
    try:
        await populate(bed)
        crashing = Outbox(raise_on=crash_on)
        with pytest.raises(RuntimeError):
            await bed.service(crashing).run_due(MONDAY)
        assert len(crashing.sent) == crash_on - 1
        first_mine_done = crash_on > 21                          # its 21 messages went out before the crash
        assert (await bed.watermark(bed.site_ids[0]))[1] == ("2026-11-23" if first_mine_done else None)
        assert await bed.watermark(bed.site_ids[1]) == (0, None)
        resumed = Outbox()
        await bed.service(resumed).run_due(MONDAY + timedelta(minutes=5))
        assert crashing.keys() + resumed.keys() == expected
        again = Outbox()
        await bed.service(again).run_due(MONDAY + timedelta(hours=3))
        assert again.sent == []
    finally:
        await bed.db.close()


async def test_a_crash_after_a_send_repeats_at_most_that_message(tmp_path: Path, monkeypatch) -> None:
    expected = await reference_delivery(tmp_path, TUESDAY)
    bed = await make_bed(tmp_path / "crash.sqlite3")
    try:
        await populate(bed)
        from storage.digests import DigestRepository
        original = DigestRepository.record_delivery
        calls = itertools.count(1)

        async def dies_on_third(self, *args):
            if next(calls) == 3:
                raise RuntimeError("died between send and record")
            await original(self, *args)

        monkeypatch.setattr(DigestRepository, "record_delivery", dies_on_third)
        first = Outbox()
        with pytest.raises(RuntimeError):
            await bed.service(first).run_due(TUESDAY)
        monkeypatch.setattr(DigestRepository, "record_delivery", original)
        second = Outbox()
        await bed.service(second).run_due(TUESDAY + timedelta(minutes=5))
        total = first.keys() + second.keys()
        assert set(total) == set(expected)
        assert sum(total.values()) == sum(expected.values()) + 1   # the one message in flight
    finally:
        await bed.db.close()


async def test_a_transient_failure_stops_and_the_next_run_resumes(tmp_path: Path) -> None:
    expected = await reference_delivery(tmp_path, TUESDAY)
    bed = await make_bed(tmp_path / "flaky.sqlite3")
    try:
        await populate(bed)
        flaky = Outbox(false_on=3)
        await bed.service(flaky).run_due(TUESDAY)
        assert flaky.calls == 3 and len(flaky.sent) == 2           # stopped at the failure
        resumed = Outbox()
        await bed.service(resumed).run_due(TUESDAY + timedelta(minutes=10))
        assert flaky.keys() + resumed.keys() == expected
        for site in bed.site_ids:
            assert (await bed.watermark(site))[1] == TUESDAY.date().isoformat()
    finally:
        await bed.db.close()


async def test_members_and_groups_get_the_digest_in_their_language(bed: Bed) -> None:
    site = bed.site_ids[0]
    names = (await bed.sites.get(site)).names
    await populate(bed)
    outbox = Outbox()
    await bed.service(outbox).run_due(TUESDAY)
    for chat, language in ((601, "kk"), (602, "ru"), (-100601, "en")):
        first = outbox.texts(chat)[0]
        assert html.escape(names[language], quote=False) in first.split("\n")[0]
    rows = await bed.db.fetchall("SELECT language FROM digests WHERE site_id = ? ORDER BY language", (site,))
    assert [row[0] for row in rows] == ["en", "kk", "ru"]


async def test_a_member_who_never_chose_a_language_gets_the_bots_default_one(bed: Bed) -> None:
    """The same default as danger alerts use (DEFAULT_LOCALE), not a language of the digest's own."""
    site = bed.site_ids[0]
    names = (await bed.sites.get(site)).names
    await bed.member(801, site)           # never chose
    await bed.member(802, site, "ru")
    await bed.report(site)
    outbox = Outbox()
    await DigestService(bed.db, build_i18n("kk"), outbox, sites=bed.sites).run_due(TUESDAY)
    rows = await bed.db.fetchall("SELECT language FROM digests WHERE site_id = ? ORDER BY language", (site,))
    assert [row[0] for row in rows] == ["kk", "ru"]
    assert html.escape(names["kk"], quote=False) in outbox.texts(801)[0].split("\n")[0]
    assert html.escape(names["ru"], quote=False) in outbox.texts(802)[0].split("\n")[0]


async def test_a_bot_down_for_three_days_sends_one_catch_up_digest(bed: Bed) -> None:
    site = bed.site_ids[0]
    await bed.member(701, site, "en")
    before, _ = await bed.report(site, at=MONDAY - timedelta(days=1))
    await bed.service(Outbox()).run_due(MONDAY)                # Monday's digest went out
    assert await bed.watermark(site) == (before, "2026-11-23")
    codes = []
    for day in range(3):                                       # the bot is down Tuesday to Thursday
        _, code = await bed.report(site, at=TUESDAY + timedelta(days=day, hours=2))
        codes.append(code)
    friday = MONDAY + timedelta(days=4, hours=3)               # it comes back on Friday at noon
    outbox = Outbox()
    await bed.service(outbox).run_due(friday)
    assert len(outbox.sent) == 1
    text = outbox.sent[0][1]
    assert "New reports: 3" in text and all(f"<code>{code}</code>" in text for code in codes)
    days = await bed.db.fetchall("SELECT digest_on FROM digests WHERE site_id = ? ORDER BY id", (site,))
    assert [row[0] for row in days] == ["2026-11-23", "2026-11-27"]
    await bed.service(outbox).run_due(friday + timedelta(hours=6))
    assert len(outbox.sent) == 1


async def test_two_committees_are_independent(bed: Bed) -> None:
    site, other = bed.site_ids
    await bed.member(801, site, "en")
    _, mine = await bed.report(site)
    last_other, theirs = await bed.report(other)
    outbox = Outbox()
    await bed.service(outbox).run_due(TUESDAY)
    assert len(outbox.sent) == 1 and mine in outbox.sent[0][1] and theirs not in outbox.sent[0][1]
    assert await bed.watermark(other) == (0, None)             # no committee there: no digest
    await bed.member(802, other, "en")                         # it gets one the next day
    await bed.report(site, at=TUESDAY + timedelta(hours=5))
    await bed.service(outbox).run_due(TUESDAY + timedelta(days=1))
    assert theirs in outbox.texts(802)[0] and mine not in outbox.texts(802)[0]
    assert theirs not in outbox.texts(801)[1] and mine not in new_section(outbox.texts(801)[1])
    assert (await bed.watermark(other))[0] == last_other


async def test_a_report_made_after_the_freeze_goes_into_the_next_digest(bed: Bed) -> None:
    site = bed.site_ids[0]
    await bed.member(901, site, "en")
    _, early = await bed.report(site)
    await bed.service(Outbox(false_for={901})).run_due(TUESDAY)   # frozen, not yet delivered
    late_id, late = await bed.report(site, at=TUESDAY + timedelta(hours=1))
    outbox = Outbox()
    await bed.service(outbox).run_due(TUESDAY + timedelta(hours=2))
    assert early in outbox.texts(901)[0] and late not in outbox.texts(901)[0]
    assert (await bed.watermark(site))[0] == late_id - 1
    await bed.service(outbox).run_due(TUESDAY + timedelta(days=1))
    assert late in outbox.texts(901)[1] and early not in new_section(outbox.texts(901)[1])
    assert (await bed.watermark(site))[0] == late_id


async def test_an_undelivered_digest_is_not_repeated_by_the_next_day(bed: Bed) -> None:
    site = bed.site_ids[0]
    await bed.member(902, site, "en")
    _, first = await bed.report(site)
    await bed.service(Outbox(false_for={902})).run_due(TUESDAY)     # stuck for a whole day
    _, second = await bed.report(site, at=TUESDAY + timedelta(hours=3))
    outbox = Outbox()
    await bed.service(outbox).run_due(TUESDAY + timedelta(days=1))
    texts = outbox.texts(902)
    assert len(texts) == 2
    assert first in texts[0] and second not in texts[0]
    assert second in new_section(texts[1]) and first not in new_section(texts[1])


async def test_preview_stores_nothing(bed: Bed) -> None:
    site = bed.site_ids[0]
    await bed.member(903, site, "en")
    _, code = await bed.report(site)
    service = bed.service(Outbox())
    parts = await service.preview(site, "en", TUESDAY)
    assert code in parts[0]
    assert (await bed.db.fetchone("SELECT count(*) FROM digests"))[0] == 0
    assert await bed.watermark(site) == (0, None)


async def test_settings_drive_the_schedule(bed: Bed, settings) -> None:
    settings = settings.model_copy(update={"digest_time": "06:30", "overdue_acknowledge_hours": 2})
    service = DigestService.from_settings(bed.db, bed.i18n, Outbox(), settings, sites=bed.sites)
    assert service.due_day(datetime(2026, 11, 24, 1, 29, tzinfo=UTC)) is None          # 06:29 in Almaty
    assert str(service.due_day(datetime(2026, 11, 24, 1, 30, tzinfo=UTC))) == "2026-11-24"
    assert service.due_day(datetime(2026, 11, 24, 20, 0, tzinfo=UTC)) is None  # 01:00 on the 25th: not yet
    with pytest.raises(ValueError):
        service.due_day(datetime(2026, 11, 24, 9, 0))
