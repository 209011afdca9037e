"""`make run`'s launcher (onewindow/launcher.py): everything under supervisord, a server that dies comes back.

Starts the real launcher on free ports and a temporary folder, kills the action server with SIGKILL,
and checks that supervisord starts it again and the assistant answers again.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Dict, Iterator, List

import pytest

from harness.stack import MODEL, free_port
from onewindow.__main__ import seed
from onewindow.infra.local_servers import http_get
from onewindow.launcher import api_secret
from onewindow.settings import API_SECRET_VARIABLE, PROJECT_ROOT, MissingApiSecret
from tests.sockets import listening_addresses

pytestmark = pytest.mark.stack
SUPERVISORCTL = str(Path(sys.executable).with_name("supervisorctl"))


def test_the_secret_is_made_once_readable_by_its_owner_only_and_the_environment_wins(tmp_path: Path) -> None:
    made, where = api_secret(tmp_path, {})
    assert where == str(tmp_path / "api-secret") and len(made) >= 32
    assert stat.S_IMODE((tmp_path / "api-secret").stat().st_mode) == 0o600
    assert api_secret(tmp_path, {})[0] == made, "reused on the next run"
    assert api_secret(tmp_path, {API_SECRET_VARIABLE: "e" * 40}) == ("e" * 40, API_SECRET_VARIABLE)
    with pytest.raises(MissingApiSecret):
        api_secret(tmp_path, {API_SECRET_VARIABLE: "short"})


class Launched:
    """`python -m onewindow.launcher` with its output collected in a thread."""

    def __init__(self, var: Path, env: Dict[str, str]) -> None:
        self.var = var
        self.output: List[str] = []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "onewindow.launcher"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def wait_for(self, text: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self.process.poll() is None:
            if any(text in line for line in self.output):
                return
            time.sleep(0.2)
        raise AssertionError(f"no {text!r} within {seconds} s:\n{''.join(self.output)[-3000:]}")

    def supervisorctl(self, *args: str) -> str:
        done = subprocess.run(
            [SUPERVISORCTL, "-c", str(self.var / "supervisord.conf"), *args], capture_output=True, text=True, timeout=30
        )
        return done.stdout.strip()


def say(port: int, sender: str, text: str) -> List[Dict[str, object]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": text}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


@pytest.fixture(scope="module")
def launched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launched]:
    if not MODEL.exists():
        pytest.skip(f"no trained model at {MODEL}")
    var = tmp_path_factory.mktemp("launcher-var")
    database = f"sqlite:///{var / 'onewindow.db'}"
    seed(database, demo=True)
    ports = {
        name: str(free_port())
        for name in ("RASA_PORT", "RASA_API_PORT", "ACTIONS_PORT", "VOICE_PORT", "VOICE_CONTROL_PORT", "CONSOLE_PORT")
    }
    env = {key: value for key, value in os.environ.items() if key not in (API_SECRET_VARIABLE, "TELEGRAM_TOKEN")}
    env.update(
        ports,
        ONEWINDOW_VAR=str(var),
        DATABASE_URL=database,
        RASA_INSTANCES="1",
        RASA_INSTANCE_PORT=str(free_port() - 1),
        PYTHONPATH=str(PROJECT_ROOT),
    )
    running = Launched(var, env)
    running.ports = {key: int(value) for key, value in ports.items()}  # type: ignore[attr-defined]
    try:
        running.wait_for("OneWindow is running", 150)
        yield running
    finally:
        running.process.send_signal(signal.SIGINT)  # Ctrl-C
        try:
            running.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            running.process.kill()
            raise


def test_make_run_prints_where_everything_is(launched: Launched) -> None:
    printed = "".join(launched.output)
    ports = launched.ports  # type: ignore[attr-defined]
    assert f"http://127.0.0.1:{ports['RASA_PORT']}/webhooks/rest/webhook" in printed
    assert f"http://127.0.0.1:{ports['RASA_API_PORT']}/status" in printed and str(launched.var / "api-secret") in printed
    assert "supervisorctl" in printed and "not answering" not in printed
    deadline = time.monotonic() + 60  # supervisord says RUNNING once a program has lived its startsecs
    while True:
        status = launched.supervisorctl("status")
        if all(line.split()[1] == "RUNNING" for line in status.splitlines()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert all(line.split()[1] == "RUNNING" for line in status.splitlines()), status
    assert {line.split()[0] for line in status.splitlines()} == {"actions", "rasa-1", "router", "voice", "console"}
    for name, port in ports.items():
        assert listening_addresses(port) == ["127.0.0.1"], name


def test_a_killed_action_server_is_started_again_and_the_assistant_answers_again(launched: Launched) -> None:
    ports = launched.ports  # type: ignore[attr-defined]
    assert "100 dollars" in json.dumps(say(ports["RASA_PORT"], "launcher-1", "how much is a passport renewal?"))
    pid = int(launched.supervisorctl("pid", "actions"))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        again = launched.supervisorctl("pid", "actions")
        if again.isdigit() and int(again) not in (0, pid) and http_get(f"http://127.0.0.1:{ports['ACTIONS_PORT']}/health"):
            break
        time.sleep(0.3)
    else:
        raise AssertionError(f"the action server did not come back: {launched.supervisorctl('status')}")
    assert "100 dollars" in json.dumps(say(ports["RASA_PORT"], "launcher-2", "how much is a passport renewal?"))


def test_the_secret_is_on_no_command_line_and_in_no_log(launched: Launched) -> None:
    secret = (launched.var / "api-secret").read_text().strip().encode()
    pids = [int(pid) for pid in launched.supervisorctl("pid", "all").split() if pid.isdigit() and pid != "0"]
    assert len(pids) == 5
    for pid in [*pids, int(launched.supervisorctl("pid"))]:  # the programs and supervisord
        assert secret not in Path(f"/proc/{pid}/cmdline").read_bytes(), pid
    for log in (launched.var / "log").glob("*.log"):
        assert secret not in log.read_bytes(), log.name
    assert secret not in (launched.var / "supervisord.conf").read_bytes()
