"""Start the real action server and Rasa server on loopback, on a fresh seeded database."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from onewindow.__main__ import seed
from onewindow.settings import PROJECT_ROOT
from onewindow.tracker_events import tracker_database_url, tracker_engine

MODEL = Path(os.environ.get("ONEWINDOW_MODEL", PROJECT_ROOT / "models" / "onewindow.tar.gz"))
STARTUP_SECONDS = 180


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_endpoints(path: Path, tracker_db: Path, actions_port: Optional[int] = None) -> Path:
    """The project's endpoints.yml with its SQLite tracker store at `tracker_db` (and the action server on `actions_port`)."""
    text = (PROJECT_ROOT / "endpoints.yml").read_text().replace("db: var/tracker.db", f"db: {tracker_db}")
    path.write_text(text.replace("localhost:5055", f"127.0.0.1:{actions_port}") if actions_port else text)
    return path


def http_get(url: str, timeout: float = 2.0) -> Optional[bytes]:
    """The body at `url`, or None when nothing answers there (yet)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.read()
    except (urllib.error.URLError, ConnectionError, OSError):
        return None


@dataclass
class Stack:
    """A running OneWindow: action server + Rasa server(s) (REST channel and HTTP API).

    The Rasa servers (`instances` of them) run behind the router (onewindow/router.py), as `make run` starts them.
    """

    workdir: Path
    instances: int = 1
    database_url: str = ""
    tracker_database_url: str = ""
    endpoints: Path = Path()
    rasa_port: int = 0
    actions_port: int = 0
    processes: Dict[str, subprocess.Popen] = field(default_factory=dict)
    commands: Dict[str, Tuple[List[str], Dict[str, str]]] = field(default_factory=dict)

    def start(self) -> "Stack":
        if not MODEL.exists():
            raise RuntimeError(f"no trained model at {MODEL}: run `make train` first")
        self.database_url = f"sqlite:///{self.workdir / 'onewindow.db'}"
        seed(self.database_url, demo=True)
        self.rasa_port, self.actions_port = free_port(), free_port()
        endpoints = write_endpoints(self.workdir / "endpoints.yml", self.workdir / "tracker.db", self.actions_port)
        self.endpoints = endpoints
        self.tracker_database_url = tracker_database_url(endpoints)
        tracker_engine(url=self.tracker_database_url).dispose()
        env = {**os.environ, "DATABASE_URL": self.database_url, "PYTHONPATH": str(PROJECT_ROOT), "SANIC_HOST": "127.0.0.1"}
        rasa = str(Path(sys.executable).with_name("rasa"))
        self._spawn("action server", [rasa, "run", "actions", "--actions", "actions", "-p", str(self.actions_port)], env)
        ports = [free_port() for _ in range(self.instances)]
        for number, port in enumerate(ports, start=1):
            self._spawn(
                f"rasa server {number}",
                [sys.executable, "-m", "onewindow.rasa_server", "run", "-m", str(MODEL), "--enable-api",
                 "-i", "127.0.0.1", "-p", str(port), "--endpoints", str(endpoints),
                 "--credentials", str(PROJECT_ROOT / "credentials.yml")],
                env,
            )
        upstreams = [arg for port in ports for arg in ("--upstream", f"http://127.0.0.1:{port}")]
        self._spawn("router", [sys.executable, "-m", "onewindow.router", "--port", str(self.rasa_port), *upstreams], env)
        self._ports = ports
        self._wait_ready()
        return self

    def _spawn(self, name: str, command: List[str], env: Dict[str, str]) -> None:
        handle = open(self.workdir / f"{name.replace(' ', '-')}.log", "ab")
        self.commands[name] = (command, env)
        self.processes[name] = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)

    def spawn_bot(self, name: str, env: Dict[str, str]) -> subprocess.Popen:
        """Start `python -m bot` talking to this stack's Rasa server and database; `env` adds TELEGRAM_*."""
        base = {**os.environ, "DATABASE_URL": self.database_url, "PYTHONPATH": str(PROJECT_ROOT),
                "RASA_URL": f"http://127.0.0.1:{self.rasa_port}", "RASA_ENDPOINTS": str(self.endpoints)}
        self._spawn(f"bot {name}", [sys.executable, "-m", "bot"], {**base, **env})
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
        self._spawn(name, *self.commands[name])
        self._wait_ready()

    def restart(self, name: str) -> None:
        """Stop one server and start it again (what survives a restart is what was stored)."""
        self.halt(name)
        self.resume(name)

    def pids(self) -> Dict[str, int]:
        return {name: process.pid for name, process in self.processes.items()}

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if any(p.poll() is not None for name, p in self.processes.items() if not name.startswith("bot ")):
                raise RuntimeError(f"a server exited during start-up; logs in {self.workdir}")
            ready = [http_get(f"http://127.0.0.1:{port}/status") for port in [*self._ports, self.rasa_port]]
            health = http_get(f"http://127.0.0.1:{self.actions_port}/health")
            if all(status and b"model_id" in status for status in ready) and health:
                return
            time.sleep(0.5)
        raise RuntimeError(f"servers not ready after {STARTUP_SECONDS} s; logs in {self.workdir}")

    def say(self, sender: str, message: Any, timeout: float = 30.0) -> List[Dict[str, Any]]:
        """Send one message over the REST channel; returns the bot's messages."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.rasa_port}/webhooks/rest/webhook",
            data=json.dumps({"sender": sender, "message": message}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return json.loads(answer.read())

    def tracker(self, sender: str) -> Dict[str, Any]:
        return json.loads(http_get(f"http://127.0.0.1:{self.rasa_port}/conversations/{sender}/tracker", timeout=10) or b"{}")

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
