"""The console application: configuration, shared services on `app.ctx`, blueprints.

app.ctx.settings  ConsoleSettings
app.ctx.backend   ServiceBackend on DATABASE_URL (accounts, sessions, audit log, handoffs)
app.ctx.tracker   SQLAlchemy Engine on Rasa's tracker store (endpoints.yml)
app.ctx.desk      StaffDesk (the handoff queue and its actions)
"""

from __future__ import annotations

from pathlib import Path

from sanic import Request, Sanic
from sanic.config import Config
from sanic.exceptions import MethodNotSupported, NotFound
from sanic.response import HTTPResponse

from console import accounts, analytics, audit, auth, improve, lookups, queue, transcripts, validation
from console.settings import ConsoleSettings
from console.templates import error_page
from onewindow.backend import ServiceBackend
from onewindow.backend.staff_desk import StaffDesk
from onewindow.channels.outbound import OutboundChannels
from onewindow.rasa_plugins.events_table import tracker_engine

STATIC = Path(__file__).parent / "static"


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

    @app.exception(NotFound, MethodNotSupported)
    async def not_found(request: Request, exception: Exception) -> HTTPResponse:
        return error_page(request, 404 if isinstance(exception, NotFound) else 405, "There is no such page.")

    @app.after_server_stop
    async def close(app: Sanic, _loop: object) -> None:
        app.ctx.backend.engine.dispose()
        app.ctx.tracker.dispose()

    return app
