"""Start-up's long-lived objects are moved out of the cycle collector's sight, and the scheduler
does it once more after the first minutes of traffic."""

import gc
from pathlib import Path
from types import SimpleNamespace

from bot.config import load_settings
from bot.scheduler import SETTLE_MEMORY_AFTER, build_scheduler, settle_memory


def test_settling_freezes_what_is_alive() -> None:
    gc.unfreeze()
    try:
        settle_memory()
        assert gc.get_freeze_count() > 10_000  # modules, aiogram, catalogs: all already loaded here
    finally:
        gc.unfreeze()


def test_settling_again_is_scheduled_once(tmp_path: Path) -> None:
    settings = load_settings(bot_token="123456789:AAF-fake-token-for-tests-only-000000",
                             database_path=tmp_path / "db.sqlite3", _env_file=None)
    services = SimpleNamespace(alerts=None)  # the jobs are only listed, never run
    scheduler = build_scheduler(settings, storage=None, services=services, db=None)
    job = scheduler.get_job("settle_memory")
    assert job is not None and job.func is settle_memory
    assert 0 < SETTLE_MEMORY_AFTER.total_seconds() <= 15 * 60
