"""The deployment files (deploy/), checked without an engine: compose config, promtool, HAProxy, the Dockerfile,
and that every variable they set is a OneWindow setting (or one of the few third-party ones named below)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from onewindow.infra.prometheus_config import COMPOSE_TARGETS, render_prometheus_config
from onewindow.settings import REGISTRY

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PROMETHEUS = DEPLOY / "prometheus"
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


def compose_config(tmp_path: Path) -> Dict[str, Any]:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("".join(f"{name}=\n" for name in SECRET_NAMES))
    done = run(
        "docker-compose",
        "-f",
        str(DEPLOY / "compose.yml"),
        "config",
        env={"ONEWINDOW_SECRETS_ENV": str(secrets), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    return yaml.safe_load(done.stdout)


def test_compose_config_passes_and_every_app_service_is_probed_on_readiness(tmp_path: Path) -> None:
    services = compose_config(tmp_path)["services"]
    expected = {"haproxy", "rasa-1", "rasa-2", "actions-1", "actions-2", "console-1", "console-2", "voice-1", "voice-2"}
    assert expected | {"bot", "postgres", "redis", "prometheus"} <= set(services)
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


def test_every_variable_the_deploy_files_set_is_a_declared_setting(tmp_path: Path) -> None:
    declared = {setting.name for setting in REGISTRY}
    names = set(environment_names(compose_config(tmp_path)["services"]))
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


def test_haproxy_cfg_is_valid() -> None:
    done = run("haproxy", "-c", "-f", str(DEPLOY / "haproxy" / "haproxy.cfg"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_prometheus_config_is_the_rendered_one_and_promtool_accepts_it() -> None:
    committed = (PROMETHEUS / "prometheus.yml").read_text()
    assert yaml.safe_load(committed) == yaml.safe_load(render_prometheus_config(COMPOSE_TARGETS, ["alerts.yml"]))
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
