"""Structured JSON logs: one object per line, never personal data.

Each line: `ts` (UTC ISO 8601), `level`, `logger`, `message`, plus the correlation ids
`report_id`, `incident_id`, `alert_id` and other safe extras passed with `extra={...}`.
Keys known to carry personal data (contact, free-text description, reporter identity) are
dropped, whatever the caller passes, by `PersonalDataFilter`.
"""

from __future__ import annotations

import logging
import logging.config
import sys
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
        "filters": {"personal_data": {"()": PersonalDataFilter}},
        "handlers": {
            "json": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["personal_data"],
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
