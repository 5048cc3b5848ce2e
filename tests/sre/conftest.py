"""Shared helpers of the SRE tests: tool lookup that may skip locally but never in CI."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def require(available: bool, what: str, install: str) -> None:
    """Skip when a tool is missing, unless running in CI (CI set), where it must be there."""
    if available:
        return
    message = f"{what} is not available ({install})"
    if os.environ.get("CI"):
        pytest.fail(message + " — required in CI")
    pytest.skip(message)


def require_binary(name: str, install: str) -> str:
    path = shutil.which(name)
    require(path is not None, name, install)
    assert path is not None
    return path


def run(cmd: list[str], cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env}
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False, env=full_env)


def import_required(module: str, install: str) -> Any:
    """Import a test-only dependency: skip the module when missing locally, fail in CI."""
    try:
        return importlib.import_module(module)
    except ImportError:
        message = f"python module {module} is not installed ({install})"
        if os.environ.get("CI"):
            pytest.fail(message + " — required in CI", pytrace=False)
        pytest.skip(message, allow_module_level=True)
