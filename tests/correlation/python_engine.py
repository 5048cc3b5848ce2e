"""The correlation engine's Python source as a class tests may instrument.

With the compiled build in use (`agents.core.native`), `Correlator` is a native class whose
methods cannot be patched; the tests that count what the engine does per report patch them.
`python_correlator()` loads `engine.py` apart (the other modules, compiled or not, are
shared): the same decisions (`tests/backtest/test_native.py`), a patchable class.
"""

from __future__ import annotations

import importlib.util
import sys
from functools import cache
from pathlib import Path
from typing import cast

import agents.core.correlation as package
from agents.core.correlation import Correlator

NAME = "tests.correlation._engine_source"


@cache
def python_correlator() -> type[Correlator]:
    source = Path(package.__file__).with_name("engine.py")
    spec = importlib.util.spec_from_file_location(NAME, source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return cast(type[Correlator], module.Correlator)
