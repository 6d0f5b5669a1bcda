"""Committees end to end: invitations, access control, danger alerts and their escalation,
working a case from both sides, group binding and migration."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from tests.e2e_support import InProcessBot, tr
from tests.fake_telegram import FakeTelegram
from tests.flows import choose_language, data_starts, report, says, tap

ADMIN = 5_000_000_001
MEMBER = 5_000_000_002
OTHER_MEMBER = 5_000_000_003
MINER = 5_000_000_004


@pytest.fixture
async def bot(tg: FakeTelegram, tmp_path: Path):
    process = InProcessBot(tg, tmp_path, admin_ids=str(ADMIN))
    await process.start()
    yield process
    await process.stop()


async def invite(admin, kind: str) -> str:
    await admin.send(f"/invite {kind}")
    found = re.search(r"/join (\S+)", (await admin.next_message())["text"])
    assert found
    return found.group(1)


async def join(user, code: str) -> dict:
    await user.send(f"/join {code}")
    return await user.next_message()


async def setup_committees(tg: FakeTelegram):
    admin = tg.user(ADMIN, "Aigerim", last_name="Admin", language_code="ru")
    member = tg.user(MEMBER, "Bolat", last_name="Committee", username="bolat_osh", language_code="ru")
    other = tg.user(OTHER_MEMBER, "Dana", last_name="Other", language_code="en")
    miner = tg.user(MINER, "Miner", language_code="ru")
    for user, language in ((admin, "ru"), (member, "ru"), (other, "en"), (miner, "ru")):
        await choose_language(user, language)
    assert "Костенко" in (await join(member, await invite(admin, "committee kostenko")))["text"]
    await join(other, await invite(admin, "committee bogatyr"))
    return admin, member, other, miner


async def test_invitations_are_single_use_and_roles_listed(tg: FakeTelegram, bot: InProcessBot) -> None:
    admin, member, other, miner = await setup_committees(tg)
    await member.send("/me")
    assert "Костенко" in (await member.next_message())["text"]

    code = await invite(admin, "organizer")
    assert tr("en", "You are now an organizer: you can send announcements and run surveys.") == (await join(other, code))["text"]
    answer = await join(miner, code)  # used already
    assert says(answer, "ru", "This code does not work: it may be mistyped, already used or expired. Ask the administrator for a new one.")

    await admin.send("/roles")
    listing = await admin.next_message()
    assert len(admin.buttons(listing)) == 3
    await tap(admin, lambda button: "Dana" in button["text"] and "committee" not in button["text"].lower()
              and button["callback_data"].startswith("role:"), message=listing)
    assert len(admin.buttons(listing)) == 2
    tg.assert_no_errors()


async def test_every_privileged_action_is_refused_to_others(tg: FakeTelegram, bot: InProcessBot) -> None:
    admin, member, other, miner = await setup_committees(tg)
    refusals = {
        "/invite committee kostenko": "Only the bot's administrators can do this.",
        "/invite organizer": "Only the bot's administrators can do this.",
        "/roles": "Only the bot's administrators can do this.",
        "/cases": "This is for members of a union OSH committee.",
        "/groupcode": "This is for members of a union OSH committee.",
        "/digest": "This is for members of a union OSH committee.",
        "/export": "This is for members of a union OSH committee.",
        "/sites": "Only the bot's administrators can do this.",
    }
    for command, msgid in refusals.items():
        await miner.send(command)
        assert says(await miner.next_message(), "ru", msgid), command
    # A danger report at Kostenko: the other mine's member and the miner cannot act on it.
    receipt = await report(miner, "ru", severity="danger")
    await bot.services.alerts.deliver_pending()
    alert = [m for m in member.bot_messages() if receipt.case_code in (m.get("text") or "")][-1]
    for outsider in (other, miner, admin):
        for button in ("case:status:", "case:note:", "case:view:"):
            data = next(b["callback_data"] for row in alert["reply_markup"]["inline_keyboard"] for b in row
                        if b["callback_data"].startswith(button))
            answer = await outsider.callback_answer(await outsider.press_data(data, message=alert))
            assert answer.get("show_alert") and answer["text"] == tr(outsider.language_code or "ru", "Only the OSH committee of that mine can do this."), (button, answer)
    # Forged admin and export buttons.
    for data in ("role:1", "inv:1", "site:archive:1", "exp:30"):
        answer = await miner.callback_answer(await miner.press_data(data, message=alert))
        assert answer.get("text") in {tr("ru", "Only the bot's administrators can do this."),
                                      tr("ru", "This is for members of a union OSH committee.")}, (data, answer)
    with sqlite3.connect(bot.settings.database_path) as connection:
        assert connection.execute("SELECT status FROM reports").fetchone() == ("received",)
        assert connection.execute("SELECT count(*) FROM roles").fetchone() == (2,)
        assert connection.execute("SELECT count(*) FROM invites").fetchone() == (0,)
        assert connection.execute("SELECT count(*) FROM sites WHERE archived = 1").fetchone() == (0,)
    tg.assert_no_errors()


async def test_danger_alert_reaches_the_committee_with_photos_by_file_id(tg: FakeTelegram, bot: InProcessBot) -> None:
    admin, member, other, miner = await setup_committees(tg)
    member.skip_pending()
    receipt = await report(miner, "ru", severity="danger", album=3)
    # Nobody calls the alert service here: submitting the report sets it off within seconds.
    alert_text = next(m for m in [await member.next_message(timeout=5) for _ in range(4)] if m.get("text"))
    assert receipt.case_code in alert_text["text"]
    albums = tg.calls_to("sendMediaGroup", chat_id=MEMBER)
    assert len(albums) == 1
    sent_ids = [item["media"] for item in albums[0].params["media"]]
    with sqlite3.connect(bot.settings.database_path) as connection:
        stored = [row[0] for row in connection.execute("SELECT file_id FROM report_photos ORDER BY position")]
    assert sent_ids == stored and len(stored) == 3
    alert = [m for m in member.bot_messages() if receipt.case_code in (m.get("text") or "")]
    assert len(alert) == 1 and tr("ru", "✅ Acknowledge") in member.buttons(alert[0])
    assert not [m for m in other.bot_messages() if receipt.case_code in (m.get("text") or "")]  # other mine
    assert tg.calls_to("forwardMessage") == [] and tg.calls_to("copyMessage") == []
    tg.assert_no_errors()


async def test_unanswered_alert_escalates_to_admins_answered_one_does_not(tg: FakeTelegram, bot: InProcessBot) -> None:
    admin, member, other, miner = await setup_committees(tg)
    first = await report(miner, "ru", severity="danger", location=None)
    await bot.services.alerts.deliver_pending()
    bot.clock.advance(minutes=29)
    await bot.services.alerts.escalate_due()
    assert not [m for m in admin.bot_messages() if first.case_code in (m.get("text") or "")]
    bot.clock.advance(minutes=2)
    await bot.services.alerts.escalate_due()
    escalated = [m for m in admin.bot_messages() if first.case_code in (m.get("text") or "")]
    assert len(escalated) == 1 and says(escalated[0], "ru", "⏰ <b>Nobody has acknowledged this for {minutes} min.</b>", minutes=30)
    assert len([m for m in member.bot_messages() if first.case_code in (m.get("text") or "")]) == 2

    # A second alert, acknowledged in time: no escalation.
    second = await report(miner, "ru", severity="danger", location=None)
    await bot.services.alerts.deliver_pending()
    alert = [m for m in member.bot_messages() if second.case_code in (m.get("text") or "")][-1]
    await tap(member, data_starts("case:status:"), message=alert)
    bot.clock.advance(minutes=45)
    await bot.services.alerts.escalate_due()
    assert not [m for m in admin.bot_messages() if second.case_code in (m.get("text") or "")]
    tg.assert_no_errors()


async def test_case_worked_from_both_sides(tg: FakeTelegram, bot: InProcessBot) -> None:
    admin, member, other, miner = await setup_committees(tg)
    receipt = await report(miner, "ru", severity="danger", location=None)
    await bot.services.alerts.deliver_pending()
    alert = [m for m in member.bot_messages() if receipt.case_code in (m.get("text") or "")][-1]
    member.skip_pending()

    await tap(member, lambda b: b["callback_data"].startswith("case:status:") and b["callback_data"].endswith(":in_progress"),
              message=alert)
    confirmation = await member.next_message()
    assert "Bolat" in confirmation["text"]
    await tap(member, data_starts("case:note:"), message=confirmation)
    await member.next_message()
    await member.send("Был ли датчик метана исправен утром? Кто из мастеров знал?")
    assert says(await member.next_message(), "ru", "Note saved for case <code>{code}</code>. The reporter will see it with /status.",
                code=receipt.case_code)

    # The reporter sees the status and the note, and answers.
    await miner.send(f"/status {receipt.case_code} {receipt.receipt}")
    card = await miner.next_message()
    assert says(card, "ru", "In progress") and "Был ли датчик метана исправен утром?" in card["text"]
    await tap(miner, data_starts("rw:"), message=card)
    await miner.next_message()
    await miner.send("Датчик заклеен с ночной смены, мастер в курсе")
    assert says(await miner.next_message(), "ru", "Sent to the committee of your mine. Check for its answer with /status.")
    told = await member.next_message()
    assert "Датчик заклеен с ночной смены, мастер в курсе" in told["text"] and receipt.case_code in told["text"]

    # The member's history shows who did what, and the reporter's words without a name.
    await tap(member, data_starts("case:view:"), message=told)
    history = await member.next_message()
    assert "Bolat" in history["text"] and "мастер в курсе" in history["text"] and "Miner" not in history["text"]
    with sqlite3.connect(bot.settings.database_path) as connection:
        rows = connection.execute("SELECT kind, actor_user_id, at FROM report_events WHERE kind = 'reporter_message'").fetchall()
    assert rows == [("reporter_message", None, None)]
    tg.assert_no_errors()


async def test_cases_list_pages_and_filters(tg: FakeTelegram, bot: InProcessBot) -> None:
    admin, member, other, miner = await setup_committees(tg)
    bot.services.reports._submissions.limit = 100  # noqa: SLF001 - one miner files many reports here
    for index in range(10):
        await report(miner, "ru", location=None, description=f"Конвейер без ограждения, участок {index}")
    await member.send("/cases")
    page = await member.next_message()
    assert says(page, "ru", "<b>{title}</b>: {total} · page {page} of {pages}", title=tr("ru", "Open cases"), total=10, page=1, pages=2)
    await tap(member, lambda b: b["text"] == "➡️", message=page)
    assert says(page, "ru", "<b>{title}</b>: {total} · page {page} of {pages}", title=tr("ru", "Open cases"), total=10, page=2, pages=2)
    await tap(member, data_starts("cases:closed:0"), message=page)
    assert says(page, "ru", "<b>{title}</b>: {total} · page {page} of {pages}", title=tr("ru", "Closed cases"), total=0, page=1, pages=1)
    await other.send("/cases")
    assert "0" in (await other.next_message())["text"]  # the other mine's member sees none of these
    tg.assert_no_errors()


async def test_group_binding_survives_migration_to_supergroup(tg: FakeTelegram, bot: InProcessBot) -> None:
    admin, member, other, miner = await setup_committees(tg)
    await member.send("/groupcode")
    code = re.search(r"/bind (\S+)", (await member.next_message())["text"]).group(1)
    group = tg.group(-100_777, "ОТ Костенко")
    await group.add_bot(by=member)
    await group.send(member, f"/bind {code}")
    assert "Костенко" in (await group.next_message())["text"]

    first = await report(miner, "ru", severity="danger", location=None)
    await bot.services.alerts.deliver_pending()
    assert any(first.case_code in (m.get("text") or "") for m in group.bot_messages())

    supergroup = await group.migrate_to_supergroup(-100_200_777, by=member)
    await tg.wait_idle()
    bot.services.reports._submissions.limit = 100  # noqa: SLF001
    second = await report(miner, "ru", severity="danger", location=None)
    await bot.services.alerts.deliver_pending()
    assert any(second.case_code in (m.get("text") or "") for m in supergroup.bot_messages())
    with sqlite3.connect(bot.settings.database_path) as connection:
        assert connection.execute("SELECT chat_id FROM committee_chats").fetchall() == [(-100_200_777,)]


async def test_export_xlsx_and_csv_in_the_members_language(tg: FakeTelegram, bot: InProcessBot) -> None:
    import csv
    import io

    from openpyxl import load_workbook

    admin, member, other, miner = await setup_committees(tg)
    receipt = await report(miner, "ru", location="=HYPERLINK(\"http://x\")", description="=1+1 формула от шахтёра, не выполнять")
    await member.send("/export")
    await member.next_message()
    await tap(member, data_starts("exp:30"))
    xlsx_message, csv_message = await member.next_message(), await member.next_message()
    book = load_workbook(io.BytesIO(tg.file_content(xlsx_message["document"]["file_id"])))
    rows = list(book.active.iter_rows(values_only=True))
    assert rows[0][0] == tr("ru", "Case code") and rows[1][0] == receipt.case_code
    assert rows[1][7].startswith("'=1+1") and rows[1][6].startswith("'=")  # never a formula
    text = tg.file_content(csv_message["document"]["file_id"]).decode("utf-8-sig")
    parsed = list(csv.reader(io.StringIO(text)))
    assert parsed[1][0] == receipt.case_code and len(parsed) == 2
    for content in (text, str(rows)):
        assert str(MINER) not in content and "Miner" not in content
    await other.send("/export")
    await other.next_message()
    await tap(other, data_starts("exp:30"))
    assert "0" in (await other.next_message())["caption"]  # the other mine's member exports none of these
    await miner.send("/export")
    assert says(await miner.next_message(), "ru", "This is for members of a union OSH committee.")
    tg.assert_no_errors()


async def test_admin_adds_renames_and_archives_mines(tg: FakeTelegram, bot: InProcessBot) -> None:
    admin, member, other, miner = await setup_committees(tg)
    await admin.send("/sites")
    regions = await admin.next_message()
    await tap(admin, data_starts("site:region:karaganda-coal"), message=regions)
    await tap(admin, data_starts("site:add:karaganda-coal"), message=regions)
    await admin.next_message()
    await admin.send("just one name")
    assert says(await admin.next_message(), "ru", "Please send three names separated by |")
    await admin.send("Жаңа шахта | Новая шахта | New mine")
    assert "Новая шахта" in (await admin.next_message())["text"]

    await miner.send("/report")
    question = await miner.next_message()
    await tap(miner, data_starts("rp:region:karaganda-coal"))
    assert "Новая шахта" in miner.buttons(question)

    await tap(miner, data_starts("nav:cancel"), message=question)
    await admin.send("/sites")
    regions = await admin.next_message()
    await tap(admin, data_starts("site:region:karaganda-coal"), message=regions)
    await tap(admin, lambda b: b["text"] == "Новая шахта", message=regions)
    await tap(admin, data_starts("site:archive:"), message=regions)
    await miner.send("/report")
    question = await miner.next_message()
    await tap(miner, data_starts("rp:region:karaganda-coal"))
    assert "Новая шахта" not in miner.buttons(question)

    for command in ("/sites",):
        await member.send(command)
        assert says(await member.next_message(), "ru", "Only the bot's administrators can do this.")
    forged = await member.callback_answer(await member.press_data("site:archive:1", message=question))
    assert forged.get("show_alert")
    with sqlite3.connect(bot.settings.database_path) as connection:
        assert connection.execute("SELECT archived FROM sites WHERE id = 1").fetchone() == (0,)
    tg.assert_no_errors()


async def test_daily_digest_through_the_real_bot(tg: FakeTelegram, bot: InProcessBot) -> None:
    from datetime import UTC, datetime

    admin, member, other, miner = await setup_committees(tg)
    bot.services.reports._submissions.limit = 100  # noqa: SLF001
    receipts = [await report(miner, "ru", location=None, description=f"Пыль на конвейере {i}: орошение не работает <b>&")
                for i in range(2)]
    member.skip_pending()
    other.skip_pending()
    await member.send("/digest")  # a preview moves nothing
    preview = await member.collect()
    assert all(r.case_code in "".join(m["text"] for m in preview) for r in receipts)

    bot.clock.now = datetime(2026, 11, 24, 2, 59, tzinfo=UTC)  # 07:59 in Almaty: not yet
    await bot.services.digests.run_due(bot.clock())
    assert await member.collect(quiet=0.2) == []
    bot.clock.now = datetime(2026, 11, 24, 3, 1, tzinfo=UTC)  # 08:01 in Almaty
    await bot.services.digests.run_due(bot.clock())
    digest = "".join(m["text"] for m in await member.collect())
    assert all(r.case_code in digest for r in receipts) and "<b>&" in digest  # miners' text shown as text
    other_digest = "".join(m.get("text") or "" for m in await other.collect())
    assert other_digest and not any(r.case_code in other_digest for r in receipts)  # its own mine only

    await bot.services.digests.run_due(bot.clock())  # again the same morning: nothing repeats
    assert await member.collect(quiet=0.2) == []
    bot.clock.advance(days=1)
    await bot.services.digests.run_due(bot.clock())
    next_day = "".join(m["text"] for m in await member.collect())
    assert says({"text": next_day}, "ru", "No new reports since the last digest.")
    assert not any(r.case_code in next_day.split(tr("ru", "Overdue cases: {count}").split("{")[0])[0] for r in receipts)
    tg.assert_no_errors()


def test_digest_job_fires_at_digest_time_in_almaty(tmp_path: Path) -> None:
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from bot.config import load_settings
    from bot.scheduler import build_scheduler
    from tests.conftest import TOKEN

    settings = load_settings(bot_token=TOKEN, database_path=tmp_path / "x.sqlite3", _env_file=None)
    scheduler = build_scheduler(settings, storage=None, services=SimpleNamespace(alerts=None), db=None)
    trigger = scheduler.get_job("daily_digests").trigger
    fire = trigger.get_next_fire_time(None, datetime(2026, 11, 23, 4, 0, tzinfo=UTC).astimezone(settings.tz))
    assert fire.astimezone(UTC) == datetime(2026, 11, 24, 3, 0, tzinfo=UTC)  # 08:00 at UTC+5


async def test_missed_digest_is_sent_at_start_up_and_a_crash_mid_send_resumes(tg: FakeTelegram, bot: InProcessBot) -> None:
    from datetime import UTC, datetime

    admin, member, other, miner = await setup_committees(tg)
    second = tg.user(5_000_000_009, "Erlan", language_code="ru")
    await choose_language(second, "ru")
    await join(second, await invite(admin, "committee kostenko"))
    bot.services.reports._submissions.limit = 100  # noqa: SLF001
    receipts = [await report(miner, "ru", location=None, description=f"Завал на сопряжении {i}, крепь не восстановлена")
                for i in range(3)]
    for user in (member, second):
        user.skip_pending()

    # Down over three mornings: at start-up one digest covers everything since the last one.
    await bot.stop()
    bot.clock.now = datetime(2026, 11, 26, 4, 0, tzinfo=UTC)  # 09:00 in Almaty, three days on
    # It comes back up and catches up, and dies in the middle of sending: after the second
    # member's first part went out and before the delivery was recorded.
    from bot.notify import CommitteeNotifier

    class Crash(BaseException):
        """A process death: nothing catches it."""

    real_send = CommitteeNotifier.send_digest_part

    async def dying_send(self, chat_id, text=None, photo_png=None):
        delivered = await real_send(self, chat_id, text=text, photo_png=photo_png)
        if chat_id == second.id:
            raise Crash
        return delivered

    CommitteeNotifier.send_digest_part = dying_send
    try:
        await bot.start()  # serving at once; the digest goes out alongside
        with pytest.raises(Crash):
            await bot.app.digest_catch_up
    finally:
        CommitteeNotifier.send_digest_part = real_send
    await bot.stop()
    assert len(member.bot_messages()) > 0 and len(second.bot_messages()) >= 1
    bot.clock.advance(minutes=10)
    await bot.start()  # restart: delivery resumes where it stopped
    await bot.app.digest_catch_up

    for user in (member, second):
        digests = [m for m in user.bot_messages() if any(r.case_code in (m.get("text") or "") for r in receipts)]
        text = "".join(m["text"] for m in digests)
        for receipt in receipts:
            assert text.count(receipt.case_code) >= 1
        part_ids = [m["text"] for m in digests]
        repeats = len(part_ids) - len(set(part_ids))
        # At most the one message in flight at the crash arrives twice.
        assert repeats == (1 if user is second else 0), (user.first_name, repeats)
    # Each digest part lists its cases as buttons that open them.
    digest_message = next(m for m in member.bot_messages() if receipts[0].case_code in (m.get("text") or ""))
    await tap(member, lambda b: b["text"] == f"📋 {receipts[0].case_code}", message=digest_message)
    assert receipts[0].case_code in (await member.next_message())["text"]
    with sqlite3.connect(bot.settings.database_path) as connection:
        assert connection.execute("SELECT count(*) FROM digests WHERE state = 'delivered'").fetchone()[0] >= 1
        assert connection.execute("SELECT last_digest_on FROM digest_watermarks WHERE site_id = "
                                  "(SELECT id FROM sites WHERE code = 'kostenko')").fetchone() == ("2026-11-26",)


async def test_members_and_admins_get_their_commands_in_their_language(tg: FakeTelegram, bot: InProcessBot) -> None:
    admin, member, other, miner = await setup_committees(tg)
    member_menu = [c["command"] for c in tg.commands(scope={"type": "chat", "chat_id": MEMBER}) or []]
    assert {"cases", "digest", "export", "groupcode", "me"} <= set(member_menu) and "invite" not in member_menu
    assert tg.commands(scope={"type": "chat", "chat_id": MINER}) is None  # miners keep the plain menu
    await member.send("/help")
    assert "/groupcode" in (await member.next_message())["text"]
    await miner.send("/help")
    assert "/groupcode" not in (await miner.next_message())["text"]
    await admin.send("/help")
    assert "/invite" in (await admin.next_message())["text"]
    await other.send("/language")
    await other.next_message()
    await tap(other, data_starts("lang:kk"))
    other_menu = tg.commands(scope={"type": "chat", "chat_id": OTHER_MEMBER})
    assert other_menu[0]["description"] == tr("kk", "Report a hazard anonymously")
    # Revoking the role takes the extra commands away again.
    await admin.send("/roles")
    listing = await admin.next_message()
    await tap(admin, lambda b: "Bolat" in b["text"], message=listing)
    assert not tg.commands(scope={"type": "chat", "chat_id": MEMBER})
    tg.assert_no_errors()
