"""Compile the correlation engine's hot modules with mypyc into build/native (`make setup`).

    python scripts/build_native.py

Builds `agents.core.native.MODULES` of `agents.core.correlation` as one group of C
extensions under `agents.core.native.ROOT` (outside the source tree: nothing shadows a
source), then writes the stamp that `agents.core.native.activate` checks: the compiled
sources' SHA-256 and the interpreter. Needs a C compiler and mypy (a dev dependency);
without them the build fails and Vigie runs its Python modules, the same decisions slower.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    sys.path.insert(0, str(REPO))
    from mypyc.build import mypycify  # a dev dependency (mypy)
    from setuptools import setup

    from agents.core import native

    os.chdir(REPO)  # mypyc names the modules by their paths from here
    sources = native.package_dir(REPO)
    root = native.ROOT
    shutil.rmtree(root, ignore_errors=True)
    temp = REPO / "build" / "native-temp"
    extensions = mypycify(
        [str((sources / f"{m}.py").relative_to(REPO)) for m in native.MODULES],
        opt_level="3",
        group_name="vigie_native",
        target_dir=str(temp),
    )
    setup(
        name="vigie-native",
        ext_modules=extensions,
        script_args=["-q", "build_ext", "--build-lib", str(root), "--build-temp", str(temp)],
    )
    (root / native.STAMP).write_text(json.dumps(native.stamp(sources), indent=1) + "\n")
    shutil.rmtree(temp, ignore_errors=True)
    print(f"native build: {len(native.MODULES)} modules of {native.PACKAGE} in {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
