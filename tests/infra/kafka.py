"""Pytest fixtures for a real Apache Kafka broker (single-node KRaft, `scripts/kafka.sh`).

- `kafka_broker` (session): one broker on free 127.0.0.1 ports in a temp dir (jars fetched
  from Maven Central on first use, cached in `.cache/kafka/<version>/libs`). It has
  `.bootstrap` ("127.0.0.1:PORT"), `.start()`, `.stop()`, `.restart()`, `.kill()` (SIGKILL),
  `.create_topics(names, partitions)`, `.delete_topics(names)`, `.log_path`.
  With `VIGIE_TEST_KAFKA_BOOTSTRAP` set, that broker is used instead, and the lifecycle
  methods skip the calling test.
- `faust_worker`: a factory of Faust worker subprocesses (`FaustWorker`), each killed at the
  end of the test if still running.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "kafka.sh"
ENV_BOOTSTRAP = "VIGIE_TEST_KAFKA_BOOTSTRAP"
START_TIMEOUT_S = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _script(*args: str, timeout: float = 300) -> str:
    done = subprocess.run(
        ["bash", str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"kafka.sh {' '.join(args)} failed:\n{done.stderr.strip()}")
    return done.stdout


class KafkaBroker:
    """A Kafka broker for tests. `directory` is None for an external broker."""

    def __init__(
        self,
        bootstrap: str,
        directory: Path | None = None,
        controller_port: int | None = None,
    ) -> None:
        self.bootstrap = bootstrap
        self.directory = directory
        self.controller_port = controller_port
        self.start_seconds: float | None = None
        """Wall time of the last `start()` (script call until the broker is ready)."""

    @property
    def external(self) -> bool:
        return self.directory is None

    @property
    def version(self) -> str | None:
        """Kafka version of the last start (None for an external broker)."""
        if self.directory is None:
            return None
        for line in (self.directory / "ports.env").read_text().splitlines():
            if line.startswith("VERSION="):
                return line.split("=", 1)[1]
        return None

    @property
    def log_path(self) -> Path | None:
        return None if self.directory is None else self.directory / "logs" / "server.log"

    def _own_dir(self, action: str) -> Path:
        if self.directory is None:
            pytest.skip(f"cannot {action} the external broker of {ENV_BOOTSTRAP}")
        return self.directory

    def start(self) -> None:
        """Start (or start again, same dir and ports, data kept) and wait until ready."""
        directory = self._own_dir("start")
        port = self.bootstrap.rsplit(":", 1)[1]
        began = time.monotonic()
        ports = ["--port", port]
        if self.controller_port is not None:
            ports += ["--controller-port", str(self.controller_port)]
        out = _script(
            "start",
            "--dir",
            str(directory),
            *ports,
            "--timeout",
            str(START_TIMEOUT_S),
            timeout=START_TIMEOUT_S + 300,
        )
        self.start_seconds = time.monotonic() - began
        self.bootstrap = out.strip().splitlines()[-1]

    def stop(self) -> None:
        """Clean stop: SIGTERM, SIGKILL after 30 s."""
        _script("stop", "--dir", str(self._own_dir("stop")), timeout=120)

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """Hard crash: SIGKILL the broker process and wait for it to be gone."""
        pid_file = self._own_dir("kill") / "kafka.pid"
        if not pid_file.exists():
            return
        pid = int(pid_file.read_text().strip())
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        pid_file.unlink(missing_ok=True)

    def create_topics(
        self,
        names: Iterable[str],
        partitions: int = 1,
        config: Mapping[str, str] | None = None,
    ) -> None:
        """Create topics (replication 1) and wait until each has a leader everywhere;
        topics that already exist are left as they are."""
        from kafka.admin import KafkaAdminClient
        from kafka.errors import TopicAlreadyExistsError

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="vigie-tests")
        try:
            for name in names:
                spec = {
                    "num_partitions": partitions,
                    "replication_factor": 1,
                    "configs": dict(config or {}),
                }
                with contextlib.suppress(TopicAlreadyExistsError):
                    admin.create_topics({name: spec}, wait_for_metadata=True)
        finally:
            admin.close()

    def delete_topics(self, names: Iterable[str]) -> None:
        """Delete the topics of `names` that exist."""
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, client_id="vigie-tests")
        try:
            existing = set(admin.list_topics())
            wanted = [name for name in names if name in existing]
            if wanted:
                admin.delete_topics(wanted)
        finally:
            admin.close()


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KafkaBroker]:
    external = os.environ.get(ENV_BOOTSTRAP)
    if external:
        yield KafkaBroker(external)
        return
    directory = tmp_path_factory.mktemp("kafka")
    controller = free_port()
    port = free_port()
    while port == controller:
        port = free_port()
    _script("fetch", timeout=900)
    broker = KafkaBroker(f"127.0.0.1:{port}", directory, controller)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


class FaustWorker:
    """A Faust worker subprocess (`python -m faust -A APP worker`), output to `log_path`."""

    def __init__(
        self,
        app: str,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path = ROOT,
        extra_args: Iterable[str] = (),
        web_port: int | None = None,
    ) -> None:
        self.app = app
        self.log_path = log_path
        self.env = {**os.environ, **(env or {})}
        self.cwd = cwd
        # The worker CLI overrides the app's `web_enabled` (its default is --with-web on
        # port 6066): without a port, the web server is switched off explicitly.
        web = (
            ["--without-web"]
            if web_port is None
            else ["--web-port", str(web_port), "--web-bind", "127.0.0.1", "--web-host", "127.0.0.1"]
        )
        self.extra_args = [*web, *extra_args]
        self.process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    def start(self) -> FaustWorker:
        if self.running:
            raise RuntimeError("worker already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "faust",
            "-A",
            self.app,
            "worker",
            "-l",
            "info",
            *self.extra_args,
        ]

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def output(self) -> str:
        """The log written since the last `start()`."""
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as log:
            log.seek(self._log_offset)
            return log.read().decode("utf-8", "replace")

    def wait_for_log(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """Wait until the output since the last start matches `pattern` (a regex)."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            found = regex.search(self.output())
            if found:
                return found
            if not self.running:
                raise RuntimeError(f"worker exited before {pattern!r}:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {pattern!r} after {timeout}s:\n{self.tail()}")
            time.sleep(0.1)

    def wait_ready(self, timeout: float = 60) -> None:
        self.wait_for_log(r"\[\^Worker\]: Ready", timeout)

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def stop(self, timeout: float = 30) -> int:
        """Graceful stop (SIGTERM: Faust commits offsets and flushes), SIGKILL on timeout."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def faust_worker(tmp_path: Path) -> Iterator[Callable[..., FaustWorker]]:
    """Factory: `faust_worker("pkg.module:app", env={...})` -> a started `FaustWorker`
    (web server off unless `web_port` is given); all are killed after the test."""
    workers: list[FaustWorker] = []

    def make(
        app: str,
        env: Mapping[str, str] | None = None,
        log_name: str | None = None,
        extra_args: Iterable[str] = (),
        web_port: int | None = None,
    ) -> FaustWorker:
        log_path = tmp_path / (log_name or f"faust-worker-{len(workers)}.log")
        worker = FaustWorker(app, log_path, env=env, extra_args=extra_args, web_port=web_port)
        workers.append(worker)
        return worker.start()

    yield make
    for worker in workers:
        worker.kill()
