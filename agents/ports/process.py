"""Ending the process when a write cannot be confirmed (the stages' last resort)."""

from __future__ import annotations

import logging
import os
import sys
from typing import NoReturn

log = logging.getLogger(__name__)

EXIT_WRITE_FAILED = 70  # EX_SOFTWARE: the orchestrator restarts, the next run replays


def crash(reason: str, exc: BaseException | None = None) -> NoReturn:
    """Stop the process at once so that uncommitted messages are replayed by the next run.

    Used when a write is still failing after its bounded retries: exiting without a
    graceful shutdown guarantees nothing past the last confirmed batch gets committed.
    """
    log.critical("fatal: %s", reason, exc_info=exc)
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(EXIT_WRITE_FAILED)
