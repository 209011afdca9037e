"""`make run-prod` (onewindow/production.py through the launcher) for real: its supervisord configuration on free
ports, a PostgreSQL database of its own (and its tracker database), its own Redis database, the local Bot API
stand-in (tests/telegram_api.py) for Telegram, Debian's HAProxy and Prometheus.

A REST conversation answers through HAProxy; every program is ready; Prometheus scrapes every target (up == 1) and
sees onewindow_messages_total grow; a Rasa instance killed with SIGKILL is started again by supervisord while the
conversations go on through the other; the standby bot takes the updates once the active one is stopped.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Callable, Dict, Iterator, Tuple

import pytest
from sqlalchemy import create_engine, text

from harness.stack import MODEL, free_port
from onewindow.infra.local_servers import http_get
from onewindow.production import ProdPorts, ready_checks, scrape_targets
from onewindow.settings import API_SECRET_VARIABLE
from tests.telegram_api import LocalBotApi
from tests.test_launcher import Launched, say

pytestmark = [pytest.mark.stack, pytest.mark.postgres]
POSTGRES = "postgresql://postgres@127.0.0.1:5432"
REDIS_DB = 13  # the lock store's keys in a Redis database of this test's own
BOT_SECRET = "run-prod-Secret_1"
WEBHOOK_PATH = "/webhooks/telegram/hook"


def free_block(size: int) -> int:
    """A port p such that p .. p + size - 1 are all free on loopback."""
    while True:
        first = free_port()
        sockets = []
        try:
            for port in range(first, first + size):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                sockets.append(sock)
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()


def wait_until(check: Callable[[], object], seconds: float, what: str) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"not within {seconds} s: {what}")


class Prod:
    def __init__(self, launched: Launched, ports: ProdPorts, bots: LocalBotApi) -> None:
        self.launched, self.ports, self.bots = launched, ports, bots

    def query(self, expression: str) -> list:
        """A Prometheus instant query through its HTTP API: the result vector."""
        url = f"http://127.0.0.1:{self.ports.prometheus}/api/v1/query?query={urllib.parse.quote(expression)}"
        body = http_get(url, timeout=5)
        assert body is not None, url
        answer = json.loads(body)
        assert answer["status"] == "success", answer
        return answer["data"]["result"]

    def pid(self, program: str) -> int:
        found = self.launched.supervisorctl("pid", program)
        return int(found) if found.isdigit() else 0


@pytest.fixture(scope="module")
def prod(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prod]:
    if not MODEL.exists():
        pytest.skip(f"no trained model at {MODEL}")
    name = f"ow_runprod_{uuid.uuid4().hex[:8]}"
    var = tmp_path_factory.mktemp("run-prod-var")
    bots = LocalBotApi(token=f"{uuid.uuid4().int % 10**9}:RUN-PROD", redeliver_after=0.5).start()  # a bot of its own
    voice, public = free_block(4), free_port()
    env = {key: value for key, value in os.environ.items() if key not in (API_SECRET_VARIABLE, "TRACKER_DATABASE_URL")}
    env.update(
        ONEWINDOW_VAR=str(var),
        DATABASE_URL=f"{POSTGRES}/{name}",
        LOCK_STORE_URL=f"redis://127.0.0.1:6379/{REDIS_DB}",
        RASA_PORT=str(public),
        RASA_API_PORT=str(free_port()),
        HAPROXY_STATS_PORT=str(free_port()),
        PROMETHEUS_PORT=str(free_port()),
        RASA_INSTANCE_PORT=str(free_block(3)),
        ACTIONS_PORT=str(free_block(3)),
        CONSOLE_PORT=str(free_block(3)),
        VOICE_PORT=str(voice),
        VOICE_CONTROL_PORT=str(voice + 1),
        TELEGRAM_WEBHOOK_PORT=str(free_block(2)),
        TELEGRAM_TOKEN=bots.token,
        TELEGRAM_API_URL=bots.base_url,
        TELEGRAM_FILE_URL=bots.base_file_url,
        TELEGRAM_WEBHOOK_URL=f"http://127.0.0.1:{public}{WEBHOOK_PATH}",
        TELEGRAM_SECRET_TOKEN=BOT_SECRET,
    )
    launched = Launched(var, env, ["--prod"])
    try:
        launched.wait_for("OneWindow (production topology) is running", 240)
        yield Prod(launched, ProdPorts.from_env(env), bots)
    finally:
        launched.process.send_signal(signal.SIGINT)
        try:
            launched.process.wait(timeout=90)
        finally:
            bots.stop()
            admin = create_engine(f"{POSTGRES}/postgres", isolation_level="AUTOCOMMIT")
            with admin.connect() as connection:
                for database in (name, f"{name}_tracker"):
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
            admin.dispose()


def test_every_program_is_ready_and_a_conversation_answers_through_haproxy(prod: Prod) -> None:
    printed = "".join(prod.launched.output)
    assert "not answering" not in printed, printed[-2000:]
    for name, (url, _) in ready_checks(prod.ports, with_bots=True).items():
        assert http_get(url) is not None, (name, http_get(f"http://127.0.0.1:{prod.ports.stats}/stats;csv"))
    status = prod.launched.supervisorctl("status")
    assert all(line.split()[1] == "RUNNING" for line in status.splitlines()), status
    assert "100 dollars" in json.dumps(say(prod.ports.public, "prod-1", "how much is a passport renewal?"))


def test_prometheus_scrapes_every_program_and_counts_the_messages(prod: Prod) -> None:
    targets = scrape_targets(prod.ports, with_bots=True)
    expected = {f"{job}/{address}" for job, addresses in targets.items() for address in addresses}

    def all_up() -> bool:
        up = {f"{r['metric']['job']}/{r['metric']['instance']}": r["value"][1] for r in prod.query("up")}
        return set(up) == expected and set(up.values()) == {"1"}

    wait_until(all_up, 60, f"every target up: {prod.query('up')}")
    counted = "sum(onewindow_messages_total)"

    def total() -> float:
        result = prod.query(counted)
        return float(result[0]["value"][1]) if result else 0.0

    before = total()
    for n in range(3):
        assert say(prod.ports.public, f"prod-metrics-{n}", "how much is a passport renewal?")
    wait_until(lambda: total() >= before + 3, 40, f"{counted} from {before} to {before + 3}")


def test_a_killed_rasa_instance_comes_back_and_the_other_answers_meanwhile(prod: Prod) -> None:
    pid = prod.pid("rasa-1")
    os.kill(pid, signal.SIGKILL)
    # a message the kernel queued for the dying process in the moment before its socket closed is lost (a 502 for
    # its sender, like any message in flight); every message sent once it is gone is answered by the other instance
    wait_until(lambda: refused(prod.ports.rasa[0]), 10, "rasa-1's port closed")
    answered = [say(prod.ports.public, f"prod-kill-{n}", "how much is a passport renewal?") for n in range(6)]
    assert all("100 dollars" in json.dumps(answer) for answer in answered), answered
    wait_until(lambda: prod.pid("rasa-1") not in (0, pid), 30, "supervisord starts rasa-1 again")
    url, _ = ready_checks(prod.ports, with_bots=True)["rasa-1"]
    wait_until(lambda: http_get(url), 120, "rasa-1 ready again")
    assert "100 dollars" in json.dumps(say(prod.ports.public, "prod-kill-after", "how much is a passport renewal?"))


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return False
    except OSError:
        return True


def bot_servers_used(prod: Prod) -> Dict[str, int]:
    """How many updates HAProxy gave each bot server (its JSON request log)."""
    counts: Dict[str, int] = {}
    for line in (prod.launched.var / "log" / "haproxy.log").read_text().splitlines():
        if line.startswith("{") and '"backend":"bot"' in line:
            server = json.loads(line)["server"]
            counts[server] = counts.get(server, 0) + 1
    return counts


def reply_to(prod: Prod, chat: int, text_: str) -> Tuple[str, ...]:
    since = prod.bots.mark()
    prod.bots.user_sends_text(chat, text_)
    calls = prod.bots.wait_for("sendMessage", chat_id=chat, since=since, timeout=60)
    return tuple(str(call.params.get("text", "")) for call in calls)


def test_the_standby_bot_takes_the_updates_when_the_active_one_stops(prod: Prod) -> None:
    assert "costs" in " ".join(reply_to(prod, 7001, "how much does a passport renewal cost"))
    wait_until(lambda: bot_servers_used(prod).get("bot-1"), 10, "HAProxy logs the update once the bot has answered it")
    assert set(bot_servers_used(prod)) == {"bot-1"}, "the active bot takes the updates while it is up"
    prod.launched.supervisorctl("stop", "bot-active")
    try:
        assert "costs" in " ".join(reply_to(prod, 7002, "how much does an id card renewal cost"))
        wait_until(lambda: bot_servers_used(prod).get("bot-2"), 10, "the standby took the update")
    finally:
        prod.launched.supervisorctl("start", "bot-active")


def test_the_secret_is_in_no_file_but_its_own(prod: Prod) -> None:
    secret = (prod.launched.var / "api-secret").read_text().strip().encode()
    for path in Path(prod.launched.var).glob("*.*"):
        if path.is_file() and path.name != "api-secret":
            assert secret not in path.read_bytes(), path.name
