"""onewindow/infra/haproxy.py against a real HAProxy (Debian 2.6) on free loopback ports, in front of recording
upstreams: the public port forwards only plain channel paths, as sent, and answers the health paths itself; the
internal port only requests with an admin token; a config without the secret is refused; the load is spread with at
most `maxconn` messages on an instance, a sticky conversation is never on two instances at once, an instance that is
down leaves its messages to the other, nothing up is a clear JSON error; a standby (`backup`) gets requests only
while the active server is down."""

from __future__ import annotations

import http.client
import json
import os
import re
import secrets
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness.stack import free_port
from onewindow.infra import haproxy
from onewindow.infra.api_auth import api_token, authorization
from onewindow.settings import API_SECRET_VARIABLE

pytestmark = pytest.mark.haproxy
SECRET = secrets.token_urlsafe(32)
LOOPBACK = "127.0.0.1"
HEALTH_ANSWERS = {"/health": b'{"status": "ok"}', "/health/live": b'{"status": "ok"}', "/health/ready": b'{"status": "ready"}'}


def is_channel_path(raw_path: str) -> bool:
    """A channel's path as sent (the query apart): what the public port may forward."""
    return re.match(haproxy.CHANNEL_PATH, raw_path.partition("?")[0]) is not None


class Upstream:
    """A recording HTTP server: which paths and conversations it got, how many requests it held at once at most,
    and any conversation it got while another upstream of the same `Upstreams` was working on it."""

    def __init__(self, name: str, group: "Upstreams", delay: float = 0.0) -> None:
        self.name, self.group, self.delay = name, group, delay
        self.received: List[str] = []
        self.senders: List[str] = []
        self.at_once = self.most = 0
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path != haproxy.READY_PATH:  # HAProxy's health checks
                    upstream.record(self.path, body)
                answer = json.dumps([{"recipient_id": "x", "text": upstream.name}]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_GET = do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def address(self) -> haproxy.Address:
        return haproxy.Address(LOOPBACK, self.server.server_address[1])

    def record(self, path: str, body: bytes) -> None:
        sender = json.loads(body).get("sender", "") if body else ""
        with self.group.lock:
            self.received.append(path)
            self.senders.append(sender)
            if sender and self.group.working_on.get(sender, self.name) != self.name:
                self.group.overlaps.append(sender)
            self.group.working_on[sender] = self.name
            self.at_once += 1
            self.most = max(self.most, self.at_once)
        time.sleep(self.delay)
        with self.group.lock:
            self.at_once -= 1
            self.group.working_on.pop(sender, None)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Upstreams:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.working_on: Dict[str, str] = {}
        self.overlaps: List[str] = []


@contextmanager
def running(description: haproxy.Proxy, folder: Path, ready_port: Optional[int] = None) -> Iterator[None]:
    """HAProxy on `description` until the block ends; waits for its /health (or /health/ready on `ready_port`)."""
    env = {**os.environ, API_SECRET_VARIABLE: SECRET}
    config = haproxy.write(folder / "haproxy.cfg", description, env)
    process = subprocess.Popen(haproxy.command(config), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    port = ready_port or description.frontends[0].bind.port
    path = "/health/ready" if ready_port else "/health"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and get(port, path)[0] != 200:
        time.sleep(0.1)
    try:
        yield
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[int, int, Upstream]]:
    upstream = Upstream("one", Upstreams())
    public, api = free_port(), free_port()
    description = haproxy.onewindow_proxy(haproxy.Address(LOOPBACK, public), haproxy.Address(LOOPBACK, api), [upstream.address])
    with running(description, tmp_path_factory.mktemp("haproxy")):
        yield public, api, upstream
    upstream.stop()


def request(port: int, path: str, headers: Optional[Dict[str, str]] = None, body: Optional[bytes] = None) -> Tuple[int, bytes]:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=30)
    try:
        connection.request("POST" if body is not None else "GET", path, body=body, headers=headers or {})  # the path as written
        answer = connection.getresponse()
        return answer.status, answer.read()
    except OSError:
        return 0, b""
    finally:
        connection.close()


def get(port: int, path: str, headers: Optional[Dict[str, str]] = None) -> Tuple[int, bytes]:
    return request(port, path, headers)


def test_a_config_without_the_secret_is_refused(tmp_path: Path) -> None:
    description = haproxy.onewindow_proxy(
        haproxy.Address(LOOPBACK, free_port()), haproxy.Address(LOOPBACK, free_port()), [haproxy.Address(LOOPBACK, 1)]
    )
    env = {k: v for k, v in os.environ.items() if k != API_SECRET_VARIABLE}
    with pytest.raises(haproxy.InvalidConfig, match=f"{API_SECRET_VARIABLE} is not set"):
        haproxy.write(tmp_path / "haproxy.cfg", description, env)
    assert SECRET not in haproxy.render(description)


def test_the_internal_port_forwards_only_requests_with_an_admin_token(proxy: Tuple[int, int, Upstream]) -> None:
    _, api, upstream = proxy
    refused = {
        "none": ({}, 401),
        "not a JWT": ({"Authorization": "Bearer not-a-token"}, 401),
        "another secret": ({"Authorization": f"Bearer {api_token('x' * 32)}"}, 401),
        "expired": ({"Authorization": f"Bearer {api_token(SECRET, lifetime_seconds=-60)}"}, 401),
        "role user": ({"Authorization": f"Bearer {api_token(SECRET, role='user')}"}, 403),
        "no scheme": ({"Authorization": api_token(SECRET)}, 401),
    }
    upstream.received.clear()
    for name, (headers, expected) in refused.items():
        assert get(api, "/conversations/ana/tracker", headers)[0] == expected, name
    assert upstream.received == []
    assert get(api, "/conversations/ana/tracker", authorization(SECRET))[0] == 200
    assert upstream.received == ["/conversations/ana/tracker"]


PREFIXES = ["", "/webhooks", "/webhooks/rest", "/webhooks/rest/webhook", "/conversations/telegram:42", "/health"]
TAIL = st.text(st.sampled_from(list("abXZ09_-.%2e/:~?=&liveready")), max_size=24)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(PREFIXES), TAIL)
def test_generated_paths_reach_the_upstream_only_when_they_are_plain_channel_paths(
    proxy: Tuple[int, int, Upstream], prefix: str, tail: str
) -> None:
    public, _, upstream = proxy
    path = "/" + (prefix + tail).lstrip("/")
    assume(not path.endswith("?"))
    upstream.received.clear()
    status, body = get(public, path, authorization(SECRET))
    if is_channel_path(path):
        assert status == 200 and upstream.received == [path], "forwarded as sent"
        assert path.startswith("/webhooks/") and ".." not in path.partition("?")[0] and "%" not in path.partition("?")[0]
    elif path in HEALTH_ANSWERS:
        assert status == 200 and upstream.received == [] and body == HEALTH_ANSWERS[path]
    else:
        assert upstream.received == [] and status in (400, 404), (path, status)


def conversations(port: int, count: int = 20, messages: int = 3) -> List[int]:
    """`count` conversations at once over the REST path, `messages` each in turn; every answer's status."""

    def conversation(n: int) -> List[int]:
        body = json.dumps({"sender": f"c{n}", "message": "hi"}).encode()
        return [request(port, "/webhooks/rest/webhook", {"Content-Type": "application/json"}, body)[0] for _ in range(messages)]

    with ThreadPoolExecutor(count) as pool:
        return [status for statuses in pool.map(conversation, range(count)) for status in statuses]


def two_instances(folder: Path, down: Tuple[str, ...] = ()) -> Tuple[haproxy.Proxy, Dict[str, Upstream]]:
    group = Upstreams()
    upstreams = {name: Upstream(name, group, delay=0.02) for name in ("one", "two")}
    addresses = [haproxy.Address(LOOPBACK, free_port()) if name in down else u.address for name, u in upstreams.items()]
    for name in down:
        upstreams[name].stop()  # nothing listens on its port
    description = haproxy.onewindow_proxy(
        haproxy.Address(LOOPBACK, free_port()), haproxy.Address(LOOPBACK, free_port()), addresses, sticky=True
    )
    return description, upstreams


def test_the_load_is_spread_with_at_most_two_messages_on_an_instance_and_a_conversation_on_one_at_a_time(
    tmp_path: Path,
) -> None:
    description, upstreams = two_instances(tmp_path)
    with running(description, tmp_path):
        statuses = conversations(description.frontends[0].bind.port)
    one, two = upstreams["one"], upstreams["two"]
    assert statuses == [200] * 60
    assert len(one.senders) + len(two.senders) == 60, "every message reaches an instance once"
    assert one.senders and two.senders, "both instances get work"
    assert max(one.most, two.most) == 2, "20 conversations at once, never more than 2 messages on an instance"
    assert one.group.overlaps == [], "no conversation is worked on by two instances at once"
    assert not set(one.senders) & set(two.senders), "each conversation stays on its instance"
    for upstream in upstreams.values():
        upstream.stop()


def test_an_instance_that_is_down_leaves_its_messages_to_the_other_and_none_up_is_a_clear_error(tmp_path: Path) -> None:
    description, upstreams = two_instances(tmp_path, down=("two",))
    with running(description, tmp_path):
        statuses = conversations(description.frontends[0].bind.port)
    assert statuses == [200] * 60 and len(upstreams["one"].senders) == 60
    upstreams["one"].stop()
    description, _ = two_instances(tmp_path, down=("one", "two"))
    with running(description, tmp_path):
        status, body = request(description.frontends[0].bind.port, "/webhooks/rest/webhook", body=b'{"sender": "a"}')
        ready, _ = get(description.frontends[0].bind.port, "/health/ready")
    assert status in (502, 503) and "error" in json.loads(body), (status, body)
    assert ready == 503, "the public readiness says no Rasa server is up"


def test_the_standby_bot_gets_updates_only_while_the_active_one_is_down(tmp_path: Path) -> None:
    group = Upstreams()
    active, standby, rasa = Upstream("active", group), Upstream("standby", group), Upstream("rasa", group)
    public, stats = free_port(), free_port()
    path = "/webhooks/telegram/hook"
    description = haproxy.onewindow_proxy(
        haproxy.Address(LOOPBACK, public),
        haproxy.Address(LOOPBACK, free_port()),
        [rasa.address],
        stats=haproxy.Address(LOOPBACK, stats),
        bot=haproxy.BotWebhook(path, [active.address], [standby.address]),
    )
    with running(description, tmp_path, ready_port=stats):
        first = [request(public, path, body=b"{}")[0] for _ in range(5)]
        assert request(public, "/webhooks/rest/webhook", body=b'{"sender": "a"}')[0] == 200
        active.stop()
        later = [request(public, path, body=b"{}")[0] for _ in range(5)]
    assert first == [200] * 5 and later == [200] * 5
    assert active.received == [path] * 5, "the active bot takes every update while it is up"
    assert standby.received == [path] * 5, "the standby takes them once the active one is down"
    assert rasa.received == ["/webhooks/rest/webhook"], "the other channels still go to Rasa"
    standby.stop()
    rasa.stop()
