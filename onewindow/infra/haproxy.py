"""haproxy.cfg for HAProxy 2.6 (Debian) in front of OneWindow, rendered from a typed description.

`render(Proxy(...))` gives the configuration text; `onewindow_proxy(...)` builds the usual description (the
channels, the HTTP API, the action servers and the consoles, each in front of its servers); `write(path, proxy)`
writes it and checks it with `haproxy -c`; `command(path)` is the command line that runs it in the foreground
(supervisord, the harness).

    proxy = onewindow_proxy(
        public=Address("0.0.0.0", 5005), api=Address("127.0.0.1", 5100), stats=Address("127.0.0.1", 8404),
        rasa=[Address("10.1.2.2", 5101), Address("10.1.3.2", 5101)],
        actions=Listener(Address("127.0.0.1", 5055), [Address("10.1.2.2", 5056), Address("10.1.3.2", 5056)]),
    )
    write(Path("var/haproxy.cfg"), proxy)   # then: haproxy -db -f var/haproxy.cfg (RASA_JWT_SECRET in its environment)

What each frontend keeps from onewindow/infra/router.py:

- `channels` (the public port): only a channel's path, /webhooks/<channel>/..., exactly as sent (the router's
  CHANNEL_PATH: no percent-encoding, no dot segments, no empty segment; the query is not part of the check) is
  forwarded, unchanged (HAProxy 2.6 normalises no URI unless told to); `GET`/`HEAD /health` is answered by
  HAProxy itself with `{"status": "ok"}`; anything else is a 404 `{"error": "not found"}` that reaches no server.
- `api` (the internal port, loopback or an internal address): Rasa's HTTP API, only with an admin token, checked
  like onewindow/infra/api_auth.py's `refusal`: a `Bearer` token (401 without one), signed HS256 with
  RASA_JWT_SECRET (401), not expired and with an `exp` (401), `user.role` "admin" (403). HAProxy reads the
  secret from its environment when it starts (`"${RASA_JWT_SECRET}"`); it is in no file, and HAProxy refuses to
  start without it. Each Rasa instance checks the token again.
- `plain`: forwarded as is (the action servers for Rasa, the consoles).

Every backend: `balance leastconn`; `maxconn` per server (for Rasa ONEWINDOW_MESSAGES_PER_INSTANCE, 2: one turn
working, one waiting for the action server) so the rest wait in HAProxy's queue, oldest first, for at most
`timeout queue`; `option httpchk` on the process's readiness path, so a server that is down, loading or
draining
gets nothing; `retry-on conn-failure` with `option redispatch`: a request is sent again, to another server, only
when its connection never reached a server. Not `empty-response` (a server that closed without answering may
have worked on the message: a message must not be processed twice) and not `response-timeout`; the caller of
a request lost that way gets a 502 with a JSON body. Ordering is not the proxy's job (the lock store orders a
conversation's messages across instances), so there is no stickiness.

The `stats` listener (internal) serves HAProxy's own Prometheus metrics at /metrics (the built-in
prometheus-exporter), its stats page at /stats and /health/live. Logs: one JSON line per request on stdout
(frontend, backend, server, status, timings, retries, termination state; no path, which can hold a conversation
id).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Literal, Optional, Sequence, Tuple

from onewindow.settings import API_SECRET_VARIABLE
from onewindow.settings.variables import ONEWINDOW_MESSAGES_PER_INSTANCE

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
READY_PATH = "/health/ready"  # every process's readiness (onewindow/infra/health.py)
CHANNEL_PATH = r"^/webhooks/[A-Za-z0-9_]+(/[A-Za-z0-9_-]*)*$"  # as onewindow/infra/router.py's CHANNEL_PATH
BODY_LIMIT = 4 * 2**20  # bytes, as the router's client_max_size
FrontendKind = Literal["channels", "api", "plain"]


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class Backend:
    """Servers that do the same job; `maxconn` requests at once on each (0: no limit), the rest queued."""

    name: str
    servers: Tuple[Address, ...]
    health_path: str = READY_PATH
    maxconn: int = 0
    check_seconds: float = 1.0  # between health checks; 2 failures mark a server down, 2 successes up
    forwarded_for: bool = False  # add X-Forwarded-For (the consoles' throttling by client address)


@dataclass(frozen=True)
class Frontend:
    name: str
    bind: Address
    backend: str
    kind: FrontendKind = "plain"


@dataclass(frozen=True)
class Timeouts:
    """Seconds. `server` must exceed the longest turn (the router waited 60 s for one)."""

    connect: float = 2.0
    client: float = 90.0
    server: float = 75.0
    queue: float = 30.0
    http_request: float = 10.0
    keep_alive: float = 10.0
    check: float = 2.0
    tunnel: float = 3600.0  # a console's live queue (a long-lived stream)


@dataclass(frozen=True)
class Proxy:
    frontends: Tuple[Frontend, ...]
    backends: Tuple[Backend, ...]
    stats: Optional[Address] = None
    timeouts: Timeouts = field(default_factory=Timeouts)
    maxconn: int = 4096  # connections HAProxy accepts in all
    threads: int = 1  # one thread is plenty on loopback and leaves the cores to Rasa

    def __post_init__(self) -> None:
        names = {backend.name for backend in self.backends}
        missing = [frontend.backend for frontend in self.frontends if frontend.backend not in names]
        if missing:
            raise ValueError(f"frontends name unknown backends: {missing}")
        empty = [backend.name for backend in self.backends if not backend.servers]
        if empty:
            raise ValueError(f"backends without servers: {empty}")


@dataclass(frozen=True)
class Listener:
    """Where a service is reached through the proxy, and the servers behind it."""

    bind: Address
    servers: Sequence[Address]
    health_path: str = READY_PATH


def onewindow_proxy(
    public: Address,
    api: Address,
    rasa: Sequence[Address],
    stats: Optional[Address] = None,
    actions: Optional[Listener] = None,
    consoles: Optional[Listener] = None,
    messages_per_instance: int = ONEWINDOW_MESSAGES_PER_INSTANCE.default_value,
    rasa_health_path: str = READY_PATH,
    timeouts: Timeouts = Timeouts(),
) -> Proxy:
    """OneWindow's proxy: the channels on `public`, the HTTP API on `api` (keep it internal), both spread over the
    Rasa instances at `rasa`; with `actions` the action servers (Rasa's action endpoint points at its bind), with
    `consoles` the staff consoles; `stats`: HAProxy's own metrics."""
    backends = [Backend("rasa", tuple(rasa), rasa_health_path, messages_per_instance)]
    frontends = [Frontend("channels", public, "rasa", "channels"), Frontend("api", api, "rasa", "api")]
    if actions is not None:
        backends.append(Backend("actions", tuple(actions.servers), actions.health_path))
        frontends.append(Frontend("actions", actions.bind, "actions"))
    if consoles is not None:
        backends.append(Backend("consoles", tuple(consoles.servers), consoles.health_path, forwarded_for=True))
        frontends.append(Frontend("consoles", consoles.bind, "consoles"))
    return Proxy(tuple(frontends), tuple(backends), stats, timeouts)


def _seconds(value: float) -> str:
    return f"{max(1, round(value * 1000))}ms"


def _json_string(value: object) -> str:
    """An HAProxy double-quoted argument holding a JSON body (HAProxy unescapes \\" and \\\\)."""
    text = json.dumps(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _answer(status: int, body: object, condition: str) -> str:
    return f"    http-request return status {status} content-type application/json string {_json_string(body)} {condition}"


LOG_FORMAT = (
    '{"event":"haproxy.request","frontend":"%f","backend":"%b","server":"%s","method":"%HM","status":%ST,'
    '"total_ms":%Ta,"queue_ms":%Tw,"connect_ms":%Tc,"response_ms":%Tr,"retries":%rc,"termination":"%ts",'
    '"backend_queue":%bq,"server_connections":%sc}'
)


def _frontend_lines(frontend: Frontend) -> List[str]:
    lines = ["", f"frontend {frontend.name}", f"    bind {frontend.bind}"]
    lines.append(_answer(413, {"error": "the request is too large"}, f"if {{ req.hdr_val(content-length) gt {BODY_LIMIT} }}"))
    if frontend.kind == "channels":
        lines += [
            _answer(200, {"status": "ok"}, "if { url /health } { method GET HEAD }"),
            f"    acl channel_path path -m reg {CHANNEL_PATH}",
            _answer(404, {"error": "not found"}, "unless channel_path"),
        ]
    elif frontend.kind == "api":
        secret = f'"${{{API_SECRET_VARIABLE}}}"'
        lines += [
            _answer(401, {"error": "a bearer token is required"}, "unless { http_auth_bearer -m found }"),
            _answer(
                401, {"error": "the token is not valid"}, f'unless {{ http_auth_bearer,jwt_verify("HS256",{secret}) -m int 1 }}'
            ),
            "    http-request set-var(txn.now) date",
            _answer(
                401,
                {"error": "the token has expired"},
                "unless { http_auth_bearer,jwt_payload_query('$.exp','int'),sub(txn.now) -m int gt 0 }",
            ),
            _answer(
                403,
                {"error": "the token's role may not use the HTTP API"},
                "unless { http_auth_bearer,jwt_payload_query('$.user.role') -m str admin }",
            ),
        ]
    lines.append(f"    default_backend {frontend.backend}")
    return lines


def _backend_lines(backend: Backend) -> List[str]:
    inter = _seconds(backend.check_seconds)
    lines = [
        "",
        f"backend {backend.name}",
        "    balance leastconn",
        f"    option httpchk GET {backend.health_path}",
        "    http-check expect status 200",
        "    retry-on conn-failure",
        "    retries 3",
        "    option redispatch 1",
    ]
    if backend.forwarded_for:
        lines.append("    option forwardfor")
    limit = f" maxconn {backend.maxconn}" if backend.maxconn else ""
    lines += [
        f"    server {backend.name}-{n} {address} check inter {inter} fall 2 rise 2{limit}"
        for n, address in enumerate(backend.servers, start=1)
    ]
    return lines


def render(proxy: Proxy) -> str:
    """The haproxy.cfg text for `proxy`."""
    t = proxy.timeouts
    error = {"error": "no server is reachable; try again shortly"}
    lines = [
        "# Rendered by onewindow/infra/haproxy.py: edit the description there, not this file.",
        "global",
        "    log stdout format raw daemon",
        f"    maxconn {proxy.maxconn}",
        f"    nbthread {proxy.threads}",
        "    hard-stop-after 30s",
    ]
    if any(frontend.kind == "api" for frontend in proxy.frontends):
        lines += [
            f".if !defined({API_SECRET_VARIABLE})",
            f'    .alert "{API_SECRET_VARIABLE} is not set: the HTTP API checks tokens with it"',
            ".endif",
        ]
    lines += [
        "",
        "defaults",
        "    mode http",
        "    log global",
        f"    log-format '{LOG_FORMAT}'",
        "    option http-keep-alive",
        "    http-reuse safe",
        f"    timeout connect {_seconds(t.connect)}",
        f"    timeout client {_seconds(t.client)}",
        f"    timeout server {_seconds(t.server)}",
        f"    timeout queue {_seconds(t.queue)}",
        f"    timeout http-request {_seconds(t.http_request)}",
        f"    timeout http-keep-alive {_seconds(t.keep_alive)}",
        f"    timeout check {_seconds(t.check)}",
        f"    timeout tunnel {_seconds(t.tunnel)}",
    ]
    lines += [
        f"    http-error status {status} content-type application/json string {_json_string(error)}" for status in (502, 503, 504)
    ]
    for frontend in proxy.frontends:
        lines += _frontend_lines(frontend)
    for backend in proxy.backends:
        lines += _backend_lines(backend)
    if proxy.stats is not None:
        lines += [
            "",
            "frontend stats",
            f"    bind {proxy.stats}",
            "    no log",
            "    monitor-uri /health/live",
            "    http-request use-service prometheus-exporter if { path /metrics }",
            "    stats enable",
            "    stats uri /stats",
            "    stats refresh 5s",
        ]
    return "\n".join(lines) + "\n"


class InvalidConfig(RuntimeError):
    pass


def check(path: Path, env: Optional[dict] = None) -> None:
    """`haproxy -c -f path`; raises InvalidConfig with HAProxy's alerts when it refuses the file."""
    done = subprocess.run([HAPROXY, "-c", "-f", str(path)], capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise InvalidConfig(f"haproxy refused {path}: {(done.stdout + done.stderr).strip()}")


def write(path: Path, proxy: Proxy, env: Optional[dict] = None) -> Path:
    """Render `proxy` to `path` and check it with haproxy (`env`: the environment HAProxy will have, with the secret)."""
    path.write_text(render(proxy))
    check(path, env)
    return path


def command(path: Path) -> List[str]:
    """HAProxy on `path` in the foreground (-db), as supervisord and the harness run it."""
    return [HAPROXY, "-db", "-f", str(path)]
