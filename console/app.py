"""The console application: configuration, shared services on `app.ctx`, blueprints.

app.ctx.settings  ConsoleSettings
app.ctx.backend   ServiceBackend on DATABASE_URL (accounts, sessions, audit log, handoffs)
app.ctx.tracker   SQLAlchemy Engine on Rasa's tracker store (endpoints.yml)
app.ctx.desk      StaffDesk (the handoff queue and its actions)
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from sanic import Request, Sanic
from sanic.config import Config
from sanic.exceptions import MethodNotSupported, NotFound
from sanic.response import HTTPResponse
from sqlalchemy.exc import SQLAlchemyError

from console import accounts, analytics, audit, auth, improve, lookups, queue, transcripts, validation
from console.settings import ConsoleSettings
from console.templates import error_page
from onewindow.backend import ServiceBackend
from onewindow.backend.staff_desk import StaffDesk
from onewindow.channels.outbound import OutboundChannels
from onewindow.infra import health, metrics
from onewindow.rasa_plugins.events_table import tracker_engine

STATIC = Path(__file__).parent / "static"
PROCESS = "console"


def install_health(app: Sanic, backend: ServiceBackend) -> None:
    """/health/live, /health/ready (the service database reachable, not draining) and /metrics, with the handoff
    queue's length and waits read from the handoffs table at scrape time."""
    waits = metrics.handoff_waits()

    async def refresh() -> None:
        try:
            waiting, claim_waits = await asyncio.to_thread(backend.handoffs.waiting_figures)
        except SQLAlchemyError:  # the database is away: the last figures stay, the error is counted by the engine
            return
        metrics.HANDOFF_QUEUE_LENGTH.set(waiting)
        waits.update(claim_waits)

    readiness = health.Readiness(PROCESS).add("database", health.database_check(backend.engine))
    health.install_sanic(app, readiness, mark=auth.public)
    metrics.install_sanic(app, PROCESS, on_scrape=refresh, mark=auth.public)


def create_app(settings: ConsoleSettings) -> Sanic:
    config = Config()
    config.REGISTER = False  # several apps may be created in one process (tests)
    config.GRACEFUL_SHUTDOWN_TIMEOUT = 2.0  # live queue streams never end by themselves
    config.REQUEST_MAX_SIZE = 1_000_000
    config.FALLBACK_ERROR_FORMAT = "text"
    config.PROXIES_COUNT = settings.proxies_count  # X-Forwarded-For is believed only behind that many proxies
    app = Sanic("onewindow_console", config=config)
    app.ctx.settings = settings
    app.ctx.backend = ServiceBackend.from_url(settings.database_url)
    app.ctx.tracker = tracker_engine(settings.endpoints)
    app.ctx.desk = StaffDesk(app.ctx.backend, settings.rasa_url, OutboundChannels.from_environment(), settings.rasa_api_secret)
    app.static("/static", str(STATIC), name="static")
    app.blueprint([accounts.bp, queue.bp, audit.bp, transcripts.bp, improve.bp, analytics.bp, lookups.bp])
    validation.install(app)
    auth.install(app)
    queue.install(app)

    install_health(app, app.ctx.backend)

    @app.exception(NotFound, MethodNotSupported)
    async def not_found(request: Request, exception: Exception) -> HTTPResponse:
        return error_page(request, 404 if isinstance(exception, NotFound) else 405, "There is no such page.")

    @app.after_server_stop
    async def close(app: Sanic, _loop: object) -> None:
        app.ctx.backend.engine.dispose()
        app.ctx.tracker.dispose()

    return app
