"""Deployment files: valid against their schemas, and wired to what the processes really do.

- `deploy/compose.yaml` is interpolated from `deploy/env.example` as Compose does and
  validated against the Compose Specification JSON Schema (fetched by
  `scripts/compose-schema.sh`); the Kubernetes manifests against the Kubernetes OpenAPI
  schemas shipped by `kubernetes-validate`.
- Wiring: every health check, probe, published port, Service and Prometheus scrape target
  names a port the process is configured to listen on (from the Dockerfile's ENV plus the
  manifest's environment, read by the real settings classes) and a path that the process,
  started in-process, answers with 200; every environment variable set is a real setting;
  every secret referenced has a placeholder in the example files, and none has a default.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from agents.ports.store import Store
from console.settings import ConsoleSettings
from streams.settings import Settings
from streams.storage import open_store
from tests.sre.conftest import DEPLOY, ROOT, import_required, require
from tests.sre.servers import console_web, free_port, worker_web

yaml = import_required("yaml", "pip install PyYAML==6.0.4")
jsonschema = import_required("jsonschema", "pip install jsonschema==4.26.0")
k8s_validate = import_required("kubernetes_validate", "pip install kubernetes-validate==1.37.0")

COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / "env.example"
K8S_SECRETS_EXAMPLE = DEPLOY / "k8s" / "vigie-secrets.env.example"
DOCKERFILE = DEPLOY / "Dockerfile"
COMPOSE_SCHEMA = ROOT / ".cache" / "compose-spec" / "compose-spec.json"
K8S_VERSION = "1.33.0"
WORKER_VARS = {f"VIGIE_{name.upper()}" for name in Settings.model_fields}
CONSOLE_VARS = {f"VIGIE_CONSOLE_{name.upper()}" for name in ConsoleSettings.model_fields}
SETTING_VARS = WORKER_VARS | CONSOLE_VARS
SECRET_NAME = re.compile(r"SECRET|PASSWORD|TOKENS")
ANYWHERE = {"0.0.0.0", "::"}  # bind addresses reachable from other containers and pods


# ---- reading the files --------------------------------------------------------------------
def read_env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, sep, value = line.partition("=")
            assert sep, f"{path.name}: not KEY=VALUE: {line!r}"
            pairs[key.strip()] = value
    return pairs


class MissingVariable(KeyError):
    pass


_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|\{(?P<braced>\w+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>\w+))"
)


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default},
    ${VAR:?error}, ${VAR?error}."""

    def substitute(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["braced"] or match["bare"]
        op, arg, present = match["op"], match["arg"], name in env
        unset = not present or (op is not None and op.startswith(":") and env[name] == "")
        if op in (":?", "?") and unset:
            raise MissingVariable(f"required variable {name} is missing a value: {arg}")
        if op in (":-", "-") and unset:
            return str(arg)
        return env.get(name, "")

    return _VARIABLE.sub(substitute, value)


def interpolated(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, dict):
        return {key: interpolated(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolated(value, env) for value in node]
    return interpolate(node, env) if isinstance(node, str) else node


def load_compose(env: dict[str, str], text: str | None = None) -> dict[str, Any]:
    """The compose file as Compose reads it: YAML (anchors, merge keys), then interpolation."""
    config: dict[str, Any] = interpolated(yaml.safe_load(text or COMPOSE.read_text()), env)
    return config


def dockerfile_env() -> dict[str, str]:
    """The ENV of the image's final stage (what every container starts with)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    final_stage = text.rsplit("\nFROM ", 1)[-1]
    env: dict[str, str] = {}
    for line in final_stage.splitlines():
        if line.startswith("ENV "):
            env.update(item.split("=", 1) for item in shlex.split(line[4:]))  # type: ignore[misc]
    return env


def dockerfile_default_command() -> str:
    (cmd,) = re.findall(r"^CMD (\[.*\])$", DOCKERFILE.read_text(), re.M)
    command: list[str] = json.loads(cmd)
    return command[0]


def schema_errors(config: dict[str, Any]) -> list[str]:
    require(COMPOSE_SCHEMA.exists(), "compose-spec JSON schema", "bash scripts/compose-schema.sh")
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    validator = jsonschema.Draft7Validator(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(config)
    ]


# ---- what a process listens on, read by the real settings classes --------------------------
def settings_from(cls: type[BaseSettings], env: dict[str, str]) -> Any:
    prefix = str(cls.model_config.get("env_prefix", ""))

    class Isolated(cls):  # type: ignore[valid-type,misc]
        """Built from the given values only, never from the test's own environment."""

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    fields = set(cls.model_fields)
    values = {
        key[len(prefix) :].lower(): value
        for key, value in env.items()
        if key.startswith(prefix) and key[len(prefix) :].lower() in fields
    }
    return Isolated(**values)


@dataclass(frozen=True)
class Process:
    """A container of the Vigie image: its `vigie` subcommand and environment."""

    where: str
    command: str
    env: dict[str, str]

    def listens_on(self) -> tuple[str, int]:
        if self.command == "worker":
            worker: Settings = settings_from(Settings, self.env)
            return worker.web_host, worker.web_port
        assert self.command == "console", self
        console: ConsoleSettings = settings_from(ConsoleSettings, self.env)
        return console.host, console.port


@dataclass(frozen=True)
class Endpoint:
    """Something outside the process that expects `path` on `port` (a probe, a scrape)."""

    what: str
    process: Process
    port: int
    path: str
    from_outside: bool  # True: from another container or the kubelet, not the loopback


def check_listening(endpoint: Endpoint) -> None:
    host, port = endpoint.process.listens_on()
    assert port == endpoint.port, f"{endpoint.what}: port {endpoint.port}, listening on {port}"
    if endpoint.from_outside:
        assert host in ANYWHERE, f"{endpoint.what}: process binds {host}, unreachable from outside"
    else:
        assert host in ANYWHERE | {"127.0.0.1", "localhost"}, (endpoint.what, host)


# ---- compose ------------------------------------------------------------------------------
COMPOSE_SERVICES = {
    "kafka",
    "clickhouse",
    "vigie-worker-1",
    "vigie-worker-2",
    "vigie-console",
    "prometheus",
    "grafana",
}


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    return load_compose(read_env_file(ENV_EXAMPLE))


def compose_processes(resolved: dict[str, Any]) -> dict[str, Process]:
    image = dockerfile_env()
    return {
        name: Process(
            f"compose {name}",
            service.get("command", [dockerfile_default_command()])[0],
            {**image, **{k: str(v) for k, v in service.get("environment", {}).items()}},
        )
        for name, service in resolved["services"].items()
        if str(service.get("image", "")).startswith("vigie:")
    }


def compose_endpoints(resolved: dict[str, Any]) -> list[Endpoint]:
    processes = compose_processes(resolved)
    assert set(processes) == {"vigie-worker-1", "vigie-worker-2", "vigie-console"}
    found = []
    for name, process in processes.items():
        service = resolved["services"][name]
        check = " ".join(service["healthcheck"]["test"])
        (url,) = re.findall(r"http://(?:127\.0\.0\.1|localhost):(\d+)(/[\w/-]*)", check)
        found.append(Endpoint(f"{name} healthcheck", process, int(url[0]), url[1], False))
        for port in service.get("ports", []):
            target = int(str(port).rsplit(":", 1)[-1].split("/")[0])
            found.append(Endpoint(f"{name} published port", process, target, "/healthz", True))
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    for job in prometheus["scrape_configs"]:
        for static in job.get("static_configs", []):
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                if job["job_name"] == "prometheus":
                    assert (host, port) == ("localhost", "9090")
                    continue
                assert host in processes, f"scrape target {target}: no such Vigie service"
                found.append(
                    Endpoint(
                        f"prometheus job {job['job_name']} → {target}",
                        processes[host],
                        int(port),
                        job.get("metrics_path", "/metrics"),
                        True,
                    )
                )
    return found


def test_compose_matches_the_compose_spec_schema(resolved: dict[str, Any]) -> None:
    assert schema_errors(resolved) == []


def test_compose_schema_check_catches_typos() -> None:
    text = COMPOSE.read_text()
    broken = text.replace("  healthcheck:\n    test:", "  healthchek:\n    test:", 1)
    assert broken != text
    errors = schema_errors(load_compose(read_env_file(ENV_EXAMPLE), broken))
    assert errors and any("healthchek" in e for e in errors), errors
    config = load_compose(read_env_file(ENV_EXAMPLE))
    config["services"]["kafka"]["restart"] = ["always"]
    assert any(e.startswith("services/kafka/restart") for e in schema_errors(config))


def test_compose_has_the_full_stack(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    assert set(services) == COMPOSE_SERVICES
    assert re.fullmatch(r"apache/kafka:\d+\.\d+\.\d+", services["kafka"]["image"])
    assert re.fullmatch(
        r"clickhouse/clickhouse-server:\d+\.\d+\.\d+\.\d+", services["clickhouse"]["image"]
    )
    for name, service in services.items():
        image = service["image"]
        assert ":" in image and not image.endswith(":latest"), (name, image)
        assert "healthcheck" in service, name
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)  # host side: loopback
    assert set(resolved["volumes"]) >= {"kafka-data", "clickhouse-data", "prometheus-data"}


def test_compose_vigie_services_wait_for_healthy_dependencies(resolved: dict[str, Any]) -> None:
    for name in ("vigie-worker-1", "vigie-worker-2", "vigie-console"):
        service = resolved["services"][name]
        deps = service["depends_on"]
        assert deps["kafka"]["condition"] == "service_healthy"
        assert deps["clickhouse"]["condition"] == "service_healthy"
        assert service["environment"]["VIGIE_CLICKHOUSE"] == (
            "clickhouse://vigie:change-me@clickhouse:9000/vigie"
        )
    w1, w2 = (resolved["services"][f"vigie-worker-{i}"] for i in (1, 2))
    assert w1["volumes"][0] != w2["volumes"][0]  # each worker its own Faust data dir


def test_compose_and_image_set_only_real_settings(resolved: dict[str, Any]) -> None:
    image_vars = {key for key in dockerfile_env() if key.startswith("VIGIE_")}
    assert image_vars <= SETTING_VARS, image_vars - SETTING_VARS
    for process in compose_processes(resolved).values():
        assert (
            set(process.env)
            - {"PYTHONUNBUFFERED", "PIP_NO_CACHE_DIR", "PIP_DISABLE_PIP_VERSION_CHECK"}
            <= SETTING_VARS
        ), process
        process.listens_on()  # the real settings classes accept every value


def test_compose_secrets_are_required_and_in_the_example() -> None:
    text = COMPOSE.read_text()
    references = [
        (m["braced"] or m["bare"], m["op"] or "")
        for m in _VARIABLE.finditer(text)
        if not m["escaped"]
    ]
    example = read_env_file(ENV_EXAMPLE)
    assert {name for name, _ in references} == set(example), "env.example vs compose.yaml"
    secrets = {(name, op) for name, op in references if SECRET_NAME.search(name)}
    assert {"VIGIE_CONSOLE_TOKENS", "VIGIE_PSEUDONYM_SECRET"} <= {name for name, _ in secrets}
    assert all(op == ":?" for _, op in secrets), secrets  # required, no default value
    with pytest.raises(MissingVariable, match="required variable"):
        load_compose({})
    for name, _ in secrets:  # each one alone stops Compose before anything starts
        with pytest.raises(MissingVariable, match=name):
            load_compose({k: v for k, v in example.items() if k != name})


def test_secrets_are_not_in_the_repo() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--", "deploy"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "deploy/.env" not in tracked and "deploy/k8s/vigie-secrets.env" not in tracked
    for path in (ENV_EXAMPLE, K8S_SECRETS_EXAMPLE):
        for key, value in read_env_file(path).items():
            if SECRET_NAME.search(key):
                assert value == "change-me", (path.name, key)
    for path in (DEPLOY / "k8s").glob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert doc and doc.get("kind") != "Secret", path


def test_dockerfile_is_pinned_and_unprivileged() -> None:
    text = DOCKERFILE.read_text()
    bases = re.findall(r"^FROM (\S+)", text, re.M)
    assert bases and all(re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", b) for b in bases), bases
    assert re.search(r"^USER vigie$", text, re.M)


def test_image_holds_the_entry_point_and_what_worker_and_console_import() -> None:
    copied = set(re.findall(r"^COPY (\w+) \./\1$", DOCKERFILE.read_text(), re.M))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["vigie"].split(".")[0] in copied  # `ENTRYPOINT ["vigie"]`
    assert {"schemas", "agents", "streams", "console"} <= copied


def dockerfile_endpoint() -> Endpoint:
    (check,) = re.findall(r"^HEALTHCHECK .*\n\s+CMD (.*)$", DOCKERFILE.read_text(), re.M)
    (path,) = re.findall(r"'http://127\.0\.0\.1:%s(/\w+)'", check)
    process = Process("Dockerfile", dockerfile_default_command(), dockerfile_env())
    assert "VIGIE_WEB_PORT" in check and process.command == "worker"
    return Endpoint("Dockerfile HEALTHCHECK", process, process.listens_on()[1], path, False)


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


@dataclass(frozen=True)
class Pod:
    workload: dict[str, Any]
    container: dict[str, Any]
    process: Process

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.workload["spec"]["template"]["metadata"]["labels"]
        return labels

    def container_port(self, port: int | str) -> int:
        for declared in self.container.get("ports", []):
            if port in (declared.get("name"), declared["containerPort"]):
                return int(declared["containerPort"])
        raise AssertionError(f"{self.process.where}: no container port {port!r}")


def k8s_pods() -> list[Pod]:
    configmaps = {doc["metadata"]["name"]: doc["data"] for doc in by_kind("ConfigMap")}
    secrets = read_env_file(K8S_SECRETS_EXAMPLE)
    pods = []
    for workload in by_kind("StatefulSet") + by_kind("Deployment"):
        for container in workload["spec"]["template"]["spec"]["containers"]:
            env = dockerfile_env()
            for source in container.get("envFrom", []):
                env.update(configmaps[source["configMapRef"]["name"]])
            for var in container.get("env", []):
                if "value" in var:
                    env[var["name"]] = var["value"]
                else:
                    ref = var["valueFrom"]["secretKeyRef"]
                    assert ref["name"] == "vigie-secrets", var
                    assert ref["key"] in secrets, f"{ref['key']} not in {K8S_SECRETS_EXAMPLE.name}"
                    env[var["name"]] = secrets[ref["key"]]
            where = f"{workload['kind']} {workload['metadata']['name']}/{container['name']}"
            pods.append(Pod(workload, container, Process(where, container["args"][0], env)))
    return pods


def k8s_endpoints() -> list[Endpoint]:
    pods = k8s_pods()
    found = []
    for pod in pods:
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if probe in pod.container:
                get = pod.container[probe]["httpGet"]
                found.append(
                    Endpoint(
                        f"{pod.process.where} {probe}",
                        pod.process,
                        pod.container_port(get["port"]),
                        get["path"],
                        True,
                    )
                )
    services = {doc["metadata"]["name"]: doc for doc in by_kind("Service")}
    for name, service in services.items():
        selected = [p for p in pods if service["spec"]["selector"].items() <= p.labels.items()]
        assert selected, f"Service {name} selects no pod"
        for pod in selected:
            for port in service["spec"]["ports"]:
                target = pod.container_port(port.get("targetPort", port["port"]))
                found.append(Endpoint(f"Service {name}", pod.process, target, "/healthz", True))
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus-k8s.yml").read_text())
    for job in prometheus["scrape_configs"]:
        for dns in job.get("dns_sd_configs", []):
            for record in dns["names"]:
                service_name, namespace = record.split(".")[:2]
                service = services[service_name]
                assert namespace == service["metadata"]["namespace"], record
                assert service["spec"].get("clusterIP") == "None", f"{record}: A records of a "
                "ClusterIP Service name the Service, not each pod"
                for pod in pods:
                    if service["spec"]["selector"].items() <= pod.labels.items():
                        found.append(
                            Endpoint(
                                f"prometheus-k8s job {job['job_name']}",
                                pod.process,
                                int(dns["port"]),
                                job.get("metrics_path", "/metrics"),
                                True,
                            )
                        )
    return found


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


def test_k8s_sets_only_real_settings_and_example_secrets() -> None:
    (configmap,) = by_kind("ConfigMap")
    assert set(configmap["data"]) <= SETTING_VARS, set(configmap["data"]) - SETTING_VARS
    referenced = set()
    for pod in k8s_pods():
        names = {var["name"] for var in pod.container.get("env", [])}
        assert names <= SETTING_VARS, (pod.process.where, names - SETTING_VARS)
        referenced |= {
            var["valueFrom"]["secretKeyRef"]["key"]
            for var in pod.container.get("env", [])
            if "valueFrom" in var
        }
        pod.process.listens_on()  # the real settings classes accept every value
    assert referenced == set(read_env_file(K8S_SECRETS_EXAMPLE)), "stale or missing example keys"


def test_k8s_workers_and_console_get_only_the_secrets_they_use() -> None:
    keys = {
        pod.process.command: {
            var["valueFrom"]["secretKeyRef"]["key"]
            for var in pod.container["env"]
            if "valueFrom" in var
        }
        for pod in k8s_pods()
    }
    assert keys == {
        "worker": {"VIGIE_PSEUDONYM_SECRET", "VIGIE_CLICKHOUSE"},
        "console": {"VIGIE_CLICKHOUSE", "VIGIE_CONSOLE_TOKENS", "VIGIE_CONSOLE_STREAM_SECRET"},
    }
    (sts,) = by_kind("StatefulSet")
    (configmap,) = by_kind("ConfigMap")
    mount = sts["spec"]["template"]["spec"]["containers"][0]["volumeMounts"][0]["mountPath"]
    assert configmap["data"]["VIGIE_WORKER_DATA_DIR"] == mount


def test_k8s_autoscaling_is_bounded_by_partitions() -> None:
    (hpa,) = by_kind("HorizontalPodAutoscaler")
    (configmap,) = by_kind("ConfigMap")
    partitions = int(configmap["data"]["VIGIE_TOPIC_PARTITIONS"])
    assert hpa["spec"]["maxReplicas"] == partitions
    assert hpa["spec"]["scaleTargetRef"]["name"] == by_kind("StatefulSet")[0]["metadata"]["name"]


# ---- wiring: ports and paths against the running processes --------------------------------
@pytest.fixture
def store(chdb_path: Path) -> Iterator[Store]:
    opened = open_store(f"chdb://{chdb_path}?database=deploy_wiring_{os.getpid()}")
    opened.ensure_schema()
    try:
        yield opened
    finally:
        opened.close()


def all_endpoints(resolved: dict[str, Any]) -> list[Endpoint]:
    return [*compose_endpoints(resolved), *k8s_endpoints(), dockerfile_endpoint()]


def test_every_probe_and_scrape_targets_the_port_the_process_listens_on(
    resolved: dict[str, Any],
) -> None:
    endpoints = all_endpoints(resolved)
    assert {e.process.command for e in endpoints} == {"worker", "console"}
    for endpoint in endpoints:
        check_listening(endpoint)


async def test_every_probe_and_scrape_path_is_served(
    resolved: dict[str, Any], store: Store, tmp_path: Path
) -> None:
    wanted: dict[str, set[str]] = {"worker": set(), "console": set()}
    for endpoint in all_endpoints(resolved):
        wanted[endpoint.process.command].add(endpoint.path)
    assert "/metrics" in wanted["worker"] and "/readyz" in wanted["worker"]
    statuses: dict[tuple[str, str], int] = {}
    async with aiohttp.ClientSession() as http:
        settings = Settings(web_host="127.0.0.1", web_port=free_port(),
                            worker_data_dir=str(tmp_path / "worker"))
        async with worker_web(settings, store) as worker:
            worker.health.mark_started()
            for path in sorted(wanted["worker"]):
                async with http.get(f"http://127.0.0.1:{worker.port}{path}") as response:
                    statuses["worker", path] = response.status
        async with console_web(store, "127.0.0.1", 0, tokens="") as port:
            for path in sorted(wanted["console"]):
                async with http.get(f"http://127.0.0.1:{port}{path}") as response:
                    statuses["console", path] = response.status
    assert {where: status for where, status in statuses.items() if status != 200} == {}
