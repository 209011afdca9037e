"""Webhook mode: an aiohttp endpoint that answers Telegram only after the update has been handled.

python-telegram-bot's own `run_webhook` answers 200 as soon as the update is in its in-memory queue
(telegram/ext/_utils/webhookhandler.py, `TelegramHandler.post`), so an update that a dying process had
queued is lost: Telegram never delivers it again. Here the answer waits for the handlers:

- the `X-Telegram-Bot-Api-Secret-Token` header must equal TELEGRAM_SECRET_TOKEN (403 otherwise);
- a body that is not an update (no update_id) is refused with 400 (never 5xx: Telegram would retry it for a day); an
  update python-telegram-bot cannot read is handled as its id alone and answered 200 (bot/processing.py `readable`);
- the update is taken in the ledger (bot/ledger.py, the service database), handled through the
  application's update processor (per-chat order, bot/processing.py), marked answered, then 200;
- a second delivery of an update answered before gets 200 and nothing else; one another live process is
  handling gets 409 (Telegram delivers it again later); one this process is handling waits for it.

The listener also serves `/health/live`, `/health/ready` (database reachable, not draining) and
`/metrics`. SIGTERM: readiness goes false (the proxy's check moves new updates to the standby), updates in
flight finish, then the process exits. Every process calls setWebhook with the same public URL at start,
which is idempotent, so whichever of the active and the standby starts last leaves it as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import signal
from typing import Dict, Optional
from urllib.parse import urlparse

from aiohttp import web
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.ext import Application, ExtBot

from bot.ledger import Taken, UpdateLedger
from bot.processing import readable
from bot.settings import BotSettings
from onewindow.infra.health import Readiness, database_check, drain_seconds, install_aiohttp
from onewindow.infra.logs import log_event

logger = logging.getLogger("onewindow.bot")
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_BODY = 1024 * 1024  # an update is a few kilobytes
FINISH_SECONDS = 30.0  # after SIGTERM, how long updates in flight may take
BIGGEST_ID = 2**63 - 1


class WebhookEndpoint:
    """The POST handler; `handling` holds this process's updates in flight, by update_id."""

    def __init__(self, application: Application, ledger: UpdateLedger, secret: Optional[str]) -> None:
        self.application = application
        self.ledger = ledger
        self.secret = secret or ""
        self.handling: Dict[int, "asyncio.Task[Taken]"] = {}

    async def receive(self, request: web.Request) -> web.Response:
        given = request.headers.get(SECRET_HEADER, "")
        if not self.secret or not hmac.compare_digest(given.encode(), self.secret.encode()):
            log_event(logger, "bot.webhook_refused", reason="secret token missing or wrong")
            return web.json_response({"ok": False, "error": "wrong secret token"}, status=403)
        update = self._update(await request.read())
        if update is None:
            return web.json_response({"ok": False, "error": "not an update"}, status=400)
        in_flight = self.handling.get(update.update_id)
        if in_flight is None:
            in_flight = asyncio.get_running_loop().create_task(self._take_and_handle(update))
            self.handling[update.update_id] = in_flight
            in_flight.add_done_callback(lambda _: self.handling.pop(update.update_id, None))
        try:
            taken = await asyncio.shield(in_flight)  # a dropped connection does not stop the turn
        except SQLAlchemyError as error:
            log_event(logger, "bot.webhook_ledger_unavailable", level=logging.ERROR, error=type(error).__name__)
            return web.json_response({"ok": False, "error": "try again"}, status=503, headers={"Retry-After": "2"})
        if taken is Taken.BUSY:
            return web.json_response({"ok": False, "error": "being handled"}, status=409, headers={"Retry-After": "2"})
        return web.json_response({"ok": True})

    def _update(self, body: bytes) -> Optional[Update]:
        try:
            data = json.loads(body)
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        update_id = data.get("update_id")
        if not isinstance(update_id, int) or isinstance(update_id, bool) or not 0 <= update_id <= BIGGEST_ID:
            return None
        update = Update.de_json(readable(data, self.application.bot), self.application.bot)  # unreadable: its id alone
        if isinstance(self.application.bot, ExtBot):
            self.application.bot.insert_callback_data(update)
        return update

    async def _take_and_handle(self, update: Update) -> Taken:
        taken = await asyncio.to_thread(self.ledger.take, update.update_id)
        if taken is not Taken.HANDLE:
            if taken is Taken.ANSWERED:
                log_event(logger, "bot.duplicate_update_dropped", update_id=update.update_id)
            return taken
        renewing = asyncio.get_running_loop().create_task(self._keep_lease(update.update_id))
        try:
            processor = self.application.update_processor
            await processor.process_update(update, self.application.process_update(update))
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
        await asyncio.to_thread(self.ledger.done, update.update_id)
        return taken

    async def _keep_lease(self, update_id: int) -> None:
        every = max(self.ledger.lease.total_seconds() / 3, 0.1)
        while True:
            await asyncio.sleep(every)
            try:
                await asyncio.to_thread(self.ledger.renew, update_id)
            except SQLAlchemyError as error:
                log_event(logger, "bot.webhook_lease_not_renewed", level=logging.WARNING, error=type(error).__name__)

    async def finish(self, timeout: float) -> None:
        """Wait for the updates in flight (after SIGTERM)."""
        if self.handling:
            await asyncio.wait(list(self.handling.values()), timeout=timeout)


def bot_id(token: str) -> str:
    """The numeric part of the token (the bot's user id): no secret, one ledger per bot."""
    return token.split(":", 1)[0][:20]


def webhook_app(endpoint: WebhookEndpoint, path: str, readiness: Readiness) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_post(path, endpoint.receive)
    if path != "/" and not path.endswith("/"):
        app.router.add_post(path + "/", endpoint.receive)
    install_aiohttp(app, readiness)
    return app


async def serve_webhook(application: Application, settings: BotSettings, engine: Engine) -> None:
    """Run the bot behind its webhook until SIGTERM or SIGINT, then drain and stop."""
    assert settings.webhook_url is not None
    ledger = UpdateLedger(engine, bot_id(settings.token), settings.update_lease)
    endpoint = WebhookEndpoint(application, ledger, settings.secret_token)
    readiness = Readiness("bot").add("database", database_check(engine))
    path = urlparse(settings.webhook_url).path or "/"
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await application.initialize()
    try:
        if application.post_init:
            await application.post_init(application)
        await application.start()
        runner = web.AppRunner(webhook_app(endpoint, path, readiness), access_log=None, shutdown_timeout=FINISH_SECONDS)
        await runner.setup()
        await web.TCPSite(runner, settings.webhook_listen, settings.webhook_port).start()
        await application.bot.set_webhook(
            settings.webhook_url, secret_token=settings.secret_token, allowed_updates=Update.ALL_TYPES
        )
        log_event(logger, "bot.webhook_listening", port=settings.webhook_port)
        await stopping.wait()
        readiness.drain()
        log_event(logger, "bot.webhook_draining", in_flight=len(endpoint.handling))
        await asyncio.sleep(drain_seconds())
        await endpoint.finish(FINISH_SECONDS)
        await runner.cleanup()
        await application.stop()
        if application.post_stop:
            await application.post_stop(application)
    finally:
        await application.shutdown()
        if application.post_shutdown:
            await application.post_shutdown(application)


def run_webhook(application: Application, settings: BotSettings, engine: Engine) -> None:
    asyncio.run(serve_webhook(application, settings, engine))
