"""Nothing documented is dead: every setting is read, every metric moves, every function the
docs cite is called by the product, and every `VIGIE_*` name the docs give exists.

"Non-test code" is the product's packages (`SOURCES`); a use only in `tests/` does not count.
Each check has a companion test proving it reports a planted dead name.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

from agents.ports import metrics
from console.settings import ConsoleSettings
from streams.settings import Settings
from tests.sre.conftest import ROOT

SOURCES = ("schemas", "agents", "console", "streams", "offline", "vigie", "benchmarks", "deploy")
METRICS_FILE = ROOT / "agents" / "ports" / "metrics.py"
DOCS = [
    *sorted((ROOT / "docs").glob("*.md")),
    ROOT / "README.md",
    ROOT / "console" / "README.md",
    ROOT / "deploy" / "clickhouse" / "README.md",
]
DEPLOY_FILES = [
    ROOT / "deploy" / "env.example",
    ROOT / "deploy" / "compose.yaml",
    *sorted((ROOT / "deploy" / "k8s").glob("*.yaml")),
]
METRICS_CITED = re.compile(r"\bmetrics\.(?!py\b)([A-Za-z_][A-Za-z0-9_]*)")
# VIGIE_* names that are not settings of the product: the image tag of the compose file and
# the test fixtures' pointers to an existing broker / server.
# Variables that are not worker settings: image tag of the compose file, test fixtures, and the
# console token a client command (`vigie diagnostic --console`) sends.
NOT_SETTINGS = {
    "VIGIE_IMAGE_TAG",
    "VIGIE_TEST_KAFKA_BOOTSTRAP",
    "VIGIE_TEST_CLICKHOUSE_URL",
    "VIGIE_CONSOLE_TOKEN",
    # read by agents.core.native when the correlation package is imported, before any
    # settings exist: whether the compiled build may be used
    "VIGIE_NATIVE",
}


@cache
def product_trees() -> tuple[tuple[Path, ast.Module], ...]:
    trees = []
    for top in SOURCES:
        for path in sorted((ROOT / top).rglob("*.py")):
            if "node_modules" not in path.parts:
                trees.append((path, ast.parse(path.read_text(), filename=str(path))))
    return tuple(trees)


def referenced_names(trees: Iterable[tuple[Path, ast.AST]]) -> set[str]:
    """Names read as a variable or an attribute (`x`, `a.x`), definitions excluded."""
    names: set[str] = set()
    for _path, tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                names.add(node.id)
    return names


@cache
def product_references() -> frozenset[str]:
    return frozenset(referenced_names(product_trees()))


@cache
def product_definitions() -> frozenset[str]:
    """Functions and classes (methods too) defined in the product's code."""
    found: set[str] = set()
    for _path, tree in product_trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                found.add(node.name)
    return frozenset(found)


# ---- settings ----------------------------------------------------------------------------
def setting_fields() -> dict[str, str]:
    """env var -> field name, for both settings classes."""
    fields = {f"VIGIE_{name.upper()}": name for name in Settings.model_fields}
    fields |= {f"VIGIE_CONSOLE_{name.upper()}": name for name in ConsoleSettings.model_fields}
    return fields


def unread_settings(fields: Iterable[str]) -> set[str]:
    """Fields no product code reads (`settings.<field>`; the class body defines them with
    annotated assignments, which are not reads)."""
    return set(fields) - product_references()


def documented_env_vars() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in [*DOCS, *DEPLOY_FILES]:
        for name in re.findall(r"\bVIGIE_[A-Z0-9_]*[A-Z0-9]\b", path.read_text()):
            found.setdefault(name, set()).add(str(path.relative_to(ROOT)))
    return found


def test_every_setting_is_read_by_the_product() -> None:
    assert unread_settings(setting_fields().values()) == set()


def test_the_unread_setting_check_reports_a_dead_setting() -> None:
    assert unread_settings(["dedup_retention_hours", "kafka_bootstrap"]) == {
        "dedup_retention_hours"
    }


def test_every_documented_env_var_is_a_setting() -> None:
    known = set(setting_fields()) | NOT_SETTINGS
    unknown = {k: v for k, v in documented_env_vars().items() if k not in known}
    assert unknown == {}


def test_the_settings_table_of_sre_md_matches_the_settings_both_ways() -> None:
    doc = (ROOT / "docs" / "sre.md").read_text()
    block = doc.split("<!-- BEGIN GENERATED: settings -->")[1].split("<!-- END GENERATED")[0]
    table = set(re.findall(r"^\| `(VIGIE_[A-Z0-9_]+)` \|", block, re.M))
    assert table == {f"VIGIE_{name.upper()}" for name in Settings.model_fields}


# ---- metrics -----------------------------------------------------------------------------
def metric_attributes(tree: ast.Module) -> dict[str, str]:
    """Module attribute -> exposed metric, for `X = Counter("vigie_...", ...)` and children
    such as `LATENCY_STORED = E2E_LATENCY.labels(...)`."""
    found: dict[str, str] = {}
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        target = node.targets[0]
        if not isinstance(target, ast.Name):
            continue
        call = node.value
        if isinstance(call.func, ast.Name) and call.func.id in {"Counter", "Gauge", "Histogram"}:
            first = call.args[0]
            assert isinstance(first, ast.Constant) and isinstance(first.value, str)
            found[target.id] = first.value
        elif (
            isinstance(call.func, ast.Attribute)
            and isinstance(call.func.value, ast.Name)
            and call.func.value.id in found
        ):
            found[target.id] = found[call.func.value.id]
    return found


def moved_metrics(outside_references: set[str]) -> set[str]:
    """Metrics (exposed names) that code outside metrics.py moves: directly (`metrics.X`) or
    through helpers of metrics.py that such code calls, followed transitively."""
    tree = ast.parse(METRICS_FILE.read_text())
    attrs = metric_attributes(tree)
    helpers = {
        node.name: referenced_names([(METRICS_FILE, node)])
        for node in tree.body
        if isinstance(node, ast.FunctionDef)
    }
    reached = set(outside_references)
    frontier = [name for name in helpers if name in reached]
    while frontier:
        for name in helpers[frontier.pop()]:
            if name not in reached:
                reached.add(name)
                if name in helpers:
                    frontier.append(name)
    return {exposed for attr, exposed in attrs.items() if attr in reached}


def outside_metrics_references() -> set[str]:
    return referenced_names((p, t) for p, t in product_trees() if p != METRICS_FILE)


def test_every_metric_is_updated_by_the_product() -> None:
    defined = {d.name.removesuffix("_total") for d in metrics.describe()}
    moved = {name.removesuffix("_total") for name in moved_metrics(outside_metrics_references())}
    assert defined - moved == set()


def test_the_metric_check_reports_a_metric_nobody_moves() -> None:
    refs = outside_metrics_references()
    assert "vigie_enrichment_failures_total" in moved_metrics(refs)
    assert "vigie_enrichment_failures_total" not in moved_metrics(refs - {"ENRICHMENT_FAILURES"})
    # through a helper: observe_insert is the only way to the insert row counter
    assert "vigie_clickhouse_insert_rows_total" in moved_metrics(refs)
    assert "vigie_clickhouse_insert_rows_total" not in moved_metrics(refs - {"observe_insert"})


# ---- functions the docs cite -------------------------------------------------------------
def cited_functions(paths: Iterable[Path]) -> dict[str, set[str]]:
    """Names the docs cite as code: `name(...)`, `a.b.name(...)`, `metrics.NAME`."""
    cited: dict[str, set[str]] = {}
    for path in paths:
        for code in re.findall(r"`([^`\n]+)`", path.read_text()):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_.]*)\(", code)
            names += METRICS_CITED.findall(code)
            for name in names:
                cited.setdefault(name.rsplit(".", 1)[-1], set()).add(path.name)
    return cited


def uncalled(
    cited: dict[str, set[str]],
    refs: frozenset[str] | None = None,
    defined: frozenset[str] | None = None,
) -> dict[str, set[str]]:
    """Cited names that the product defines but never uses (tests may still call them)."""
    refs = product_references() if refs is None else refs
    defined = product_definitions() if defined is None else defined
    return {name: where for name, where in cited.items() if name in defined and name not in refs}


def test_functions_the_docs_cite_are_used_by_the_product() -> None:
    assert uncalled(cited_functions(DOCS)) == {}


def test_metrics_the_docs_cite_exist() -> None:
    doc = (ROOT / "docs" / "sre.md").read_text()
    cited = set(METRICS_CITED.findall(doc))
    assert cited, "sre.md cites metrics.* calls"
    assert {name for name in cited if not hasattr(metrics, name)} == set()


def test_the_docs_check_reports_a_function_only_tests_call(tmp_path: Path) -> None:
    doc = tmp_path / "doc.md"
    doc.write_text(
        "Call `metrics.observe_insert(table, rows, s)` or `metrics.REPORTS_IN.inc()`; "
        "`describe_topics()` is a library's.\n"
    )
    cited = cited_functions([doc])
    assert set(cited) == {"observe_insert", "REPORTS_IN", "inc", "describe_topics"}
    assert uncalled(cited) == {}
    # the same citations against a product that defines observe_insert but never calls it
    refs = product_references() - {"observe_insert"}
    assert uncalled(cited, refs=refs) == {"observe_insert": {"doc.md"}}
