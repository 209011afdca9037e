"""The call's logic (voice/call.py) on stand-in stages, without waiting in real time.

The call under test is the real `CallSession` with the real listener and detectors (keypad tones,
webrtcvad's utterances and barge-in) and the real service backend on SQLite; around it are stand-ins
for the other stages (voice/stages.py): an in-memory line, a recogniser that says a scripted line per
utterance, a voice that makes quiet audio at once, a playout clock that never waits, and a small
assistant with the parts of the real one's behaviour a call relies on (the main menu, choices, the
miss ladder, a handoff). Whole calls in real time over AudioSocket against the real assistant are the
end-to-end layer (tests/test_voice_calls.py, tests/test_hotline_*.py).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable, Deque, Dict, Iterator, List, Optional, Tuple

import pytest
from sqlalchemy import select

from onewindow.__main__ import seed
from onewindow.backend import ServiceBackend
from onewindow.backend.transcripts import CallRecord
from onewindow.storage import models
from onewindow.storage.db import make_engine
from tests.phone import recorded_speech
from voice.call import CallSession, CallSettings
from voice.gateway import telephone_listener
from voice.phone_wording import HINTS, spell_code
from voice.recognition import LiveRecognition, LiveStream, Transcript
from voice.sentence_audio import sentences
from voice.speech_synthesis import Voice
from voice.transport import FRAME_BYTES, RATE, AudioIn, CallTransport, DigitIn, HungUp, Inbound

SPEECH = recorded_speech("auth-thankyou")  # 1 s of a real human voice, for the real voice activity detection
QUIET_FRAMES = 40  # 800 ms without speech after an utterance: its end (end_silence_ms is 500)
WAIT_SECONDS = 20.0  # a scenario that takes longer has hung
SETTINGS = CallSettings(silence_timeout=60)  # the caller acts long before a silence
MENU = [
    {
        "text": "What can I help you with?",
        "buttons": [
            {"title": "Book an appointment", "payload": "/book_appointment"},
            {"title": "Check an application", "payload": "/application_status"},
            {"title": "Talk to a person", "payload": "/request_human"},
        ],
    }
]


# --- the stand-in stages -------------------------------------------------------------------------


class Line(CallTransport):
    """An in-memory telephone line: the test puts the caller's audio, keys and hang-up in; the call's audio is kept."""

    def __init__(self) -> None:
        self.call_id = str(uuid.uuid4())
        self.sent: List[bytes] = []
        self.hung_up_by_call = False
        self._inbound: "asyncio.Queue[Inbound]" = asyncio.Queue()
        self._gone = False

    async def receive(self) -> Inbound:
        if self._gone:
            return HungUp("caller")
        item = await self._inbound.get()
        self._gone = isinstance(item, HungUp)
        return item

    async def send_audio(self, frame: bytes) -> None:
        self.sent.append(frame)

    async def hang_up(self) -> None:
        self.hung_up_by_call = True

    def say(self, pcm: bytes) -> None:
        """The caller speaks `pcm` (8 kHz s16le), then is quiet long enough for the utterance to end."""
        pcm += bytes(-len(pcm) % FRAME_BYTES) + bytes(QUIET_FRAMES * FRAME_BYTES)
        for start in range(0, len(pcm), FRAME_BYTES):
            self._inbound.put_nowait(AudioIn(pcm[start : start + FRAME_BYTES]))

    def press(self, digit: str) -> None:
        self._inbound.put_nowait(DigitIn(digit))

    def leave(self) -> None:
        self._inbound.put_nowait(HungUp("caller"))


class HeardLines(LiveRecognition):
    """A recogniser that hears the next scripted line in each utterance (nothing, with confidence 0, when none is left)."""

    def __init__(self) -> None:
        self.lines: Deque[Tuple[str, float]] = deque()
        self.heard_seconds: List[float] = []  # the audio of each utterance it was given

    def will_hear(self, text: str, confidence: float = 0.9) -> None:
        self.lines.append((text, confidence))

    def live(self, rate: int, grammar: Optional[Any] = None) -> LiveStream:
        return _HeardLinesStream(self, rate)


class _HeardLinesStream(LiveStream):
    def __init__(self, recogniser: HeardLines, rate: int) -> None:
        self._recogniser, self._rate, self._fed = recogniser, rate, 0

    def open(self) -> None:
        """Nothing to warm up."""

    def feed(self, pcm: bytes) -> None:
        self._fed += len(pcm)

    def finish(self) -> "asyncio.Future[Transcript]":
        seconds, self._fed = self._fed / (2 * self._rate), 0
        self._recogniser.heard_seconds.append(seconds)
        lines = self._recogniser.lines
        text, confidence = lines.popleft() if lines and seconds else ("", 0.0)
        done: "asyncio.Future[Transcript]" = asyncio.get_running_loop().create_future()
        done.set_result(Transcript(text, confidence, seconds))
        return done

    def discard(self) -> None:
        self._fed = 0

    def close(self) -> None:
        """Nothing to give back."""


class QuietVoice:
    """The bot's voice made at once: 10 ms of digital silence per character, sentence by sentence."""

    @staticmethod
    def frames(text: str) -> int:
        """How many 20 ms frames the call plays for `text` (the last one padded)."""
        return -(-sum(len(sentence) for sentence in sentences(text)) // 2)

    async def audio(self, text: str, voice: Voice, fixed: bool = False) -> AsyncIterator[bytes]:
        for sentence in sentences(text):
            yield bytes(len(sentence) * FRAME_BYTES // 2)


class InstantClock:
    """A playout clock that never waits: a wait moves it on and lets the other tasks run once."""

    def __init__(self) -> None:
        self.time = 0.0

    def now(self) -> float:
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += seconds
        await asyncio.sleep(0)


@dataclass
class Assistant:
    """The parts of the real assistant a call relies on: the main menu, a choice, an answer to free speech, the
    miss ladder (rephrase, then the menu, then a person) and a handoff recorded in the staff queue."""

    backend: ServiceBackend
    channel: str = "phone"
    messages: List[Tuple[str, Dict[str, Any]]] = field(default_factory=list)
    misses: int = 0

    def sender_id(self, external_id: object) -> str:
        return f"{self.channel}:{external_id}"

    async def send(self, external_id: object, text: str, metadata: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
        self.messages.append((text, dict(metadata or {})))
        if text == "/main_menu":
            return MENU
        if text == "/nlu_fallback":
            self.misses += 1
            if self.misses == 1:
                return [{"text": "Sorry, I did not understand that. Could you say it another way?"}]
            if self.misses == 2:
                return [{"text": "I can help with these.", "buttons": MENU[0]["buttons"]}]
            return await self._handoff(external_id, "not_understood")
        if text == "/request_human":
            return await self._handoff(external_id, (metadata or {}).get("input", "asked"))
        if text == "/book_appointment":
            return [{"text": "Which office would you like?", "buttons": [{"title": "City Hall", "payload": "/office"}]}]
        return [{"text": f"You asked: {text}. Passports cost 60 euros."}]

    async def _handoff(self, external_id: object, reason: str) -> List[Dict[str, Any]]:
        record = await asyncio.to_thread(self.backend.handoffs.request, self.sender_id(external_id), self.channel, reason, {})
        handoff = {"state": "waiting", "reference": record.reference, "wait_minutes": 3, "reason": reason}
        return [{"text": "A person will reply here soon.", "custom": {"handoff": handoff}}]

    def sent(self) -> List[str]:
        return [text for text, _ in self.messages]


@dataclass
class Call:
    """One call under test: the real session on the stand-ins, running as a task."""

    session: CallSession
    line: Line
    heard: HeardLines
    assistant: Assistant
    local_turns: List[Tuple[str, List[Dict[str, Any]]]]
    task: "asyncio.Task[CallRecord]"

    def bot_said(self) -> List[str]:
        return [turn["text"] for turn in self.session.record.turns if turn["speaker"] == "bot"]

    async def spoken(self, turns: int) -> List[str]:
        """Wait until the bot has spoken `turns` turns and is quiet; what it said."""
        while len(self.bot_said()) < turns or self.session.playback.playing:
            assert not self.task.done(), f"the call ended after {self.bot_said()}"
            await asyncio.sleep(0)
        return self.bot_said()

    async def playing(self, turns: int, frames: int = 5) -> None:
        """Wait until the bot's turn number `turns` has played `frames` frames and is still playing."""
        start = len(self.line.sent)
        while len(self.bot_said()) < turns or len(self.line.sent) < start + frames:
            assert not self.task.done(), f"the call ended after {self.bot_said()}"
            await asyncio.sleep(0)
        assert self.session.playback.playing, "the turn ended before the caller could interrupt it"

    async def ended(self) -> CallRecord:
        return await asyncio.wait_for(self.task, WAIT_SECONDS)


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceBackend]:
    """The real service backend on a migrated SQLite database (the calls' transcripts, the staff queue)."""
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('calls')) / 'onewindow.db'}"
    seed(url, demo=False)
    engine = make_engine(url)
    yield ServiceBackend(engine)
    engine.dispose()


def on_call(
    backend: ServiceBackend,
    scenario: Callable[[Call], Awaitable[None]],
    settings: CallSettings = SETTINGS,
) -> Call:
    """Run `scenario` on a new call (the caller never waits on a real clock) until the call has ended."""

    async def run() -> Call:
        line, heard, turns = Line(), HeardLines(), []

        async def local_turns(sender_id: str, events: List[Dict[str, Any]]) -> None:
            turns.append((sender_id, events))

        assistant = Assistant(backend)
        listener = telephone_listener(heard, settings.end_silence_ms, settings.max_utterance_ms)
        session = CallSession(line, listener, QuietVoice(), assistant, backend, settings, True, local_turns, InstantClock())
        call = Call(session, line, heard, assistant, turns, asyncio.ensure_future(session.run()))
        try:
            await asyncio.wait_for(scenario(call), WAIT_SECONDS)
            await call.ended()
        finally:
            call.task.cancel()
        return call

    return asyncio.run(run())


# --- the calls -----------------------------------------------------------------------------------


def test_the_greeting_then_the_main_menu_read_with_its_keys(backend: ServiceBackend) -> None:
    async def scenario(call: Call) -> None:
        await call.spoken(2)
        call.line.leave()

    call = on_call(backend, scenario)
    greeting, menu = call.bot_said()
    assert greeting == CallSettings().greeting
    assert menu.startswith("What can I help you with?") and "press 1" in menu.lower() and "press 3" in menu.lower()
    assert call.assistant.messages[0] == ("/main_menu", {"input": "call_start", "speech": True})
    assert len(call.line.sent) == QuietVoice.frames(greeting) + QuietVoice.frames(menu)  # both played to the end
    assert all(len(frame) == FRAME_BYTES for frame in call.line.sent)
    record = call.session.record
    assert record.outcome == "caller_hung_up" and call.line.hung_up_by_call
    assert backend.transcripts.get(call.line.call_id) is not None  # the transcript is kept


def test_a_key_pressed_over_a_prompt_stops_it_and_chooses(backend: ServiceBackend) -> None:
    async def scenario(call: Call) -> None:
        await call.playing(2)  # the main menu is being read
        call.line.press("1")
        await call.spoken(3)
        call.line.leave()

    call = on_call(backend, scenario)
    greeting, menu, office = call.bot_said()
    assert office.startswith("Which office would you like?")
    played = len(call.line.sent) - QuietVoice.frames(greeting) - QuietVoice.frames(office)
    assert played < QuietVoice.frames(menu) // 2  # the menu stopped at the key (barge-in)
    assert call.assistant.messages[1] == ("/book_appointment", {"input": "keypad", "speech": True})
    assert {"speaker": "caller", "text": "key 1", "via": "keypad"}.items() <= call.session.record.turns[2].items()


def test_speech_over_a_prompt_stops_it_and_is_heard(backend: ServiceBackend) -> None:
    async def scenario(call: Call) -> None:
        await call.playing(2)
        call.heard.will_hear("how much is a passport")
        call.line.say(SPEECH)
        await call.spoken(3)
        call.line.leave()

    call = on_call(backend, scenario)
    greeting, menu, answer = call.bot_said()
    played = len(call.line.sent) - QuietVoice.frames(greeting) - QuietVoice.frames(answer)
    assert played < QuietVoice.frames(menu) // 2  # webrtcvad's barge-in stopped the menu
    assert call.assistant.sent()[1] == "how much is a passport" and answer.startswith("You asked: how much is a passport.")


def test_speech_is_recognised_and_sent_to_the_assistant(backend: ServiceBackend) -> None:
    async def scenario(call: Call) -> None:
        await call.spoken(2)
        call.heard.will_hear("how much is a passport renewal", 0.8)
        call.line.say(SPEECH)
        await call.spoken(3)
        call.line.leave()

    call = on_call(backend, scenario)
    assert call.assistant.messages[1] == ("how much is a passport renewal", {"input": "voice", "speech": True})
    assert call.bot_said()[2] == "You asked: how much is a passport renewal. Passports cost 60 euros."
    # the voice activity detection found the one utterance and gave the recogniser its audio
    assert len(call.heard.heard_seconds) == 1 and 0.8 * len(SPEECH) / (2 * RATE) < call.heard.heard_seconds[0] < 2.0
    caller = [turn for turn in call.session.record.turns if turn["speaker"] == "caller"]
    assert caller[0]["via"] == "speech" and caller[0]["confidence"] == 0.8 and caller[0]["audio_seconds"] > 0.8
    assert call.session.latencies_ms and call.session.record.turns[-1]["latency_ms"] >= 0


def test_two_misses_bring_the_keypad_menu_and_a_third_a_person(backend: ServiceBackend) -> None:
    async def scenario(call: Call) -> None:
        await call.spoken(2)
        for turn in (3, 4, 5):
            call.heard.will_hear("mumble", 0.1)  # below min_confidence: not understood
            call.line.say(SPEECH)
            if turn < 5:
                await call.spoken(turn)

    call = on_call(backend, scenario)
    assert call.assistant.sent() == ["/main_menu", "/nlu_fallback", "/nlu_fallback", "/nlu_fallback"]
    assert call.assistant.messages[1][1] == {"input": "voice", "speech": True, "heard": "mumble", "confidence": 0.1}
    _, _, rephrase, menu, announcement = call.bot_said()
    assert rephrase.startswith("Sorry, I did not understand that.") and rephrase.endswith(HINTS)  # and how to use the keys
    assert menu.startswith("I can help with these.") and "press 1" in menu.lower()  # the keypad menu
    handoff = backend.handoffs.active(call.session.record.sender_id)
    assert handoff is not None and handoff.reason == "not_understood"
    assert announcement == (
        f"I am putting you through to a person now. The wait is about 3 minutes. Your reference is {spell_code(handoff.reference)}."
    )
    assert call.session.record.outcome == "transferred" and call.line.hung_up_by_call


def test_silence_reprompts_then_puts_the_caller_through(backend: ServiceBackend) -> None:
    async def scenario(call: Call) -> None:
        await call.ended()

    call = on_call(backend, scenario, CallSettings(silence_timeout=0.05))
    _, menu, reprompt, announcement = call.bot_said()
    assert reprompt == "Are you still there? " + menu
    assert call.assistant.messages[1] == ("/request_human", {"input": "silence", "speech": True})
    [(sender, events)] = call.local_turns  # the reprompt is added to the conversation staff see
    assert sender == call.session.record.sender_id
    assert [(e["event"], e["text"], e["metadata"]) for e in events] == [
        ("bot", reprompt, {"input": "silence", "handled": "reprompt"})
    ]
    assert announcement.startswith("I am putting you through to a person now.")
    assert call.session.record.outcome == "transferred"
    handoff = backend.handoffs.active(call.session.record.sender_id)
    assert handoff is not None and handoff.reason == "silence"


def test_a_caller_who_hangs_up_during_the_transfer_announcement_leaves_the_queue(backend: ServiceBackend) -> None:
    async def scenario(call: Call) -> None:
        await call.spoken(2)
        call.line.press("0")
        await call.playing(3)  # the announcement has started
        call.line.leave()

    call = on_call(backend, scenario)
    sender = call.session.record.sender_id
    assert call.assistant.messages[1] == ("/request_human", {"input": "keypad", "speech": True})
    assert call.bot_said()[2].startswith("I am putting you through to a person now.")
    assert call.session.record.outcome == "caller_hung_up"
    assert backend.handoffs.active(sender) is None, "no open handoff is left in the staff queue"
    with backend.engine.connect() as connection:
        row = connection.execute(select(models.HandoffRequest.__table__).where(models.HandoffRequest.sender_id == sender)).one()
    assert (row.status, row.outcome) == ("withdrawn", "caller_left")
