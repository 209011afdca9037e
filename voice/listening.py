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
from typing import Deque, List, Optional, Union

from voice.dtmf import DtmfDetector
from voice.recognition import RecognitionStream, Recogniser
from voice.transport import FRAME_BYTES, RATE
from voice.vad import BargeIn, SpeechStarted, UtteranceDetector, UtteranceEnded

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
            await self.forget_speech()
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
        """Send the batch to the recogniser in a worker thread, after the batches before it."""
        audio, self._batch = b"".join(self._batch), []
        if self._recogniser is None or not audio:
            return
        if self._stream is None:
            self._stream = self._recogniser.stream(RATE)
        before, stream = self._feeding, self._stream

        async def accept() -> None:
            if before is not None:
                await before
            await asyncio.to_thread(stream.accept, audio)

        self._feeding = asyncio.create_task(accept())

    async def _finish(self, event: UtteranceEnded) -> Utterance:
        ended_at = time.monotonic() - (event.detected_at_ms - event.speech_ended_at_ms) / 1000
        self._feed()
        self._in_utterance = False
        seconds = len(event.audio) / (2 * RATE)
        if self._feeding is not None:
            await self._feeding
            self._feeding = None
        if self._stream is None:
            return Utterance("", 0.0, seconds, ended_at, event.truncated)
        transcript = await asyncio.to_thread(self._stream.finish)
        return Utterance(transcript.text, transcript.confidence, seconds, ended_at, event.truncated)

    def prepare(self) -> None:
        """Open the call's recognition stream now, in the background: vosk builds its search graph
        on the first audio (about a second), which should happen during the greeting."""
        if self._recogniser is None:
            return
        stream = self._stream = self._recogniser.stream(RATE)

        async def warm() -> None:
            await asyncio.to_thread(stream.accept, bytes(RATE))  # half a second of silence
            await asyncio.to_thread(stream.finish)

        self._feeding = asyncio.create_task(warm())

    async def forget_speech(self) -> None:
        """Drop a half-heard utterance (a key was pressed, or the bot starts a new turn)."""
        self._vad.reset()
        self._barge_in.reset()
        self._batch, self._in_utterance = [], False
        if self._feeding is not None:
            await self._feeding
            self._feeding = None
        if self._stream is not None:
            await asyncio.to_thread(self._stream.finish)  # empties the recogniser for the next utterance

    @property
    def caller_speaking(self) -> bool:
        return self._vad.in_speech

    def bot_started_speaking(self) -> None:
        self._barge_in.reset()
