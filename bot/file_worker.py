"""Charts and spreadsheets are made in a short-lived child process, so matplotlib and openpyxl never
enter the bot's.

matplotlib with numpy, Pillow and its font list adds about 70 MB to a process, writing a workbook with
openpyxl some 20 MB, and a process does not give that back: made in the bot, the first Monday's digest
chart or the first export would keep the bot that much bigger for good (the target is 120 MB; benchmarks/capacity.py).
So they are made by one worker process:

- spawned (a fresh interpreter, `multiprocessing` "spawn"), never forked from the bot with its threads
  and SQLite connections; it gets only plain data (`bot.chart_drawing`, `bot.sheet_writing`) or the
  path of a file the bot wrote, and imports only those modules, matplotlib and openpyxl — not aiogram,
  settings or the database (`bot.worker_child`);
- started by the first task, reused while tasks keep coming (a Monday's digests draw one chart per
  committee and language: a process each would cost about a second each), and stopped after
  `idle_seconds` without a task, and when the bot stops (`shutdown`, from `bot.app.close_app`);
- a task that fails in the child raises in the caller, as it would in the bot (the exception, or
  `BrokenProcessPool` if the child died); a broken pool is replaced by the next task.

The bot runs as `python -m bot`, so the child does not import the bot's `__main__` module again (a
script that uses the worker must keep its own work under `if __name__ == "__main__":`, as any script
using multiprocessing's spawn must). Use a worker from one event loop at a time.
"""

from __future__ import annotations

import asyncio
import logging
import runpy
from collections.abc import Callable
from concurrent.futures import BrokenExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from bot import chart_drawing, worker_child
from bot.chart_drawing import ResultsChart, WeeklyChart

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor

log = logging.getLogger(__name__)

IDLE_SECONDS = 60.0
# A year's export of a big mine takes about 10 s in the worker, a chart under a second: a task still
# running after this is stuck (a bad font file, a runaway allocation), and the process is killed.
TASK_SECONDS = 300.0
T = TypeVar("T")


class FileWorker:
    """At most one child process, started on demand and stopped after `idle_seconds` without work."""

    def __init__(self, idle_seconds: float = IDLE_SECONDS, task_seconds: float = TASK_SECONDS) -> None:
        self.idle_seconds = idle_seconds
        self.task_seconds = task_seconds
        self._pool: ProcessPoolExecutor | None = None
        self._calls = 0  # submitted and not yet returned to their caller
        self._idle_timer: asyncio.TimerHandle | None = None

    @property
    def running(self) -> bool:
        """Whether a worker process is up (or about to be: it starts with its first task)."""
        return self._pool is not None

    async def draw(self, chart: WeeklyChart | ResultsChart) -> bytes:
        """The chart as PNG bytes, drawn in the worker process."""
        return await self.run(chart_drawing.render, chart)

    async def run(self, function: Callable[..., T], /, *args: Any) -> T:
        """`function(*args)` in the worker process. Both must pickle: a module-level function of a
        module the child can import cheaply, and plain data. Raises TimeoutError, and kills the
        process, when the task (with any queued before it) is not done within `task_seconds`."""
        self._stop_idle_timer()
        self._calls += 1
        try:
            pool, future = self._submit(function, args)
            try:
                return await asyncio.wait_for(asyncio.wrap_future(future), self.task_seconds)
            except TimeoutError:
                log.error("A file worker task ran over %.0f s: its process is killed", self.task_seconds)
                self._discard(pool, kill=True)
                raise
            except BrokenExecutor:  # the child died (BrokenProcessPool)
                self._discard(pool)
                raise
        finally:
            self._calls -= 1
            self._start_idle_timer()

    async def shutdown(self) -> None:
        """Stop the worker process now (a task under way is finished first; queued ones are cancelled)."""
        self._stop_idle_timer()
        pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
            log.info("File worker stopped")

    def _submit(self, function: Callable[..., Any], args: tuple) -> tuple[ProcessPoolExecutor, Future]:
        pool = self._pool or self._new_pool()
        try:
            return pool, pool.submit(function, *args)
        except BrokenExecutor:  # the child died while idle (killed, out of memory): start another
            self._discard(pool)
            pool = self._new_pool()
            return pool, pool.submit(function, *args)

    def _new_pool(self) -> ProcessPoolExecutor:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self._pool = ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=runpy.run_path, initargs=(worker_child.__file__, None, worker_child.CHILD_RUN_NAME),
        )
        log.info("File worker starting")
        return self._pool

    def _discard(self, pool: ProcessPoolExecutor, *, kill: bool = False) -> None:
        if self._pool is pool:
            self._pool = None
            log.warning("File worker process %s; the next task starts a new one", "killed" if kill else "died")
        if kill:
            # Python 3.14 has kill_workers(); before it, the pool's processes are only in a private dict
            # (tests/test_file_worker.py fails if that changes).
            if hasattr(pool, "kill_workers"):
                pool.kill_workers()
            else:
                for process in list(getattr(pool, "_processes", {}).values()):
                    process.kill()
        pool.shutdown(wait=False, cancel_futures=True)

    def _start_idle_timer(self) -> None:
        if self._calls or self._pool is None:
            return
        self._stop_idle_timer()
        self._idle_timer = asyncio.get_running_loop().call_later(self.idle_seconds, self._stop_when_idle)

    def _stop_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    def _stop_when_idle(self) -> None:
        self._idle_timer = None
        if self._calls or self._pool is None:
            return
        pool, self._pool = self._pool, None
        pool.shutdown(wait=False)  # the process ends and is joined in the pool's own thread
        log.info("File worker stopped after %.0f s without work", self.idle_seconds)


# The bot's worker: `await draw(chart)` or `await run(function, ...)` from anywhere in the bot;
# `await shutdown()` when it stops.
worker = FileWorker()


async def draw(chart: WeeklyChart | ResultsChart) -> bytes:
    return await worker.draw(chart)


async def run(function: Callable[..., T], /, *args: Any) -> T:
    return await worker.run(function, *args)


async def shutdown() -> None:
    await worker.shutdown()
