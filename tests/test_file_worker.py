"""Charts and workbooks made in the file worker process (bot/file_worker.py): the same PNGs and cells
as made in-process, matplotlib and openpyxl kept out of the bot's process, the worker stopped when idle,
and failures raised in the caller."""

from __future__ import annotations

import asyncio
import io
import operator
import os
import random
import signal
import struct
import subprocess
import sys
import time
from concurrent.futures import BrokenExecutor
from datetime import date, timedelta
from pathlib import Path

import pytest

from bot.chart_drawing import Series, WeeklyChart
from bot.file_worker import FileWorker
from bot.charts import WeeklyCounts, weekly_chart, weekly_chart_png
from bot.i18n import build_i18n
from bot.instruments import load_instruments
from bot.sheet_writing import workbook
from bot.survey_report import results_chart, results_chart_png, results_sheets, results_xlsx
from bot.survey_results import aggregate, answer_set

ROOT = Path(__file__).resolve().parent.parent
PNG = b"\x89PNG\r\n\x1a\n"
WEEKS = tuple(date(2026, 9, 28) + timedelta(days=7 * week) for week in range(8))
COUNTS = WeeklyCounts(WEEKS, {"gas": (0, 1, 2, 0, 0, 3, 0, 2), "roof": (1, 0, 0, 0, 0, 0, 0, 0),
                              "harassment": (2, 2, 2, 2, 0, 0, 1, 9), "dust": (0,) * 8})


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG
    return struct.unpack(">II", data[16:24])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def until(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@pytest.fixture
def i18n():
    return build_i18n("en")


@pytest.fixture
async def worker():
    worker = FileWorker(idle_seconds=30)
    yield worker
    await worker.shutdown()


def chart(i18n, language: str = "kk", counts: WeeklyCounts = COUNTS) -> WeeklyChart:
    with i18n.context(), i18n.use_locale(language):
        return weekly_chart(counts, "Шахта «Казахстанская»", language)


async def test_the_weekly_chart_from_the_worker_is_the_png_drawn_in_process(i18n, worker) -> None:
    for language in ("kk", "ru", "en"):
        spec = chart(i18n, language)
        assert spec.series[0].label != "gas" and len(spec.weeks) == 8  # translated, dated here
        png = await worker.draw(spec)
        assert png_size(png) == (960, 600) and len(png) > 5000
        with i18n.context(), i18n.use_locale(language):
            assert png == weekly_chart_png(COUNTS, "Шахта «Казахстанская»", language)
    empty = await worker.draw(chart(i18n, "ru", WeeklyCounts(WEEKS, {})))
    assert png_size(empty) == (960, 600)


async def test_survey_results_from_the_worker_are_the_png_drawn_in_process(i18n, worker) -> None:
    instruments = load_instruments()
    rng = random.Random(1)
    groups = {(1, "underground"): 30, (1, "surface"): 4, (2, "underground"): 14, (2, "surface"): 12}
    names = {1: "Kostenko mine", 2: "Kuzembaev mine"}
    for instrument_id in ("copsoq3_core", "who5"):
        instrument = instruments[instrument_id]
        answers = [answer_set(instrument, group, {item.id: rng.choice(item.option_set.options).id
                                                  for item in instrument.items})
                   for group, count in groups.items() for _ in range(count)]
        results = aggregate(instrument, answers)
        for language, sites in (("en", None), ("kk", {1})):
            with i18n.context(), i18n.use_locale(language):
                spec = results_chart(instrument, results, names, language, sites)
                in_process = results_chart_png(instrument, results, names, language, sites)
            png = await worker.draw(spec)
            assert png_size(png)[0] == 960 and png == in_process


async def test_a_survey_workbook_from_the_worker_holds_the_cells_made_in_process(i18n, worker) -> None:
    from openpyxl import load_workbook

    who5 = load_instruments()["who5"]
    rng = random.Random(4)
    groups = {(1, "underground"): 12, (2, "surface"): 11}
    answers = [answer_set(who5, group, {item.id: rng.choice(item.option_set.options).id for item in who5.items})
               for group, count in groups.items() for _ in range(count)]
    reports = [(who5, aggregate(who5, answers))]
    names = {1: "=Kostenko mine", 2: "Kuzembaev mine"}
    with i18n.context(), i18n.use_locale("kk"):
        sheets = results_sheets(reports, names, "kk")
        in_process = load_workbook(io.BytesIO(results_xlsx(reports, names, "kk")))
    from_worker = load_workbook(io.BytesIO(await worker.run(workbook, sheets)))

    def cells(book) -> list[list[tuple]]:
        return [[(cell.value, cell.font.b, cell.font.sz, cell.alignment.wrap_text, cell.number_format)
                 for row in sheet.iter_rows() for cell in row] for sheet in book.worksheets]

    assert cells(from_worker) == cells(in_process) and len(from_worker.worksheets) == 1
    sheet = from_worker.worksheets[0]
    assert sheet.freeze_panes == "B9" and sheet.column_dimensions["A"].width == 46
    assert sheet["B8"].value == "'=Kostenko mine\nЖер астында"  # a name is never a formula


CHECK_THE_BOT_PROCESS = r"""
import asyncio, sys, tempfile
from datetime import date
from pathlib import Path
from bot import file_worker
from bot.charts import WeeklyCounts, draw_weekly_chart
from bot.i18n import build_i18n
from bot.instruments import load_instruments
from bot.sheet_writing import xlsx_from_csv
from bot.survey_report import draw_results_chart, make_results_xlsx
from bot.survey_results import aggregate

async def main():
    i18n = build_i18n("ru")
    who5 = load_instruments()["who5"]
    with i18n.context(), i18n.use_locale("kk"):
        weekly = await draw_weekly_chart(WeeklyCounts((date(2026, 11, 16),), {"gas": (3,)}), "Mine", "kk")
        results = await draw_results_chart(who5, aggregate(who5, []), {}, "kk")
        book = await make_results_xlsx([(who5, aggregate(who5, []))], {}, "kk")
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "cases.csv").write_text("a,b\n1,x\n", encoding="utf-8-sig")
        await file_worker.run(xlsx_from_csv, f"{folder}/cases.csv", f"{folder}/cases.xlsx", "MineVoice", (8, 8))
        exported = Path(folder, "cases.xlsx").read_bytes()
    assert weekly.startswith(b"\x89PNG") and results.startswith(b"\x89PNG")
    assert book.startswith(b"PK") and exported.startswith(b"PK")
    child = await file_worker.worker.run(eval, "sorted(__import__('sys').modules)")
    await file_worker.shutdown()
    heavy = [name for name in ("matplotlib", "numpy", "PIL", "openpyxl") if name in sys.modules]
    assert not heavy, f"the bot's process imported {heavy}"
    assert "matplotlib" in child and "openpyxl" in child and "bot.chart_drawing" in child
    unwanted = [name for name in child if name.split(".")[0] in ("aiogram", "pydantic", "babel", "storage")
                or name in ("bot.config", "bot.charts", "bot.i18n", "bot.hazards", "bot.file_worker", "bot.exports",
                            "bot.survey_report")]
    assert not unwanted, f"the file worker imported {unwanted}"
    print("ok")

asyncio.run(main())
"""


def test_the_bot_process_never_imports_matplotlib_or_openpyxl() -> None:
    """In a fresh interpreter, as the bot: the test process itself may have drawn charts in-process."""
    done = subprocess.run([sys.executable, "-c", CHECK_THE_BOT_PROCESS], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


async def test_an_idle_worker_stops_and_the_next_chart_starts_another(i18n) -> None:
    worker = FileWorker(idle_seconds=0.5)
    try:
        first = await worker.run(os.getpid)
        assert first != os.getpid() and worker.running
        assert png_size(await worker.draw(chart(i18n)))[0] == 960
        assert await worker.run(os.getpid) == first  # one process for a batch
        await until(lambda: not worker.running)
        await until(lambda: not alive(first))
        png = await worker.draw(chart(i18n))
        assert png_size(png) == (960, 600)
        second = await worker.run(os.getpid)
        assert second != first and alive(second)
    finally:
        await worker.shutdown()
    await until(lambda: not alive(second))


async def test_no_idle_stop_while_charts_keep_coming(i18n) -> None:
    worker = FileWorker(idle_seconds=0.3)
    try:
        pid = await worker.run(os.getpid)
        for _ in range(4):
            await asyncio.sleep(0.1)
            await worker.draw(chart(i18n))
        assert await worker.run(os.getpid) == pid
    finally:
        await worker.shutdown()


async def test_shutdown_stops_the_worker_at_once(i18n, worker) -> None:
    pid = await worker.run(os.getpid)
    await worker.shutdown()
    assert not worker.running and not alive(pid)
    assert png_size(await worker.draw(chart(i18n)))[0] == 960


async def test_an_error_in_the_child_reaches_the_caller_and_the_next_chart_works(i18n, worker) -> None:
    pid = await worker.run(os.getpid)
    with pytest.raises(ZeroDivisionError):
        await worker.run(operator.truediv, 1, 0)
    broken = WeeklyChart("title", "y", "x", ("a", "b"), (Series("gas", 0, (1, 2, 3)),), "none")
    with pytest.raises(ValueError):  # three bars on two weeks: matplotlib refuses, in the child
        await worker.draw(broken)
    assert png_size(await worker.draw(chart(i18n)))[0] == 960
    assert await worker.run(os.getpid) == pid  # an exception does not cost the process


async def test_a_child_that_dies_fails_its_chart_and_the_next_chart_gets_a_new_one(i18n, worker) -> None:
    pid = await worker.run(os.getpid)
    with pytest.raises(BrokenExecutor):  # concurrent.futures.process.BrokenProcessPool
        await worker.run(os._exit, 3)
    assert png_size(await worker.draw(chart(i18n)))[0] == 960
    replacement = await worker.run(os.getpid)
    assert replacement != pid

    os.kill(replacement, signal.SIGKILL)  # killed while idle (say, out of memory)
    await until(lambda: not alive(replacement))
    assert png_size(await worker.draw(chart(i18n)))[0] == 960
    assert await worker.run(os.getpid) not in (pid, replacement)


async def test_a_task_that_runs_over_its_time_is_killed_and_the_next_gets_a_new_process(i18n) -> None:
    worker = FileWorker(task_seconds=1.0)
    try:
        pid = await worker.run(os.getpid)
        began = time.monotonic()
        with pytest.raises(TimeoutError):
            await worker.run(time.sleep, 60)  # stuck
        assert time.monotonic() - began < 10
        await until(lambda: not alive(pid))
        assert png_size(await worker.draw(chart(i18n)))[0] == 960
        assert await worker.run(os.getpid) != pid
    finally:
        await worker.shutdown()


async def test_charts_waiting_for_the_worker_are_drawn_in_turn(i18n, worker) -> None:
    specs = [chart(i18n, language) for language in ("kk", "ru", "en")] * 3
    pngs = await asyncio.gather(*(worker.draw(spec) for spec in specs))
    assert all(png_size(png) == (960, 600) for png in pngs)
    assert pngs[:3] == pngs[3:6] == pngs[6:] and len(set(pngs[:3])) == 3
