"""`make run`: every server of OneWindow under supervisord, which starts again any that stops.

    python -m onewindow.launcher      # what scripts/run.sh runs after the first-admin prompt

Writes `<var>/supervisord.conf` (programs: the action server, the Rasa instances, the router, the
hotline gateway, the staff console, and the Telegram bot when TELEGRAM_TOKEN is set), runs
`supervisord -n` in the foreground (Ctrl-C or SIGTERM stops everything), waits until the servers
answer and prints where to reach them. Each program is restarted when it exits (autorestart) and
given 20 s to stop, more than Sanic's 15 s graceful shutdown; logs go to `<var>/log/<program>.log`.

The HTTP API's secret is RASA_JWT_SECRET, or else `<var>/api-secret` (made once, mode 0600). It reaches
the programs through supervisord's environment: it is in no file but that one, on no command line.

Settings (environment): ONEWINDOW_VAR (default var/), ONEWINDOW_MODEL, RASA_PORT (5005, the channels),
RASA_API_PORT (5100, the HTTP API, loopback), RASA_INSTANCES (2 on two cores or more), RASA_INSTANCE_PORT
(RASA_PORT + 100; instance n listens on it + n), ACTIONS_PORT (5055), VOICE_PORT (9092), VOICE_CONTROL_PORT
(9093), CONSOLE_PORT (5080), RASA_HOST (127.0.0.1: the address of the public port), TELEGRAM_TOKEN.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Tuple

from onewindow.infra.api_auth import authorization
from onewindow.infra.local_servers import http_get, write_endpoints
from onewindow.settings import API_SECRET_VARIABLE, PROJECT_ROOT, checked_api_secret

STARTUP_SECONDS = 180
STOP_SECONDS = 20  # Sanic waits up to 15 s for open requests when it stops
LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Ports:
    rasa: int
    api: int
    actions: int
    instances: Tuple[int, ...]
    voice: int
    voice_control: int
    console: int

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Ports":
        rasa = int(env.get("RASA_PORT", "5005"))
        count = int(env.get("RASA_INSTANCES", "2" if (os.cpu_count() or 1) >= 2 else "1"))
        first = int(env.get("RASA_INSTANCE_PORT", str(rasa + 100)))
        return cls(
            rasa=rasa,
            api=int(env.get("RASA_API_PORT", "5100")),
            actions=int(env.get("ACTIONS_PORT", "5055")),
            instances=tuple(first + n for n in range(1, count + 1)),
            voice=int(env.get("VOICE_PORT", "9092")),
            voice_control=int(env.get("VOICE_CONTROL_PORT", "9093")),
            console=int(env.get("CONSOLE_PORT", "5080")),
        )


@dataclass(frozen=True)
class Program:
    name: str
    command: List[str]
    env: Dict[str, str]
    start_seconds: int = 3  # up this long counts as started; a quicker exit is retried up to 5 times


def api_secret(var: Path, env: Mapping[str, str]) -> Tuple[str, str]:
    """The HTTP API's secret and where it is: RASA_JWT_SECRET, or `var`/api-secret (created once, mode 0600)."""
    if env.get(API_SECRET_VARIABLE):
        return checked_api_secret(env[API_SECRET_VARIABLE]), API_SECRET_VARIABLE
    path = var / "api-secret"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        return checked_api_secret(path.read_text().strip()), str(path)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    return checked_api_secret(path.read_text().strip()), str(path)


def programs(ports: Ports, model: Path, endpoints: Path, env: Mapping[str, str]) -> List[Program]:
    """What `make run` serves; no secret in any of them (it comes from supervisord's environment)."""
    python, rasa = sys.executable, str(Path(sys.executable).with_name("rasa"))
    public = f"http://{LOOPBACK}:{ports.rasa}"
    found = [
        Program("actions", [rasa, "run", "actions", "--actions", "actions", "-p", str(ports.actions)], {"SANIC_HOST": LOOPBACK})
    ]
    found += [
        Program(
            f"rasa-{n}",
            [
                python,
                "-m",
                "onewindow.rasa_plugins.server",
                "run",
                "-m",
                str(model),
                "--enable-api",
                "-i",
                LOOPBACK,
                "-p",
                str(port),
                "--endpoints",
                str(endpoints),
                "--credentials",
                str(PROJECT_ROOT / "credentials.yml"),
            ],
            {},
            start_seconds=10,
        )
        for n, port in enumerate(ports.instances, start=1)
    ]
    upstreams = [arg for port in ports.instances for arg in ("--upstream", f"http://{LOOPBACK}:{port}")]
    found.append(
        Program(
            "router",
            [
                python,
                "-m",
                "onewindow.infra.router",
                "--host",
                env.get("RASA_HOST", LOOPBACK),
                "--port",
                str(ports.rasa),
                "--api-port",
                str(ports.api),
                *upstreams,
            ],
            {},
        )
    )
    found.append(
        Program(
            "voice",
            [python, "-m", "voice", "gateway"],
            {
                "RASA_URL": public,
                "RASA_API_URL": f"http://{LOOPBACK}:{ports.api}",
                "VOICE_PORT": str(ports.voice),
                "VOICE_CONTROL_PORT": str(ports.voice_control),
            },
        )
    )
    found.append(
        Program(
            "console",
            [python, "-m", "console", "serve"],
            {"RASA_URL": f"http://{LOOPBACK}:{ports.api}", "CONSOLE_HOST": LOOPBACK, "CONSOLE_PORT": str(ports.console)},
        )
    )
    if env.get("TELEGRAM_TOKEN"):
        found.append(Program("bot", [python, "-m", "bot"], {"RASA_URL": public}))
    return found


def quoted(value: str) -> str:
    """A value for supervisord's configuration, which expands %(name)s."""
    return value.replace("%", "%%")


def supervisord_config(var: Path, found: List[Program]) -> str:
    logs = var / "log"
    lines = [
        "[supervisord]",
        "nodaemon=true",
        f"logfile={quoted(str(logs / 'supervisord.log'))}",
        f"pidfile={quoted(str(var / 'supervisord.pid'))}",
        f"childlogdir={quoted(str(logs))}",
        f"directory={quoted(str(PROJECT_ROOT))}",
        "",
        "[unix_http_server]",
        f"file={quoted(str(var / 'supervisor.sock'))}",
        "chmod=0700",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{quoted(str(var / 'supervisor.sock'))}",
    ]
    for program in found:
        environment = ",".join(f'{key}="{quoted(value)}"' for key, value in program.env.items())
        lines += [
            "",
            f"[program:{program.name}]",
            f"command={quoted(subprocess.list2cmdline(program.command))}",
            f"directory={quoted(str(PROJECT_ROOT))}",
            "autostart=true",
            "autorestart=true",
            f"startsecs={program.start_seconds}",
            "startretries=5",
            f"stopwaitsecs={STOP_SECONDS}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={quoted(str(logs / (program.name + '.log')))}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=3",
        ] + ([f"environment={environment}"] if environment else [])
    return "\n".join(lines) + "\n"


def ready_checks(ports: Ports) -> Dict[str, Tuple[str, bool]]:
    """What must answer before OneWindow counts as running: name -> (URL, whether it needs the API token)."""
    checks = {
        "action server": (f"http://{LOOPBACK}:{ports.actions}/health", False),
        "router": (f"http://{LOOPBACK}:{ports.rasa}/health", False),
        "HTTP API": (f"http://{LOOPBACK}:{ports.api}/status", True),
        "hotline gateway": (f"http://{LOOPBACK}:{ports.voice_control}/health", False),
        "staff console": (f"http://{LOOPBACK}:{ports.console}/login", False),
    }
    checks.update({f"Rasa instance {n}": (f"http://{LOOPBACK}:{port}/status", True) for n, port in enumerate(ports.instances, 1)})
    return checks


def wait_ready(checks: Dict[str, Tuple[str, bool]], secret: str, supervisor: subprocess.Popen) -> List[str]:
    """Waits until every check answers (or STARTUP_SECONDS pass); returns those that did not."""
    waiting = dict(checks)
    deadline = time.monotonic() + STARTUP_SECONDS
    while waiting and time.monotonic() < deadline and supervisor.poll() is None:
        for name, (url, signed) in list(waiting.items()):
            if http_get(url, headers=authorization(secret) if signed else None):
                del waiting[name]
        time.sleep(0.5)
    return sorted(waiting)


def shown(path: Path) -> str:
    """`path` as printed: relative to the project when inside it (the summary's commands run from there)."""
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def summary(ports: Ports, var: Path, secret_place: str, env: Mapping[str, str], instances: int) -> str:
    logs, config = shown(var / "log"), shown(var / "supervisord.conf")
    if env.get("TELEGRAM_TOKEN"):
        mode = f"webhook at {env['TELEGRAM_WEBHOOK_URL']}" if env.get("TELEGRAM_WEBHOOK_URL") else "long polling"
        telegram = f"running ({mode}; log: {logs}/bot.log)"
    else:
        telegram = "not started: set TELEGRAM_TOKEN (a token from @BotFather) to chat in Telegram; see bot/README.md"
    if not env.get("VOSK_MODEL_PATH"):
        telegram += "\n                 voice notes: set VOSK_MODEL_PATH (scripts/get-vosk-model.sh downloads the English model)"
    database = "DATABASE_URL (" if env.get("DATABASE_URL") else "the embedded default (SQLite file var/onewindow.db, "
    host = env.get("RASA_HOST", LOOPBACK)
    if secret_place != API_SECRET_VARIABLE:
        secret_place = shown(Path(secret_place))
    from_file = "" if secret_place == API_SECRET_VARIABLE else f"RASA_JWT_SECRET=$(cat {secret_place}) "
    token_command = f"{from_file}.venv/bin/python -m onewindow.infra.api_auth"
    return f"""
OneWindow is running on {database}{instances} Rasa instance(s)).
  REST channel:  curl -s http://{host}:{ports.rasa}/webhooks/rest/webhook \\
                   -d '{{"sender": "me", "message": "I just had a baby"}}'
                 (this port serves the channels, /webhooks/..., and /health only)
  HTTP API:      http://{LOOPBACK}:{ports.api}/status  (Rasa HTTP API, loopback only; with a token signed with the secret in {secret_place}:)
                 curl -H "Authorization: Bearer $({token_command})" http://{LOOPBACK}:{ports.api}/status
  Action server: http://{LOOPBACK}:{ports.actions}/health  (no authentication: keep it on loopback)
  Telegram bot:  {telegram}
  Hotline:       AudioSocket on {LOOPBACK}:{ports.voice} (control: http://{LOOPBACK}:{ports.voice_control}/health; log: {logs}/voice.log)
                 Asterisk dialplan: see voice/README.md ("Connect Asterisk"); kiosk: .venv/bin/python -m voice kiosk
  Staff console: http://{LOOPBACK}:{ports.console}/  (log: {logs}/console.log; accounts: .venv/bin/python -m console create-user --help)
  Supervisor:    a server that stops is started again; .venv/bin/supervisorctl -c {config} status  (logs: {logs}/)
  Terminal chat: make shell   (in another terminal, on other ports: ACTIONS_PORT=5056 RASA_PORT=5006 make shell)
Press Ctrl-C to stop."""


def main() -> int:
    env = dict(os.environ)
    var = Path(env.get("ONEWINDOW_VAR", PROJECT_ROOT / "var")).resolve()
    (var / "log").mkdir(parents=True, exist_ok=True)
    ports = Ports.from_env(env)
    model = Path(env.get("ONEWINDOW_MODEL", PROJECT_ROOT / "models" / "onewindow.tar.gz")).resolve()
    secret, secret_place = api_secret(var, env)
    endpoints = write_endpoints(var / "endpoints.yml", var / "tracker.db", ports.actions)
    config = var / "supervisord.conf"
    config.write_text(supervisord_config(var, programs(ports, model, endpoints, env)))
    child_env = {**env, API_SECRET_VARIABLE: secret, "PYTHONPATH": str(PROJECT_ROOT), "RASA_ENDPOINTS": str(endpoints)}
    print(
        f"==> starting OneWindow under supervisord ({config}; logs: {var / 'log'}/); loading the model takes a few seconds",
        flush=True,
    )
    supervisor = subprocess.Popen(
        [str(Path(sys.executable).with_name("supervisord")), "-n", "-c", str(config)], cwd=PROJECT_ROOT, env=child_env
    )

    def stop(signal_number: int, _frame: object) -> None:
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    missing = wait_ready(ready_checks(ports), secret, supervisor)
    if supervisor.poll() is None:
        if missing:
            print(f"==> not answering after {STARTUP_SECONDS} s: {', '.join(missing)}; see {var / 'log'}/", flush=True)
        print(summary(ports, var, secret_place, env, len(ports.instances)), flush=True)
    return supervisor.wait()


if __name__ == "__main__":
    sys.exit(main())
