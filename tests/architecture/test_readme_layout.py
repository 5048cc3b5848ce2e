"""The README's Layout table names every folder of the code tree, and only those."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("schemas", "agents", "console", "streams", "offline", "vigie", "benchmarks")


def documented() -> set[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Layout"):]
    section = section[: section.index("\n### ", 1)]
    return {m.group(1).rstrip("/") for m in re.finditer(r"^\| `([\w/.-]+/)` \|", section, re.M)}


def tracked_folders() -> set[str]:
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    top = {f.split("/")[0] for f in files if "/" in f and not f.startswith(".")}
    # Python packages one level down (a folder with an __init__.py) count as folders of their own
    nested = {str(Path(f).parent) for f in files
              if f.endswith("/__init__.py") and f.count("/") >= 2
              and f.split("/")[0] in PACKAGES}
    return top | {n for n in nested if n.count("/") <= 2}


def test_readme_layout_matches_the_tree() -> None:
    assert documented() == tracked_folders()
