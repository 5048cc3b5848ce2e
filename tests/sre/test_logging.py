"""streams.logging_setup: one JSON object per line, correlation ids, no personal data."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from streams.logging_setup import setup_logging


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    setup_logging("debug", stream=stream)
    yield stream
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved_handlers:
        root.addHandler(handler)
    root.setLevel(saved_level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_one_json_object_per_line_with_ids(captured: io.StringIO) -> None:
    log = logging.getLogger("vigie.test")
    log.info("report %s rejected", "r-1", extra={"report_id": "r-1", "reason": "not_json"})
    log.warning("incident merged", extra={"incident_id": "i-9", "alert_id": "a-3"})
    log.debug("multi\nline message")
    out = lines(captured)
    assert len(out) == 3
    first = out[0]
    assert first["level"] == "INFO" and first["logger"] == "vigie.test"
    assert first["message"] == "report r-1 rejected"
    assert first["report_id"] == "r-1" and first["reason"] == "not_json"
    assert str(first["ts"]).endswith("+00:00")
    assert out[1]["incident_id"] == "i-9" and out[1]["alert_id"] == "a-3"
    assert "report_id" not in out[1]
    assert out[2]["message"] == "multi\nline message"


def test_personal_data_extras_are_dropped(captured: io.StringIO) -> None:
    logging.getLogger("vigie.test").info(
        "received",
        extra={
            "report_id": "r-2",
            "contact": "jean.dupont@example.org",
            "description": "mon voisin M. Dupont",
            "reporter": {"contact": "0601020304"},
            "Email": "x@example.org",
        },
    )
    raw = captured.getvalue()
    assert "dupont" not in raw.lower() and "0601020304" not in raw and "x@example" not in raw
    (entry,) = lines(captured)
    assert entry["report_id"] == "r-2"
    assert not {"contact", "description", "reporter", "Email"} & set(entry)


def test_exceptions_and_level(captured: io.StringIO) -> None:
    log = logging.getLogger("vigie.test")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("insert failed", extra={"table": "reports"})
    (entry,) = lines(captured)
    assert entry["level"] == "ERROR" and entry["exc_type"] == "RuntimeError"
    assert "boom" in str(entry["exc"]) and entry["table"] == "reports"
    setup_logging("WARNING", stream=captured)
    log.info("hidden")
    assert len(lines(captured)) == 1
