"""The hotline gateway: an AudioSocket server for Asterisk, one asynchronous session per call,
and a small HTTP control port the dialplan uses before and after the call:

    POST /calls/<call id>          caller=<number>   (optional: who is calling)
    GET  /calls/<call id>/outcome  -> "transfer" or "hangup" (after AudioSocket returns)
    GET  /health                   -> {"calls": <active calls>, "speech": <callers can speak>, the speech model's
                                       language, the assistant's, whether they match, and why speech is off}

Each call is built here from the real stages (`CallFactory`): the AudioSocket line, keypad tones,
webrtcvad's utterances and barge-in, the recogniser, Rasa, and espeak-ng's voice through the prompt cache.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, Optional

from aiohttp import web

from onewindow.backend import ServiceBackend
from onewindow.backend.transcripts import CallRecord
from onewindow.channels.rasa_client import RasaClient
from onewindow.infra.health import Readiness, install_aiohttp
from onewindow.infra.logs import log_event
from onewindow.infra.metrics import ACTIVE_CALLS, aiohttp_middleware
from voice.audiosocket import AudioSocketTransport, ProtocolError
from voice.call import CallSession, CallSettings, LocalTurns
from voice.dtmf import DtmfDetector
from voice.listening import Listener
from voice.recognition import LiveRecognition, SpeechUnavailable
from voice.sentence_audio import SentenceAudio, sentences
from voice.speech_language import Hearing, hearing, keypad_only
from voice.speech_synthesis import PromptCache, Voice
from voice.transport import RATE, CallTransport
from voice.vad import BargeIn, UtteranceDetector

logger = logging.getLogger("onewindow.voice.gateway")
KEEP_OUTCOMES = 10_000
PROCESS = "voice"


@dataclass(frozen=True)
class Address:
    host: str = "127.0.0.1"
    port: int = 9092
    control_port: int = 9093


def telephone_listener(recogniser: Optional[LiveRecognition], end_silence_ms: int, max_utterance_ms: int) -> Listener:
    """The caller's side of a call on the real detectors: keypad tones (Goertzel), utterances and barge-in (webrtcvad)."""
    return Listener(
        recogniser,
        UtteranceDetector(rate=RATE, end_silence_ms=end_silence_ms, max_utterance_ms=max_utterance_ms),
        BargeIn(rate=RATE),
        DtmfDetector(rate=RATE),
    )


@dataclass(frozen=True)
class CallFactory:
    """The real stages every call is built from (the gateway's calls, the kiosk's conversations)."""

    recogniser: Optional[LiveRecognition]  # None: keypad only
    prompts: PromptCache
    assistant: RasaClient
    backend: ServiceBackend
    settings: CallSettings
    speech: bool
    local_turns: Optional[LocalTurns] = None

    def call(self, transport: CallTransport) -> CallSession:
        """A new call on `transport`."""
        listener = telephone_listener(self.recogniser, self.settings.end_silence_ms, self.settings.max_utterance_ms)
        return CallSession(
            transport,
            listener,
            SentenceAudio(self.prompts),
            self.assistant,
            self.backend,
            self.settings,
            self.speech,
            self.local_turns,
        )


def line_outcome(record: CallRecord) -> str:
    """What the dialplan does after the call: "transfer" to a person, or "hangup"."""
    return "transfer" if record.outcome == "transferred" else "hangup"


class Gateway:
    def __init__(
        self,
        recogniser: Optional[LiveRecognition],
        prompts: PromptCache,
        backend: ServiceBackend,
        rasa: RasaClient,
        call_settings: Optional[CallSettings] = None,
        hears: Optional[Hearing] = None,
        local_turns: Optional[LocalTurns] = None,
    ) -> None:
        """`hears`: the speech check (voice/speech_language.py) when the caller made it, else one made here from
        the recogniser's model folder; `local_turns`: how turns the gateway answers itself reach the conversation."""
        self.hears = hears or hearing(recogniser, getattr(recogniser, "path", None))
        self.recogniser, self.prompts, self.backend, self.rasa = self.hears.recogniser, prompts, backend, rasa
        self.call_settings, self.local_turns = call_settings or CallSettings(), local_turns
        self.callers: Dict[str, str] = {}
        self.outcomes: "OrderedDict[str, str]" = OrderedDict()
        self.calls: Dict[str, CallSession] = {}
        self._server: Optional[asyncio.AbstractServer] = None
        self._control: Optional[web.AppRunner] = None
        self.readiness = Readiness(PROCESS)

    async def start(self, address: Address = Address()) -> "Gateway":
        if self.recogniser is not None:
            try:
                await self.recogniser.start()  # recognition worker processes load their models
            except SpeechUnavailable as error:
                log_event(logger, "gateway.speech_unavailable", reason=str(error))
                self.recogniser, self.hears = None, keypad_only(str(error), self.hears.assistant_language)
        for sentence in sentences(
            self.call_settings.greeting
        ):  # starts the speech worker; the greeting is then cached as calls play it
            await asyncio.to_thread(self.prompts.get, sentence, Voice(), RATE)
        self._server = await asyncio.start_server(self._handle, address.host, address.port)
        self._control = web.AppRunner(self._control_app(), access_log=None)
        await self._control.setup()
        await web.TCPSite(self._control, address.host, address.control_port).start()
        log_event(
            logger,
            "gateway.listening",
            port=address.port,
            control_port=address.control_port,
            silence_action=self.call_settings.silence_action,
            turns_to_conversation=self.local_turns is not None,
            **self.hears.health(),
        )
        return self

    async def drain(self, seconds: float) -> None:
        """SIGTERM: not ready and no new calls at once; every call in progress hears an apology and is hung up
        (after the turn it is in); calls still open after `seconds` are cut."""
        self.readiness.drain()
        if self._server is not None:
            self._server.close()
        log_event(logger, "gateway.draining", active=len(self.calls), seconds=seconds)
        for session in list(self.calls.values()):
            session.close()
        deadline = asyncio.get_running_loop().time() + seconds
        while self.calls and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        if self.calls:
            log_event(logger, "gateway.calls_cut", level=logging.WARNING, active=len(self.calls))

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._control is not None:
            await self._control.cleanup()
        if self.recogniser is not None:
            await self.recogniser.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        transport = AudioSocketTransport(reader, writer)
        try:
            call_id = await transport.open()
        except (ProtocolError, asyncio.TimeoutError, ValueError, ConnectionError) as error:
            log_event(logger, "gateway.call_refused", level=logging.WARNING, error=type(error).__name__)
            writer.close()
            return
        if call_id in self.calls:  # a second line with a live call's id: refused, the call in progress goes on
            log_event(logger, "gateway.call_refused", level=logging.WARNING, error="call id in use", call=call_id)
            await transport.hang_up()
            return
        transport.caller = self.callers.pop(call_id, None)
        calls = CallFactory(
            self.recogniser, self.prompts, self.rasa, self.backend, self.call_settings, self.hears.speech, self.local_turns
        )
        session = calls.call(transport)
        self.calls[call_id] = session
        ACTIVE_CALLS.inc()
        log_event(logger, "gateway.call_started", call=call_id, active=len(self.calls))
        try:
            record = await session.run()
        finally:
            del self.calls[call_id]
            ACTIVE_CALLS.dec()
        self.outcomes[call_id] = line_outcome(record)
        while len(self.outcomes) > KEEP_OUTCOMES:
            self.outcomes.popitem(last=False)

    def _control_app(self) -> web.Application:
        app = web.Application(middlewares=[aiohttp_middleware(PROCESS)])
        install_aiohttp(app, self.readiness)  # /health/live, /health/ready, /metrics
        app.router.add_post("/calls/{call_id}", self._register_caller)
        app.router.add_get("/calls/{call_id}/outcome", self._outcome)
        app.router.add_get("/health", self._health)
        return app

    async def _register_caller(self, request: web.Request) -> web.Response:
        form = await request.post()
        caller = str(form.get("caller") or request.query.get("caller") or "")
        if caller:
            self.callers[request.match_info["call_id"]] = caller
            while len(self.callers) > KEEP_OUTCOMES:  # registered calls that never connected
                self.callers.pop(next(iter(self.callers)))
        return web.Response(status=204)

    async def _outcome(self, request: web.Request) -> web.Response:
        """The call's outcome once it has ended: a call whose line was just hung up may still be saving its transcript."""
        call_id = request.match_info["call_id"]
        session = self.calls.get(call_id)
        if call_id not in self.outcomes and session is not None and session.record.ended_at is not None:
            return web.Response(text=line_outcome(session.record))
        return web.Response(text=self.outcomes.get(call_id, "unknown"))

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"calls": len(self.calls), **self.hears.health()})
