"""Running the real bot (`python -m bot`) as a separate process against the fake Bot API."""

from __future__ import annotations

import asyncio
import functools
import gettext
import os
import signal
import sys
from pathlib import Path

from tests.fake_telegram import FakeTelegram

ROOT = Path(__file__).resolve().parent.parent
LOCALES_DIR = ROOT / "locales"


@functools.cache
def _catalog(language: str) -> gettext.GNUTranslations:
    return gettext.translation("messages", LOCALES_DIR, languages=[language])


def tr(language: str, msgid: str) -> str:
    """What the bot shows for `msgid` in `language`, read from the compiled catalog.
    `msgid` may also be a unique fragment of a longer English message."""
    catalog = _catalog(language)
    if msgid in catalog._catalog or msgid in _catalog("en")._catalog:  # noqa: SLF001 - no public lookup
        return catalog.gettext(msgid)
    matches = [key for key in catalog._catalog if isinstance(key, str) and key and msgid in key]  # noqa: SLF001
    if len(matches) > 1:
        raise KeyError(f"{msgid!r} matches {len(matches)} catalog entries")
    # Not translated yet: the bot shows the English text, and so does this.
    return catalog.gettext(matches[0]) if matches else msgid


class BotProcess:
    def __init__(self, tg: FakeTelegram, workdir: Path, **env: str) -> None:
        self.tg = tg
        self.workdir = workdir
        self.database_path = workdir / "data" / "minevoice.sqlite3"
        self.log_path = workdir / "bot.log"
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(workdir),
            "BOT_TOKEN": tg.token,
            "TELEGRAM_API_BASE": tg.base_url,
            "DATABASE_PATH": str(self.database_path),
            "LOG_LEVEL": "INFO",
            "PYTHONPATH": str(ROOT),
        } | env
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout: float = 30.0) -> None:
        polls_before = len(self.tg.calls_to("getUpdates"))
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", cwd=self.workdir, env=self.env, stdout=log, stderr=log
        )
        log.close()
        deadline = asyncio.get_running_loop().time() + timeout
        while len(self.tg.calls_to("getUpdates")) <= polls_before:
            if self.process.returncode is not None:
                raise AssertionError(f"bot exited with {self.process.returncode}:\n{self.log()}")
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"bot did not start polling in {timeout} s:\n{self.log()}")
            await asyncio.sleep(0.05)

    async def stop(self) -> int:
        """A normal shutdown (SIGTERM, as systemd sends)."""
        assert self.process is not None
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        return await asyncio.wait_for(self.process.wait(), 30)

    async def kill(self) -> None:
        """An abrupt death: no shutdown code runs."""
        assert self.process is not None
        self.process.kill()
        await self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


def most_in_any_second(times: list[float], window: float = 1.0) -> int:
    """The largest number of `times` inside any half-open window of `window` seconds (the pace
    Telegram's limits are stated in; used by the engine's tests and the broadcast benchmark)."""
    ordered = sorted(times)
    best, first = 0, 0
    for last, moment in enumerate(ordered):
        while moment - ordered[first] >= window:
            first += 1
        best = max(best, last - first + 1)
    return best


def release_routers(dispatcher) -> None:
    """aiogram's routers are module-level and attach to one dispatcher for life; the next start
    builds a new dispatcher in this same process, so let them go."""
    for router in dispatcher.sub_routers:
        router._parent_router = None  # noqa: SLF001
    dispatcher.sub_routers.clear()


class FakeClock:
    """The time the bot's services see; tests move it instead of sleeping."""

    def __init__(self) -> None:
        from datetime import UTC, datetime

        self.now = datetime(2026, 11, 23, 5, 0, tzinfo=UTC)  # 10:00 in Asia/Almaty

    def __call__(self):
        return self.now

    def advance(self, **delta: float) -> None:
        from datetime import timedelta

        self.now += timedelta(**delta)


class InProcessBot:
    """The real application (dispatcher polling over HTTP, SQLite file, services) in the test's
    own event loop, with a controllable clock, for behaviour that depends on time passing."""

    def __init__(self, tg: FakeTelegram, workdir: Path, **settings: object) -> None:
        from bot.config import load_settings

        self.tg = tg
        self.clock = FakeClock()
        self.settings = load_settings(bot_token=tg.token, telegram_api_base=tg.base_url,
                                      database_path=workdir / "data" / "minevoice.sqlite3", _env_file=None, **settings)
        self.app = None
        self._polling: asyncio.Task | None = None

    async def start(self) -> None:
        """Like `run_polling`: open, catch up (an exception here is a crash at start-up), poll."""
        from bot.app import open_app, start_app

        self.app = await open_app(self.settings, clock=self.clock)
        try:
            await start_app(self.app)
        except BaseException:
            await self._release()
            raise
        polls_before = len(self.tg.calls_to("getUpdates"))
        self._polling = asyncio.create_task(self.app.dispatcher.start_polling(self.app.bot, handle_signals=False))
        while len(self.tg.calls_to("getUpdates")) <= polls_before:
            await asyncio.sleep(0.02)

    async def stop(self) -> None:
        await self.app.dispatcher.stop_polling()
        await self._polling
        await self._release()

    async def _release(self) -> None:
        from bot.app import close_app

        release_routers(self.app.dispatcher)
        await close_app(self.app)

    @property
    def services(self):
        return self.app.services
