"""Project scripts stop only the processes they started (by PID), never by name: `pkill -f
prometheus` would also stop a user's own Prometheus or ClickHouse."""

from __future__ import annotations

import re
from pathlib import Path

from tests.sre.conftest import ROOT

BY_NAME = re.compile(r"\b(pkill|killall|pgrep|pidof)\b|\bfuser\b[^#\n]*\s-k\b")


def shell_sources() -> list[Path]:
    paths = [*ROOT.glob("scripts/**/*.sh"), ROOT / "Makefile", *ROOT.glob(".ci/*")]
    paths += [p for p in ROOT.glob("tests/**/*.sh") if "node_modules" not in p.parts]
    paths += [*ROOT.glob("deploy/**/*.sh"), ROOT / "deploy" / "Dockerfile"]
    return sorted(p for p in paths if p.is_file())


def test_no_script_stops_processes_by_name() -> None:
    sources = shell_sources()
    assert ROOT / "scripts" / "system-deps.sh" in sources
    offending = []
    for path in sources:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0] if not line.lstrip().startswith("#") else ""
            if BY_NAME.search(code):
                offending.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offending == []


def test_the_pattern_catches_kills_by_name() -> None:
    for line in [
        "pkill -f '/usr/bin/prometheus' 2>/dev/null || true",
        "killall clickhouse-server",
        "kill $(pgrep -f kafka.Kafka)",
        "kill $(pidof prometheus)",
        "fuser -k 9090/tcp",
    ]:
        assert BY_NAME.search(line), line
    for line in [
        'kill "$(cat "$RUN_DIR/worker.pid")"',
        'kill -0 "$pid"',
        "fuser /var/lib/dpkg/lock",
    ]:
        assert not BY_NAME.search(line), line
