"""Test stand-ins for a telephone line: an AudioSocket client that plays a whole call over TCP
like Asterisk does (a call id first, then 20 ms audio frames in real time, silence when the caller
says nothing, DTMF frames, hangup), and a recogniser that supplies scripted English text at the
speech engine's interface, because no English vosk model can be installed here. Everything else
in a call (protocol, audio timing, voice activity detection, speech synthesis, keypad, Rasa) is real:
`RunningGateway` is the real gateway in its own event loop against a test stack.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable, Coroutine, Deque, List, Optional, Sequence, Tuple, TypeVar

import numpy
import soundfile

from harness.stack import Stack, free_port, http_get
from onewindow.backend import ServiceBackend
from onewindow.backend.transcripts import CallRecord
from onewindow.channels.rasa_client import RasaClient, append_events
from voice.audiosocket import Kind, encode
from voice.call import CallSettings
from voice.gateway import Address, Gateway
from voice.recognition import LiveRecognition, Recogniser, RecognitionStream, Transcript
from voice.speech_language import Hearing
from voice.speech_synthesis import PromptCache, shared_synthesiser
from voice.transport import FRAME_BYTES, FRAME_SECONDS, RATE

T = TypeVar("T")
TEST_SETTINGS = CallSettings(silence_timeout=3.0)

SOUNDS = Path("/usr/share/asterisk/sounds/en")
SILENCE = bytes(FRAME_BYTES)


def recorded_speech(name: str) -> bytes:
    """A real recorded English prompt (Debian's asterisk-core-sounds-en-wav), 8 kHz s16le."""
    samples, rate = soundfile.read(SOUNDS / f"{name}.wav", dtype="int16")
    assert rate == RATE, f"{name}.wav is {rate} Hz"
    return samples.tobytes()


def loudness(frame: bytes) -> float:
    samples = numpy.frombuffer(frame, dtype=numpy.int16).astype(numpy.float64)
    return float(numpy.sqrt(numpy.mean(samples**2))) if samples.size else 0.0


class ScriptedStream(RecognitionStream):
    def __init__(self, recogniser: "ScriptedRecogniser", rate: int) -> None:
        self.rate, self._recogniser, self._fed = rate, recogniser, 0

    def accept(self, pcm: bytes) -> str:
        self._fed += len(pcm)
        return ""

    def reset(self) -> None:
        """Forget the audio fed since the last finish() without using up a line of the script."""
        self._fed = 0

    def finish(self) -> Transcript:
        seconds, self._fed = self._fed / (2 * self.rate), 0
        if not seconds:
            return Transcript("", 0.0, 0.0)
        text, confidence = self._recogniser.next_line()
        return Transcript(text, confidence, seconds)


class ScriptedRecogniser(Recogniser):
    """Says what the caller said, from a script (one line per utterance the VAD finds)."""

    def __init__(self, default: str = "") -> None:
        self.lines: Deque[Tuple[str, float]] = deque()
        self.default = default

    def will_hear(self, text: str, confidence: float = 0.9) -> None:
        self.lines.append((text, confidence))

    def next_line(self) -> Tuple[str, float]:
        return self.lines.popleft() if self.lines else (self.default, 0.9 if self.default else 0.0)

    def stream(self, rate: int, grammar: Optional[Sequence[str]] = None) -> RecognitionStream:
        return ScriptedStream(self, rate)


@dataclass
class BotTurn:
    audio: bytes
    first_frame_at: float
    last_frame_at: float

    @property
    def seconds(self) -> float:
        return len(self.audio) / (2 * RATE)


@dataclass
class PhoneCall:
    """A caller on an AudioSocket line; the audio it sends is paced at 20 ms per frame."""

    port: int
    call_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    received: List[Tuple[float, bytes]] = field(default_factory=list)  # (arrival, frame) of the bot's audio
    hung_up_by_gateway: bool = False

    async def __aenter__(self) -> "PhoneCall":
        self._reader, self._writer = await asyncio.open_connection("127.0.0.1", self.port)
        self._outgoing: Deque[bytes] = deque()
        self._writer.write(encode(Kind.ID, uuid.UUID(self.call_id).bytes))
        self._tasks = [asyncio.create_task(self._send_forever()), asyncio.create_task(self._receive_forever())]
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._writer.close()

    async def _send_forever(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        while True:
            frame = self._outgoing.popleft() if self._outgoing else SILENCE
            self._writer.write(encode(Kind.AUDIO, frame))
            await self._writer.drain()
            due += FRAME_SECONDS
            await asyncio.sleep(max(0.0, due - loop.time()))

    async def _receive_forever(self) -> None:
        while True:
            header = await self._reader.readexactly(3)
            payload = await self._reader.readexactly(int.from_bytes(header[1:], "big"))
            if header[0] == Kind.HANGUP:
                self.hung_up_by_gateway = True
                return
            if header[0] == Kind.AUDIO:
                self.received.append((time.monotonic(), payload))

    async def say(self, pcm: bytes) -> float:
        """Speak (real time); returns time.monotonic() when the last frame of speech went out."""
        frames = [pcm[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\0") for i in range(0, len(pcm), FRAME_BYTES)]
        self._outgoing.extend(frames)
        while self._outgoing:
            await asyncio.sleep(FRAME_SECONDS)
        return time.monotonic()

    async def press(self, digit: str) -> None:
        """A keypad digit as an AudioSocket DTMF frame."""
        self._writer.write(encode(Kind.DTMF, digit.encode()))
        await self._writer.drain()

    async def send_raw(self, data: bytes) -> None:
        self._writer.write(data)
        await self._writer.drain()

    async def hang_up(self) -> None:
        self._writer.write(encode(Kind.HANGUP))
        await self._writer.drain()

    async def _next_bot_audio(self, timeout: float) -> int:
        """Wait for the bot's next audio frame; the index in `received` where it starts."""
        start = len(self.received)
        deadline = time.monotonic() + timeout
        while len(self.received) == start:
            if time.monotonic() > deadline or self.hung_up_by_gateway:
                raise AssertionError("the bot said nothing")
            await asyncio.sleep(0.01)
        return start

    async def bot_started(self, timeout: float = 20.0, listen: float = 0.3) -> None:
        """Wait until the bot starts its next turn, and listen to it briefly (a caller who knows the menu)."""
        await self._next_bot_audio(timeout)
        await asyncio.sleep(listen)

    async def bot_turn(self, timeout: float = 20.0, gap: float = 0.6) -> BotTurn:
        """The bot's next stretch of audio: waits for it to start, then for `gap` seconds without frames."""
        start = await self._next_bot_audio(timeout)
        while time.monotonic() - self.received[-1][0] < gap:
            await asyncio.sleep(0.02)
        frames = self.received[start:]
        return BotTurn(b"".join(f for _, f in frames), frames[0][0], frames[-1][0])

    async def wait_hangup(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.hung_up_by_gateway:
            if time.monotonic() > deadline:
                raise AssertionError("the gateway did not hang up")
            await asyncio.sleep(0.05)


class RunningGateway:
    """The gateway in its own event loop thread, as in production, against the test stack; turns it answers
    itself go to the conversation through the stack's HTTP API, as `make run` configures it."""

    def __init__(
        self,
        stack: Stack,
        recogniser: Optional[LiveRecognition],
        settings: CallSettings = TEST_SETTINGS,
        hears: Optional[Hearing] = None,
    ) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.address = Address("127.0.0.1", free_port(), free_port())
        self.backend = ServiceBackend.from_url(stack.database_url)
        rasa = RasaClient(f"http://127.0.0.1:{stack.rasa_port}", 8.0, "phone")
        turns = partial(append_events, stack.api_url, stack.api_secret)
        self.gateway = Gateway(recogniser, PromptCache(shared_synthesiser()), self.backend, rasa, settings, hears, turns)
        asyncio.run_coroutine_threadsafe(self.gateway.start(self.address), self.loop).result(60)

    def control(self, path: str) -> str:
        return (http_get(f"http://127.0.0.1:{self.address.control_port}{path}") or b"").decode()

    def register(self, call: "PhoneCall", caller: str) -> None:
        """What the dialplan's first CURL does: tell the gateway the caller's number before the call connects."""
        import urllib.parse
        import urllib.request

        data = urllib.parse.urlencode({"caller": caller}).encode()
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.address.control_port}/calls/{call.call_id}", data=data, method="POST"
        )
        urllib.request.urlopen(request, timeout=5)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.gateway.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


def run(scenario: Callable[[], Coroutine[Any, Any, T]]) -> T:
    return asyncio.run(scenario())


def wait_until(condition: Callable[[], Any], timeout: float = 15.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not met in time"
        time.sleep(0.05)


def saved_transcript(gateway: RunningGateway, call: PhoneCall) -> CallRecord:
    """The call's transcript, once the gateway has stored it (when the call ends)."""
    wait_until(lambda: gateway.backend.transcripts.get(call.call_id) is not None)
    record = gateway.backend.transcripts.get(call.call_id)
    assert record is not None
    return record


def transcript_texts(gateway: RunningGateway, call: PhoneCall) -> str:
    record = saved_transcript(gateway, call)
    return " | ".join(f"{t['speaker']}: {t['text']}" for t in record.turns)
