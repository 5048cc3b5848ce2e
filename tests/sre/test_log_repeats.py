"""streams.logging_setup.RepeatFilter: a Kafka client retrying a lost broker logs the same
error many times a second; one line per template and window goes out, with the count of
the others, and connection errors lose their traceback. Vigie's own lines all go out."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from streams.logging_setup import RepeatFilter, flush_repeated_logs, setup_logging


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def captured() -> Iterator[tuple[io.StringIO, Clock]]:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    handler = setup_logging("info", stream=stream)
    clock = Clock()
    repeats = next(f for f in handler.filters if isinstance(f, RepeatFilter))
    repeats._clock = clock  # the handler's own filter, on a test clock
    yield stream, clock
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved_handlers:
        root.addHandler(h)
    root.setLevel(saved_level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_broker_outage_storm_is_one_line_per_window(
    captured: tuple[io.StringIO, Clock],
) -> None:
    stream, clock = captured
    kafka = logging.getLogger("aiokafka")
    for i in range(1000):  # ~a broker restart's worth, over 40 s
        clock.now = i * 0.04
        kafka.error("Unable connect to node with id %s: %s", 1, "[Errno 111] refused")
        kafka.error("Unable to update metadata from [%s]", 1)
    clock.now = 45.0
    flush_repeated_logs()  # the first windows' counts went out with the next lines
    assert len(lines(stream)) == 4
    flush_repeated_logs(force=True)  # on the way out: the open windows' counts too
    out = lines(stream)
    assert len(out) <= 6, out
    by_message: dict[str, int] = {}
    for entry in out:
        by_message[str(entry["message"])] = by_message.get(str(entry["message"]), 0) + 1 + int(
            entry.get("suppressed_repeats", 0))  # type: ignore[call-overload]
    # every line is accounted for: the ones written plus the counts they carry
    assert by_message == {"Unable connect to node with id 1: [Errno 111] refused": 1000,
                          "Unable to update metadata from [1]": 1000}


def test_a_summary_comes_even_when_the_storm_stops(captured: tuple[io.StringIO, Clock]) -> None:
    stream, clock = captured
    kafka = logging.getLogger("aiokafka.consumer.fetcher")
    for _ in range(5):
        kafka.error("Failed fetch messages from %s", 1)
    flush_repeated_logs()  # the window is still open: nothing yet
    assert len(lines(stream)) == 1
    clock.now = 31.0
    flush_repeated_logs()
    out = lines(stream)
    assert len(out) == 2 and out[1]["suppressed_repeats"] == 3  # itself and 3 more
    clock.now = 32.0
    kafka.error("Failed fetch messages from %s", 1)  # a new window: goes out, no count
    out = lines(stream)
    assert len(out) == 3 and "suppressed_repeats" not in out[2]


def test_own_lines_and_info_lines_are_never_dropped(captured: tuple[io.StringIO, Clock]) -> None:
    stream, _clock = captured
    for i in range(50):
        logging.getLogger("agents.ports.retry").warning("retrying after failure",
                                                        extra={"attempt": i + 1})
        logging.getLogger("aiokafka.consumer.group_coordinator").info("Discovered coordinator")
    assert len(lines(stream)) == 100


def test_connection_errors_of_libraries_lose_their_traceback(
    captured: tuple[io.StringIO, Clock],
) -> None:
    stream, _clock = captured
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError:
        logging.getLogger("clickhouse_driver.connection").warning(
            "Failed to connect to %s:%s", "127.0.0.1", 9000, exc_info=True)
    try:
        raise ValueError("a bug")
    except ValueError:
        logging.getLogger("aiokafka").exception("Unexpected error")
        logging.getLogger("agents.ingest").exception("our own error keeps its traceback")
    out = lines(stream)
    assert "exc" not in out[0] and out[0]["error"] == (
        "ConnectionRefusedError: [Errno 111] Connection refused")
    assert "Traceback" in str(out[1]["exc"])  # not a connection error: kept
    assert "Traceback" in str(out[2]["exc"])
