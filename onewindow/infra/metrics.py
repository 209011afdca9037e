"""OneWindow's Prometheus metrics (prometheus-client, the default registry) and the HTTP middleware that feeds two of them.

Every process imports the same objects; each exposes what it counted at `GET /metrics` (`metrics_text`).
Labels hold only bounded values: a route's pattern (never the raw path), a channel name from a fixed list, an
intent of the model's domain, a code-set reason; never a sender id or any text a citizen typed.
"""

from __future__ import annotations

import time
from typing import Any, Awaitable, Callable, Optional, Tuple

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

MESSAGES = Counter("onewindow_messages_total", "Messages from citizens, by channel", ["channel"])
TURN_SECONDS = Histogram("onewindow_turn_seconds", "Seconds from a message's arrival to its last reply", ["channel"])
FALLBACKS = Counter("onewindow_fallbacks_total", "Misunderstood messages: nlu (nlu_fallback) or core (no rule)", ["kind"])
INTENTS = Counter("onewindow_intents_total", "Messages by the intent NLU read (other: not in the domain)", ["intent"])
HANDOFFS = Counter("onewindow_handoffs_total", "Handoffs to a person opened, by reason", ["reason"])
HANDOFF_QUEUE_LENGTH = Gauge("onewindow_handoff_queue_length", "Open handoffs waiting for a person (at scrape time)")
ACTIVE_CALLS = Gauge("onewindow_active_calls", "Hotline calls in progress on this gateway")
TELEGRAM_DELIVERY_ERRORS = Counter("onewindow_telegram_delivery_errors_total", "Telegram requests that failed for good")
DATABASE_ERRORS = Counter(
    "onewindow_database_errors_total", "Operational database errors (lost or refused connections)", ["database"]
)
LOCK_ERRORS = Counter("onewindow_lock_errors_total", "Conversation locks that could not be taken")
LOCK_WAIT_SECONDS = Histogram("onewindow_lock_wait_seconds", "Seconds a message waited for its conversation's lock")
HTTP_REQUESTS = Counter("onewindow_http_requests_total", "HTTP requests answered", ["process", "route", "status"])
HTTP_SECONDS = Histogram("onewindow_http_request_seconds", "Seconds to answer an HTTP request", ["process", "route"])
READY = Gauge("onewindow_ready", "1 while the process is ready for traffic, 0 while not (draining, a check failing)", ["process"])

UNMATCHED = "unmatched"  # the route label of a request no route took (a 404): one value, whatever the path
ScrapeHook = Callable[[], Awaitable[None]]


def metrics_text() -> Tuple[bytes, str]:
    """The default registry in Prometheus' text format, and its content type."""
    return generate_latest(), CONTENT_TYPE_LATEST


def observe_request(process: str, route: Optional[str], status: int, started: float) -> None:
    """Count one answered request on `route` (a pattern such as /handoffs/<reference>; None: no route matched)."""
    label = route or UNMATCHED
    HTTP_REQUESTS.labels(process, label, str(status)).inc()
    HTTP_SECONDS.labels(process, label).observe(time.perf_counter() - started)


def sanic_route(request: object) -> Optional[str]:
    """The pattern of the Sanic route that took `request` ("/" + sanic-routing's path), or None."""
    route = getattr(request, "route", None)
    path = getattr(route, "path", None)
    return None if path is None else "/" + str(path).lstrip("/")


def install_sanic(
    app: object, process: str, on_scrape: Optional[ScrapeHook] = None, mark: Callable[[Any], Any] = lambda h: h
) -> None:
    """Add the request counting middleware and `GET /metrics` to a Sanic 21.12 app; `on_scrape` refreshes gauges first."""
    from sanic import Request, Sanic
    from sanic.response import HTTPResponse, raw

    assert isinstance(app, Sanic)

    @app.middleware("request")
    async def _metrics_started(request: Request) -> None:
        request.ctx.metrics_started = time.perf_counter()

    @app.middleware("response")
    async def _metrics_counted(request: Request, response: HTTPResponse) -> None:
        started = getattr(request.ctx, "metrics_started", None)
        if started is not None and response is not None:
            observe_request(process, sanic_route(request), response.status, started)

    async def metrics(_request: Request) -> HTTPResponse:
        if on_scrape is not None:
            await on_scrape()
        body, content_type = metrics_text()
        return raw(body, content_type=content_type)

    app.add_route(mark(metrics), "/metrics", methods=["GET"], name="onewindow_metrics")


def aiohttp_middleware(process: str) -> Any:
    """An aiohttp middleware counting requests by the route's canonical pattern (e.g. /calls/{call_id})."""
    from aiohttp import web

    @web.middleware
    async def counted(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        route = request.match_info.route.resource
        pattern = route.canonical if route is not None else None
        try:
            response = await handler(request)
        except web.HTTPException as error:
            observe_request(process, pattern if error.status != 404 else None, error.status, started)
            raise
        observe_request(process, pattern, response.status, started)
        return response

    return counted


async def aiohttp_metrics(_request: object) -> object:
    """`GET /metrics` for an aiohttp application."""
    from aiohttp import web

    body, content_type = metrics_text()
    return web.Response(body=body, headers={"Content-Type": content_type})


WAIT_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0)


class HandoffWaits:
    """`onewindow_handoff_wait_seconds`: the seconds each claimed handoff waited for a person, read from the handoffs
    table at scrape time (`update`), so every console shows the same cumulative histogram."""

    def __init__(self) -> None:
        self.waits: Tuple[float, ...] = ()

    def update(self, waits: Tuple[float, ...]) -> None:
        self.waits = waits

    def collect(self) -> object:
        from prometheus_client.core import HistogramMetricFamily

        buckets = [(str(edge), sum(1 for wait in self.waits if wait <= edge)) for edge in WAIT_BUCKETS]
        buckets.append(("+Inf", len(self.waits)))
        family = HistogramMetricFamily(
            "onewindow_handoff_wait_seconds", "Seconds a claimed handoff waited for a person (from the handoffs table)"
        )
        family.add_metric([], buckets, sum(self.waits))
        yield family


def handoff_waits() -> HandoffWaits:
    """The one HandoffWaits of this process, registered on first use."""
    global _HANDOFF_WAITS
    if _HANDOFF_WAITS is None:
        from prometheus_client import REGISTRY

        _HANDOFF_WAITS = HandoffWaits()
        REGISTRY.register(_HANDOFF_WAITS)  # type: ignore[arg-type]  # a duck-typed collector
    return _HANDOFF_WAITS


_HANDOFF_WAITS: Optional[HandoffWaits] = None


def count_database_errors(engine: Any, database: str) -> None:
    """Count `engine`'s operational errors (refused or lost connections) in onewindow_database_errors_total{database}."""
    from sqlalchemy import event, exc

    def counted(context: Any) -> None:
        if isinstance(context.sqlalchemy_exception, exc.OperationalError) or context.is_disconnect:
            DATABASE_ERRORS.labels(database).inc()

    event.listen(engine, "handle_error", counted)
