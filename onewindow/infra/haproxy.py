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

Frontends:

- `channels` (the public port): only a channel's path, /webhooks/<channel>/..., exactly as sent (CHANNEL_PATH: no
  percent-encoding, no dot segments, no empty segment; the query is not part of the check) is forwarded, unchanged
  (HAProxy 2.6 normalises no URI unless told to); HAProxy answers `GET`/`HEAD /health` and `/health/live` itself
  with `{"status": "ok"}` and `/health/ready` with 200 while its backend has a server up (503 otherwise); anything
  else is a 404 `{"error": "not found"}` that reaches no server. With a `BotWebhook`, the Telegram bot's path
  (a channel path too) goes to the bots: the active one, and its standby (`backup`) only while it is down.
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
a request lost that way gets a JSON 502, or, on a kept-alive client connection, sees that connection closed with
no answer (what HAProxy does when the server dies mid-request: tests/test_multihost.py). Ordering is not the proxy's job when the instances share a
lock store (onewindow/rasa_plugins/lock_store.py orders a conversation's messages across instances). Without one
(`make run`'s default: each instance its own in-memory lock), `sticky=True` keeps each conversation on one instance
(a stick table keyed by the REST body's `sender` or the API path's conversation id), so Rasa's lock there orders
it; when that instance is down, the conversation moves to another (the tracker store is shared).

The `stats` listener (internal) serves HAProxy's own Prometheus metrics at /metrics (the built-in
prometheus-exporter), its stats page at /stats, /health/live and /health/ready (200 while every backend has a server
up). Logs: one JSON line per request on stdout
(frontend, backend, server, status, timings, retries, termination state; no path, which can hold a conversation
id).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Literal, Optional, Sequence, Tuple

from onewindow.settings import API_SECRET_VARIABLE
from onewindow.settings.variables import ONEWINDOW_MESSAGES_PER_INSTANCE

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
READY_PATH = "/health/ready"  # every process's readiness (onewindow/infra/health.py)
CHANNEL_PATH = r"^/webhooks/[A-Za-z0-9_]+(/[A-Za-z0-9_-]*)*$"  # the public port's paths (Rasa's channels, the bot)
BODY_LIMIT = 4 * 2**20  # bytes
# a server that refuses a connection is down at once (not after two failed checks), so the retry goes elsewhere
REFUSED_MARKS_DOWN = "observe layer4 error-limit 1 on-error mark-down"
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
    sticky: bool = False  # a conversation stays on one server (no lock store shared by the servers)
    backups: Tuple[Address, ...] = ()  # used only while every server is down (a standby)


@dataclass(frozen=True)
class Frontend:
    name: str
    bind: Address
    backend: str
    kind: FrontendKind = "plain"
    routes: Tuple[Tuple[str, str], ...] = ()  # (path prefix, backend): requests under the prefix go to that backend


@dataclass(frozen=True)
class Timeouts:
    """Seconds. `server` must exceed the longest turn (Rasa's lock lifetime, 60 s)."""

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
        named = [frontend.backend for frontend in self.frontends]
        named += [backend for frontend in self.frontends for _, backend in frontend.routes]
        missing = [name for name in named if name not in names]
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


@dataclass(frozen=True)
class BotWebhook:
    """The Telegram bot's webhook on the public port: `path` (under /webhooks/) to `active`, `standby` while it is down."""

    path: str
    active: Sequence[Address]
    standby: Sequence[Address] = ()
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
    sticky: bool = False,
    bot: Optional[BotWebhook] = None,
) -> Proxy:
    """OneWindow's proxy: the channels on `public`, the HTTP API on `api` (keep it internal), both spread over the
    Rasa instances at `rasa` (`sticky`: each conversation on one instance, when they share no lock store); with
    `actions` the action servers (Rasa's action endpoint points at its bind), with `consoles` the staff consoles,
    with `bot` the Telegram bot's webhook on the public port; `stats`: HAProxy's own metrics."""
    backends = [Backend("rasa", tuple(rasa), rasa_health_path, messages_per_instance, sticky=sticky)]
    routes: Tuple[Tuple[str, str], ...] = ()
    if bot is not None:
        if not re.match(CHANNEL_PATH, bot.path):
            raise ValueError(f"the bot's webhook path must be a channel path (/webhooks/<name>/...): {bot.path}")
        backends.append(Backend("bot", tuple(bot.active), bot.health_path, backups=tuple(bot.standby)))
        routes = ((bot.path, "bot"),)
    frontends = [Frontend("channels", public, "rasa", "channels", routes), Frontend("api", api, "rasa", "api")]
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
            "    acl probe method GET HEAD",
            _answer(200, {"status": "ok"}, "if probe { url /health /health/live }"),
            _answer(200, {"status": "ready"}, f"if probe {{ url /health/ready }} {{ nbsrv({frontend.backend}) gt 0 }}"),
            _answer(503, {"status": "not ready"}, "if probe { url /health/ready }"),
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
    lines += [
        f"    use_backend {backend} if {{ path {prefix} }} || {{ path_beg {prefix}/ }}" for prefix, backend in frontend.routes
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
    if backend.sticky:
        lines += [
            "    option http-buffer-request",
            "    stick-table type string len 128 size 100k expire 30m",
            "    http-request set-var(txn.conversation) req.body,json_query('$.sender') if { method POST } { path_beg /webhooks/ }",
            "    http-request set-var(txn.conversation) path,field(3,/),url_dec if { path_beg /conversations/ }",
            "    stick on var(txn.conversation)",
        ]
    limit = f" maxconn {backend.maxconn}" if backend.maxconn else ""
    servers = [(address, "") for address in backend.servers] + [(address, " backup") for address in backend.backups]
    lines += [
        f"    server {backend.name}-{n} {address} check inter {inter} fall 2 rise 2 {REFUSED_MARKS_DOWN}{limit}{backup}"
        for n, (address, backup) in enumerate(servers, start=1)
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
            _answer(
                200,
                {"status": "ready"},
                "if { path /health/ready } " + " ".join(f"{{ nbsrv({b.name}) gt 0 }}" for b in proxy.backends),
            ),
            _answer(503, {"status": "not ready"}, "if { path /health/ready }"),
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
