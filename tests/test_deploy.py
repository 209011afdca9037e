"""The deployment files (deploy/), checked without an engine: compose config, promtool, HAProxy, the Dockerfile,
the Kubernetes overlays rendered by `kubectl kustomize` and checked against Kubernetes 1.28's schemas, the Grafana
dashboard, and that every variable they set is a OneWindow setting (or one of the few third-party ones named below)."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Set, Tuple
from urllib.parse import quote, urlparse
from urllib.request import urlopen

import pytest
import yaml
from kubernetes_validate import ValidationError, validate

from onewindow.infra import deploy_configs, metrics
from onewindow.infra.prometheus_config import render_prometheus_config
from onewindow.settings import REGISTRY
from onewindow.settings.variables import ONEWINDOW_DRAIN_SECONDS

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
KUBERNETES = DEPLOY / "kubernetes"
PUBLIC_HOST = "chat.example.org"  # compose's ONEWINDOW_PUBLIC_HOST in the tests
SECRET_NAMES = ("RASA_JWT_SECRET", "ONEWINDOW_CHANNEL_SECRET", "TELEGRAM_TOKEN", "TELEGRAM_SECRET_TOKEN", "POSTGRES_PASSWORD")
# variables of the images we run, not of OneWindow: Python's, Rasa's, the PostgreSQL image's
THIRD_PARTY = {
    "PATH",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "RASA_TELEMETRY_ENABLED",
    "POSTGRES_USER",
    "POSTGRES_DB",
    "POSTGRES_PASSWORD",
}


def run(*command: str, **kwargs: Any) -> subprocess.CompletedProcess:
    if shutil.which(command[0]) is None:
        pytest.fail(f"{command[0]} is not installed (scripts/system-packages.sh installs it)")
    return subprocess.run(command, capture_output=True, text=True, timeout=60, **kwargs)


@functools.lru_cache(maxsize=None)
def compose_services() -> Dict[str, Any]:
    """The services of `docker-compose config` (run once), with a secrets file of blank values."""
    with tempfile.TemporaryDirectory() as folder:
        secrets = Path(folder) / "secrets.env"
        secrets.write_text("".join(f"{name}=\n" for name in SECRET_NAMES))
        done = run(
            "docker-compose",
            "-f",
            str(DEPLOY / "compose.yml"),
            "config",
            env={"ONEWINDOW_SECRETS_ENV": str(secrets), "ONEWINDOW_PUBLIC_HOST": PUBLIC_HOST, "PATH": "/usr/bin:/bin"},
        )
    assert done.returncode == 0, done.stderr
    return dict(yaml.safe_load(done.stdout)["services"])


def test_compose_config_passes_and_every_app_service_is_probed_on_readiness() -> None:
    services = compose_services()
    expected = {"haproxy", "rasa-1", "rasa-2", "actions-1", "actions-2", "console-1", "console-2", "voice-1", "voice-2"}
    assert expected | {"bot-1", "bot-2", "postgres", "redis", "prometheus"} <= set(services)
    for name, service in services.items():
        if service.get("image", "").startswith("onewindow:"):
            assert "/health/ready" in " ".join(service["healthcheck"]["test"]), name
            assert service["read_only"] is True, name


def test_no_secret_value_is_written_in_the_deploy_files() -> None:
    pattern = re.compile(rf"\b({'|'.join(SECRET_NAMES)}|DATABASE_URL|LOCK_STORE_URL)[ \t]*[:=][ \t]*['\"]?([^\s'\"#]+)")
    for path in DEPLOY.rglob("*"):
        if path.is_file() and path.name != "secrets.env":
            for match in pattern.finditer(path.read_text()):
                assert match.group(2).startswith(("${", "{")), f"{path}: {match.group(0)}"


def environment_names(services: Dict[str, Any]) -> List[str]:
    return [name for service in services.values() for name in (service.get("environment") or {})]


def test_every_variable_the_deploy_files_set_is_a_declared_setting() -> None:
    declared = {setting.name for setting in REGISTRY}
    names = set(environment_names(compose_services()))
    names |= set(re.findall(r"\$\{(\w+)\}", (DEPLOY / "kubernetes" / "base" / "endpoints.yml").read_text()))
    names |= set(re.findall(r"^(\w+)=", (DEPLOY / "secrets.env.example").read_text(), re.M))
    image_env = re.search(r"^ENV (.*?[^\\])$", runtime_stage(), re.M | re.S)
    assert image_env, "the runtime stage sets no ENV"
    names |= set(re.findall(r"(\w+)=\S+", image_env.group(1)))
    assert names - declared - THIRD_PARTY == set()


def dockerfile() -> str:
    return (DEPLOY / "docker" / "Dockerfile").read_text()


def runtime_stage() -> str:
    """The final stage of the Dockerfile: what the image runs with."""
    return dockerfile().split(" AS runtime")[1]


def test_the_dockerfile_pins_its_base_runs_unprivileged_and_installs_the_locked_versions_only() -> None:
    text = dockerfile()
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.M)
    assert base and re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", base.group(1))
    assert all(line.split()[1] in ("${PYTHON_IMAGE}",) for line in text.splitlines() if line.startswith("FROM "))
    user = re.findall(r"^USER (\S+)$", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    installs = [line for line in text.splitlines() if "pip install" in line and " -e ." in line]
    assert installs and all("-c constraints.txt" in line and "[dev]" not in line for line in installs)
    assert "build-essential" not in runtime_stage() and "gcc" not in runtime_stage()


def test_the_rendered_files_are_their_rendering_now() -> None:
    """deploy/haproxy/haproxy.cfg, the Kubernetes haproxy.cfg and prometheus.yml cannot drift from the code."""
    assert deploy_configs.stale() == [], "run: python -m onewindow.infra.deploy_configs"


@pytest.mark.parametrize(
    "path", [DEPLOY / "haproxy" / "haproxy.cfg", KUBERNETES / "base" / "haproxy.cfg"], ids=["compose", "kubernetes"]
)
def test_haproxy_accepts_the_rendered_configurations(path: Path) -> None:
    environment = {"PATH": "/usr/bin:/bin:/usr/sbin", "RASA_JWT_SECRET": "x" * 32, "POD_NAMESPACE": "onewindow"}
    done = run("haproxy", "-c", "-f", str(path), env=environment)
    assert done.returncode == 0, done.stdout + done.stderr


def test_promtool_accepts_the_prometheus_config() -> None:
    done = run("promtool", "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    checked = run("promtool", "check", "rules", str(PROMETHEUS / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = run("promtool", "test", "rules", "alerts_test.yml", cwd=PROMETHEUS)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_firing_and_a_silent_unit_test() -> None:
    alerts = {
        rule["alert"] for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"] for rule in group["rules"]
    }
    firing: set = set()
    silent: set = set()
    for case in yaml.safe_load((PROMETHEUS / "alerts_test.yml").read_text())["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else silent).add(check["alertname"])
    assert firing == alerts and silent == alerts


def test_a_rendered_prometheus_config_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "prometheus.yml"
    path.write_text(render_prometheus_config({"rasa": ["127.0.0.1:5106", "127.0.0.1:5107"], "actions": ["127.0.0.1:5055"]}))
    done = run("promtool", "check", "config", str(path))
    assert done.returncode == 0, done.stdout + done.stderr


# --- Kubernetes: deploy/kubernetes/overlays/* rendered by `kubectl kustomize`, offline -------------------------------

OVERLAYS = sorted(path.name for path in (KUBERNETES / "overlays").iterdir() if path.is_dir())
SECRET = "onewindow-secrets"  # the one Secret the manifests read, created outside git
KUBERNETES_VERSION = "1.28"
PROGRAMS = {  # the module a container runs -> the program
    "onewindow.rasa_plugins.server": "rasa",
    "onewindow.infra.action_server": "actions",
    "console": "console",
    "bot": "bot",
    "voice": "voice",
}
OUTSIDE_PROGRAMS = {"POD_NAMESPACE"}  # HAProxy's own (the downward API): its DNS names (onewindow/infra/deploy_configs.py)


@functools.lru_cache(maxsize=None)
def rendered(overlay: str) -> Tuple[Dict[str, Any], ...]:
    done = run("kubectl", "kustomize", str(KUBERNETES / "overlays" / overlay))
    assert done.returncode == 0, done.stderr
    return tuple(document for document in yaml.safe_load_all(done.stdout) if document)


def objects(overlay: str, kind: str) -> Dict[str, Dict[str, Any]]:
    return {item["metadata"]["name"]: item for item in rendered(overlay) if item["kind"] == kind}


def pod_specs(overlay: str) -> Iterator[Tuple[str, Dict[str, Any]]]:
    for name, deployment in objects(overlay, "Deployment").items():
        yield name, deployment["spec"]["template"]["spec"]


def containers(spec: Mapping[str, Any]) -> List[Dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def program_of(container: Mapping[str, Any]) -> str:
    """rasa, actions, console, bot, voice (by the module the command runs), haproxy, or "" for another command."""
    if container["image"].startswith("haproxy:"):
        return "haproxy"
    command = container.get("command", [])
    return PROGRAMS.get(command[command.index("-m") + 1], "") if "-m" in command else ""


def environment(overlay: str, container: Mapping[str, Any]) -> Dict[str, str]:
    """The literal values a container gets: its ConfigMaps (envFrom), then its own `value`s."""
    config_maps = objects(overlay, "ConfigMap")
    found: Dict[str, str] = {}
    for source in container.get("envFrom", []):
        found.update(config_maps[source["configMapRef"]["name"]]["data"])
    found.update({item["name"]: item["value"] for item in container.get("env", []) if "value" in item})
    return found


def port_number(container: Mapping[str, Any], port: Any) -> int:
    if isinstance(port, int):
        return port
    return next(item["containerPort"] for item in container["ports"] if item.get("name") == port)


def listening_port(program: str, container: Mapping[str, Any], env: Mapping[str, str]) -> int:
    """The port the program serves its health routes on, as the program reads it (its arguments or its settings)."""
    from onewindow.settings import variables as setting

    if program in ("rasa", "actions"):
        return int(container["command"][container["command"].index("-p") + 1])
    port = {"console": setting.CONSOLE_PORT, "bot": setting.TELEGRAM_WEBHOOK_PORT, "voice": setting.VOICE_CONTROL_PORT}[program]
    return port.read(env)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_of_the_overlay_is_valid_for_kubernetes_1_28(overlay: str) -> None:
    kinds = {item["kind"] for item in rendered(overlay)}
    assert {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    problems = []
    for item in rendered(overlay):
        try:
            validate(item, KUBERNETES_VERSION, strict=True)  # strict: an unknown (misspelt) field fails too
        except ValidationError as error:
            problems.append(f"{item['kind']}/{item['metadata']['name']}: {error}")
    assert problems == []


@functools.lru_cache(maxsize=None)
def served_paths(framework: str) -> Set[str]:
    """The routes onewindow/infra/health.py and metrics.py really add, on a real Sanic (rasa, actions, console) or
    aiohttp (bot, voice) application."""
    from onewindow.infra.health import Readiness, install_aiohttp, install_sanic

    if framework == "sanic":
        from sanic import Sanic

        sanic_app = Sanic("onewindow_deploy_probe_paths")
        install_sanic(sanic_app, Readiness("deploy-test"))
        metrics.install_sanic(sanic_app, "deploy-test")
        return {"/" + route.path for route in sanic_app.router.routes}
    from aiohttp import web

    aiohttp_app = web.Application()
    install_aiohttp(aiohttp_app, Readiness("deploy-test"))
    return {resource.canonical for resource in aiohttp_app.router.resources()}


def haproxy_served_paths(config: str, port: int) -> Set[str]:
    """Paths the frontend bound on `port` answers itself (`monitor-uri`, `{ url ... }` and `{ path ... }` conditions)."""
    for section in re.split(r"\n(?=\S)", config):
        if re.search(rf"^    bind \S+:{port}$", section, re.M):
            paths = set(re.findall(r"^    monitor-uri (\S+)$", section, re.M))
            paths |= set(re.findall(r"\{ path (\S+) \}", section))
            return paths | {path for condition in re.findall(r"\{ url ([^}]*)\}", section) for path in condition.split()}
    return set()


def serves(overlay: str, container: Mapping[str, Any], path: str, port: Any) -> bool:
    """Whether the container's program answers `path` on `port` (a number or a port's name)."""
    program, number = program_of(container), port_number(container, port)
    if program == "haproxy":
        return path in haproxy_served_paths((KUBERNETES / "base" / "haproxy.cfg").read_text(), number)
    framework = "aiohttp" if program in ("bot", "voice") else "sanic"
    return path in served_paths(framework) and number == listening_port(program, container, environment(overlay, container))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_probed_on_paths_and_ports_its_program_serves(overlay: str) -> None:
    live, ready = "/health/live", "/health/ready"
    for name, spec in pod_specs(overlay):
        for container in spec["containers"]:
            program = program_of(container)
            assert program, f"{name}: a container runs no known program"
            probes = {kind: container.get(kind) for kind in ("livenessProbe", "readinessProbe")}
            assert all(probes.values()), f"{name}: needs both a liveness and a readiness probe"
            if "startupProbe" in container:
                probes["startupProbe"] = container["startupProbe"]
            for kind, probe in probes.items():
                path, port = probe["httpGet"]["path"], probe["httpGet"]["port"]
                assert serves(overlay, container, path, port), f"{name} {kind}: {path} on {port} is not served"
                if program != "haproxy":
                    assert path == (ready if kind == "readinessProbe" else live), f"{name} {kind}: {path}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_scraped_where_its_program_serves_its_metrics(overlay: str) -> None:
    for name, deployment in objects(overlay, "Deployment").items():
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true", name
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        path, port = annotations["prometheus.io/path"], int(annotations["prometheus.io/port"])
        assert path == "/metrics" and serves(overlay, container, path, port), f"{name}: {path} on {port}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_program_runs_in_kubernetes_with_the_command_it_has_in_compose(overlay: str) -> None:
    compose: Dict[str, List[str]] = {}
    for service in compose_services().values():
        program = program_of({"image": service["image"], "command": service.get("command") or []})
        if program not in ("", "haproxy"):
            compose.setdefault(program, service["command"])
    for name, spec in pod_specs(overlay):
        for container in spec["containers"]:
            program = program_of(container)
            if program != "haproxy":
                assert container["command"] == compose[program], f"{name}: {container['command']}"


def hard_stop_seconds() -> float:
    """HAProxy's hard-stop-after: how long its soft stop lets requests finish."""
    found = re.search(r"^    hard-stop-after (\d+)s$", (KUBERNETES / "base" / "haproxy.cfg").read_text(), re.M)
    assert found, "haproxy.cfg sets no hard-stop-after"
    return float(found.group(1))


def in_flight_seconds(program: str, env: Mapping[str, str]) -> float:
    """How long a stopping program lets work in flight finish, as its code says."""
    if program == "bot":
        from bot.webhook import FINISH_SECONDS

        return FINISH_SECONDS
    if program == "voice":
        from voice.__main__ import CLOSE_CALLS_SECONDS

        return CLOSE_CALLS_SECONDS
    if program == "haproxy":
        return hard_stop_seconds()
    from sanic.config import DEFAULT_CONFIG  # Sanic's graceful shutdown (the console sets less; this is the bound)

    return float(env.get("SANIC_GRACEFUL_SHUTDOWN_TIMEOUT") or str(DEFAULT_CONFIG["GRACEFUL_SHUTDOWN_TIMEOUT"]))


def stop_seconds(program: str, env: Mapping[str, str]) -> float:
    """From SIGTERM to exit at worst: the drain (readiness 503 while still serving), then work in flight."""
    drain = 0.0 if program == "haproxy" else ONEWINDOW_DRAIN_SECONDS.read(env)
    return drain + in_flight_seconds(program, env)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_has_a_pre_stop_pause_and_a_grace_period_for_draining_and_work_in_flight(overlay: str) -> None:
    for name, spec in pod_specs(overlay):
        for container in spec["containers"]:
            command = container["lifecycle"]["preStop"]["exec"]["command"]
            assert command[0] == "sleep" and float(command[1]) > 0, name
            needed = float(command[1]) + stop_seconds(program_of(container), environment(overlay, container))
            assert spec["terminationGracePeriodSeconds"] >= needed, (
                f"{name}: grace {spec['terminationGracePeriodSeconds']} s < {needed} s"
            )


def test_every_compose_program_has_a_stop_grace_period_for_draining_and_work_in_flight() -> None:
    for name, service in compose_services().items():
        command = service.get("command") or []
        program = (
            "haproxy" if service["image"].startswith("haproxy:") else program_of({"image": service["image"], "command": command})
        )
        if program:
            grace = float(service.get("stop_grace_period", "10s").rstrip("s"))
            needed = stop_seconds(program, service.get("environment") or {})
            assert grace >= needed, f"{name}: stop_grace_period {grace} s < {needed} s"


def dockerfile_user() -> Tuple[int, int]:
    user, group = re.findall(r"^USER (\d+):(\d+)$", runtime_stage(), re.M)[-1]
    return int(user), int(group)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_unprivileged_read_only_with_resources(overlay: str) -> None:
    """The restricted Pod Security Standard, the image's own user, and requests and limits for the scheduler."""
    for name, spec in pod_specs(overlay):
        pod = spec.get("securityContext", {})
        assert pod.get("runAsNonRoot") is True and pod.get("seccompProfile") == {"type": "RuntimeDefault"}, name
        assert spec.get("automountServiceAccountToken") is False, name
        for container in containers(spec):
            if container["image"].split(":")[0].endswith("onewindow"):
                assert (pod.get("runAsUser"), pod.get("runAsGroup")) == dockerfile_user(), name
            context = container.get("securityContext", {})
            assert context.get("readOnlyRootFilesystem") is True, f"{name}/{container['name']}"
            assert context.get("allowPrivilegeEscalation") is False, f"{name}/{container['name']}"
            assert context.get("capabilities", {}).get("drop") == ["ALL"], f"{name}/{container['name']}"
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), f"{name}/{container['name']}"
            assert "memory" in resources.get("limits", {}), f"{name}/{container['name']}"


def selects(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(key) == value for key, value in selector.items())


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_budgets_autoscalers_services_and_ingress_point_at_what_exists(overlay: str) -> None:
    deployments = objects(overlay, "Deployment")
    pod_labels = {name: item["spec"]["template"]["metadata"]["labels"] for name, item in deployments.items()}
    for name, budget in objects(overlay, "PodDisruptionBudget").items():
        matched = [d for d, labels in pod_labels.items() if selects(budget["spec"]["selector"]["matchLabels"], labels)]
        assert len(matched) == 1, f"PodDisruptionBudget {name} selects {matched}"
    for name, deployment in deployments.items():
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selects(selector, pod_labels[name]), name
        assert [d for d, labels in pod_labels.items() if selects(selector, labels)] == [name], f"{name}'s selector is shared"
    services = objects(overlay, "Service")
    for name, service in services.items():
        matched = [d for d, labels in pod_labels.items() if selects(service["spec"]["selector"], labels)]
        assert len(matched) == 1, f"Service {name} selects {matched}"
        ports = {
            port.get("name") for c in deployments[matched[0]]["spec"]["template"]["spec"]["containers"] for port in c["ports"]
        }
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= ports, f"Service {name}"
    for ingress in objects(overlay, "Ingress").values():
        for rule in ingress["spec"]["rules"]:
            for path in rule["http"]["paths"]:
                backend = path["backend"]["service"]
                assert backend["port"]["name"] in {port["name"] for port in services[backend["name"]]["spec"]["ports"]}
    config_maps = set(objects(overlay, "ConfigMap"))
    for name, spec in pod_specs(overlay):
        used = {volume["configMap"]["name"] for volume in spec.get("volumes", []) if "configMap" in volume}
        used |= {source["configMapRef"]["name"] for c in containers(spec) for source in c.get("envFrom", [])}
        assert used <= config_maps, f"{name} reads ConfigMaps that are not rendered: {used - config_maps}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_autoscaled_deployments_leave_replicas_to_the_autoscaler_within_haproxys_slots(overlay: str) -> None:
    deployments = objects(overlay, "Deployment")
    backends = {service: backend for backend, service in deploy_configs.SERVICES.items()}
    scaled = set()
    for name, autoscaler in objects(overlay, "HorizontalPodAutoscaler").items():
        target = autoscaler["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments, name
        assert "replicas" not in deployments[target["name"]]["spec"], (
            f"{target['name']}: kubectl apply would reset the autoscaler"
        )
        assert autoscaler["spec"]["maxReplicas"] <= deploy_configs.SLOTS[backends[target["name"]]], name
        scaled.add(target["name"])
    assert {"rasa", "actions"} <= scaled
    for name in set(backends) - scaled:
        assert deployments[name]["spec"].get("replicas", 1) <= deploy_configs.SLOTS[backends[name]], name


def label_selector_matches(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels, matchExpressions with In, NotIn, Exists, DoesNotExist) on `labels`."""
    tests = {
        "In": lambda key, values: labels.get(key) in values,
        "NotIn": lambda key, values: labels.get(key) not in values,
        "Exists": lambda key, values: key in labels,
        "DoesNotExist": lambda key, values: key not in labels,
    }
    expressions = selector.get("matchExpressions", [])
    return selects(selector.get("matchLabels", {}), labels) and all(
        tests[e["operator"]](e["key"], e.get("values", [])) for e in expressions
    )


def addresses_used(overlay: str, spec: Mapping[str, Any]) -> Set[Tuple[str, int]]:
    """(host, port) of every http(s) URL a pod is given: its environment and the ConfigMaps it mounts."""
    config_maps = objects(overlay, "ConfigMap")
    texts = [value for container in spec["containers"] for value in environment(overlay, container).values()]
    for volume in spec.get("volumes", []):
        if "configMap" in volume:
            texts += list(config_maps[volume["configMap"]["name"]]["data"].values())
    return {(host, int(port)) for text in texts for host, port in re.findall(r"https?://([\w.-]+):(\d+)", text)}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_address_a_program_is_given_is_a_service_its_network_policy_lets_it_reach(overlay: str) -> None:
    services = objects(overlay, "Service")
    policies = objects(overlay, "NetworkPolicy").values()
    pod_labels = {name: item["spec"]["template"]["metadata"]["labels"] for name, item in objects(overlay, "Deployment").items()}
    assert policies, "no NetworkPolicy guards the action servers"
    for client, spec in pod_specs(overlay):
        for host, port in addresses_used(overlay, spec):
            assert host in services, f"{client} is given {host}:{port}, which is no Service"
            assert port in {p["port"] for p in services[host]["spec"]["ports"]}, f"{client}: {host} has no port {port}"
            targets = [d for d, labels in pod_labels.items() if selects(services[host]["spec"]["selector"], labels)]
            for policy in policies:
                if any(label_selector_matches(policy["spec"]["podSelector"], pod_labels[d]) for d in targets):
                    allowed = [
                        source["podSelector"]
                        for rule in policy["spec"]["ingress"]
                        for source in rule["from"]
                        if "podSelector" in source and "namespaceSelector" not in source
                    ]
                    assert any(label_selector_matches(s, pod_labels[client]) for s in allowed), (
                        f"{policy['metadata']['name']} blocks {client} -> {host}"
                    )
    guarded = [d for d in pod_labels if any(label_selector_matches(p["spec"]["podSelector"], pod_labels[d]) for p in policies)]
    assert {"rasa", "actions", "console"} <= set(guarded)


def secret_names() -> Set[str]:
    return set(re.findall(r"^(\w+)=", (DEPLOY / "secrets.env.example").read_text(), re.M))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secrets_are_only_referenced_and_every_key_is_in_the_example(overlay: str) -> None:
    assert objects(overlay, "Secret") == {}, "a Secret with its data is rendered from git"
    secrets = secret_names()
    referenced = set()
    for name, spec in pod_specs(overlay):
        for container in containers(spec):
            for item in container.get("env", []):
                reference = item.get("valueFrom", {}).get("secretKeyRef")
                if reference:
                    assert reference["name"] == SECRET and reference["key"] == item["name"], f"{name}: {item}"
                    referenced.add(item["name"])
                assert item["name"] not in secrets or reference, f"{name}: {item['name']} has a literal value"
    assert referenced and referenced <= secrets, f"not in deploy/secrets.env.example: {referenced - secrets}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_setting_the_manifests_set_is_declared_and_its_value_reads(overlay: str) -> None:
    declared = {setting.name: setting for setting in REGISTRY}
    substituted = set(re.findall(r"\$\{(\w+)\}", (KUBERNETES / "base" / "endpoints.yml").read_text()))
    for name, spec in pod_specs(overlay):
        for container in containers(spec):
            names = {item["name"] for item in container.get("env", [])} | set(environment(overlay, container))
            unknown = names - set(declared) - THIRD_PARTY - OUTSIDE_PROGRAMS
            assert unknown == set(), f"{name}: not OneWindow settings: {unknown}"
            env = environment(overlay, container)
            for variable in set(env) & set(declared):
                declared[variable].read(env)  # InvalidSetting names the variable and the value
            if program_of(container) == "rasa":
                assert substituted <= names, f"{name}: endpoints.yml needs {substituted - names}"


def test_the_production_ingress_sends_the_telegram_webhook_to_the_bot() -> None:
    settings = objects("production", "ConfigMap")
    webhook = next(
        urlparse(m["data"]["TELEGRAM_WEBHOOK_URL"]) for m in settings.values() if "TELEGRAM_WEBHOOK_URL" in m.get("data", {})
    )
    assert webhook.scheme == "https" and webhook.path == deploy_configs.BOT_WEBHOOK_PATH
    (ingress,) = objects("production", "Ingress").values()
    routes = {
        (rule["host"], path["path"]): path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert routes[(webhook.hostname, webhook.path)] == "bot"
    assert any(webhook.hostname in tls["hosts"] for tls in ingress["spec"]["tls"])


def test_compose_sends_the_telegram_webhook_to_the_active_bot_and_to_its_standby_only_while_it_is_down() -> None:
    services = compose_services()
    bots = sorted(name for name, service in services.items() if service.get("command") == ["python", "-m", "bot"])
    assert bots == ["bot-1", "bot-2"]
    for name in bots:
        assert services[name]["environment"]["TELEGRAM_WEBHOOK_URL"] == f"https://{PUBLIC_HOST}{deploy_configs.BOT_WEBHOOK_PATH}"
        assert "ports" not in services[name], f"{name}: reached through HAProxy only"
    config = (DEPLOY / "haproxy" / "haproxy.cfg").read_text()
    backend = re.search(r"^backend bot\n((?:    .*\n)+)", config, re.M)
    assert backend, "no bot backend in deploy/haproxy/haproxy.cfg"
    servers = re.findall(r"^    server \S+ (\S+):8443 .*?( backup)?$", backend.group(1), re.M)
    assert servers == [("bot-1", ""), ("bot-2", " backup")]
    assert re.search(rf"^    use_backend bot if {{ path {deploy_configs.BOT_WEBHOOK_PATH} }}", config, re.M)


# --- The Kubernetes HAProxy configuration running: pods found by DNS, in two network namespaces -----------------------

# Stands in for pods: answers the readiness check (503 while <flags>/<its address> exists) and every POST with its
# address. One server per address:port given.
POD_SERVER = """
import json, os, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Pod(BaseHTTPRequestHandler):
    def answer(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        ready = not os.path.exists(os.path.join(sys.argv[1], self.server.server_address[0]))
        self.answer(200 if ready else 503, {"ready": ready})

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.answer(200, [{"pod": self.server.server_address[0]}])

    def log_message(self, *args):
        pass

for address in sys.argv[2:]:
    host, port = address.rsplit(":", 1)
    server = ThreadingHTTPServer((host, int(port)), Pod)
    threading.Thread(target=server.serve_forever, daemon=True).start()
threading.Event().wait()
"""
# In the edge namespace: POSTs `count` turns to `url` and prints which pods answered, or what happened instead
# (HAProxy's 503 while no server is up yet, a refused connection before it listens), as a JSON list.
TURNS = """
import json, sys, urllib.error, urllib.request
seen = []
for _ in range(int(sys.argv[2])):
    request = urllib.request.Request(sys.argv[1], data=b"{}", headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            seen.append(json.loads(answer.read())[0]["pod"])
    except urllib.error.HTTPError as error:
        seen.append(f"status {error.code}")
    except OSError as error:
        seen.append(type(error).__name__)
print(json.dumps(seen))
"""
SUBNET = "10.99.0"  # inside the test's own namespaces only
NAMESPACE = "onewindow"  # the pods' Kubernetes namespace, as the downward API gives it to HAProxy


@contextlib.contextmanager
def edge_and_pods() -> Iterator[Tuple[str, str]]:
    """Two network namespaces joined by a veth pair: `edge` (SUBNET.1; /etc/resolv.conf names 127.0.0.1 there) and
    `pods` (SUBNET.2 and SUBNET.3, two pod addresses); removed afterwards."""
    if os.geteuid() != 0:
        pytest.fail("needs root (ip netns), as the multi-host tests do")
    tag = secrets.token_hex(3)
    edge, pods = f"owk8s-{tag}-edge", f"owk8s-{tag}-pods"
    resolv = Path("/etc/netns") / edge / "resolv.conf"  # `ip netns exec` mounts it over /etc/resolv.conf
    steps = [
        ["ip", "netns", "add", edge],
        ["ip", "netns", "add", pods],
        ["ip", "link", "add", f"owk8s{tag}e", "type", "veth", "peer", "name", f"owk8s{tag}p"],
        ["ip", "link", "set", f"owk8s{tag}e", "netns", edge],
        ["ip", "link", "set", f"owk8s{tag}p", "netns", pods],
        ["ip", "-n", edge, "addr", "add", f"{SUBNET}.1/24", "dev", f"owk8s{tag}e"],
        ["ip", "-n", pods, "addr", "add", f"{SUBNET}.2/24", "dev", f"owk8s{tag}p"],
        ["ip", "-n", pods, "addr", "add", f"{SUBNET}.3/24", "dev", f"owk8s{tag}p"],
        *(
            ["ip", "-n", ns, "link", "set", name, "up"]
            for ns, name in ((edge, "lo"), (pods, "lo"), (edge, f"owk8s{tag}e"), (pods, f"owk8s{tag}p"))
        ),
    ]
    try:
        for step in steps:
            done = run(*step)
            assert done.returncode == 0, f"{step}: {done.stderr}"
        resolv.parent.mkdir(parents=True)
        resolv.write_text("nameserver 127.0.0.1\n")
        yield edge, pods
    finally:
        for ns in (edge, pods):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(resolv.parent, ignore_errors=True)


def turns_answered_by(edge: str, count: int = 20) -> Set[str]:
    done = run(
        "ip", "netns", "exec", edge, sys.executable, "-c", TURNS, "http://127.0.0.1:5005/webhooks/rest/webhook", str(count)
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout))


def eventually(check: Callable[[], Set[str]], wanted: Set[str], seconds: float = 30.0) -> Set[str]:
    """`check()` until it gives `wanted` (HAProxy resolves and health-checks every second), or the last answer."""
    deadline = time.monotonic() + seconds
    seen = check()
    while seen != wanted and time.monotonic() < deadline:
        time.sleep(0.5)
        seen = check()
    return seen


def stop(processes: List[subprocess.Popen]) -> None:
    for process in processes:
        process.kill()
        process.wait()


@pytest.mark.haproxy
def test_the_kubernetes_haproxy_finds_the_pods_by_dns_and_sends_turns_only_to_the_ready_ones(tmp_path: Path) -> None:
    """The rendered deploy/kubernetes/base/haproxy.cfg, unchanged, run by HAProxy: its server-template slots fill
    from the headless Services' DNS records (dnsmasq standing in for the cluster's DNS, the names built from
    POD_NAMESPACE), and a pod whose readiness fails gets no more turns until it is ready again."""
    if shutil.which("dnsmasq") is None:
        pytest.fail("dnsmasq is not installed (scripts/system-packages.sh installs dnsmasq-base)")
    running: List[subprocess.Popen] = []
    with edge_and_pods() as (edge, pods), contextlib.ExitStack() as stack:
        stack.callback(stop, running)
        addresses = [f"{SUBNET}.2", f"{SUBNET}.3"]
        ports = {"rasa": 5005, "actions": 5055, "console": 5080}
        records = [f"--host-record={service}.{NAMESPACE}.svc.cluster.local,{a}" for service in ports for a in addresses]
        dns = ["dnsmasq", "--keep-in-foreground", "--no-resolv", "--no-hosts", "--conf-file=/dev/null", "--user=root"]
        dns += ["--listen-address=127.0.0.1", "--bind-interfaces", "--local-ttl=1", *records]
        servers = [f"{a}:{port}" for a in addresses for port in ports.values()]
        environment = {"PATH": os.environ["PATH"], "POD_NAMESPACE": NAMESPACE, "RASA_JWT_SECRET": secrets.token_urlsafe(32)}
        proxy = ["haproxy", "-db", "-f", str(KUBERNETES / "base" / "haproxy.cfg")]
        for namespace, command, env in (
            (edge, dns, None),
            (pods, [sys.executable, "-c", POD_SERVER, str(tmp_path), *servers], None),
            (edge, proxy, environment),
        ):
            log = open(tmp_path / f"{command[0].rsplit('/', 1)[-1]}.log", "wb")
            running.append(subprocess.Popen(["ip", "netns", "exec", namespace, *command], stdout=log, stderr=log, env=env))
        for readiness_fails, wanted in ((False, set(addresses)), (True, {addresses[1]}), (False, set(addresses))):
            flag = tmp_path / addresses[0]  # while it exists, the first pod's readiness fails
            if readiness_fails:
                flag.touch()
            else:
                flag.unlink(missing_ok=True)
            seen = eventually(lambda: turns_answered_by(edge), wanted)
            assert seen == wanted, (tmp_path / "haproxy.log").read_text()[-3000:]


# --- Grafana and the alert rules use the metrics our programs expose -----------------------------------------------


def exposed_metric_names() -> Set[str]:
    """Every series name onewindow/infra/metrics.py defines, with the suffixes Prometheus' text format adds."""
    from prometheus_client.metrics import MetricWrapperBase

    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}
    families = [family for value in vars(metrics).values() if isinstance(value, MetricWrapperBase) for family in value.describe()]
    families += list(metrics.HandoffWaits().collect())  # type: ignore[call-overload]
    return {family.name + suffix for family in families for suffix in suffixes[family.type]}


GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def dashboard_targets(variables: Mapping[str, str] = GRAFANA_VARIABLES) -> List[Tuple[str, str, str]]:
    """(panel and query, expression with Grafana's variables replaced by `variables`, legend) of every query."""
    dashboard = json.loads((DEPLOY / "grafana" / "onewindow.json").read_text())
    found = []
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expression = target["expr"]
            for variable, value in variables.items():
                expression = expression.replace(variable, value)
            found.append((f"{panel['title']} {target['refId']}", expression, target.get("legendFormat", "")))
    return found


def dashboard_expressions() -> List[Tuple[str, str]]:
    return [(title, expression) for title, expression, _ in dashboard_targets()]


def metric_names_in(expression: str) -> Set[str]:
    return set(re.findall(r"\b(onewindow_\w+|up)\b", expression))


def test_every_dashboard_expression_parses_and_reads_metrics_we_expose(tmp_path: Path) -> None:
    expressions = dashboard_expressions()
    titles = " ".join(title for title, _ in expressions).lower()
    for topic in (
        "messages",
        "latency",
        "fallback",
        "intents",
        "handoffs",
        "waiting",
        "wait",
        "calls",
        "telegram",
        "database",
        "up",
    ):
        assert topic in titles, f"no panel about {topic}"
    exposed = exposed_metric_names() | {"up"}
    for title, expression in expressions:
        names = metric_names_in(expression)
        assert names and names <= exposed, f"{title}: {names - exposed or 'no metric'}"
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:expression_{n}", "expr": e} for n, (_, e) in enumerate(expressions)],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    done = run("promtool", "check", "rules", str(path))  # promtool parses every expression
    assert done.returncode == 0, done.stdout + done.stderr


def exercise_every_metric() -> None:
    """One observation of each metric of onewindow/infra/metrics.py, with label values the programs give them."""
    metrics.MESSAGES.labels("telegram").inc()
    metrics.TURN_SECONDS.labels("telegram").observe(0.2)
    metrics.FALLBACKS.labels("nlu").inc()
    metrics.INTENTS.labels("greet").inc()
    metrics.HANDOFFS.labels("citizen_request").inc()
    metrics.HANDOFF_QUEUE_LENGTH.set(2)
    metrics.ACTIVE_CALLS.set(1)
    metrics.TELEGRAM_DELIVERY_ERRORS.inc()
    metrics.DATABASE_ERRORS.labels("onewindow").inc()
    metrics.LOCK_ERRORS.inc()
    metrics.LOCK_WAIT_SECONDS.observe(0.01)
    metrics.observe_request("rasa", "/webhooks/rest/webhook", 200, time.perf_counter())
    metrics.READY.labels("rasa").set(1)
    metrics.handoff_waits().update((45.0, 200.0))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def promql(port: int, expression: str) -> List[Dict[str, Any]]:
    with urlopen(f"http://127.0.0.1:{port}/api/v1/query?query={quote(expression)}", timeout=10) as answer:
        body = json.loads(answer.read())
    assert body["status"] == "success", body
    return list(body["data"]["result"])


def labels_shown(expression: str, legend: str) -> Set[str]:
    """The labels a query's series must carry: those it groups by (but `le`) and those its legend shows."""
    grouped = {name.strip() for group in re.findall(r"\bby \(([^)]*)\)", expression) for name in group.split(",")}
    return (grouped - {"le"}) | set(re.findall(r"\{\{(\w+)\}\}", legend))


@pytest.mark.slow
def test_every_dashboard_query_gives_series_with_the_labels_it_shows_on_a_real_prometheus(tmp_path: Path) -> None:
    """The Debian Prometheus scrapes this process's registry (the metric objects every program exports) every
    second; each panel's query then answers series carrying the labels its legend and grouping name."""
    exercise_every_metric()
    from prometheus_client import start_http_server

    exporter, _ = start_http_server(free_port(), addr="127.0.0.1")
    api_port = free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(render_prometheus_config({"onewindow": [f"127.0.0.1:{exporter.server_port}"]}, [], "1s"))
    command = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'data'}"]
    with open(tmp_path / "prometheus.log", "wb") as log:
        server = subprocess.Popen([*command, f"--web.listen-address=127.0.0.1:{api_port}"], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if promql(api_port, "count_over_time(up[1m]) >= 4"):  # four scrapes: every rate has points
                    break
            except OSError:
                pass
            time.sleep(0.5)
        for title, expression, legend in dashboard_targets({**GRAFANA_VARIABLES, "$__rate_interval": "30s"}):
            series = promql(api_port, expression)
            assert series, f"{title}: no series for {expression}"
            for found in series:
                assert labels_shown(expression, legend) <= set(found["metric"]), f"{title}: {found['metric']}"
    finally:
        server.terminate()
        server.wait(30)
        exporter.shutdown()


def test_every_alert_rule_reads_metrics_we_expose() -> None:
    exposed = exposed_metric_names() | {"up"}
    for group in yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]:
        for rule in group["rules"]:
            names = metric_names_in(rule["expr"])
            assert names and names <= exposed, f"{rule['alert']}: {names - exposed or 'no metric'}"
