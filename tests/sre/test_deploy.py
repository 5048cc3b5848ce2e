"""Deployment files validated by real tools: `docker compose config` (the Compose loader,
no engine needed) and the Kubernetes OpenAPI schemas shipped by `kubernetes-validate`."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from streams.settings import Settings
from tests.sre.conftest import DEPLOY, ROOT, has_compose_plugin, import_required, require, run

yaml = import_required("yaml", "pip install PyYAML==6.0.4")
k8s_validate = import_required("kubernetes_validate", "pip install kubernetes-validate==1.37.0")

COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "env.example"
K8S_VERSION = "1.33.0"
SETTING_VARS = {f"VIGIE_{name.upper()}" for name in Settings.model_fields}
COMPOSE_INSTALL = "bash tests/sre/install-compose-plugin.sh (builds the docker compose plugin)"


# ---- compose ------------------------------------------------------------------------------
def compose(*args: str, file: Path = COMPOSE, env_file: Path | None = ENV_EXAMPLE) -> Any:
    require(has_compose_plugin(), "docker compose", COMPOSE_INSTALL)
    cmd = ["docker", "compose"]
    if env_file is not None:
        cmd += ["--env-file", str(env_file)]
    return run([*cmd, "-f", str(file), *args])


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    result = compose("config", "--format", "json")
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = json.loads(result.stdout)
    return config


def test_compose_has_the_full_stack(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert set(services) == {
        "kafka",
        "clickhouse",
        "vigie-worker-1",
        "vigie-worker-2",
        "vigie-console",
        "prometheus",
        "grafana",
    }
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", services["kafka"]["image"])
    assert re.fullmatch(
        r"clickhouse/clickhouse-server:\d+\.\d+\.\d+\.\d+", services["clickhouse"]["image"]
    )
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), (name, image)
        assert "healthcheck" in service, name
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", (name, port)
    assert set(resolved["volumes"]) >= {"kafka-data", "clickhouse-data", "prometheus-data"}


def test_compose_workers_wait_for_healthy_dependencies(resolved: dict[str, Any]) -> None:
    for name in ("vigie-worker-1", "vigie-worker-2", "vigie-console"):
        service = resolved["services"][name]
        deps = service["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["clickhouse"]["condition"] == "service_healthy"
        env = service["environment"]
        assert set(env) <= SETTING_VARS, set(env) - SETTING_VARS
        assert env["VIGIE_CLICKHOUSE"] == "clickhouse://vigie:change-me@clickhouse:9000/vigie"
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
    w1, w2 = (resolved["services"][f"vigie-worker-{i}"] for i in (1, 2))
    assert w1["volumes"][0]["source"] != w2["volumes"][0]["source"]  # own Faust data dir


def test_compose_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    empty_env = tmp_path / "empty.env"
    empty_env.write_text("")
    result = compose("config", "--quiet", env_file=empty_env)
    assert result.returncode != 0
    assert "required variable" in result.stderr


def test_compose_loader_rejects_an_invalid_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yaml"
    broken.write_text(
        COMPOSE.read_text().replace(
            '    healthcheck:\n      test: ["CMD-SHELL", "/opt/kafka',
            '    healthchek:\n      test: ["CMD-SHELL", "/opt/kafka',
            1,
        )
    )
    assert broken.read_text() != COMPOSE.read_text()
    result = compose("config", "--quiet", file=broken)
    assert result.returncode != 0
    assert "healthchek" in result.stderr


def test_secrets_are_not_in_the_repo() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--", "deploy"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "deploy/.env" not in tracked
    for line in ENV_EXAMPLE.read_text().splitlines():
        if re.match(r"^\w*(SECRET|PASSWORD)\w*=", line):
            assert line.split("=", 1)[1] == "change-me", line
    for path in (DEPLOY / "k8s").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc and doc.get("kind") != "Secret", path


def test_dockerfile_is_pinned_and_unprivileged() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", b) for b in bases), bases
    assert re.search(r"^USER vigie$", text, re.M)
    assert "/readyz" in text


# ---- kubernetes ---------------------------------------------------------------------------
def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted((DEPLOY / "k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and not doc["apiVersion"].startswith("kustomize.config.k8s.io"):
                docs.append((path.name, doc))
    return docs


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in k8s_documents() if doc["kind"] == kind]


def test_k8s_manifests_match_the_kubernetes_schemas() -> None:
    docs = k8s_documents()
    kinds = {doc["kind"] for _, doc in docs}
    assert kinds >= {"StatefulSet", "Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler"}
    for name, doc in docs:
        assert k8s_validate.validate(doc, K8S_VERSION, strict=True), name


def test_k8s_schema_check_catches_typos() -> None:
    (sts,) = by_kind("StatefulSet")
    container = sts["spec"]["template"]["spec"]["containers"][0]
    container["readinesProbe"] = container.pop("readinessProbe")
    with pytest.raises(k8s_validate.ValidationError):
        k8s_validate.validate(sts, K8S_VERSION, strict=True)
    (sts,) = by_kind("StatefulSet")
    sts["spec"]["replicas"] = "two"
    with pytest.raises(k8s_validate.ValidationError):
        k8s_validate.validate(sts, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((DEPLOY / "k8s" / "kustomization.yaml").read_text())
    files = {p.name for p in (DEPLOY / "k8s").glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files


def test_k8s_workers_probe_health_and_use_the_secret() -> None:
    (sts,) = by_kind("StatefulSet")
    (container,) = sts["spec"]["template"]["spec"]["containers"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
    assert refs == {"vigie-secrets"}
    (configmap,) = by_kind("ConfigMap")
    assert set(configmap["data"]) <= SETTING_VARS, set(configmap["data"]) - SETTING_VARS
    assert configmap["data"]["VIGIE_WEB_HOST"] == "0.0.0.0"
    mount = container["volumeMounts"][0]["mountPath"]
    assert configmap["data"]["VIGIE_WORKER_DATA_DIR"] == mount


def test_k8s_autoscaling_is_bounded_by_partitions() -> None:
    (hpa,) = by_kind("HorizontalPodAutoscaler")
    (configmap,) = by_kind("ConfigMap")
    partitions = int(configmap["data"]["VIGIE_TOPIC_PARTITIONS"])
    assert hpa["spec"]["maxReplicas"] == partitions
    assert hpa["spec"]["scaleTargetRef"]["name"] == by_kind("StatefulSet")[0]["metadata"]["name"]
