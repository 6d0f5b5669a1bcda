"""Logs: one line per event, key=value, secrets redacted even inside tracebacks."""

import io
import json
import logging
import re
import shlex

from bot.logs import LogfmtFormatter

TOKEN = "123456789:AAF-secret-token-value"


def logged(emit) -> list[str]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(LogfmtFormatter(TOKEN))
    logger = logging.getLogger("minevoice.test")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.INFO)
    emit(logger)
    return stream.getvalue().splitlines()


def test_an_event_is_one_line_of_fields() -> None:
    lines = logged(lambda log: log.info("Survey %d (%s) launched", 1, "who5"))
    assert len(lines) == 1
    fields = dict(pair.split("=", 1) for pair in shlex.split(lines[0]))
    assert fields["level"] == "INFO" and fields["logger"] == "minevoice.test"
    assert fields["msg"] == "Survey 1 (who5) launched"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", fields["time"])


def test_a_failure_with_its_traceback_stays_one_line_and_hides_the_token() -> None:
    def fail(log: logging.Logger) -> None:
        try:
            raise RuntimeError(f"POST https://api.telegram.org/bot{TOKEN}/sendMessage failed\nsecond line")
        except RuntimeError:
            log.exception("Update %s failed", 42)

    lines = logged(fail)
    assert len(lines) == 1
    assert TOKEN not in lines[0] and "[redacted]" in lines[0]
    error = json.loads(lines[0].split(" error=", 1)[1])
    assert error.startswith("Traceback") and "RuntimeError" in error and "second line" in error
