"""The import contract: every import points down one stack.

    schemas  <-  agents.core  <-  agents.ports  <-  agents (stages) | console
             <-  streams (runtime)  <-  offline (tools)  <-  vigie (entry points)
             <-  benchmarks, deploy

A module may import from its own layer's package or from a lower layer, never from a higher
one; the stages and the console sit side by side and do not import each other (the console
depends on ports; the worker mounts it). Every import counts, including those inside
functions and under `TYPE_CHECKING`.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# (package prefix, rank, component): the longest matching prefix decides.
LAYERS: tuple[tuple[str, int, str], ...] = (
    ("schemas", 0, "schemas"),
    ("agents.core", 1, "core"),
    ("agents.ports", 2, "ports"),
    ("agents", 3, "stages"),
    ("console", 3, "console"),
    ("streams", 4, "runtime"),
    ("offline", 5, "offline"),
    ("vigie", 6, "entry"),
    ("benchmarks", 7, "benchmarks"),
    ("deploy", 7, "deploy"),
)
SOURCES = ("schemas", "agents", "console", "streams", "offline", "vigie", "benchmarks", "deploy")


def layer_of(module: str) -> tuple[int, str] | None:
    best: tuple[str, int, str] | None = None
    for prefix, rank, component in LAYERS:
        if (module == prefix or module.startswith(prefix + ".")) and (
            best is None or len(prefix) > len(best[0])
        ):
            best = (prefix, rank, component)
    return None if best is None else (best[1], best[2])


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the package
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
            found += [(node.lineno, f"{name}.{a.name}") for a in node.names]
    return found


def violations() -> list[str]:
    bad: list[str] = []
    for source in SOURCES:
        for path in sorted((ROOT / source).rglob("*.py")):
            me = layer_of(module_name(path))
            if me is None:
                continue
            for lineno, target in imports_of(path):
                other = layer_of(target)
                if other is None or other[1] == me[1]:
                    continue
                if other[0] >= me[0]:
                    bad.append(f"{path.relative_to(ROOT)}:{lineno} imports {target} "
                               f"({me[1]} -> {other[1]})")
    return sorted(set(bad))


def test_every_import_points_down() -> None:
    assert violations() == []


def test_the_checker_sees_an_upward_import(tmp_path: Path) -> None:
    """The contract would catch a stage importing the runtime (guards the checker itself)."""
    assert layer_of("agents.ingest") == (3, "stages")
    assert layer_of("agents.ports.store") == (2, "ports")
    assert layer_of("streams.settings")[0] > layer_of("agents.ingest")[0]  # type: ignore[index]
    assert layer_of("console.api")[1] != layer_of("agents.ingest")[1]  # type: ignore[index]


if __name__ == "__main__":
    print("\n".join(violations()) or "no upward import")
