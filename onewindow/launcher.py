"""`make run`: every server of OneWindow under supervisord, which starts again any that stops; `make shell`.

    python -m onewindow.launcher            # what scripts/run.sh runs after the first-admin prompt
    python -m onewindow.launcher --shell    # `make shell`: the action server, and `rasa shell` in this terminal
    python -m onewindow.launcher --dry-run  # print the supervisord configuration `make run` would use
    python -m onewindow.launcher --prod     # `make run-prod`: the production topology (onewindow/production.py)

Writes `<var>/haproxy.cfg` (onewindow/infra/haproxy.py, checked with `haproxy -c`) and `<var>/supervisord.conf`
(programs: the action server, the Rasa instances, HAProxy in front of them, the hotline gateway, the staff
console, and the Telegram bot when TELEGRAM_TOKEN is set; their commands come from onewindow/processes.py), runs `supervisord -n` in the foreground (Ctrl-C or SIGTERM stops
everything), waits until the servers answer and prints where to reach them. Each program is restarted
when it exits (autorestart) and given 20 s to stop, more than Sanic's 15 s graceful shutdown; logs go
to `<var>/log/<program>.log`.

The HTTP API's secret is RASA_JWT_SECRET, or else `<var>/api-secret` (made once, mode 0600). It reaches
the programs through supervisord's environment: it is in no file but that one, on no command line.

Settings (docs/configuration.md): ONEWINDOW_VAR, ONEWINDOW_MODEL, RASA_PORT, RASA_API_PORT, RASA_INSTANCES,
RASA_INSTANCE_PORT, ACTIONS_PORT, HAPROXY_STATS_PORT, VOICE_PORT, VOICE_CONTROL_PORT, CONSOLE_PORT, RASA_HOST,
TELEGRAM_TOKEN, TRACKER_DATABASE_URL, LOCK_STORE_URL.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Tuple

from onewindow import production
from onewindow.infra import haproxy as haproxy_config
from onewindow.infra.api_auth import authorization
from onewindow.infra.local_servers import http_get
from onewindow.processes import (
    Ports,
    Program,
    action_server,
    local_url,
    rasa_shell,
    served_programs,
    shared_environment,
    single_machine_proxy,
    write_endpoints,
)
from onewindow.settings import API_SECRET_VARIABLE, LOOPBACK, PROJECT_ROOT, checked_api_secret
from onewindow.settings import variables as setting

STARTUP_SECONDS = 180
STOP_SECONDS = 20  # Sanic waits up to 15 s for open requests when it stops


def api_secret(var: Path, env: Mapping[str, str]) -> Tuple[str, str]:
    """The HTTP API's secret and where it is: RASA_JWT_SECRET, or `var`/api-secret (created once, mode 0600)."""
    if setting.RASA_JWT_SECRET.given(env):
        return checked_api_secret(setting.RASA_JWT_SECRET.read(env)), API_SECRET_VARIABLE
    path = var / "api-secret"
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        os.chmod(path, 0o600)
        return checked_api_secret(path.read_text().strip()), str(path)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_urlsafe(32) + "\n")
    return checked_api_secret(path.read_text().strip()), str(path)


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
        "action server": (local_url(ports.actions) + "/health", False),
        "hotline gateway": (local_url(ports.voice_control) + "/health", False),
        "staff console": (local_url(ports.console) + "/login", False),
    }
    checks.update({f"Rasa instance {n}": (local_url(port) + "/status", True) for n, port in enumerate(ports.instances, 1)})
    checks["HAProxy"] = (local_url(ports.proxy_stats) + "/health/ready", False)
    checks["HTTP API"] = (local_url(ports.api) + "/status", True)
    return checks


def wait_ready(checks: Dict[str, Tuple[str, bool]], secret: str, supervisor: subprocess.Popen) -> List[str]:
    """Waits until every check answers, one after the other in their order (or STARTUP_SECONDS pass); returns those
    that did not. The proxy comes last: it counts its servers up from the start, until its first health checks."""
    waiting = list(checks.items())
    deadline = time.monotonic() + STARTUP_SECONDS
    while waiting and time.monotonic() < deadline and supervisor.poll() is None:
        _, (url, signed) = waiting[0]
        if http_get(url, headers=authorization(secret) if signed else None):
            waiting.pop(0)
        else:
            time.sleep(0.5)
    return sorted(name for name, _ in waiting)


def shown(path: Path) -> str:
    """`path` as printed: relative to the project when inside it (the summary's commands run from there)."""
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else str(path)


def summary(ports: Ports, var: Path, secret_place: str, env: Mapping[str, str], instances: int) -> str:
    logs, config = shown(var / "log"), shown(var / "supervisord.conf")
    if setting.TELEGRAM_TOKEN.given(env):
        webhook = setting.TELEGRAM_WEBHOOK_URL.read(env)
        mode = f"webhook at {webhook}" if webhook else "long polling"
        telegram = f"running ({mode}; log: {logs}/bot.log)"
    else:
        telegram = "not started: set TELEGRAM_TOKEN (a token from @BotFather) to chat in Telegram; see bot/README.md"
    if not setting.VOSK_MODEL_PATH.given(env):
        telegram += "\n                 voice notes: set VOSK_MODEL_PATH (scripts/get-vosk-model.sh downloads the English model)"
    database = "DATABASE_URL (" if setting.DATABASE_URL.given(env) else "the embedded default (SQLite file var/onewindow.db, "
    host = setting.RASA_HOST.read(env)
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
  HAProxy:       http://{LOOPBACK}:{ports.proxy_stats}/stats  (in front of the Rasa instances; its metrics: /metrics; config: {shown(var / "haproxy.cfg")})
  Action server: http://{LOOPBACK}:{ports.actions}/health  (no authentication: keep it on loopback)
  Telegram bot:  {telegram}
  Hotline:       AudioSocket on {LOOPBACK}:{ports.voice} (control: http://{LOOPBACK}:{ports.voice_control}/health; log: {logs}/voice.log)
                 Asterisk dialplan: see docs/hotline.md ("Connect Asterisk"); kiosk: .venv/bin/python -m voice kiosk
  Staff console: http://{LOOPBACK}:{ports.console}/  (log: {logs}/console.log; accounts: .venv/bin/python -m console create-user --help)
  Supervisor:    a server that stops is started again; .venv/bin/supervisorctl -c {config} status  (logs: {logs}/)
  Terminal chat: make shell   (in another terminal, on other ports: ACTIONS_PORT=5056 RASA_PORT=5006 make shell)
Press Ctrl-C to stop."""


def serve(env: Dict[str, str], prod: bool = False) -> int:
    """`make run` (or with `prod`, `make run-prod`: onewindow/production.py): everything under supervisord until
    Ctrl-C or SIGTERM; supervisord's exit status."""
    var = setting.ONEWINDOW_VAR.read(env).resolve()
    (var / "log").mkdir(parents=True, exist_ok=True)
    secret, secret_place = api_secret(var, env)
    if prod:
        plan = production.prepare(var, env, shared_environment(env, secret, var / "endpoints.yml"))
        programs, checks, env, text = plan.programs, plan.checks, {**env, **plan.env}, plan.summary
    else:
        programs, checks, text = single_machine(var, env, secret, secret_place)
    config = var / "supervisord.conf"
    config.write_text(supervisord_config(var, programs))
    print(
        f"==> starting OneWindow under supervisord ({config}; logs: {var / 'log'}/); loading the model takes a few seconds",
        flush=True,
    )
    supervisor = subprocess.Popen(
        [str(Path(sys.executable).with_name("supervisord")), "-n", "-c", str(config)],
        cwd=PROJECT_ROOT,
        env=shared_environment(env, secret, var / "endpoints.yml"),
    )

    def stop(signal_number: int, _frame: object) -> None:
        if supervisor.poll() is None:
            supervisor.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    missing = wait_ready(checks, secret, supervisor)
    if supervisor.poll() is None:
        if missing:
            print(f"==> not answering after {STARTUP_SECONDS} s: {', '.join(missing)}; see {var / 'log'}/", flush=True)
        print(text, flush=True)
    return supervisor.wait()


def single_machine(
    var: Path, env: Dict[str, str], secret: str, secret_place: str
) -> Tuple[List[Program], Dict[str, Tuple[str, bool]], str]:
    """`make run`'s programs, readiness checks and summary; writes its endpoints.yml and haproxy.cfg."""
    ports = Ports.from_env(env)
    lock_store = setting.LOCK_STORE_URL.read(env) or ""
    endpoints = write_endpoints(
        var / "endpoints.yml", setting.TRACKER_DATABASE_URL.read(env) or var / "tracker.db", ports.actions, lock_store
    )
    public = haproxy_config.Address(setting.RASA_HOST.read(env), ports.rasa)
    proxy = haproxy_config.write(
        var / "haproxy.cfg",
        single_machine_proxy(public, ports.api, ports.proxy_stats, ports.instances, lock_store),
        shared_environment(env, secret, endpoints),
    )
    programs = served_programs(ports, setting.ONEWINDOW_MODEL.read(env).resolve(), endpoints, env, proxy)
    return programs, ready_checks(ports), summary(ports, var, secret_place, env, len(ports.instances))


def shell(env: Dict[str, str]) -> int:
    """`make shell`: the action server in the background (log: <var>/log/actions.log), `rasa shell` in this terminal."""
    var = setting.ONEWINDOW_VAR.read(env).resolve()
    (var / "log").mkdir(parents=True, exist_ok=True)
    actions_port = setting.ACTIONS_PORT.read(env)
    descriptor, name = tempfile.mkstemp(prefix="shell-endpoints-", suffix=".yml", dir=var)
    os.close(descriptor)
    endpoints = write_endpoints(Path(name), var / "tracker.db", actions_port)
    actions = action_server(actions_port)
    print(f"==> starting the action server on {LOOPBACK}:{actions_port} (log: {shown(var / 'log' / 'actions.log')})", flush=True)
    with open(var / "log" / "actions.log", "ab") as log:
        server = subprocess.Popen(
            actions.command,
            cwd=PROJECT_ROOT,
            env={**env, **actions.env},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C is for the chat; the action server is stopped below
        )
    chat = rasa_shell(setting.ONEWINDOW_MODEL.read(env), endpoints, setting.RASA_PORT.read(env))
    try:
        return subprocess.run(chat.command, cwd=PROJECT_ROOT, env={**env, **chat.env}).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        server.terminate()
        try:
            server.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
        endpoints.unlink(missing_ok=True)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m onewindow.launcher", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--shell", action="store_true", help="`make shell`: chat with the assistant in this terminal")
    parser.add_argument("--dry-run", action="store_true", help="print the supervisord configuration and exit (writes nothing)")
    parser.add_argument("--prod", action="store_true", help="`make run-prod`: the production topology (onewindow/production.py)")
    args = parser.parse_args(argv)
    env = dict(os.environ)
    if args.shell:
        return shell(env)
    if args.dry_run:
        var, ports = setting.ONEWINDOW_VAR.read(env).resolve(), Ports.from_env(env)
        model = setting.ONEWINDOW_MODEL.read(env).resolve()
        if args.prod:
            served = production.prepare(var, env, env, dry_run=True).programs
        else:
            served = served_programs(ports, model, var / "endpoints.yml", env, var / "haproxy.cfg")
        print(supervisord_config(var, served), end="")
        return 0
    return serve(env, args.prod)


if __name__ == "__main__":
    sys.exit(main())
