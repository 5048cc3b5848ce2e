"""Compiled builds of the correlation engine's modules (mypyc), used only when fresh.

The correlator's per-report work is Python code that runs for every candidate incident
(time windows, distances, gates, odds): where the state holds many incidents within reach
of each report, it dominates the worker's CPU and the latency. `scripts/build_native.py`
(run by `make setup`) compiles `MODULES` with mypyc, the mypy compiler, into
`build/native/`: the same code, typed as mypy strict already checks it, as C extensions.
Same source, same arithmetic (the same C math functions), same decisions: the golden
backtest hashes are equal either way (`tests/backtest/test_native.py`).

`activate` (called by `agents.core.correlation` before it imports its modules) puts the
build in front of the package's own directory only when it was made from exactly the
sources in the tree and for this interpreter: the build records each module source's
SHA-256 (`stamp.json`); an edited source, another Python or `VIGIE_NATIVE=0` leaves the
pure Python modules in use (an edit without `make setup` costs speed, never behaviour).
`STATUS` says which, with the reason (the worker logs it at start; benchmark records
name it in their machine).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

# the modules of `agents.core.correlation` compiled (its hot path; the package's __init__,
# which calls `activate`, stays Python)
MODULES = ("config", "confidence", "engine", "estimate", "incident", "index", "places", "spatial")
PACKAGE = "agents.core.correlation"
HOME = Path(__file__).resolve().parents[2]  # the directory holding the `agents` package
ROOT = HOME / "build" / "native"
STAMP = "stamp.json"
ENV = "VIGIE_NATIVE"  # "0": never use the build


class Mode(StrEnum):
    NATIVE = "native"  # the compiled modules are in use
    PURE = "pure"  # the Python sources are


@dataclass(frozen=True, slots=True)
class Status:
    mode: Mode
    reason: str


STATUS = Status(Mode.PURE, "not activated")


def package_dir(root: Path) -> Path:
    return root.joinpath(*PACKAGE.split("."))


def source_digests(sources: Path) -> dict[str, str]:
    """SHA-256 of each compiled module's source in the package directory `sources`."""
    return {
        m: hashlib.sha256((sources / f"{m}.py").read_bytes()).hexdigest() for m in MODULES
    }


def stamp(sources: Path) -> dict[str, object]:
    """What a build records: the interpreter's tag and the sources it compiled."""
    return {"cache_tag": sys.implementation.cache_tag, "sources": source_digests(sources)}


def check(sources: Path, root: Path = ROOT) -> Status:
    """Whether the build under `root` may stand for the modules in `sources`."""
    if os.environ.get(ENV, "1") == "0":
        return Status(Mode.PURE, f"{ENV}=0")
    try:
        recorded = json.loads((root / STAMP).read_text())
    except FileNotFoundError:
        return Status(Mode.PURE, "no build (make setup builds it)")
    except (OSError, ValueError) as exc:
        return Status(Mode.PURE, f"unreadable build stamp: {exc}")
    if recorded != stamp(sources):
        return Status(Mode.PURE, "build out of date with the sources (make setup rebuilds it)")
    return Status(Mode.NATIVE, f"mypyc build in {root}")


def activate(package_path: list[str], root: Path = ROOT) -> Status:
    """Puts the build's package directory first on `package_path` (the package's
    `__path__`, before any of its modules is imported) when `check` allows it."""
    global STATUS
    status = check(Path(package_path[-1]), root)
    if status.mode is Mode.NATIVE:
        # the compiled modules share one library, imported by its top-level name
        if str(root) not in sys.path:
            # a build holds an `agents/` directory without `__init__`: a fresh interpreter
            # given this sys.path (a `spawn` child, `streams.calibration_process`) took it
            # for the `agents` package, as a namespace, when the package itself is found by
            # an import hook (an editable install) rather than on sys.path, and failed to
            # import the rest of it; the package's own home comes first
            if str(HOME) not in sys.path:
                sys.path.append(str(HOME))
            sys.path.append(str(root))
        package_path.insert(0, str(package_dir(root)))
    STATUS = status
    return status
