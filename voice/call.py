"""One phone call with the assistant: greet, listen, answer, with barge-in, keypad, repeat,
slower speech, silence reprompts, and transfer to a person.

The call is a conversation with the same Rasa assistant as every channel (sender
`phone:<caller number or call id>`). What the assistant says is rendered for the ear
(voice/speaking.py); what the caller says is normalised before NLU (voice/normalise.py).
"""
from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Dict, List, Optional, Union

from onewindow.backend import ServiceBackend
from onewindow.backend.citizens import normalise_phone
from onewindow.backend.transcripts import CallRecord
from onewindow.channels.rasa_client import RasaClient, RasaUnavailable
from onewindow.logs import log_event
from voice.listening import Interrupted, Key, Listener, Utterance
from voice.normalise import normalise_caller_text
from voice.playback import Playback
from voice.speaking import SpokenTurn, choose, speak_responses, spell_code
from voice.synthesis import SLOW, Voice
from voice.transport import RATE, CallTransport, DigitIn, HungUp
from voice.voicing import Voicing

logger = logging.getLogger("onewindow.voice.call")

REPEAT = {"repeat", "repeat that", "again", "say that again", "say it again", "pardon", "what did you say"}
SLOWER = {"slower", "slow down", "more slowly", "speak slowly", "speak slower", "speak more slowly", "slower please"}
MORE = {"more", "tell me more", "the rest", "more please", "next"}
BYTES_PER_SECOND = 2 * RATE
NOT_HEARD = "Sorry, I did not catch that. Please say it again, or use the keypad."
NUMBER_QUESTION = ("number", "phone")  # while the assistant asks for one, keys are digits ended by #


@dataclass(frozen=True)
class CallSettings:
    greeting: str = "Hello, this is the city hotline. What can I do for you? Press 0 at any time for a person."
    silence_timeout: float = 8.0
    end_silence_ms: int = 500
    max_utterance_ms: int = 15_000
    max_call_seconds: float = 1800.0
    digit_pause: float = 3.0
    min_confidence: float = 0.3
    hotline_number: str = ""


@dataclass(frozen=True)
class TimeUp:
    """The call reached its length limit."""


Event = Union[Utterance, Key, Interrupted, HungUp, TimeUp]


class CallSession:
    def __init__(
        self,
        transport: CallTransport,
        listener: Listener,
        voicing: Voicing,
        rasa: RasaClient,
        backend: ServiceBackend,
        settings: CallSettings = CallSettings(),
    ) -> None:
        self.transport, self.listener, self.voicing = transport, listener, voicing
        self.rasa, self.backend, self.settings = rasa, backend, settings
        self.playback = Playback(transport)
        self.voice = Voice()
        self.events: "asyncio.Queue[Event]" = asyncio.Queue()
        self.last = SpokenTurn(text=settings.greeting, options=())
        self.digits = ""
        self.caller_id = normalise_phone(transport.caller) or transport.call_id
        self.record = CallRecord(
            call_id=transport.call_id,
            channel=transport.channel,
            sender_id=rasa.sender_id(self.caller_id),
            started_at=datetime.now(),
            outcome="completed",
        )
        self.latencies_ms: List[float] = []

    # --- the call ----------------------------------------------------------------------------

    async def run(self) -> CallRecord:
        """Hold the call until it ends; the transcript is saved whatever happens."""
        reading = asyncio.create_task(self._read())
        try:
            self.listener.prepare()
            await self._link_caller()
            await self._converse()
        except Exception as error:  # noqa: BLE001 - one call's failure must not end the others
            self.record.outcome = "failed"
            log_event(logger, "call.failed", call=self.transport.call_id, error=type(error).__name__)
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            await self.transport.hang_up()
            self.record.ended_at = datetime.now()
            await asyncio.to_thread(self.backend.transcripts.save, self.record)
            log_event(logger, "call.ended", call=self.transport.call_id, outcome=self.record.outcome,
                      turns=len(self.record.turns), caller_seconds=round(self.record.caller_audio_seconds, 1))
        return self.record

    async def _link_caller(self) -> None:
        """A known caller number finds the citizen's appointments, as a shared phone number does in chat."""
        number = normalise_phone(self.transport.caller)
        if number:
            await asyncio.to_thread(self.backend.citizens.link_identity, self.rasa.channel, number, number)

    async def _converse(self) -> None:
        await self._say(self.settings.greeting, fixed=True)
        silences = 0
        while True:
            event = await self._next_event()
            if isinstance(event, HungUp):
                self.record.outcome = "caller_hung_up"
                return
            if isinstance(event, TimeUp):
                await self._say("This call has reached its time limit. Please call again if you need more help. Goodbye.")
                self.record.outcome = "too_long"
                return
            if event is None:
                silences += 1
                if not await self._after_silence(silences):
                    self.record.outcome = "no_response"
                    return
                continue
            silences = 0
            if isinstance(event, Key):
                done = await self._on_key(event.digit)
            elif isinstance(event, Utterance):
                done = await self._on_utterance(event)
            else:
                continue  # barge-in: the utterance follows
            if done:
                return

    async def _next_event(self) -> Optional[Event]:
        """The next event, or None after the silence timeout (not while the caller is mid-sentence)."""
        while True:
            try:
                timeout = self.settings.digit_pause if self.digits else self.settings.silence_timeout
                return await asyncio.wait_for(self.events.get(), timeout)
            except asyncio.TimeoutError:
                if self.digits:
                    return Key("#")  # a pause ends a typed number
                if not self.listener.caller_speaking:
                    return None

    async def _read(self) -> None:
        """Pump the line: audio to the listener, keys and hangups to the event queue."""
        while True:
            item = await self.transport.receive()
            if isinstance(item, HungUp):
                self.playback.stop()
                await self.events.put(item)
                return
            if isinstance(item, DigitIn):
                self.listener.forget_speech()
                self._interrupt()
                await self.events.put(Key(item.digit))
                continue
            self.record.caller_audio_seconds += len(item.pcm) / BYTES_PER_SECOND
            if self.record.caller_audio_seconds > self.settings.max_call_seconds:
                await self.events.put(TimeUp())
                return
            for heard in await self.listener.hear(item.pcm, self.playback.playing):
                if isinstance(heard, (Interrupted, Key)):
                    self._interrupt()
                await self.events.put(heard)

    def _interrupt(self) -> None:
        if self.playback.playing:
            self.playback.stop()
            log_event(logger, "call.barge_in", call=self.transport.call_id)

    # --- what the caller did -------------------------------------------------------------------

    async def _on_utterance(self, heard: Utterance) -> bool:
        text = heard.text.strip()
        self._note("caller", text, via="speech", confidence=round(heard.confidence, 2), audio_seconds=round(heard.audio_seconds, 2))
        if not text or heard.confidence < self.settings.min_confidence:
            await self._say(NOT_HEARD, fixed=True)
            return False
        said = text.lower().strip(" .!?")
        if said in REPEAT:
            await self._say(self.last.text)
            return False
        if said in SLOWER:
            self.voice = SLOW
            await self._say("All right, I will speak more slowly. " + self.last.text)
            return False
        if said in MORE:
            await self._say(self.last.more or "That was everything. " + self.last.text)
            return False
        option = choose(said, self.last.options)
        return await self._ask(option.payload if option else normalise_caller_text(text), heard.speech_ended_at)

    async def _on_key(self, digit: str) -> bool:
        if self.digits or (digit.isdigit() and self._asking_for_number()):
            if digit != "#":
                self.digits += digit
                return False
            typed, self.digits = self.digits, ""
            self._note("caller", f"keys {typed}", via="keypad")
            return await self._ask(typed, time.monotonic(), via="keypad")
        self._note("caller", f"key {digit}", via="keypad")
        if digit == "0":  # the handoff records reason "keypad" from the input
            return await self._ask("/request_human", time.monotonic(), via="keypad")
        if digit == "*":
            await self._say(self.last.text)
            return False
        if digit == "#":
            await self._say(self.last.more or self.last.text)
            return False
        option = choose(digit, self.last.options)
        if option is None:
            await self._say("That key is not one of the choices. " + self.last.text)
            return False
        return await self._ask(option.payload, time.monotonic(), via="keypad")

    def _asking_for_number(self) -> bool:
        question = self.last.text.lower()
        return not self.last.options and question.rstrip().endswith("?") and any(w in question for w in NUMBER_QUESTION)

    async def _after_silence(self, silences: int) -> bool:
        """Reprompt, then offer a person, then say goodbye; False when the call should end."""
        if silences == 1:
            await self._say("Are you still there? " + self.last.text)
        elif silences == 2:
            await self._say("If you would like to talk to a person, say person or press 0. Otherwise, please tell me what you need.", fixed=True)
        else:
            await self._say("I have not heard anything, so I will end the call now. Please call again at any time. Goodbye.", fixed=True)
            return False
        return True

    # --- the assistant's side ----------------------------------------------------------------

    async def _ask(self, message: str, asked_at: float, via: str = "voice") -> bool:
        """Send the caller's words (or a choice's payload) to the assistant and speak the answer; True when the call is handed over."""
        try:
            responses = await self.rasa.send(self.caller_id, message, {"input": via})
        except RasaUnavailable:
            responses = []
        if not responses:
            apology = "Sorry, I cannot answer right now because of a technical problem. I will put you through to a person."
            await self._say(apology, asked_at)
            return self._transfer()
        handoff = next((r["custom"]["handoff"] for r in responses if "handoff" in (r.get("custom") or {})), None)
        if handoff is not None:  # the chat wording (a person will reply here) does not fit a call
            await self._say(f"I am putting you through to a person now. Your request number is {spell_code(handoff['reference'])}. Please hold.", asked_at)
            return self._transfer()
        self.last = speak_responses(responses)
        await self._say(self.last.text, asked_at)
        return False

    def _transfer(self) -> bool:
        self.record.outcome = "transferred"
        log_event(logger, "call.transferred", call=self.transport.call_id)
        return True

    async def _say(self, text: str, asked_at: Optional[float] = None, fixed: bool = False) -> None:
        """Speak, stoppable by the caller; the first frame's delay after `asked_at` is the turn latency."""
        self._note("bot", text)
        self.listener.forget_speech()
        self.listener.bot_started_speaking()
        await self.playback.play(self.voicing.audio(text, self.voice, fixed))
        if asked_at is not None and self.playback.first_frame_at is not None:
            latency = (self.playback.first_frame_at - asked_at) * 1000
            self.latencies_ms.append(latency)
            self.record.turns[-1]["latency_ms"] = round(latency)

    def _note(self, speaker: str, text: str, **details: Any) -> None:
        turn: Dict[str, Any] = {"at": datetime.now().isoformat(timespec="milliseconds"), "speaker": speaker, "text": text, **details}
        self.record.turns.append(turn)
