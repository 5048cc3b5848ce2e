"""A bad VIGIE_* variable stops a command with one line naming it and exit code 78
(EX_CONFIG), not a traceback; the value is never echoed (it may be a secret)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.sre.conftest import ROOT

EX_CONFIG = 78


def vigie(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("VIGIE_")}
    return subprocess.run(
        [sys.executable, "-m", "vigie", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("env", "args", "expected"),
    [
        (
            {"VIGIE_WEB_PORT": "port-6066"},
            ["worker"],
            ["VIGIE_WEB_PORT: Input should be a valid integer"],
        ),
        (
            {"VIGIE_CONSOLE_PORT": "port-8080"},
            ["console", "--no-kafka"],
            ["VIGIE_CONSOLE_PORT: Input should be a valid integer"],
        ),
        (
            {"VIGIE_DETECTOR_CLOCK": "sundial", "VIGIE_CONSOLE_EMBEDDED": "perhaps"},
            ["counts"],
            ["VIGIE_DETECTOR_CLOCK: Input should be 'wall' or 'data'", "VIGIE_CONSOLE_EMBEDDED"],
        ),
    ],
)
def test_bad_setting_prints_one_line_and_exits_78(
    env: dict[str, str], args: list[str], expected: list[str]
) -> None:
    done = vigie(env, *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == EX_CONFIG, done.stderr
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("vigie: invalid setting "), lines
    for fragment in expected:
        assert fragment in lines[0]
    for value in env.values():
        assert value not in done.stderr  # which variable and why, never its value


def test_malformed_console_tokens_exit_78_without_echoing_them() -> None:
    done = vigie({"VIGIE_CONSOLE_TOKENS": "change-me"}, "console", "--no-kafka")
    assert done.returncode == EX_CONFIG, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "VIGIE_CONSOLE_TOKENS: token entry #1" in lines[0], lines
    assert "change-me" not in done.stderr
