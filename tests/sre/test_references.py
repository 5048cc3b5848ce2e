"""Dashboards, rules and docs only reference metrics that agents/ports/metrics.py defines."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from agents.ports import metrics
from tests.sre.conftest import DEPLOY, ROOT, import_required, run

yaml = import_required("yaml", "pip install PyYAML==6.0.4")

DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
# Series that do not come from agents.ports.metrics: Prometheus' own `up`, and the process
# collector registered on the same registry (checked against a real render below).
EXTERNAL = {"up"}
PROMQL_WORDS = re.compile(r"\b([a-z_][a-z0-9_]*)\b")


def dashboard_exprs() -> list[str]:
    exprs = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            exprs += [t["expr"] for t in panel.get("targets", []) if "expr" in t]
    return exprs


def rule_exprs() -> list[str]:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    return [rule["expr"] for group in doc["groups"] for rule in group["rules"]]


def referenced_series(exprs: list[str]) -> set[str]:
    names: set[str] = set()
    for expr in exprs:
        without_strings = re.sub(r'"[^"]*"', '""', expr)
        for word in PROMQL_WORDS.findall(without_strings):
            if word.startswith(("vigie_", "process_")) or word == "up":
                names.add(word)
    return names


def known_series() -> set[str]:
    rendered = metrics.render().decode()
    process = set(re.findall(r"^(process_[a-z_]+)", rendered, re.M))
    return metrics.exposed_names() | process | EXTERNAL


def test_there_are_two_dashboards_with_panels() -> None:
    uids = {json.loads(p.read_text())["uid"] for p in DASHBOARDS}
    assert uids == {"vigie-sre", "vigie-operations"}
    assert len(dashboard_exprs()) >= 30


def test_dashboard_metrics_exist() -> None:
    used = referenced_series(dashboard_exprs())
    assert {"vigie_consumer_lag_messages", "vigie_end_to_end_latency_seconds_bucket"} <= used
    assert used - known_series() == set()


def test_rule_metrics_exist() -> None:
    used = referenced_series(rule_exprs())
    assert "vigie_detector_last_success_timestamp_seconds" in used
    assert used - known_series() == set()


def test_reference_check_catches_a_typo() -> None:
    used = referenced_series(['sum(rate(vigie_reports_recieved_total{topic="x"}[5m]))'])
    assert used - known_series() == {"vigie_reports_recieved_total"}


def test_dashboard_panels_use_the_provisioned_datasources() -> None:
    provisioned = {}
    for name in ("prometheus.yaml", "clickhouse.yaml"):
        doc = yaml.safe_load(
            (DEPLOY / "grafana" / "provisioning" / "datasources" / name).read_text()
        )
        provisioned.update({ds["uid"]: ds["type"] for ds in doc["datasources"]})
    used = set()
    for path in DASHBOARDS:
        for panel in json.loads(path.read_text())["panels"]:
            if panel["type"] == "row":
                continue
            ds = panel["datasource"]
            assert provisioned.get(ds["uid"]) == ds["type"], (path.name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == ds, (path.name, panel["title"])
                # a PromQL target has an expression, a ClickHouse one its SQL
                assert ("expr" in target) == (ds["type"] == "prometheus"), panel["title"]
            used.add(ds["uid"])
    assert used == set(provisioned)


def test_panels_do_not_overlap() -> None:
    for path in DASHBOARDS:
        cells: set[tuple[int, int]] = set()
        for panel in json.loads(path.read_text())["panels"]:
            pos = panel["gridPos"]
            assert pos["x"] + pos["w"] <= 24
            area = {
                (x, y)
                for x in range(pos["x"], pos["x"] + pos["w"])
                for y in range(pos["y"], pos["y"] + pos["h"])
            }
            assert not cells & area, (path.name, panel["title"])
            cells |= area


def test_generated_files_are_up_to_date() -> None:
    """Dashboards and the generated tables of docs/sre.md match the code and settings."""
    result = run([sys.executable, str(DEPLOY / "grafana" / "generate.py"), "--check"])
    assert result.returncode == 0, (
        result.stdout + result.stderr + "\nrun: .venv/bin/python deploy/grafana/generate.py"
    )


def test_docs_list_every_metric_and_setting() -> None:
    from streams.settings import Settings

    doc = (ROOT / "docs" / "sre.md").read_text()
    for d in metrics.describe():
        assert f"`{d.name}`" in doc
    for name in Settings.model_fields:
        assert f"`VIGIE_{name.upper()}`" in doc
    assert Path(ROOT / "deploy" / "clickhouse" / "cluster.sql").exists()
