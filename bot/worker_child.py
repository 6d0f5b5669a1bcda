"""What the file worker's child process runs before its first task (see `bot.file_worker`).

The child is started with `runpy.run_path(this file, run_name=CHILD_RUN_NAME)` as its initializer, so
this file runs without importing `bot/__init__.py` (which imports aiogram: about 1 s and 50 MB for
nothing). It imports only the standard library.
"""

from __future__ import annotations

CHILD_RUN_NAME = "__minevoice_file_worker__"
PARENT_CHECK_SECONDS = 2.0


def prepare_child() -> None:
    """- `bot` becomes a bare package, so unpickling a task imports `bot.chart_drawing` or
      `bot.sheet_writing` and nothing else; a `bot` already imported is left as it is;
    - Ctrl+C in a terminal reaches the whole process group: the bot stops its worker itself;
    - if the bot dies without stopping it (SIGKILL), the worker ends too instead of waiting forever
      for work (it holds its own end of the task queue, so it would never see the queue close)."""
    import os
    import signal
    import sys
    import threading
    import time
    import types

    if "bot" not in sys.modules:
        package = types.ModuleType("bot", "MineVoice (only what the file worker needs)")
        package.__path__ = [os.path.dirname(os.path.abspath(__file__))]
        sys.modules["bot"] = package
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = os.getppid()

    def exit_with_parent() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_CHECK_SECONDS)
        os._exit(1)

    threading.Thread(target=exit_with_parent, name="exit-with-bot", daemon=True).start()


if __name__ == CHILD_RUN_NAME:
    prepare_child()
