"""`make run` (scripts/run.sh) gives its worker a random pseudonymisation key, new with each
demo, from a 0600 file of the run dir (kept with KEEP_DATA=1), never a fixed string.

The script runs in a sandbox: a copy of it in a temporary tree whose `.venv/bin/vigie` and
`scripts/kafka.sh` are stand-ins (the worker stand-in records its environment and answers
the two URLs the script polls, `/counts` only with the local API token it wrote, as the
worker does), so nothing of the real tree or a real broker is touched."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.infra.kafka import free_port
from tests.sre.conftest import ROOT

FAKE_VIGIE = r"""#!/usr/bin/env bash
case "$1" in
  worker)
    printf '%s %s\n' "${VIGIE_PSEUDONYM_SECRET:-<unset>}" \
      "${VIGIE_INPUT_RETENTION_HOURS:-<unset>}" >>"$PWD/worker-env"
    exec .venv/bin/python -c '
import http.server, os, sys
sys.path.insert(0, os.environ["VIGIE_TREE"])
from streams.local_api import bearer_matches, write_token
token = write_token(os.environ["VIGIE_WORKER_DATA_DIR"])
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path != "/counts":
            status, body = 200, b"ok"
        elif bearer_matches(self.headers.get("Authorization"), token):
            status, body = 200, b"{\"reports\": 1}"
        else:
            status, body = 401, b"{\"error\": \"unauthorized\"}"
        self.send_response(status); self.end_headers(); self.wfile.write(body)
    def log_message(self, *args): pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["VIGIE_WEB_PORT"])), H).serve_forever()
' ;;
  simulate) exec sleep 600 ;;
esac
"""


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Path]:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run.sh", tmp_path / "scripts" / "run.sh")
    (tmp_path / "scripts" / "kafka.sh").write_text("echo 127.0.0.1:19092\n")
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python").symlink_to(sys.executable)
    (bin_dir / "vigie").write_text(FAKE_VIGIE)
    (bin_dir / "vigie").chmod(0o755)
    yield tmp_path
    run(tmp_path, "stop")


def run(tree: Path, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("VIGIE_", "KEEP_DATA"))}
    return subprocess.run(
        ["bash", str(tree / "scripts" / "run.sh"), command],
        env={**clean, "VIGIE_WEB_PORT": str(free_port()), "VIGIE_TREE": str(ROOT),
             "VIGIE_CONSOLE_TOKENS": "sandbox-token-0123456789:operator:test",
             "VIGIE_WEBHOOKS_ENABLED": "false", **env},  # the webhook demo is not copied
        capture_output=True, text=True, timeout=120, check=False,
    )


def start(tree: Path, **env: str) -> tuple[str, str]:
    done = run(tree, "start", **env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert run(tree, "stop").returncode == 0
    secret, retention = (tree / "worker-env").read_text().splitlines()[-1].split()
    # the script read /counts with the local API token the worker wrote to its data dir
    assert "reports stored so far: 1" in done.stdout, done.stdout
    assert secret not in done.stdout + done.stderr  # never printed
    return secret, retention


def test_each_demo_gets_a_random_secret_in_a_private_file(sandbox: Path) -> None:
    first, retention = start(sandbox)
    assert re.fullmatch(r"[0-9a-f]{64}", first), first  # 32 random bytes
    key_file = sandbox / "var" / "run" / "pseudonym-secret"
    assert key_file.read_text() == first
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert retention == str((14 + 7) * 24)  # the simulated history's age plus 7 days

    second, _ = start(sandbox)
    assert re.fullmatch(r"[0-9a-f]{64}", second) and second != first  # a new demo, a new key

    kept, _ = start(sandbox, KEEP_DATA="1")
    assert kept == second  # kept data, kept key: its hashes still match


def test_a_given_secret_wins(sandbox: Path) -> None:
    given = "f" * 64
    assert start(sandbox, VIGIE_PSEUDONYM_SECRET=given)[0] == given
    assert not (sandbox / "var" / "run" / "pseudonym-secret").exists()
