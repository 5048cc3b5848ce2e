"""The compiled correlation modules (`agents.core.native`): used only when built from the
very sources in the tree, and deciding exactly as the Python modules do."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agents.core import native

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden.json")


def _golden_in(env: dict[str, str]) -> tuple[dict[str, str], str]:
    """The golden backtest's hashes and the engine's mode in a fresh interpreter."""
    code = (
        "import json, sys, tempfile; from pathlib import Path\n"
        "from tests.backtest.test_golden_output import digests\n"
        "from agents.core import native\n"
        "with tempfile.TemporaryDirectory() as tmp:\n"
        "    print(json.dumps({'digests': digests(Path(tmp)), 'mode': native.STATUS.mode}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env={**os.environ, **env},
        capture_output=True, text=True, timeout=600, check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return out["digests"], out["mode"]


@pytest.mark.slow
def test_the_python_modules_make_the_golden_output() -> None:
    """`test_golden_output` runs with the build when there is one (`make setup` makes it):
    the pure Python modules must give the same bytes."""
    digests, mode = _golden_in({native.ENV: "0"})
    assert mode == native.Mode.PURE
    assert digests == json.loads(GOLDEN.read_text())


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("CI") != "true", reason="CI runs `make test`, which builds it")
def test_ci_runs_the_compiled_modules() -> None:
    """On the fresh clone CI tests, `make setup` built the modules and they are in use (and
    so `test_golden_output` checked them)."""
    digests, mode = _golden_in({})
    assert mode == native.Mode.NATIVE, native.check(native.package_dir(REPO))
    assert digests == json.loads(GOLDEN.read_text())


def _fake_build(tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the package's compiled sources and a build stamped for them."""
    sources = tmp_path / "src"
    sources.mkdir()
    for m in native.MODULES:
        shutil.copy(native.package_dir(REPO) / f"{m}.py", sources / f"{m}.py")
    root = tmp_path / "native"
    root.mkdir()
    (root / native.STAMP).write_text(json.dumps(native.stamp(sources)))
    return sources, root


def test_a_fresh_build_goes_first_on_the_package_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources, root = _fake_build(tmp_path)
    monkeypatch.delenv(native.ENV, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    path = [str(sources)]
    status = native.activate(path, root)
    assert status.mode is native.Mode.NATIVE
    assert path == [str(native.package_dir(root)), str(sources)]
    assert str(root) in sys.path


@pytest.mark.parametrize("case", ["edited", "other python", "no stamp", "disabled"])
def test_a_build_that_is_not_of_these_sources_is_not_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    sources, root = _fake_build(tmp_path)
    monkeypatch.delenv(native.ENV, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))
    if case == "edited":
        with (sources / "engine.py").open("a") as f:
            f.write("\n# an edit after the build\n")
    elif case == "other python":
        stamp = json.loads((root / native.STAMP).read_text())
        (root / native.STAMP).write_text(json.dumps({**stamp, "cache_tag": "cpython-399"}))
    elif case == "no stamp":
        (root / native.STAMP).unlink()
    else:
        monkeypatch.setenv(native.ENV, "0")
    path = [str(sources)]
    status = native.activate(path, root)
    assert status.mode is native.Mode.PURE
    assert path == [str(sources)]
    assert str(root) not in sys.path
