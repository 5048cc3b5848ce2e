"""`scripts/kafka.sh status`: readiness is read from the broker's log after the start mark.

No broker here: a sleeping process stands for it, a listening socket for its port and a
written `server.log` for its log, so the check itself is what runs."""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "kafka.sh"
STARTED = "[2026-11-26 08:35:50,824] INFO [KafkaRaftServer nodeId=1] Kafka Server started\n"


@pytest.fixture
def broker_dir(tmp_path: Path) -> Iterator[Path]:
    """A broker directory whose process is alive and whose port accepts connections."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stand_in = subprocess.Popen(["sleep", "60"])
    (tmp_path / "logs").mkdir()
    (tmp_path / "kafka.pid").write_text(f"{stand_in.pid}\n")
    port = listener.getsockname()[1]
    (tmp_path / "ports.env").write_text(f"BROKER_PORT={port}\nCTRL_PORT={port + 1}\n")
    try:
        yield tmp_path
    finally:
        stand_in.kill()
        stand_in.wait()
        listener.close()


def status(d: Path) -> int:
    return subprocess.run(["bash", str(SCRIPT), "status", "--dir", str(d)],
                          capture_output=True, check=False).returncode


def test_ready_once_started_even_with_much_log_after_the_line(broker_dir: Path) -> None:
    before = "x" * 200 + "\n"
    log = broker_dir / "logs" / "server.log"
    log.write_text(before * 10)
    (broker_dir / "start.mark").write_text(str(log.stat().st_size))
    assert status(broker_dir) == 1  # this start has not logged its line yet
    with log.open("a") as fh:
        fh.write(STARTED)
    assert status(broker_dir) == 0
    # a restart loading many groups logs hundreds of KB right after the line: still ready
    # (with `grep -q` under pipefail, `tail` died of SIGPIPE and the check failed for ever)
    with log.open("a") as fh:
        fh.write(before * 2000)
    assert status(broker_dir) == 0


def test_a_line_from_an_earlier_start_does_not_count(broker_dir: Path) -> None:
    log = broker_dir / "logs" / "server.log"
    log.write_text(STARTED + "y" * 100_000 + "\n")
    (broker_dir / "start.mark").write_text(str(log.stat().st_size))
    assert status(broker_dir) == 1
