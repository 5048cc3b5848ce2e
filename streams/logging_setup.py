"""Structured JSON logs: one object per line, never personal data.

Each line: `ts` (UTC ISO 8601), `level`, `logger`, `message`, plus the correlation ids
`report_id`, `incident_id`, `alert_id` and other safe extras passed with `extra={...}`.
Keys known to carry personal data (contact, free-text description, reporter identity) are
dropped, whatever the caller passes, by `PersonalDataFilter`.

Libraries retrying a lost connection (aiokafka, clickhouse-driver) log the same warning or
error many times a second while a broker or server is down: `RepeatFilter` lets one line per
logger and message template through every `REPEAT_WINDOW_SECONDS` and counts the others: a
line with `suppressed_repeats: N` stands for itself and N similar lines that were dropped
(the next line of that template carries the count or, when none comes, the last line
dropped is written with it by `flush_repeated_logs()`, a worker timer). Their connection
errors are logged without traceback (the exception's type and text are in `error`).
Vigie's own loggers are never filtered: they log once per attempt.
"""

from __future__ import annotations

import asyncio
import logging
import logging.config
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

PERSONAL_KEYS = frozenset(
    {
        "contact",
        "description",
        "reporter",
        "reporter_name",
        "reporter_contact",
        "email",
        "phone",
        "name",
        "free_text",
        "text",
        "raw",
        "payload",
        "value",
    }
)
CORRELATION_KEYS = ("report_id", "incident_id", "alert_id")
# Attributes every LogRecord has: not extras.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class PersonalDataFilter(logging.Filter):
    """Removes extras whose key is a known personal-data key (always lets the record pass)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key in list(vars(record)):
            if key.lower() in PERSONAL_KEYS and key not in _RECORD_ATTRS:
                delattr(record, key)
        return True


# Loggers of this project: never rate-limited.
OWN_LOGGERS = ("agents", "streams", "console", "offline", "vigie", "schemas", "benchmarks")
REPEAT_WINDOW_SECONDS = 30.0
# Exceptions that mean "cannot reach it": logged without a traceback by third-party clients.
CONNECTION_ERRORS = (OSError, EOFError, asyncio.TimeoutError)


def _own(logger: str) -> bool:
    return any(logger == name or logger.startswith(name + ".") for name in OWN_LOGGERS)


@dataclass(slots=True)
class _Window:
    start: float
    suppressed: int = 0
    last: logging.LogRecord | None = None  # the last line dropped


class RepeatFilter(logging.Filter):
    """At most one third-party WARNING/ERROR line per (logger, level, message template) every
    `window_seconds`; the next one that passes carries `suppressed_repeats` (lines dropped
    since the previous one). Thread-safe (Faust's consumer thread logs too)."""

    def __init__(self, window_seconds: float = REPEAT_WINDOW_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_seconds = window_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple[str, int, str], _Window] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or _own(record.name):
            return True
        if getattr(record, "suppressed_repeats", None) is not None:
            return True  # a summary made by `expired`
        _strip_connection_traceback(record)
        key = (record.name, record.levelno, str(record.msg))
        now = self._clock()
        with self._lock:
            window = self._windows.get(key)
            if window is None or now - window.start >= self.window_seconds:
                self._windows[key] = _Window(start=now)
                if window is not None and window.suppressed:
                    record.suppressed_repeats = window.suppressed
                return True
            window.suppressed += 1
            window.last = record
            return False

    def expired(self, force: bool = False) -> list[logging.LogRecord]:
        """Summaries of the windows that ended (`force`: of every window) with lines dropped:
        the last line dropped, with `suppressed_repeats` (the others)."""
        now = self._clock()
        out: list[logging.LogRecord] = []
        with self._lock:
            for key, window in list(self._windows.items()):
                if now - window.start < self.window_seconds and not force:
                    continue
                del self._windows[key]
                if window.suppressed and window.last is not None:
                    summary = logging.makeLogRecord(vars(window.last))
                    summary.suppressed_repeats = window.suppressed - 1
                    out.append(summary)
        return out


def _strip_connection_traceback(record: logging.LogRecord) -> None:
    if record.exc_info and isinstance(record.exc_info[1], CONNECTION_ERRORS):
        exc = record.exc_info[1]
        record.error = f"{type(exc).__name__}: {exc}"
        record.exc_info = None
        record.exc_text = None


def flush_repeated_logs(force: bool = False) -> None:
    """Write the `suppressed_repeats` summaries of the windows that ended (`force`: of all,
    e.g. on the way out) of the root logger's handlers."""
    for handler in logging.getLogger().handlers:
        for log_filter in handler.filters:
            if isinstance(log_filter, RepeatFilter):
                for summary in log_filter.expired(force):
                    handler.handle(summary)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CORRELATION_KEYS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        for key, value in vars(record).items():
            if key in _RECORD_ATTRS or key in entry or key.lower() in PERSONAL_KEYS:
                continue
            entry[key] = value
        if record.exc_info:
            entry["exc_type"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


def logging_config(level: str | int = "INFO", stream: TextIO | None = None) -> dict[str, Any]:
    """A `logging.config.dictConfig` dict: the root logger to one JSON-lines handler on
    `stream` (default: `sys.stderr` when called). The worker gives it to Faust, which applies
    it as it starts instead of its own plain-text format, so that every line is JSON."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {
            "personal_data": {"()": PersonalDataFilter},
            "repeats": {"()": RepeatFilter},
        },
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["personal_data", "repeats"],
                "stream": stream if stream is not None else sys.stderr,
            }
        },
        "root": {
            "level": level.upper() if isinstance(level, str) else level,
            "handlers": ["json"],
        },
    }


def setup_logging(level: str | int = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Route every log record (root logger) to one JSON-lines handler on stderr."""
    logging.config.dictConfig(logging_config(level, stream))
    return logging.getLogger().handlers[0]
