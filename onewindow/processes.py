"""How each OneWindow program is started: its command line, its environment and the endpoints.yml it reads.

`make run` (onewindow/launcher.py, under supervisord), `make shell` (the same launcher) and the harness of
the tests and benchmarks (harness/stack.py, plain subprocesses) all start their programs from here. A
program's `env` holds only what differs from the environment every program shares (`shared_environment`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import yaml
from sqlalchemy.engine import make_url

from onewindow.infra import haproxy as haproxy_config
from onewindow.settings import API_SECRET_VARIABLE, LOOPBACK, PROJECT_ROOT
from onewindow.settings import variables as setting

PYTHON = sys.executable
RASA = str(Path(sys.executable).with_name("rasa"))
CREDENTIALS = PROJECT_ROOT / "credentials.yml"


@dataclass(frozen=True)
class Ports:
    """Where `make run`'s servers listen (all on loopback but HAProxy's public port, on RASA_HOST)."""

    rasa: int
    api: int
    actions: int
    instances: Tuple[int, ...]
    voice: int
    voice_control: int
    console: int
    proxy_stats: int

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Ports":
        first = setting.RASA_INSTANCE_PORT.read(env)
        return cls(
            rasa=setting.RASA_PORT.read(env),
            api=setting.RASA_API_PORT.read(env),
            actions=setting.ACTIONS_PORT.read(env),
            instances=tuple(first + n for n in range(1, setting.RASA_INSTANCES.read(env) + 1)),
            voice=setting.VOICE_PORT.read(env),
            voice_control=setting.VOICE_CONTROL_PORT.read(env),
            console=setting.CONSOLE_PORT.read(env),
            proxy_stats=setting.HAPROXY_STATS_PORT.read(env),
        )


@dataclass(frozen=True)
class Program:
    name: str
    command: List[str]
    env: Dict[str, str] = field(default_factory=dict)  # added to the shared environment
    start_seconds: int = 3  # up this long counts as started (supervisord); a quicker exit is retried up to 5 times


def local_url(port: int) -> str:
    return f"http://{LOOPBACK}:{port}"


def write_endpoints(
    path: Path, tracker_db: Union[Path, str], actions_port: Optional[int] = None, lock_store_url: str = ""
) -> Path:
    """The project's endpoints.yml, written to `path`, with the tracker store at `tracker_db` (an SQLite file, or a
    database URL such as postgresql://onewindow@db:5432/tracker), the action server on `actions_port` (or a URL)
    and, with `lock_store_url` (redis://... or postgresql://...), the lock store every Rasa instance shares
    (onewindow/rasa_plugins/lock_store.py); without it each instance has Rasa's in-memory lock store."""
    endpoints = yaml.safe_load((PROJECT_ROOT / "endpoints.yml").read_text())
    endpoints["tracker_store"] = tracker_store_section(endpoints["tracker_store"], tracker_db)
    if actions_port:
        endpoints["action_endpoint"]["url"] = f"{local_url(actions_port)}/webhook"
    if lock_store_url:
        endpoints["lock_store"] = {"type": LOCK_STORE_TYPE, "url": lock_store_url}
    path.write_text(yaml.safe_dump(endpoints, sort_keys=False))
    return path


LOCK_STORE_TYPE = "onewindow.rasa_plugins.lock_store.OrderedLockStore"


def tracker_store_section(section: Mapping[str, object], tracker_db: Union[Path, str]) -> Dict[str, object]:
    """endpoints.yml's tracker_store for an SQLite file or a database URL (the keys of Rasa's SQLTrackerStore)."""
    if isinstance(tracker_db, Path) or "://" not in tracker_db:
        return {**section, "dialect": "sqlite", "db": str(tracker_db)}
    url = make_url(tracker_db)
    keys = {"url": url.host, "port": url.port, "db": url.database, "username": url.username, "password": url.password}
    return {"type": section["type"], "dialect": url.get_backend_name(), **{k: v for k, v in keys.items() if v is not None}}


def shared_environment(base: Mapping[str, str], api_secret: str, endpoints: Path) -> Dict[str, str]:
    """What every program gets: `base`, the HTTP API's secret (in no command line) and Rasa's endpoints.yml."""
    return {**base, API_SECRET_VARIABLE: api_secret, setting.RASA_ENDPOINTS.name: str(endpoints)}


def action_server(port: int) -> Program:
    """rasa-sdk's action server with /health/live, /health/ready and /metrics (onewindow/infra/action_server.py)."""
    command = [PYTHON, "-m", "onewindow.infra.action_server", "--actions", "actions", "-p", str(port), "--host", LOOPBACK]
    return Program("actions", command)


def rasa_server(number: int, port: int, model: Path, endpoints: Path) -> Program:
    """Rasa server `number` (from 1) with its HTTP API, on loopback; HAProxy is in front of it."""
    command = [PYTHON, "-m", "onewindow.rasa_plugins.server", "run", "-m", str(model), "--enable-api", "-i", LOOPBACK]
    command += ["-p", str(port), "--endpoints", str(endpoints), "--credentials", str(CREDENTIALS)]
    return Program(f"rasa-{number}", command, start_seconds=10)


def haproxy(config: Path) -> Program:
    """HAProxy in the foreground on `config` (onewindow/infra/haproxy.py renders it); it reads RASA_JWT_SECRET
    from the shared environment to check the HTTP API's tokens."""
    return Program("haproxy", haproxy_config.command(config))


def loopback(port: int) -> haproxy_config.Address:
    return haproxy_config.Address(LOOPBACK, port)


def single_machine_proxy(
    public: haproxy_config.Address, api_port: int, stats_port: int, instance_ports: Sequence[int], lock_store_url: str
) -> haproxy_config.Proxy:
    """HAProxy as `make run` and the harness put it in front of the Rasa servers on this machine: the channels on
    `public`, the HTTP API and HAProxy's stats on loopback; without a shared lock store (`lock_store_url` empty)
    each conversation stays on one instance, where Rasa's in-memory lock orders its messages."""
    return haproxy_config.onewindow_proxy(
        public=public,
        api=loopback(api_port),
        rasa=[loopback(port) for port in instance_ports],
        stats=loopback(stats_port),
        messages_per_instance=setting.ONEWINDOW_MESSAGES_PER_INSTANCE.read(),
        sticky=not lock_store_url,
    )


def voice_gateway(rasa_port: int, api_port: int, audio_port: int, control_port: int) -> Program:
    """The hotline gateway: AudioSocket on `audio_port`, /health and /metrics on `control_port` (loopback)."""
    env = {
        setting.RASA_URL.name: local_url(rasa_port),
        setting.RASA_API_URL.name: local_url(api_port),
        setting.VOICE_PORT.name: str(audio_port),
        setting.VOICE_CONTROL_PORT.name: str(control_port),
    }
    return Program("voice", [PYTHON, "-m", "voice", "gateway"], env)


def staff_console(port: int, api_port: int) -> Program:
    """The staff console on loopback:`port`, talking to Rasa's HTTP API on `api_port`."""
    env = {
        setting.CONSOLE_RASA_URL.name: local_url(api_port),
        setting.CONSOLE_HOST.name: LOOPBACK,
        setting.CONSOLE_PORT.name: str(port),
    }
    return Program("console", [PYTHON, "-m", "console", "serve"], env)


def telegram_bot(rasa_port: int) -> Program:
    return Program("bot", [PYTHON, "-m", "bot"], {setting.RASA_URL.name: local_url(rasa_port)})


def rasa_shell(model: Path, endpoints: Path, port: int) -> Program:
    """`rasa shell`: chat in the terminal (`make shell`)."""
    return Program("shell", [RASA, "shell", "-m", str(model), "--endpoints", str(endpoints), "-p", str(port)])


def served_programs(ports: Ports, model: Path, endpoints: Path, env: Mapping[str, str], proxy: Path) -> List[Program]:
    """What `make run` serves, HAProxy on its config at `proxy`: the Telegram bot only with TELEGRAM_TOKEN; no secret
    in any of them."""
    found = [action_server(ports.actions)]
    found += [rasa_server(n, port, model, endpoints) for n, port in enumerate(ports.instances, start=1)]
    found.append(haproxy(proxy))
    found += [voice_gateway(ports.rasa, ports.api, ports.voice, ports.voice_control), staff_console(ports.console, ports.api)]
    if setting.TELEGRAM_TOKEN.read(env):
        found.append(telegram_bot(ports.rasa))
    return found
