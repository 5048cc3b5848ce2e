"""No usable default pseudonymisation key: the worker refuses to start without a secret of
32+ bytes (one line naming VIGIE_PSEUDONYM_SECRET, exit code 78), except in development mode,
which warns and uses a random key of its own process."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from streams.settings import Settings, pseudonymiser
from tests.sre.conftest import ROOT
from vigie.cli import settings_error_line

EX_CONFIG = 78
SECRET = "0123456789abcdef0123456789abcdef"  # 32 bytes


def vigie(env: dict[str, str], *args: str, timeout: float = 45) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
    return subprocess.run(
        [sys.executable, "-m", "vigie", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def worker_env(tmp_path: Path) -> dict[str, str]:
    """Nothing listens there: a worker that got past the key check would wait for Kafka."""
    return {
        "VIGIE_KAFKA_BOOTSTRAP": "127.0.0.1:1",
        "VIGIE_CLICKHOUSE": f"chdb://{tmp_path / 'chdb'}",
        "VIGIE_WORKER_DATA_DIR": str(tmp_path / "worker"),
    }


def test_the_worker_refuses_to_start_without_a_secret(tmp_path: Path) -> None:
    began = time.monotonic()
    done = vigie(worker_env(tmp_path), "worker")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == EX_CONFIG, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("vigie: invalid setting VIGIE_PSEUDONYM_SECRET: not set"), lines
    assert "VIGIE_DEV_MODE=1" in lines[0]
    # refused first: before any topic, store or broker is touched
    assert time.monotonic() - began < 30
    assert not (tmp_path / "chdb").exists()


@pytest.mark.parametrize("short", ["change-me", "dev-only-secret-change-me-0000", "x" * 31])
def test_a_short_secret_is_refused_without_echoing_it(tmp_path: Path, short: str) -> None:
    done = vigie({**worker_env(tmp_path), "VIGIE_PSEUDONYM_SECRET": short}, "worker")
    lines = done.stderr.strip().splitlines()
    assert done.returncode == EX_CONFIG, done.stderr
    assert len(lines) == 1, done.stderr
    assert "VIGIE_PSEUDONYM_SECRET: shorter than 32 bytes" in lines[0]
    assert short not in done.stderr


@pytest.fixture
def no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIE_PSEUDONYM_SECRET", raising=False)
    monkeypatch.delenv("VIGIE_DEV_MODE", raising=False)


@pytest.mark.usefixtures("no_secret")
def test_no_default_key() -> None:
    settings = Settings()
    assert settings.pseudonym_secret.get_secret_value() == ""
    with pytest.raises(ValidationError) as caught:
        pseudonymiser(settings)
    line = settings_error_line(caught.value)
    assert line is not None and line.startswith(
        "vigie: invalid setting VIGIE_PSEUDONYM_SECRET: not set"
    )


def test_a_set_secret_is_the_key() -> None:
    from agents.core.pseudonym import Pseudonymiser

    hasher = pseudonymiser(Settings(pseudonym_secret=SECRET))
    assert hasher.contact("06 12 34 56 78") == Pseudonymiser(SECRET.encode()).contact(
        "+33612345678"
    )


@pytest.mark.usefixtures("no_secret")
def test_development_mode_warns_and_uses_one_random_key_per_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="streams.settings"):
        first = pseudonymiser(Settings(dev_mode=True))
    assert any("development mode" in r.getMessage() and "Never use development mode in "
               "production" in r.getMessage() for r in caplog.records)
    again = pseudonymiser(Settings(dev_mode=True))
    assert first.contact("0612345678") == again.contact("06 12 34 56 78")  # one process
    # a secret, when set, wins over development mode
    assert pseudonymiser(Settings(dev_mode=True, pseudonym_secret=SECRET)).contact(
        "0612345678"
    ) != first.contact("0612345678")

    code = (
        "from streams.settings import Settings, pseudonymiser; "
        "print(pseudonymiser(Settings(dev_mode=True)).contact('0612345678'))"
    )
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
    tokens = {
        subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=clean, capture_output=True,
                       text=True, check=True, timeout=60).stdout.strip()
        for _ in range(2)
    }
    assert len(tokens) == 2 and first.contact("0612345678") not in tokens  # per process


def test_commands_whose_hashes_never_leave_the_process_need_no_key(tmp_path: Path) -> None:
    """`vigie simulate` hashes nothing; `vigie backtest` hashes with a random key of its own
    (no output carries a hash), so neither asks for VIGIE_PSEUDONYM_SECRET."""
    stream = tmp_path / "reports.jsonl"
    done = vigie({}, "simulate", "--days", "1", "--seed", "3", "--out", str(stream), timeout=120)
    assert done.returncode == 0, done.stderr
    done = vigie({}, "backtest", "--input", str(stream), "--out", str(tmp_path / "out"),
                 timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "out" / "incidents.jsonl").stat().st_size > 0
