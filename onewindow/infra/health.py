"""Liveness, readiness and draining for every OneWindow process.

`GET /health/live` answers 200 while the process serves. `GET /health/ready` runs the process's named checks
(model loaded, database reachable, Redis reachable when configured) and the draining flag: 200
`{"ready": true, "checks": {...}}`, or 503 with the same body and the failing checks false.

SIGTERM on a Sanic process: readiness goes false at once (draining), the listener stays open answering
not-ready for ONEWINDOW_DRAIN_SECONDS so a proxy's health check notices, then Sanic's own shutdown stops
listening, lets requests in flight finish (SANIC_GRACEFUL_SHUTDOWN_TIMEOUT) and the process exits.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Dict, Optional, Tuple

from sqlalchemy import text
from sqlalchemy.engine import Engine

from onewindow.infra.logs import log_event
from onewindow.infra.metrics import READY
from onewindow.settings.variables import ONEWINDOW_DRAIN_SECONDS

logger = logging.getLogger("onewindow.infra.health")
Check = Callable[[], Awaitable[bool]]
CHECK_SECONDS = 2.0  # a check that takes longer counts as failed


@dataclass
class Readiness:
    """A process's readiness: its named checks and the draining flag."""

    process: str
    checks: Dict[str, Check] = field(default_factory=dict)
    draining: bool = False

    def add(self, name: str, check: Check) -> "Readiness":
        self.checks[name] = check
        return self

    def drain(self) -> None:
        """Not ready from now on (SIGTERM)."""
        self.draining = True
        READY.labels(self.process).set(0)

    async def report(self) -> Tuple[int, Dict[str, Any]]:
        """(HTTP status, body) of `GET /health/ready`."""
        results = {"not_draining": not self.draining}
        for name, check in self.checks.items():
            results[name] = await _passes(check)
        ready = all(results.values())
        READY.labels(self.process).set(1 if ready else 0)
        return (200 if ready else 503), {"ready": ready, "checks": results}


async def _passes(check: Check) -> bool:
    try:
        return bool(await asyncio.wait_for(check(), CHECK_SECONDS))
    except Exception:  # a check that breaks is a check that fails; its class is logged, never its data
        return False


def database_check(engine: Engine) -> Check:
    """`SELECT 1` on `engine`, in a worker thread."""

    def select_one() -> bool:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True

    async def reachable() -> bool:
        return await asyncio.to_thread(select_one)

    return reachable


def redis_check(url: str) -> Check:
    """PING the Redis server at `url`."""

    async def reachable() -> bool:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        try:
            return bool(await client.ping())
        finally:
            await client.close()

    return reachable


def drain_seconds() -> float:
    return max(0.0, ONEWINDOW_DRAIN_SECONDS.read())


def install_sanic(
    app: Any, readiness: Readiness, stop: Optional[Callable[[], None]] = None, mark: Callable[[Any], Any] = lambda h: h
) -> None:
    """`/health/live`, `/health/ready` and SIGTERM draining on a Sanic 21.12 app (`stop`: how to stop it, app.stop;
    `mark`: what the app requires of a handler, e.g. the console's `auth.public`)."""
    from sanic import Request
    from sanic.response import HTTPResponse, json

    async def live(_request: Request) -> HTTPResponse:
        return json({"live": True})

    async def ready(_request: Request) -> HTTPResponse:
        status, body = await readiness.report()
        return json(body, status=status)

    app.add_route(mark(live), "/health/live", methods=["GET", "HEAD"], name="onewindow_health_live")
    app.add_route(mark(ready), "/health/ready", methods=["GET", "HEAD"], name="onewindow_health_ready")

    async def take_over_sigterm(running: Any, loop: asyncio.AbstractEventLoop) -> None:
        """Replace Sanic's SIGTERM handler (registered before this listener runs) by draining first."""
        READY.labels(readiness.process).set(1)
        loop.add_signal_handler(signal.SIGTERM, on_sigterm, loop, stop or running.stop)

    def on_sigterm(loop: asyncio.AbstractEventLoop, stop_now: Callable[[], None]) -> None:
        if readiness.draining:
            return
        readiness.drain()
        seconds = drain_seconds()
        log_event(logger, "health.draining", process=readiness.process, seconds=seconds)
        loop.call_later(seconds, stop_now)

    app.register_listener(take_over_sigterm, "after_server_start")


def install_aiohttp(app: Any, readiness: Readiness, metrics: bool = True) -> None:
    """`/health/live`, `/health/ready` (and `/metrics`) on an aiohttp application."""
    from aiohttp import web

    from onewindow.infra.metrics import aiohttp_metrics

    async def live(_request: web.Request) -> web.Response:
        return web.json_response({"live": True})

    async def ready(_request: web.Request) -> web.Response:
        status, body = await readiness.report()
        return web.json_response(body, status=status)

    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    if metrics:
        app.router.add_get("/metrics", aiohttp_metrics)
