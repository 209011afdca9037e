"""One phone call with the assistant: the main menu, listen, answer, with barge-in, keypad, paged
choices, repeat, slower speech, misses, silence, and transfer to a person.

The call is a conversation with the same Rasa assistant as every channel (sender
`phone:<caller number or call id>`). Every message carries the call's abilities
(`{"input": "voice"|"keypad"|"silence"|"call_start", "speech": bool}`) so the assistant words its
prompts for them; what the assistant says is worded for the ear (voice/phone_wording.py); what the
caller says is normalised before NLU (voice/normalise.py). Speech the recogniser cannot use goes
to the assistant as "/nlu_fallback" (its miss ladder: rephrase, the menu, a person); silence
after one reprompt as "/request_human" (or goodbye, `silence_action="hangup"`). Repeat, slower
and more are answered here and added to the conversation through `LocalTurns`, so staff see
every turn.

The call's stages are passed in (interfaces in voice/stages.py): the line, the caller's side (keypad,
utterances, barge-in, recognition), the assistant, the bot's voice and the outbound clock; the gateway
(voice/gateway.py) builds the real ones, tests/test_call_logic.py runs the same logic on stand-ins.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Awaitable, Callable, Dict, List, Optional, Union

from onewindow.backend import ServiceBackend
from onewindow.backend.citizens import normalise_phone
from onewindow.backend.transcripts import CallRecord
from onewindow.channels.rasa_client import RasaUnavailable
from onewindow.infra.logs import log_event
from voice.listening import Interrupted, Key, Listener, Utterance
from voice.normalise import normalise_caller_text
from voice.phone_wording import (
    MORE_KEY,
    PERSON_KEY,
    REPEAT_KEY,
    SLOWER_KEY,
    SpokenTurn,
    by_key,
    choose,
    speak_responses,
    spell_code,
)
from voice.playback import LOOP_CLOCK, Playback
from voice.sentence_audio import sentences
from voice.speech_synthesis import SLOW, Voice
from voice.stages import Assistant, Clock, SpeechOutput
from voice.transport import RATE, CallTransport, DigitIn, HungUp

logger = logging.getLogger("onewindow.voice.call")

REPEAT = {"repeat", "repeat that", "again", "say that again", "say it again", "pardon", "what did you say"}
SLOWER = {"slower", "slow down", "more slowly", "speak slowly", "speak slower", "speak more slowly", "slower please"}
MORE = {"more", "tell me more", "the rest", "more please", "next", "more choices"}
BYTES_PER_SECOND = 2 * RATE
MAIN_MENU, NOT_UNDERSTOOD, PERSON = "/main_menu", "/nlu_fallback", "/request_human"
SILENCE_ACTIONS = ("person", "hangup")
# appends events to the caller's conversation in Rasa (sender id, events): onewindow.channels.rasa_client.append_events
LocalTurns = Callable[[str, List[Dict[str, Any]]], Awaitable[None]]


@dataclass(frozen=True)
class CallSettings:
    greeting: str = "Hello, this is the city hotline."  # cached; plays while the assistant's main menu is fetched
    silence_timeout: float = 8.0
    silence_action: str = "person"  # after a reprompt: "person" (a handoff, reason silence) or "hangup"
    end_silence_ms: int = 500
    max_utterance_ms: int = 15_000
    max_call_seconds: float = 1800.0
    digit_pause: float = 3.0
    min_confidence: float = 0.3
    hotline_number: str = ""

    def __post_init__(self) -> None:
        if self.silence_action not in SILENCE_ACTIONS:
            raise ValueError(f"silence_action must be one of {', '.join(SILENCE_ACTIONS)}, not {self.silence_action!r}")


@dataclass(frozen=True)
class TimeUp:
    """The call reached its length limit."""


class Closing:
    """The gateway is stopping (SIGTERM): the caller hears an apology and is hung up."""


CLOSING_APOLOGY = (
    "Sorry, this line has to close now for maintenance. Please call again in a minute, or visit any service centre. Goodbye."
)

Event = Union[Utterance, Key, Interrupted, HungUp, TimeUp, Closing]


class CallSession:
    def __init__(
        self,
        transport: CallTransport,
        listener: Listener,
        speech_out: SpeechOutput,
        assistant: Assistant,
        backend: ServiceBackend,
        settings: CallSettings = CallSettings(),
        speech: bool = True,
        local_turns: Optional[LocalTurns] = None,
        clock: Clock = LOOP_CLOCK,
    ) -> None:
        """`speech`: a recogniser for the assistant's language listens (else keypad only, and no prompt offers
        speaking); `local_turns`: how turns answered here reach the conversation (None: only the call transcript);
        `clock`: the outbound audio's (real time on a line)."""
        self.transport, self.listener, self.speech_out = transport, listener, speech_out
        self.assistant, self.backend, self.settings = assistant, backend, settings
        self.speech, self.local_turns = speech, local_turns
        self.playback = Playback(transport, clock)
        self.voice = Voice()
        self.events: "asyncio.Queue[Event]" = asyncio.Queue()
        self.last = SpokenTurn(text=settings.greeting, options=())
        self.page = 0  # the page of the last turn's choices being read
        self.heard_more = False  # the rest of the last turn's cut list was read
        self.digits = ""
        self.hung_up = False
        self.caller_id = normalise_phone(transport.caller) or transport.call_id
        self.record = CallRecord(
            call_id=transport.call_id,
            channel=transport.channel,
            sender_id=assistant.sender_id(self.caller_id),
            started_at=datetime.now(),
            outcome="completed",
        )
        self.latencies_ms: List[float] = []

    # --- the call ----------------------------------------------------------------------------

    async def run(self) -> CallRecord:
        """Hold the call until it ends; the transcript is saved whatever happens."""
        self.listener.deliver = self.events.put_nowait  # utterances arrive when recognised; reading goes on meanwhile
        reading = asyncio.create_task(self._read())
        try:
            self.listener.prepare()
            await self._link_caller()
            await self._converse()
        except Exception as error:  # one call's failure must not end the others
            self.record.outcome = "failed"
            log_event(logger, "call.failed", level=logging.ERROR, exc_info=error, call=self.transport.call_id)
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            self.listener.close()
            self.record.ended_at = datetime.now()  # before the line is hung up: the dialplan asks for the outcome then
            await self.transport.hang_up()
            await asyncio.to_thread(self.backend.transcripts.save, self.record)
            log_event(
                logger,
                "call.ended",
                call=self.transport.call_id,
                outcome=self.record.outcome,
                turns=len(self.record.turns),
                caller_seconds=round(self.record.caller_audio_seconds, 1),
            )
        return self.record

    async def _link_caller(self) -> None:
        """A known caller number finds the citizen's appointments, as a shared phone number does in chat."""
        number = normalise_phone(self.transport.caller)
        if number:
            await asyncio.to_thread(self.backend.citizens.link_identity, self.assistant.channel, number, number)

    async def _converse(self) -> None:
        if await self._greet():
            return
        silences = 0
        while True:
            event = await self._next_event()
            if isinstance(event, HungUp):
                self.record.outcome = "caller_hung_up"
                return
            if isinstance(event, Closing):
                await self._say(CLOSING_APOLOGY)
                self.record.outcome = "gateway_closed"
                return
            if isinstance(event, TimeUp):
                await self._say("This call has reached its time limit. Please call again if you need more help. Goodbye.")
                self.record.outcome = "too_long"
                return
            if event is None:
                silences += 1
                if await self._after_silence(silences):
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
                self.hung_up = True
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

    def close(self) -> None:
        """End the call with CLOSING_APOLOGY: now if the call waits for the caller, else once the turn in progress is said."""
        self._interrupt()
        self.events.put_nowait(Closing())

    def _interrupt(self) -> None:
        if self.playback.playing:
            self.playback.stop()
            log_event(logger, "call.barge_in", call=self.transport.call_id)

    # --- what the caller did -------------------------------------------------------------------

    async def _greet(self) -> bool:
        """The cached greeting at once while the assistant's main menu is fetched, then the menu; True when handed over."""
        asked_at = time.monotonic()
        menu = asyncio.ensure_future(self._send(MAIN_MENU, "call_start"))
        listened = await self._say(self.settings.greeting, fixed=True)
        return await self._answer(await menu, asked_at, hints=True, already_said=self.settings.greeting, quiet=not listened)

    async def _on_utterance(self, heard: Utterance) -> bool:
        text = heard.text.strip()
        self._note(
            "caller", text, via="speech", confidence=round(heard.confidence, 2), audio_seconds=round(heard.audio_seconds, 2)
        )
        if not self.speech or not text or heard.confidence < self.settings.min_confidence:
            metadata = {"heard": text, "confidence": round(heard.confidence, 2)}
            return await self._ask(NOT_UNDERSTOOD, heard.speech_ended_at, metadata=metadata, hints=True)
        said = text.lower().strip(" .!?")
        local = "repeat" if said in REPEAT else "slower" if said in SLOWER else "more" if said in MORE else None
        if local is not None:
            await self._local(local, text, "voice")
            return False
        option = choose(said, self.last.options, self.page)
        return await self._ask(option.payload if option else normalise_caller_text(text), heard.speech_ended_at)

    async def _on_key(self, digit: str) -> bool:
        if self.digits or (digit.isdigit() and self.last.asks_number):
            return await self._on_typed(digit)
        self._note("caller", f"key {digit}", via="keypad")
        if digit == PERSON_KEY:  # the handoff records reason "keypad" from the input
            return await self._ask(PERSON, time.monotonic(), via="keypad")
        local = {REPEAT_KEY: "repeat", SLOWER_KEY: "slower", MORE_KEY: "more"}.get(digit)
        if local is not None:
            await self._local(local, f"key {digit}", "keypad")
            return False
        option = by_key(digit, self.last.options, self.page)
        if option is not None:
            return await self._ask(option.payload, time.monotonic(), via="keypad")
        if not self.last.options:  # nothing to choose here: a miss, as unclear speech is
            return await self._ask(NOT_UNDERSTOOD, time.monotonic(), via="keypad", metadata={"heard": f"key {digit}"}, hints=True)
        await self._local("wrong_key", f"key {digit}", "keypad")
        return False

    async def _on_typed(self, digit: str) -> bool:
        """Digits of a number, ended by # or a pause; one digit that is a choice's key chooses it."""
        if digit.isdigit():
            self.digits += digit
            return False
        typed, self.digits = self.digits, ""
        if digit == REPEAT_KEY or not typed:  # * starts the number again
            self._note("caller", f"key {digit}", via="keypad")
            await self._local("repeat", f"key {digit}", "keypad")
            return False
        self._note("caller", f"keys {typed}", via="keypad")
        option = by_key(typed, self.last.options, self.page)
        return await self._ask(option.payload if option else typed, time.monotonic(), via="keypad")

    async def _local(self, kind: str, said: str, via: str) -> None:
        """Repeat, slower, more or a key that chooses nothing, answered here, and added to the conversation."""
        if kind == "slower":
            self.voice = SLOW
        text = self._local_text(kind)
        await asyncio.gather(self._say(text), self._add_turns(said, text, {"input": via, "handled": kind}))

    def _local_text(self, kind: str) -> str:
        last = self.last
        if kind == "slower":
            return "All right, I will talk more slowly. " + last.text
        if kind == "wrong_key":
            return "That key is not one of the choices. " + (last.pages[self.page] if last.pages else last.text)
        if kind == "more":
            if last.more and not self.heard_more:
                self.heard_more = True
                return " ".join(part for part in (last.more, last.pages[self.page] if last.pages else "") if part)
            if len(last.pages) > 1:
                self.page = (self.page + 1) % len(last.pages)
                return last.pages[self.page]
            return "That was everything. " + last.text
        self.page, self.heard_more = 0, False
        return last.text

    async def _after_silence(self, silences: int) -> bool:
        """Ask once whether the caller is there, then put them through to a person (or say goodbye); True when the call ends."""
        if silences == 1:
            text = "Are you still there? " + self.last.text
            await asyncio.gather(self._say(text), self._add_turns(None, text, {"input": "silence", "handled": "reprompt"}))
            return False
        if self.settings.silence_action == "person":
            return await self._ask(PERSON, time.monotonic(), via="silence")
        await self._say(
            "I have not heard anything, so I will end the call now. Please call again at any time. Goodbye.", fixed=True
        )
        self.record.outcome = "no_response"
        return True

    # --- the assistant's side ----------------------------------------------------------------

    async def _send(self, message: str, via: str, metadata: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
        """The assistant's responses to one message, with the call's abilities; [] when it cannot answer."""
        try:
            return await self.assistant.send(self.caller_id, message, {"input": via, "speech": self.speech, **(metadata or {})})
        except RasaUnavailable:
            return []

    async def _ask(
        self, message: str, asked_at: float, via: str = "voice", metadata: Optional[Dict[str, Any]] = None, hints: bool = False
    ) -> bool:
        """Send the caller's words (or a choice's payload) to the assistant and speak the answer; True when the call is handed over."""
        return await self._answer(await self._send(message, via, metadata), asked_at, hints)

    async def _answer(
        self, responses: List[Dict[str, Any]], asked_at: float, hints: bool = False, already_said: str = "", quiet: bool = False
    ) -> bool:
        """Speak the assistant's answer (`quiet`: only take its choices: the caller spoke or pressed a key over
        the greeting, and is answered next); True when the call is handed over."""
        if not responses:
            apology = "Sorry, I cannot answer right now because of a technical problem. I will put you through to a person."
            await self._say(apology, asked_at)
            return self._transfer()
        handoff = next((r["custom"]["handoff"] for r in responses if "handoff" in (r.get("custom") or {})), None)
        if handoff is not None:  # the chat wording (a person will reply here) does not fit a call
            return await self._put_through(handoff, asked_at)
        turn = speak_responses(responses, speech=self.speech, hints=hints)
        self.last, self.page, self.heard_more = turn, 0, False
        if quiet:
            self._note("bot", turn.text, spoken=False)
        else:
            await self._say(_without_opening(turn.text, already_said), asked_at)
        return False

    async def _put_through(self, handoff: Dict[str, Any], asked_at: float) -> bool:
        """A short announcement (the expected wait, the reference once), then the transfer; a caller who hangs up
        before it is done leaves the queue (the handoff is withdrawn, outcome caller_left)."""
        wait = handoff.get("wait_minutes")
        waiting = f" The wait is about {wait} minute{'s' if wait != 1 else ''}." if wait else ""
        await self._say(
            f"I am putting you through to a person now.{waiting} Your reference is {spell_code(handoff['reference'])}.", asked_at
        )
        if self.hung_up:
            withdrawn = await asyncio.to_thread(self.backend.handoffs.withdraw, self.record.sender_id, "caller_left")
            log_event(logger, "call.left_before_transfer", call=self.transport.call_id, withdrawn=withdrawn is not None)
            self.record.outcome = "caller_hung_up"
            return True
        return self._transfer()

    def _transfer(self) -> bool:
        self.record.outcome = "transferred"
        log_event(logger, "call.transferred", call=self.transport.call_id)
        return True

    async def _add_turns(self, said: Optional[str], answer: str, metadata: Dict[str, Any]) -> None:
        """Add a turn answered here to the conversation staff see (the caller's side, if any, and what was said back)."""
        if self.local_turns is None:
            return
        now = time.time()
        parse: Dict[str, Any] = {"text": said, "intent": {}, "entities": []}  # no intent: the assistant did not read it
        events = (
            [{"event": "user", "text": said, "parse_data": parse, "metadata": metadata, "timestamp": now}]
            if said is not None
            else []
        )
        events.append({"event": "bot", "text": answer, "metadata": metadata, "timestamp": now})
        try:
            await self.local_turns(self.record.sender_id, events)
        except RasaUnavailable as error:
            log_event(logger, "call.turn_not_recorded", call=self.transport.call_id, error=str(error))

    async def _say(self, text: str, asked_at: Optional[float] = None, fixed: bool = False) -> bool:
        """Speak, stoppable by the caller; the first frame's delay after `asked_at` is the turn latency. False when
        the caller spoke or pressed a key over it (or left)."""
        if self.hung_up:
            return False
        self._note("bot", text)
        self.listener.forget_speech()
        self.listener.bot_started_speaking()
        finished = await self.playback.play(self.speech_out.audio(text, self.voice, fixed))
        if asked_at is not None and self.playback.first_frame_at is not None:
            latency = (self.playback.first_frame_at - asked_at) * 1000
            self.latencies_ms.append(latency)
            self.record.turns[-1]["latency_ms"] = round(latency)
        return finished

    def _note(self, speaker: str, text: str, **details: Any) -> None:
        turn: Dict[str, Any] = {
            "at": datetime.now().isoformat(timespec="milliseconds"),
            "speaker": speaker,
            "text": text,
            **details,
        }
        self.record.turns.append(turn)


def _without_opening(text: str, said: str) -> str:
    """`text` without its first sentence when that is what was just said (the cached greeting)."""
    parts = sentences(text)
    if said and parts and parts[0].strip() == said.strip():
        return " ".join(parts[1:]) or text
    return text
