"""Start the real action server and Rasa server on loopback, on a fresh seeded database.

The programs and their environment are those of `make run` (onewindow/processes.py), started here as
plain subprocesses on free ports, with their logs in the stack's folder. Each stack has its own random
RASA_JWT_SECRET: its clients reach Rasa's HTTP API through HAProxy's internal listener (`api_url`)
with `api_get`/`api_post`, which sign the header.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple
from urllib.parse import quote

from onewindow.__main__ import seed
from onewindow.infra import haproxy as haproxy_config
from onewindow.infra.api_auth import authorization
from onewindow.infra.local_servers import http_get
from onewindow.processes import (
    Program,
    action_server,
    haproxy,
    loopback,
    rasa_server,
    shared_environment,
    single_machine_proxy,
    telegram_bot,
    write_endpoints,
)
from onewindow.rasa_plugins.events_table import tracker_database_url, tracker_engine
from onewindow.settings import API_SECRET_VARIABLE, PROJECT_ROOT
from onewindow.settings.variables import DATABASE_URL, ONEWINDOW_MODEL

__all__ = ["MODEL", "Stack", "free_port", "http_get", "write_endpoints"]
MODEL = ONEWINDOW_MODEL.read()
STARTUP_SECONDS = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    """A running OneWindow: action server + Rasa server(s) (REST channel and HTTP API).

    The Rasa servers (`instances` of them, on `instance_ports`) run behind HAProxy as `make run` starts them
    (onewindow/processes.py `single_machine_proxy`, its config in the workdir): the channels on `rasa_port`, the HTTP
    API on `api_port`, HAProxy's own metrics on `stats_port`.
    """

    workdir: Path
    instances: int = 1
    lock_store_url: str = ""  # a lock store every instance shares (redis://...); empty: each its own in memory
    database_url: str = ""
    tracker_database_url: str = ""  # the tracker store's database (postgresql://...); empty: an SQLite file in workdir
    endpoints: Path = Path()
    rasa_port: int = 0
    api_port: int = 0
    actions_port: int = 0
    instance_ports: List[int] = field(default_factory=list)
    stats_port: int = 0
    api_secret: str = field(default="", repr=False)
    processes: Dict[str, subprocess.Popen] = field(default_factory=dict)
    commands: Dict[str, Tuple[List[str], Dict[str, str]]] = field(default_factory=dict, repr=False)  # the env holds the secret

    def start(self) -> "Stack":
        if not MODEL.exists():
            raise RuntimeError(f"no trained model at {MODEL}: run `make train` first")
        self.database_url = f"sqlite:///{self.workdir / 'onewindow.db'}"
        seed(self.database_url, demo=True)
        self.rasa_port, self.api_port, self.actions_port = free_port(), free_port(), free_port()
        self.api_secret = secrets.token_urlsafe(32)
        tracker_db = self.tracker_database_url or self.workdir / "tracker.db"  # a database URL given, or SQLite
        endpoints = write_endpoints(self.workdir / "endpoints.yml", tracker_db, self.actions_port, self.lock_store_url)
        self.endpoints = endpoints
        self.tracker_database_url = tracker_database_url(endpoints)
        tracker_engine(url=self.tracker_database_url).dispose()
        self._spawn("action server", action_server(self.actions_port))
        self.instance_ports = [free_port() for _ in range(self.instances)]
        for number, port in enumerate(self.instance_ports, start=1):
            self._spawn(f"rasa server {number}", rasa_server(number, port, MODEL, endpoints))
        self._spawn("haproxy", haproxy(self._haproxy_config()))
        self.wait_ready()
        return self

    def _haproxy_config(self) -> Path:
        """haproxy.cfg in the workdir: the channels and the HTTP API on this stack's ports, over its Rasa servers."""
        self.stats_port = free_port()
        proxy = single_machine_proxy(
            loopback(self.rasa_port), self.api_port, self.stats_port, self.instance_ports, self.lock_store_url
        )
        return haproxy_config.write(self.workdir / "haproxy.cfg", proxy, {**os.environ, API_SECRET_VARIABLE: self.api_secret})

    def _spawn(self, name: str, program: Program, env: Optional[Dict[str, str]] = None) -> None:
        """Start `program` as `name` (its log: `<workdir>/<name>.log`) with the environment every program gets
        (os.environ now, the secret, the endpoints and the database), the program's own, and `env`."""
        shared = {**shared_environment(os.environ, self.api_secret, self.endpoints), DATABASE_URL.name: self.database_url}
        self._start(name, program.command, {**shared, **program.env, **(env or {})})

    def _start(self, name: str, command: List[str], env: Dict[str, str]) -> None:
        handle = open(self.workdir / f"{name.replace(' ', '-')}.log", "ab")
        self.commands[name] = (command, env)
        self.processes[name] = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)

    def spawn_bot(self, name: str, env: Dict[str, str]) -> subprocess.Popen:
        """Start `python -m bot` talking to this stack's Rasa server and database; `env` adds TELEGRAM_*."""
        self._spawn(f"bot {name}", telegram_bot(self.rasa_port), env)
        return self.processes[f"bot {name}"]

    def halt(self, name: str) -> None:
        """Stop one server (to test what happens while it is down)."""
        process = self.processes[name]
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def resume(self, name: str) -> None:
        """Start a halted server again with the same command, and wait until everything is ready."""
        self._start(name, *self.commands[name])
        self.wait_ready()

    def restart(self, name: str) -> None:
        """Stop one server and start it again (what survives a restart is what was stored)."""
        self.halt(name)
        self.resume(name)

    def pids(self) -> Dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    def wait_ready(self) -> None:
        """Wait until every server answers and HAProxy sees every Rasa instance up (after a start or a fault)."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if any(p.poll() is not None for name, p in self.processes.items() if not name.startswith("bot ")):
                raise RuntimeError(f"a server exited during start-up; logs in {self.workdir}")
            urls = [*(f"http://127.0.0.1:{port}" for port in self.instance_ports), self.api_url]
            ready = [http_get(f"{url}/status", headers=authorization(self.api_secret)) for url in urls]
            health = [http_get(f"http://127.0.0.1:{port}/health") for port in (self.actions_port, self.rasa_port)]
            if all(status and b"model_id" in status for status in ready) and all(health) and self._proxy_sees_every_instance():
                return
            time.sleep(0.5)
        raise RuntimeError(f"servers not ready after {STARTUP_SECONDS} s; logs in {self.workdir}")

    def _proxy_sees_every_instance(self) -> bool:
        """HAProxy's health checks have found every Rasa server up (its stats as CSV: pxname, svname, ..., status)."""
        table = http_get(f"http://127.0.0.1:{self.stats_port}/stats;csv")
        rows = [line.split(",") for line in (table or b"").decode().splitlines() if line.startswith("rasa,rasa-")]
        return len(rows) == len(self.instance_ports) and all(row[17] == "UP" for row in rows)

    def say(
        self, sender: str, message: Any, metadata: Optional[Dict[str, Any]] = None, timeout: float = 30.0
    ) -> List[Dict[str, Any]]:
        """Send one message over the REST channel, with the metadata a channel adapter would add; returns the bot's messages."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.rasa_port}/webhooks/rest/webhook",
            data=json.dumps({"sender": sender, "message": message, "metadata": metadata or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read())

    @property
    def api_url(self) -> str:
        """Rasa's HTTP API: HAProxy's internal listener."""
        return f"http://127.0.0.1:{self.api_port}"

    def api_env(self) -> Dict[str, str]:
        """The environment a client of the HTTP API needs besides its URL (the console's RASA_JWT_SECRET)."""
        return {API_SECRET_VARIABLE: self.api_secret}

    def api_get(self, path: str, timeout: float = 10.0) -> Any:
        """GET `path` of the HTTP API with a valid token; the decoded JSON answer (HTTPError on an error status)."""
        return self._api("GET", path, None, timeout)

    def api_post(self, path: str, body: Any, timeout: float = 10.0) -> Any:
        """POST `body` as JSON to `path` of the HTTP API with a valid token; the decoded JSON answer."""
        return self._api("POST", path, json.dumps(body).encode(), timeout)

    def _api(self, method: str, path: str, data: Optional[bytes], timeout: float) -> Any:
        headers = {"Content-Type": "application/json", **authorization(self.api_secret)}
        request = urllib.request.Request(self.api_url + path, data=data, headers=headers, method=method)
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read())

    def tracker(self, sender: str) -> Dict[str, Any]:
        """The conversation's tracker from the HTTP API."""
        return self.api_get(f"/conversations/{quote(sender, safe=':+')}/tracker")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
