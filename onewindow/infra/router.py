"""Router: one public port in front of one or more Rasa server instances, with one queue.

Two listeners. The public one (`--host`/`--port`) forwards only the channels' paths,
/webhooks/<channel>/... exactly as sent (no percent-encoding, no dot segments), and answers
GET /health itself; every other path gets a 404 and reaches no instance. The internal one
(`--api-host`/`--api-port`, loopback by default) forwards Rasa's HTTP API, and only requests with
an admin token signed with RASA_JWT_SECRET (onewindow/infra/api_auth.py; each Rasa instance checks it
again). The router refuses to start without RASA_JWT_SECRET.

All of a Rasa server's work runs on one core, so several instances use several cores. They
share the tracker store (endpoints.yml), so any instance can continue any conversation, but
a conversation's messages must be worked on in order: while an instance works on a
conversation, its next message goes to the same instance (where Rasa's lock orders them).
The conversation is read from the REST channel's JSON body or the HTTP API path
(/conversations/<id>/...); other requests (status, version) go to the first instance.

Left to itself, a Rasa server works on every message it has received at once, so each
message's steps (tracker, NLU, predictions, calls to the action server) queue behind
everybody else's, and under load slow turns become very slow. The router instead keeps
waiting messages in one queue, oldest first, and gives each instance at most
`--messages-per-instance` (default 2: one working while the other waits for the action
server) at a time, preferring the instance that served the conversation last. A message
that an instance refuses (it is down or restarting) goes to another instance, and the refusing
one rests for 5 seconds; a message lost while an instance worked on it is not sent again (it
may have been handled), the caller gets a 502.
Measured with bench/rest_load.py (20 conversations, 2 instances): p95 589 ms when each
conversation was bound to an instance by a hash, 263 to 287 ms with this queue.

    RASA_JWT_SECRET=... python -m onewindow.infra.router --port 5005 --api-port 5100 \
        --upstream http://127.0.0.1:5101 --upstream http://127.0.0.1:5102
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import signal
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, List, Optional, Tuple
from urllib.parse import unquote

from aiohttp import ClientConnectionError, ClientConnectorError, ClientSession, ClientTimeout, web
from yarl import URL

from onewindow.infra.api_auth import refusal
from onewindow.infra.health import Readiness, drain_seconds, install_aiohttp
from onewindow.infra.logs import configure, log_event
from onewindow.infra.metrics import aiohttp_middleware
from onewindow.settings import rasa_jwt_secret
from onewindow.settings.variables import ONEWINDOW_MESSAGES_PER_INSTANCE

log = logging.getLogger("onewindow.infra.router")
CONVERSATION_PATH = re.compile(r"^/conversations/([^/]+)/")
CHANNEL_PATH = re.compile(r"^/webhooks/[A-Za-z0-9_]+(/[A-Za-z0-9_-]*)*$")
MESSAGES_PER_INSTANCE = ONEWINDOW_MESSAGES_PER_INSTANCE.default_value  # 2: one working, one waiting for the actions
PROCESS = "router"
READINESS = Readiness(PROCESS)  # ready while not draining
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}


def sender_of(method: str, path: str, body: bytes) -> Optional[str]:
    """The conversation a request belongs to, or None when it belongs to none."""
    match = CONVERSATION_PATH.match(path)
    if match:
        return unquote(match.group(1))
    if method == "POST" and path.startswith("/webhooks/") and body:
        try:
            sender = json.loads(body).get("sender")
        except (ValueError, AttributeError, RecursionError):  # not a JSON object, or nested too deep to read
            return None
        return str(sender) if sender is not None else None
    return None


@dataclass
class Dispatcher:
    """Which instance works on a message.

    A message of a conversation that an instance is working on goes to that instance (Rasa's
    lock keeps the conversation's messages in order there). Any other message waits its turn
    in one queue, oldest first, for an instance working on fewer than `limit` messages; it
    goes back to the instance that served its conversation last when that one is free.
    An instance that refused a connection rests for `rest_seconds` (unless all of them do).
    """

    upstreams: List[str]
    limit: int = MESSAGES_PER_INSTANCE
    working: Dict[str, int] = field(default_factory=dict)
    serving: Dict[str, List[Any]] = field(default_factory=dict)  # sender -> [upstream, messages]
    last: "OrderedDict[str, str]" = field(default_factory=OrderedDict)
    waiting: Deque[Tuple[str, "asyncio.Future[str]"]] = field(default_factory=deque)
    remembered: int = 10_000
    rest_seconds: float = 5.0
    resting: Dict[str, float] = field(default_factory=dict)  # upstream -> when to try it again

    def __post_init__(self) -> None:
        self.working = {upstream: 0 for upstream in self.upstreams}

    async def acquire(self, sender: str) -> str:
        if sender in self.serving or (not self.waiting and self._free()):
            return self._assign(sender)
        turn: "asyncio.Future[str]" = asyncio.get_running_loop().create_future()
        self.waiting.append((sender, turn))
        try:
            return await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release(sender, turn.result())
            raise

    def release(self, sender: str, upstream: str) -> None:
        self.working[upstream] -= 1
        entry = self.serving[sender]
        entry[1] -= 1
        if entry[1] == 0:
            del self.serving[sender]
            self.last[sender] = upstream
            self.last.move_to_end(sender)
            if len(self.last) > self.remembered:
                self.last.popitem(last=False)
        while self.waiting and (self.waiting[0][0] in self.serving or self._free()):
            waiting_sender, turn = self.waiting.popleft()
            if not turn.done():
                turn.set_result(self._assign(waiting_sender))

    def unreachable(self, upstream: str) -> None:
        """The instance refused a connection: give its messages to the others for a while."""
        self.resting[upstream] = time.monotonic() + self.rest_seconds

    def _free(self) -> List[str]:
        now = time.monotonic()
        usable = [upstream for upstream in self.upstreams if self.resting.get(upstream, 0.0) <= now] or self.upstreams
        return [upstream for upstream in usable if self.working[upstream] < self.limit]

    def _assign(self, sender: str) -> str:
        if sender in self.serving:
            upstream = self.serving[sender][0]
        else:
            free = self._free()
            before = self.last.get(sender)
            upstream = before if before in free else min(free, key=self.working.__getitem__)
            self.serving[sender] = [upstream, 0]
        self.serving[sender][1] += 1
        self.working[upstream] += 1
        return upstream


class Relay:
    """Forwards requests to the instances: a conversation's through the dispatcher, others to the first instance."""

    def __init__(self, upstreams: List[str], messages_per_instance: int, timeout_seconds: float) -> None:
        self.upstreams = upstreams
        self.dispatcher = Dispatcher(upstreams, messages_per_instance)
        self.timeout = ClientTimeout(total=timeout_seconds)
        self.session: Optional[ClientSession] = None

    async def forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        sender = sender_of(request.method, request.path, body)
        if sender is None:
            try:
                return await self._relay(request, body, self.upstreams[0])
            except ClientConnectorError:
                return unreachable()
        for _ in self.upstreams:
            upstream = await self.dispatcher.acquire(sender)
            try:
                return await self._relay(request, body, upstream)
            except ClientConnectorError:  # the message never reached this instance: another one takes it
                log_event(log, "router.upstream_refused", upstream=upstream)
                self.dispatcher.unreachable(upstream)
            finally:
                self.dispatcher.release(sender, upstream)
        return unreachable()

    async def close(self, _app: web.Application) -> None:
        if self.session is not None and not self.session.closed:
            await self.session.close()

    async def _relay(self, request: web.Request, body: bytes, upstream: str) -> web.Response:
        if self.session is None or self.session.closed:
            self.session = ClientSession(timeout=self.timeout, auto_decompress=False)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        url = URL(upstream + request.raw_path, encoded=True)  # the path exactly as checked, not re-normalised
        try:
            async with self.session.request(request.method, url, data=body, headers=headers) as answer:
                payload = await answer.read()
                kept = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
                return web.Response(body=payload, status=answer.status, headers=kept)
        except ClientConnectorError:
            raise  # not delivered: the caller may send it elsewhere
        except ClientConnectionError:  # lost while working: the message may have been handled, so not sent again
            log_event(log, "router.upstream_lost", upstream=upstream)
            return unreachable()


def unreachable() -> web.Response:
    return web.json_response({"error": "no Rasa server is reachable; try again shortly"}, status=502)


def is_channel_path(raw_path: str) -> bool:
    """A channel's path (/webhooks/<channel>/...), as sent: no percent-encoding, no dot segments."""
    return CHANNEL_PATH.match(raw_path.partition("?")[0]) is not None


def make_apps(
    upstreams: List[str],
    api_secret: str,
    messages_per_instance: int = MESSAGES_PER_INSTANCE,
    timeout_seconds: float = 60.0,
) -> Tuple[web.Application, web.Application]:
    """The public application (the channels and a liveness answer) and the internal one (the HTTP API, with a token).

    Both share one dispatcher, so a conversation's API calls keep their order with its messages.
    """
    relay = Relay(upstreams, messages_per_instance, timeout_seconds)

    async def public(request: web.Request) -> web.Response:
        if request.raw_path == "/health" and request.method in ("GET", "HEAD"):
            return web.json_response({"status": "ok"})
        if not is_channel_path(request.raw_path):
            return web.json_response({"error": "not found"}, status=404)
        return await relay.forward(request)

    async def internal(request: web.Request) -> web.Response:
        refused = refusal(api_secret, request.headers.get("Authorization"))
        if refused is not None:
            status, reason = refused
            log_event(log, "router.api_refused", status=status, reason=reason, method=request.method)
            return web.json_response({"error": reason}, status=status)
        return await relay.forward(request)

    apps = []
    for handler in (public, internal):
        app = web.Application(client_max_size=4 * 2**20, middlewares=[aiohttp_middleware(PROCESS)])
        install_aiohttp(app, READINESS, metrics=handler is internal)  # /metrics on the loopback listener only
        app.router.add_route("*", "/{tail:.*}", handler)
        app.on_cleanup.append(relay.close)  # type: ignore[arg-type]  # aiohttp 3.9's Signal type predates aiosignal 1.4's
        apps.append(app)
    return apps[0], apps[1]


async def serve(apps: List[Tuple[web.Application, str, int]]) -> None:
    """Serve each (application, host, port) until SIGTERM or SIGINT."""
    runners = []
    for app, host, port in apps:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        runners.append(runner)
    stopped = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(signal_number, stopped.set)
    log_event(log, "router.started", listeners=[f"{host}:{port}" for _, host, port in apps])
    await stopped.wait()
    READINESS.drain()  # /health/ready answers 503 while the proxy in front notices
    log_event(log, "router.draining", seconds=drain_seconds())
    await asyncio.sleep(drain_seconds())
    for runner in reversed(runners):
        await runner.cleanup()


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1", help="the public listener's address (the channels)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--api-host", default="127.0.0.1", help="the internal listener's address (the HTTP API)")
    parser.add_argument("--api-port", type=int, required=True)
    parser.add_argument("--upstream", action="append", required=True, help="a Rasa server URL; repeat for each instance")
    parser.add_argument(
        "--messages-per-instance",
        type=int,
        default=ONEWINDOW_MESSAGES_PER_INSTANCE.read(),
        help=f"messages an instance works on at once; the rest wait in the router's queue (default {MESSAGES_PER_INSTANCE})",
    )
    args = parser.parse_args(argv)
    api_secret = rasa_jwt_secret()
    configure()
    if args.messages_per_instance < 1:
        parser.error("--messages-per-instance must be at least 1")
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # the router works on the standard event loop too, only slower
        pass
    public, internal = make_apps([u.rstrip("/") for u in args.upstream], api_secret, args.messages_per_instance)
    asyncio.run(serve([(public, args.host, args.port), (internal, args.api_host, args.api_port)]))


if __name__ == "__main__":
    main()
