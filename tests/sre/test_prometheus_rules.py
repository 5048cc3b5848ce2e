"""Prometheus rules and configs checked and unit-tested by promtool (Debian `prometheus`)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.sre.conftest import DEPLOY, require_binary, run

PROM = DEPLOY / "prometheus"
INSTALL = "apt-get install -y prometheus (make system-deps)"


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_binary("promtool", INSTALL)


def test_rules_are_valid(promtool: str) -> None:
    result = run([promtool, "check", "rules", "rules.yml"], cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-k8s.yml"])
def test_configs_are_valid(promtool: str, config: str) -> None:
    result = run([promtool, "check", "config", config], cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid prometheus config file syntax" in result.stdout


def test_rule_unit_tests_pass(promtool: str) -> None:
    result = run([promtool, "test", "rules", "rules_test.yml"], cwd=PROM)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_unit_test() -> None:
    rules = (PROM / "rules.yml").read_text()
    tests = (PROM / "rules_test.yml").read_text()
    alerts = set(re.findall(r"- alert: (\w+)", rules))
    assert len(alerts) >= 10
    tested = set(re.findall(r"alertname: (\w+)", tests))
    assert alerts <= tested, alerts - tested


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "/ sum(rate(vigie_reports_received_total[10m]))) > 0.05",
            "/ sum(rate(vigie_reports_received_total[10m]))) > 0.5",
        ),
        (
            "time() - max(vigie_detector_last_success_timestamp_seconds) > 300",
            "time() - max(vigie_detector_last_success_timestamp_seconds) > 3000",
        ),
        ('stage="stored"}[10m]))) > 10', 'stage="stored"}[10m]))) > 100'),
        (
            'count by (dependency) (vigie_dependency_up{job="vigie"} == 0) > 0',
            'count by (dependency) (vigie_dependency_up{job="vigie"} == 0) > 2',
        ),
    ],
)
def test_unit_tests_catch_a_broken_rule(promtool: str, tmp_path: Path, old: str, new: str) -> None:
    """The rule tests can fail: weaken one threshold and promtool must report it."""
    rules = (PROM / "rules.yml").read_text()
    assert old in rules
    (tmp_path / "rules.yml").write_text(rules.replace(old, new))
    shutil.copy(PROM / "rules_test.yml", tmp_path / "rules_test.yml")
    result = run([promtool, "test", "rules", "rules_test.yml"], cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr
