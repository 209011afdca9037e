"""onewindow/infra/haproxy.py against a real HAProxy (Debian 2.6) on free loopback ports, in front of a recording
upstream: the public port forwards only plain channel paths (the router's rule, is_channel_path), as sent; the
internal port only requests with an admin token; a config without the secret is refused."""

from __future__ import annotations

import http.client
import os
import secrets
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from harness.stack import free_port
from onewindow.infra import haproxy
from onewindow.infra.api_auth import api_token, authorization
from onewindow.infra.router import is_channel_path
from onewindow.settings import API_SECRET_VARIABLE

pytestmark = pytest.mark.haproxy
SECRET = secrets.token_urlsafe(32)


class Recorder(BaseHTTPRequestHandler):
    received: List[str] = []

    def _answer(self) -> None:
        if self.path != "/":  # HAProxy's health checks ask for /
            Recorder.received.append(self.path)
        body = b'{"upstream": true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[int, int]]:
    upstream = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    public, api = free_port(), free_port()
    loopback = "127.0.0.1"
    description = haproxy.onewindow_proxy(
        haproxy.Address(loopback, public),
        haproxy.Address(loopback, api),
        [haproxy.Address(loopback, upstream.server_address[1])],
        rasa_health_path="/",
    )
    env = {**os.environ, API_SECRET_VARIABLE: SECRET}
    config = haproxy.write(tmp_path_factory.mktemp("haproxy") / "haproxy.cfg", description, env)
    process = subprocess.Popen(haproxy.command(config), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and get(public, "/health")[0] != 200:
        time.sleep(0.1)
    yield public, api
    process.terminate()
    process.wait(timeout=10)
    upstream.shutdown()


def get(port: int, path: str, headers: Optional[Dict[str, str]] = None) -> Tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request("GET", path, headers=headers or {})  # the path as written, not normalised
        answer = connection.getresponse()
        return answer.status, answer.read()
    except OSError:
        return 0, b""
    finally:
        connection.close()


def test_a_config_without_the_secret_is_refused(tmp_path: Path) -> None:
    description = haproxy.onewindow_proxy(
        haproxy.Address("127.0.0.1", free_port()), haproxy.Address("127.0.0.1", free_port()), [haproxy.Address("127.0.0.1", 1)]
    )
    env = {k: v for k, v in os.environ.items() if k != API_SECRET_VARIABLE}
    with pytest.raises(haproxy.InvalidConfig, match=f"{API_SECRET_VARIABLE} is not set"):
        haproxy.write(tmp_path / "haproxy.cfg", description, env)
    assert SECRET not in haproxy.render(description)


def test_the_internal_port_forwards_only_requests_with_an_admin_token(proxy: Tuple[int, int]) -> None:
    _, api = proxy
    refused = {
        "none": ({}, 401),
        "not a JWT": ({"Authorization": "Bearer not-a-token"}, 401),
        "another secret": ({"Authorization": f"Bearer {api_token('x' * 32)}"}, 401),
        "expired": ({"Authorization": f"Bearer {api_token(SECRET, lifetime_seconds=-60)}"}, 401),
        "role user": ({"Authorization": f"Bearer {api_token(SECRET, role='user')}"}, 403),
        "no scheme": ({"Authorization": api_token(SECRET)}, 401),
    }
    Recorder.received.clear()
    for name, (headers, expected) in refused.items():
        assert get(api, "/conversations/ana/tracker", headers)[0] == expected, name
    assert Recorder.received == []
    assert get(api, "/conversations/ana/tracker", authorization(SECRET))[0] == 200
    assert Recorder.received == ["/conversations/ana/tracker"]


PREFIXES = ["", "/webhooks", "/webhooks/rest", "/webhooks/rest/webhook", "/conversations/telegram:42", "/health"]
TAIL = st.text(st.sampled_from(list("abXZ09_-.%2e/:~?=&")), max_size=24)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.sampled_from(PREFIXES), TAIL)
def test_generated_paths_reach_the_upstream_only_when_they_are_plain_channel_paths(
    proxy: Tuple[int, int], prefix: str, tail: str
) -> None:
    public, _ = proxy
    path = "/" + (prefix + tail).lstrip("/")
    assume(not path.endswith("?"))
    Recorder.received.clear()
    status, body = get(public, path, authorization(SECRET))
    if is_channel_path(path):
        assert status == 200 and Recorder.received == [path], "forwarded as sent"
    elif path == "/health":
        assert status == 200 and Recorder.received == [] and body == b'{"status": "ok"}'
    else:
        assert Recorder.received == [] and status in (400, 404), (path, status)
