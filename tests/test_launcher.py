"""`make run`'s launcher (onewindow/launcher.py): everything under supervisord, a server that dies comes back.

First what it would start (onewindow/processes.py, the programs the harness starts too), without starting
anything; then (marked `stack`) the real launcher on free ports and a temporary folder: it kills the
action server with SIGKILL and checks that supervisord starts it again and the assistant answers again.
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
from typing import Dict, Iterator, List, Sequence

import pytest

from harness.stack import MODEL, free_port
from onewindow.__main__ import seed
from onewindow.infra import haproxy
from onewindow.infra.local_servers import http_get
from onewindow.launcher import api_secret, main, supervisord_config
from onewindow.processes import Ports, served_programs, shared_environment, single_machine_proxy, write_endpoints
from onewindow.production import ProdPorts, bot_webhook_path, prod_programs, prod_proxy
from onewindow.settings import API_SECRET_VARIABLE, PROJECT_ROOT, MissingApiSecret
from tests.sockets import listening_addresses

SUPERVISORCTL = str(Path(sys.executable).with_name("supervisorctl"))


def test_the_secret_is_made_once_readable_by_its_owner_only_and_the_environment_wins(tmp_path: Path) -> None:
    made, where = api_secret(tmp_path, {})
    assert where == str(tmp_path / "api-secret") and len(made) >= 32
    assert stat.S_IMODE((tmp_path / "api-secret").stat().st_mode) == 0o600
    assert api_secret(tmp_path, {})[0] == made, "reused on the next run"
    assert api_secret(tmp_path, {API_SECRET_VARIABLE: "e" * 40}) == ("e" * 40, API_SECRET_VARIABLE)
    with pytest.raises(MissingApiSecret):
        api_secret(tmp_path, {API_SECRET_VARIABLE: "short"})


def test_the_ports_of_make_run_and_the_instances_after_rasa_port_plus_100() -> None:
    assert Ports.from_env({"RASA_INSTANCES": "2"}) == Ports(5005, 5100, 5055, (5106, 5107), 9092, 9093, 5080, 8404)
    moved = Ports.from_env({"RASA_PORT": "6005", "RASA_INSTANCES": "1", "CONSOLE_PORT": "6080"})
    assert (moved.rasa, moved.instances, moved.console) == (6005, (6106,), 6080)


def test_make_run_serves_every_program_the_bot_only_with_a_token_and_no_secret_or_pythonpath(tmp_path: Path) -> None:
    ports = Ports.from_env({"RASA_INSTANCES": "2"})
    model, endpoints = tmp_path / "model.tar.gz", tmp_path / "endpoints.yml"
    proxy = tmp_path / "haproxy.cfg"
    served = served_programs(ports, model, endpoints, {}, proxy)
    assert [program.name for program in served] == ["actions", "rasa-1", "rasa-2", "haproxy", "voice", "console"]
    with_bot = served_programs(ports, model, endpoints, {"TELEGRAM_TOKEN": "1:abc"}, proxy)
    assert with_bot[-1].name == "bot" and with_bot[-1].env == {"RASA_URL": "http://127.0.0.1:5005"}
    assert next(program for program in served if program.name == "haproxy").command[-2:] == ["-f", str(proxy)]
    programs = {program.name: program for program in served}
    assert programs["voice"].env["RASA_URL"] == "http://127.0.0.1:5005" and programs["voice"].env["RASA_API_URL"].endswith(
        ":5100"
    )
    assert programs["console"].env["RASA_URL"] == "http://127.0.0.1:5100"
    assert str(endpoints) in programs["rasa-1"].command and str(model) in programs["rasa-1"].command
    for program in with_bot:
        assert "PYTHONPATH" not in program.env and API_SECRET_VARIABLE not in program.env
    config = supervisord_config(tmp_path, served)
    assert config.count("[program:") == 6 and "PYTHONPATH" not in config and API_SECRET_VARIABLE not in config


def test_haproxy_of_make_run_binds_the_channels_on_rasa_host_and_sticks_conversations_without_a_lock_store() -> None:
    ports = Ports.from_env({"RASA_INSTANCES": "2"})
    public = haproxy.Address("0.0.0.0", ports.rasa)
    alone = haproxy.render(single_machine_proxy(public, ports.api, ports.proxy_stats, ports.instances, ""))
    assert "bind 0.0.0.0:5005" in alone and "bind 127.0.0.1:5100" in alone and "bind 127.0.0.1:8404" in alone
    assert "server rasa-1 127.0.0.1:5106 " in alone and "server rasa-2 127.0.0.1:5107 " in alone
    assert "stick on var(txn.conversation)" in alone, "each instance has its own in-memory lock: a conversation stays on one"
    shared = haproxy.render(single_machine_proxy(public, ports.api, ports.proxy_stats, ports.instances, "redis://x"))
    assert "stick" not in shared, "with a shared lock store any instance takes any message"


def test_run_prod_serves_two_of_each_the_bots_behind_the_webhook_path_and_prometheus(tmp_path: Path) -> None:
    env = {"TELEGRAM_TOKEN": "1:abc", "TELEGRAM_WEBHOOK_URL": "https://bot.example/webhooks/telegram/hook"}
    ports, path = ProdPorts.from_env(env), bot_webhook_path(env)
    programs = prod_programs(ports, tmp_path / "model.tar.gz", tmp_path / "endpoints.yml", tmp_path, path)
    assert [program.name for program in programs] == [
        "haproxy", "rasa-1", "rasa-2", "actions-1", "actions-2", "console-1", "console-2", "voice-1", "voice-2",
        "bot-active", "bot-standby", "prometheus",
    ]  # fmt: skip
    by_name = {program.name: program for program in programs}
    assert (
        by_name["console-2"].env["CONSOLE_TRUSTED_PROXIES"] == "127.0.0.1" and by_name["console-2"].env["CONSOLE_PORT"] == "5082"
    )
    assert by_name["bot-standby"].env["TELEGRAM_WEBHOOK_PORT"] == "8444" and by_name["voice-2"].env["VOICE_PORT"] == "9094"
    rendered = haproxy.render(prod_proxy(ports, "127.0.0.1", path))
    assert "server bot-2 127.0.0.1:8444 " in rendered and rendered.count(" backup") == 1
    assert "use_backend bot if { path /webhooks/telegram/hook }" in rendered and "stick" not in rendered
    assert bot_webhook_path({}) is None, "no bots without a token"
    with pytest.raises(ValueError, match="/webhooks/telegram/"):
        bot_webhook_path({"TELEGRAM_TOKEN": "1:abc", "TELEGRAM_WEBHOOK_URL": "https://bot.example/telegram"})


def test_every_program_shares_the_secret_and_the_endpoints_through_the_environment(tmp_path: Path) -> None:
    shared = shared_environment({"PATH": "/bin"}, "s" * 32, tmp_path / "endpoints.yml")
    assert shared == {"PATH": "/bin", API_SECRET_VARIABLE: "s" * 32, "RASA_ENDPOINTS": str(tmp_path / "endpoints.yml")}


def test_the_endpoints_point_at_this_tracker_database_and_action_server(tmp_path: Path) -> None:
    written = write_endpoints(tmp_path / "endpoints.yml", tmp_path / "tracker.db", 6055).read_text()
    assert f"db: {tmp_path / 'tracker.db'}" in written and "http://127.0.0.1:6055/webhook" in written
    assert "localhost:5055" not in written and "db: var/tracker.db" not in written


def test_a_dry_run_prints_the_configuration_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ONEWINDOW_VAR", str(tmp_path / "var"))
    monkeypatch.setenv("ACTIONS_PORT", "6055")
    assert main(["--dry-run"]) == 0
    printed = capsys.readouterr().out
    assert "[program:actions]" in printed and "-p 6055" in printed and "[program:console]" in printed
    assert not (tmp_path / "var").exists()


class Launched:
    """`python -m onewindow.launcher` with its output collected in a thread."""

    def __init__(self, var: Path, env: Dict[str, str], args: Sequence[str] = ()) -> None:
        self.var = var
        self.output: List[str] = []
        self.ports: Dict[str, int] = {}  # the ports it was given (set by the fixture)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "onewindow.launcher", *args],
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
        for name in (
            "RASA_PORT",
            "RASA_API_PORT",
            "ACTIONS_PORT",
            "HAPROXY_STATS_PORT",
            "VOICE_PORT",
            "VOICE_CONTROL_PORT",
            "CONSOLE_PORT",
        )
    }
    env = {key: value for key, value in os.environ.items() if key not in (API_SECRET_VARIABLE, "TELEGRAM_TOKEN")}
    env.update(
        ports,
        ONEWINDOW_VAR=str(var),
        DATABASE_URL=database,
        RASA_INSTANCES="1",
        RASA_INSTANCE_PORT=str(free_port() - 1),
    )
    running = Launched(var, env)
    running.ports = {key: int(value) for key, value in ports.items()}
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


@pytest.mark.stack
def test_make_run_prints_where_everything_is(launched: Launched) -> None:
    printed = "".join(launched.output)
    ports = launched.ports
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
    assert {line.split()[0] for line in status.splitlines()} == {"actions", "rasa-1", "haproxy", "voice", "console"}
    for name, port in ports.items():
        assert listening_addresses(port) == ["127.0.0.1"], name


@pytest.mark.stack
def test_a_killed_action_server_is_started_again_and_the_assistant_answers_again(launched: Launched) -> None:
    ports = launched.ports
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


@pytest.mark.stack
def test_the_secret_is_on_no_command_line_and_in_no_log(launched: Launched) -> None:
    secret = (launched.var / "api-secret").read_text().strip().encode()
    pids = [int(pid) for pid in launched.supervisorctl("pid", "all").split() if pid.isdigit() and pid != "0"]
    assert len(pids) == 5
    for pid in [*pids, int(launched.supervisorctl("pid"))]:  # the programs and supervisord
        assert secret not in Path(f"/proc/{pid}/cmdline").read_bytes(), pid
    for log in (launched.var / "log").glob("*.log"):
        assert secret not in log.read_bytes(), log.name
    assert secret not in (launched.var / "supervisord.conf").read_bytes()
    assert secret not in (launched.var / "haproxy.cfg").read_bytes(), "HAProxy reads it from its environment"
