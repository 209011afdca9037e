"""Rasa's HTTP API is not open to the public (issue 11).

Against the real stack (harness.stack.Stack: HAProxy, a Rasa instance, the action server):
every route of Rasa 3.6's HTTP API, read from Rasa's own Sanic application, is refused on the
public port (404, even with a valid token) and on the internal port without a valid admin token
(401/403), is refused by the Rasa instance itself without one, and is served with one. The REST
channel still works on the public port; the secret never shows in a log or on a command line.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.stack import MODEL, Stack, free_port
from onewindow.infra.api_auth import api_token, authorization
from onewindow.settings import API_SECRET_VARIABLE, PROJECT_ROOT
from tests.fixtures_stack import RunningStack
from tests.sockets import listening_addresses

pytestmark = pytest.mark.stack
CONVERSATION = "telegram:42"  # a guessable id, as in the issue
PROXY_NOT_FOUND = {"error": "not found"}


@dataclass(frozen=True)
class ApiRoute:
    method: str
    path: str  # with CONVERSATION for <conversation_id>
    template: str  # as Rasa declares it
    protected: bool  # wrapped in rasa.server.requires_auth

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


def rasa_api_routes() -> List[ApiRoute]:
    """Every route of the HTTP API as Rasa 3.6 builds it with --jwt-secret (rasa.server.create_app)."""
    import rasa.server

    app = rasa.server.create_app(jwt_secret="x" * 32, jwt_method="HS256")
    routes: List[ApiRoute] = []
    for route in app.router.routes:
        # requires_auth's wrapper closes over its scope check; functools.wraps hides it from the name
        protected = "sufficient_scope" in route.handler.__code__.co_freevars
        path = re.sub(r"<conversation_id:path>", quote(CONVERSATION, safe=":"), "/" + route.path.lstrip("/"))
        routes.extend(
            ApiRoute(method, path, "/" + route.path.lstrip("/"), protected) for method in route.methods if method != "OPTIONS"
        )
    # DELETE /model unloads the model: last, and the test loads it again
    return sorted(routes, key=lambda r: (r.method == "DELETE", r.path, r.method))


ROUTES = rasa_api_routes()
PROTECTED = [route for route in ROUTES if route.protected]
SLOT_EVENT = {"event": "slot", "name": "handoff_active", "value": False}
SAMPLE_BODIES = {  # a body each handler accepts or rejects with a 4xx, without side effects beyond telegram:42
    "tracker/events": [SLOT_EVENT],
    "messages": {"text": "hello", "sender": "user"},
    "model/parse": {"text": "hello"},
    "model/train": "not: [yaml",
}


def body_for(route: ApiRoute) -> Optional[bytes]:
    if route.method in ("GET", "DELETE"):
        return None
    if route.method == "PUT" and route.path == "/model":
        return json.dumps({"model_file": str(MODEL)}).encode()
    sample = next((body for suffix, body in SAMPLE_BODIES.items() if route.path.endswith(suffix)), {})
    return sample.encode() if isinstance(sample, str) else json.dumps(sample).encode()


def call(
    port: int, method: str, path: str, headers: Optional[Dict[str, str]] = None, data: Optional[bytes] = None
) -> Tuple[int, bytes]:
    content_type = "application/x-yaml" if path.endswith("/model/train") else "application/json"
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=data,
        method=method,
        headers={"Content-Type": content_type, "Accept": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def bearer(token: str) -> Dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def stack(running_stack: RunningStack) -> Stack:
    running = running_stack()
    running.say(CONVERSATION, "hello")  # a conversation to try to read
    return running


def test_the_routes_come_from_rasa() -> None:
    templates = {route.template for route in PROTECTED}
    assert {
        "/conversations/<conversation_id:path>/tracker",
        "/conversations/<conversation_id:path>/tracker/events",
        "/model",
        "/status",
    } <= templates, "the issue's routes are among those read from Rasa"
    assert {route.template for route in ROUTES if not route.protected} <= {
        "/",
        "/version",
        "/auth",
        "/auth/me",
        "/auth/verify",
    }, "Rasa itself leaves only its greeting, its version and sanic-jwt's own routes open"


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_every_api_route_is_refused_on_the_public_port_even_with_a_token(stack: Stack, route: ApiRoute) -> None:
    status, body = call(stack.rasa_port, route.method, route.path, authorization(stack.api_secret), body_for(route))
    assert status == 404 and json.loads(body) == PROXY_NOT_FOUND, "answered by HAProxy, never forwarded"


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_every_api_route_is_refused_on_the_internal_port_without_a_valid_admin_token(stack: Stack, route: ApiRoute) -> None:
    refused = {
        "none": ({}, 401),
        "not a JWT": (bearer("not-a-token"), 401),
        "another secret": (bearer(api_token("another secret, long enough for HS256!")), 401),
        "expired": (bearer(api_token(stack.api_secret, lifetime_seconds=-3600)), 401),
        "role user": (bearer(api_token(stack.api_secret, role="user")), 403),
        "in the query": ({}, 401),
    }
    for name, (headers, expected) in refused.items():
        path = route.path + (f"?token={api_token(stack.api_secret)}" if name == "in the query" else "")
        status, _ = call(stack.api_port, route.method, path, headers, body_for(route))
        assert status == expected, f"{name}: {status}"


@pytest.mark.parametrize("route", PROTECTED, ids=str)
def test_a_rasa_instance_itself_requires_the_token(stack: Stack, route: ApiRoute) -> None:
    instance = stack.instance_ports[0]
    assert call(instance, route.method, route.path, {}, body_for(route))[0] == 401
    assert (
        call(instance, route.method, route.path, bearer(api_token("another secret, long enough for HS256!")), body_for(route))[0]
        == 401
    )
    assert call(instance, route.method, route.path, bearer(api_token(stack.api_secret, role="user")), body_for(route))[0] == 403


def test_every_protected_route_is_served_with_the_token(stack: Stack) -> None:
    answers = {
        str(route): call(stack.api_port, route.method, route.path, authorization(stack.api_secret), body_for(route))
        for route in PROTECTED
    }
    failed = {route: status for route, (status, _) in answers.items() if status in (401, 403, 404) or status >= 500}
    assert not failed, failed
    assert answers[f"GET /conversations/{CONVERSATION}/tracker"][0] == 200
    assert json.loads(answers[f"GET /conversations/{CONVERSATION}/tracker"][1])["sender_id"] == CONVERSATION
    assert answers["DELETE /model"][0] == 204
    status, _ = call(
        stack.api_port, "PUT", "/model", authorization(stack.api_secret), json.dumps({"model_file": str(MODEL)}).encode()
    )
    assert status == 204
    assert stack.say("api-auth-after", "hello"), "the model is loaded again and the assistant answers"


def test_the_rest_channel_and_the_liveness_answer_work_on_the_public_port(stack: Stack) -> None:
    answer = stack.say("api-auth-citizen", "how much is a passport renewal?")
    assert any("100 dollars" in (m.get("text") or "") for m in answer)
    status, body = call(stack.rasa_port, "GET", "/health")
    assert status == 200 and json.loads(body) == {"status": "ok"}


ID_CHARACTERS = st.characters(exclude_categories=["Cs"], exclude_characters="\x00")
DISGUISES = [
    "{path}",
    "/webhooks/..{path}",
    "/webhooks/rest/../..{path}",
    "/webhooks/rest/%2e%2e/%2e%2e{path}",
    "/webhooks/rest/webhook/..%2f..%2f..{path}",
    "/{path}",
    "{path}/",
    "/webhooks/rest{path}",
    "/health/..{path}",
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(
    route=st.sampled_from(ROUTES),
    conversation=st.text(ID_CHARACTERS, min_size=1, max_size=20),
    disguise=st.sampled_from(DISGUISES),
)
def test_generated_api_paths_never_reach_rasa_from_the_public_port(
    stack: Stack, route: ApiRoute, conversation: str, disguise: str
) -> None:
    path = disguise.format(path=route.path.replace(quote(CONVERSATION, safe=":"), quote(conversation, safe="")))
    status, body = call(stack.rasa_port, route.method, path, authorization(stack.api_secret), body_for(route))
    if status == 200:  # a channel path that Rasa answered: only the REST channel, never an API answer
        assert path.startswith("/webhooks/rest") and b"sender_id" not in body and b"model_file" not in body, (path, body)
    else:
        assert status in (400, 404, 405), (path, status)
        assert b"sender_id" not in body and b"model_file" not in body and b"events" not in body


def test_the_secret_is_in_no_log_and_on_no_command_line(stack: Stack) -> None:
    secret = stack.api_secret.encode()
    for log in stack.workdir.glob("*.log"):
        assert secret not in log.read_bytes(), log.name
    for name, pid in stack.pids().items():
        assert secret not in Path(f"/proc/{pid}/cmdline").read_bytes(), name


def test_every_server_of_the_stack_listens_on_loopback_only(stack: Stack) -> None:
    for port in (stack.rasa_port, stack.api_port, stack.stats_port, stack.actions_port, *stack.instance_ports):
        assert listening_addresses(port) == ["127.0.0.1"], port


@pytest.mark.parametrize(
    "command",
    [
        ["-m", "onewindow.rasa_plugins.server", "run", "--enable-api", "-p", "1"],
        ["-m", "console", "serve", "--port", "1"],
    ],
    ids=["rasa", "console"],  # HAProxy: tests/test_haproxy.py
)
def test_the_servers_refuse_to_start_without_the_secret(command: List[str], tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != API_SECRET_VARIABLE}
    env.update(PYTHONPATH=str(PROJECT_ROOT), DATABASE_URL=f"sqlite:///{tmp_path / 'none.db'}", CONSOLE_PORT=str(free_port()))
    done = subprocess.run([sys.executable, *command], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and f"{API_SECRET_VARIABLE} is not set" in done.stderr, done.stderr[-500:]
