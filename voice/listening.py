"""The caller's side of a call: keypad digits, barge-in, and utterances recognised while they speak.

Audio is fed to the recogniser during speech, in batches in a worker thread, so when voice
activity detection decides the caller has finished only the last batch and the final result
remain. Keypad tones found in the audio count like DTMF frames.
"""
from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, List, Optional, TypeVar, Union

from voice.dtmf import DtmfDetector
from voice.recognition import RecognitionStream, Recogniser
from voice.transport import FRAME_BYTES, RATE
from voice.vad import BargeIn, SpeechStarted, UtteranceDetector, UtteranceEnded

T = TypeVar("T")
PRE_ROLL_FRAMES = 10  # 200 ms before the detected start of speech
BATCH_FRAMES = 10  # feed the recogniser every 200 ms of speech


@dataclass(frozen=True)
class Utterance:
    text: str
    confidence: float
    audio_seconds: float
    speech_ended_at: float  # time.monotonic() at the true end of speech
    truncated: bool = False


@dataclass(frozen=True)
class Key:
    digit: str


@dataclass(frozen=True)
class Interrupted:
    """The caller started speaking over the bot."""


Heard = Union[Utterance, Key, Interrupted]


class Listener:
    def __init__(self, recogniser: Optional[Recogniser], end_silence_ms: int, max_utterance_ms: int) -> None:
        self._recogniser = recogniser
        self._stream: Optional[RecognitionStream] = None
        self._vad = UtteranceDetector(rate=RATE, end_silence_ms=end_silence_ms, max_utterance_ms=max_utterance_ms)
        self._barge_in = BargeIn(rate=RATE)
        self._dtmf = DtmfDetector(rate=RATE)
        self._recent: Deque[bytes] = deque(maxlen=PRE_ROLL_FRAMES)
        self._batch: List[bytes] = []
        self._feeding: Optional[asyncio.Task] = None
        self._in_utterance = False

    async def hear(self, frame: bytes, bot_speaking: bool) -> List[Heard]:
        """Process one 20 ms frame from the caller; what was heard, if anything."""
        frame = frame[:FRAME_BYTES].ljust(FRAME_BYTES, b"\0")
        heard: List[Heard] = []
        digit = self._dtmf.feed(frame)
        if digit:
            self.forget_speech()
            return [Key(digit)]
        if bot_speaking and self._barge_in.feed(frame):
            heard.append(Interrupted())
        event = self._vad.feed(frame)
        if isinstance(event, SpeechStarted):
            self._start_utterance()
        if self._in_utterance:
            self._batch.append(frame)
            if len(self._batch) >= BATCH_FRAMES:
                self._feed()
        else:
            self._recent.append(frame)
        if isinstance(event, UtteranceEnded):
            heard.append(await self._finish(event))
        return heard

    def _start_utterance(self) -> None:
        self._in_utterance = True
        self._batch = list(self._recent)
        self._recent.clear()

    def _feed(self) -> None:
        """Send the batch to the recogniser, after the batches before it."""
        audio, self._batch = b"".join(self._batch), []
        if self._recogniser is not None and audio:
            self._in_turn(lambda: self._opened().accept(audio))

    def _opened(self) -> RecognitionStream:
        """The call's recognition stream, created on first use (in the worker thread: it takes tens of ms)."""
        if self._stream is None:
            self._stream = self._recogniser.stream(RATE)  # type: ignore[union-attr]
        return self._stream

    def _in_turn(self, work: Callable[[], T]) -> "asyncio.Task[T]":
        """Run recogniser work in a worker thread after the work queued before it: one thread at a
        time uses the call's recogniser, and nobody on the event loop waits unless they need the result."""
        before = self._feeding

        async def after_before() -> T:
            if before is not None:
                await asyncio.gather(before, return_exceptions=True)
            return await asyncio.to_thread(work)

        self._feeding = asyncio.ensure_future(after_before())
        return self._feeding

    async def _finish(self, event: UtteranceEnded) -> Utterance:
        ended_at = time.monotonic() - (event.detected_at_ms - event.speech_ended_at_ms) / 1000
        self._feed()
        self._in_utterance = False
        seconds = len(event.audio) / (2 * RATE)
        if self._recogniser is None:
            return Utterance("", 0.0, seconds, ended_at, event.truncated)
        transcript = await self._in_turn(lambda: self._opened().finish())
        return Utterance(transcript.text, transcript.confidence, seconds, ended_at, event.truncated)

    def prepare(self) -> None:
        """Open the call's recognition stream now, in the background: vosk builds its search graph
        on the first audio (about a second), which should happen during the greeting."""
        if self._recogniser is not None:
            self._in_turn(lambda: self._opened().accept(bytes(RATE)))  # half a second of silence
            self.forget_speech()

    def forget_speech(self) -> None:
        """Drop a half-heard utterance (a key was pressed, or the bot starts a new turn)."""
        self._vad.reset()
        self._barge_in.reset()
        self._batch, self._in_utterance = [], False
        if self._recogniser is not None:
            self._in_turn(lambda: self._opened().finish())  # empties the recogniser for the next utterance

    @property
    def caller_speaking(self) -> bool:
        return self._vad.in_speech

    def bot_started_speaking(self) -> None:
        self._barge_in.reset()
