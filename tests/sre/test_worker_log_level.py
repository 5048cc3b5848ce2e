"""At VIGIE_LOG_LEVEL=WARNING the worker's loggers stay at WARNING: Faust's terminal spinner
would set the root logger to DEBUG, and every debug call of Faust and aiokafka would build a
log record nobody keeps (CPU taken from the stream)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.app import create_app
from streams.settings import Settings
from streams.worker import faust_worker


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield root
    root.setLevel(level)
    root.handlers[:] = handlers


def test_a_warning_level_keeps_the_root_logger_at_warning(
    tmp_path: Path, root_logger: logging.Logger
) -> None:
    settings = Settings(log_level="WARNING", worker_data_dir=str(tmp_path / "worker"))
    app, _ = create_app(settings)
    worker = faust_worker(app, settings)
    root_logger.handlers[:] = [logging.NullHandler()]
    worker.on_setup_root_logger(root_logger, logging.WARNING)  # what Faust calls at start
    assert root_logger.level == logging.WARNING
    assert not logging.getLogger("aiokafka.producer").isEnabledFor(logging.DEBUG)
