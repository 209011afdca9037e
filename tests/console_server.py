"""The staff console for tests: started for real as `python -m console serve` on a free loopback port.

with RunningConsole(database_url, workdir) as console:          # migrates the database first
    create_staff_user(database_url, "ann", "agent", "a long password")
    client = logged_in_client(console.base_url, "ann", "a long password")
    client.get("/queue"); client.post("/logout", data={"csrf_token": client.csrf_token})
    run_console(console, "purge", "--older-than-days", "30")          # a command line one
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import httpx

from console.users import create_user
from harness.stack import free_port, http_get, write_endpoints
from onewindow.__main__ import migrate
from onewindow.settings import API_SECRET_VARIABLE, PROJECT_ROOT
from onewindow.storage.db import make_engine

STARTUP_SECONDS = 90
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


class RunningConsole:
    """`python -m console serve` on DATABASE_URL=`database_url`, with Rasa's tracker store from `endpoints`
    (by default a fresh SQLite file in `workdir`) and Rasa's HTTP API at `rasa_url`."""

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        endpoints: Optional[Path] = None,
        rasa_url: str = "http://127.0.0.1:9",
        env: Optional[Dict[str, str]] = None,
    ) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.endpoints = endpoints or write_endpoints(workdir / "console-endpoints.yml", workdir / "tracker.db")
        self.rasa_url = rasa_url
        self.extra_env = env or {}
        self.port = 0
        self.process: Optional[subprocess.Popen] = None
        self.log_path = workdir / "console.log"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "RunningConsole":
        migrate(self.database_url)
        self.port = free_port()
        env = {
            **os.environ,
            "PYTHONPATH": str(PROJECT_ROOT),
            "DATABASE_URL": self.database_url,
            "RASA_ENDPOINTS": str(self.endpoints),
            "RASA_URL": self.rasa_url,
            API_SECRET_VARIABLE: secrets.token_urlsafe(32),  # a stack's own secret comes in `env` (Stack.api_env)
            **self.extra_env,
        }
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "console", "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the console exited during start-up; log: {self.log_path}")
            if http_get(f"{self.base_url}/login"):
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"the console did not answer within {STARTUP_SECONDS} s; log: {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> "RunningConsole":
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def run_console(console: RunningConsole, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    """`python -m console *args` (a command line one, not serve) on the console's databases."""
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "DATABASE_URL": console.database_url,
        "RASA_ENDPOINTS": str(console.endpoints),
    }
    return subprocess.run(
        [sys.executable, "-m", "console", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=PROJECT_ROOT,
        timeout=120,
    )


def create_staff_user(database_url: str, username: str, role: str, password: str) -> None:
    engine = make_engine(database_url)
    try:
        create_user(engine, username, role, password)
    finally:
        engine.dispose()


def csrf_token_in(page: str) -> str:
    """The CSRF token of the first form on an HTML page."""
    match = CSRF_FIELD.search(page)
    if match is None:
        raise AssertionError("no csrf_token field on the page")
    return match.group(1)


class StaffClient(httpx.Client):
    """An httpx.Client for the console, logged in as `username`; `csrf_token` is its session's CSRF token."""

    def __init__(self, base_url: str, username: str) -> None:
        super().__init__(base_url=base_url, timeout=30)
        self.username = username
        self.csrf_token = ""


def logged_in_client(base_url: str, username: str, password: str, landing: str = "/queue") -> StaffClient:
    """A StaffClient with a session cookie; its CSRF token is read from the page `landing`, any page the user may see."""
    client = StaffClient(base_url, username)
    login_token = csrf_token_in(client.get("/login").text)
    answer = client.post("/login", data={"csrf_token": login_token, "username": username, "password": password, "next": landing})
    if answer.status_code != 303:
        client.close()
        raise AssertionError(f"login as {username} failed: {answer.status_code}")
    client.csrf_token = csrf_token_in(client.get(landing).text)
    return client


@dataclass(frozen=True)
class ConsoleRoute:
    method: str
    path: str  # with sample values for its parameters, e.g. /handoffs/HO-100000/claim
    access: str  # "public", "agent", "supervisor" or "admin" (what console.auth marked it with)
    pattern: str = ""  # the path with its parameters, e.g. /handoffs/<reference>/claim


SAMPLE_VALUES = {"int": "1", "str": "HO-100000"}


def console_routes(console: RunningConsole) -> List[ConsoleRoute]:
    """Every route of the console application (built here in-process with the same settings), static files excepted."""
    from console.app import create_app
    from console.settings import ConsoleSettings

    settings = ConsoleSettings(
        host="127.0.0.1",
        port=console.port,
        database_url=console.database_url,
        endpoints=console.endpoints,
        rasa_url=console.rasa_url,
        rasa_api_secret=secrets.token_urlsafe(32),
        session_minutes=60,
        secure_cookies=False,
    )
    app = create_app(settings)
    routes: List[ConsoleRoute] = []
    for route in app.router.routes:
        if getattr(route.ctx, "static", False):
            continue
        path = pattern = "/" + route.path
        for param in route._params.values():  # sanic-routing keeps the parameter list private
            path = re.sub(rf"<{param.name}(:[^>]*)?>", SAMPLE_VALUES.get(param.label, "x"), path)
            pattern = re.sub(rf"<{param.name}(:[^>]*)?>", f"<{param.name}>", pattern)
        routes.extend(
            ConsoleRoute(method, path, getattr(route.handler, "console_access", ""), pattern) for method in route.methods
        )
    app.ctx.backend.engine.dispose()
    app.ctx.tracker.dispose()
    return sorted(routes, key=lambda r: (r.path, r.method))
