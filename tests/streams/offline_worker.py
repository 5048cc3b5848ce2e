"""`build_worker` without a broker: a chDB store in a temporary directory and no topic
creation (the app's agents never start), for tests of how the worker wires its stages."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from streams import worker
from streams.settings import Settings


def build_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> worker.BuiltWorker:
    """The worker built as `vigie worker` builds it; the caller closes it."""
    monkeypatch.setattr(worker, "create_missing_topics", lambda *_: None)  # no Kafka here
    settings = Settings(worker_data_dir=str(tmp_path / "worker"),
                        clickhouse=f"chdb://{tmp_path / 'chdb'}",
                        pseudonym_secret=SecretStr("k" * 48))
    return worker.build_worker(settings)
