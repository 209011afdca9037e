"""The caller's side of a call: keypad digits, barge-in, and utterances recognised while they speak.

Audio is fed to the call's live recognition stream during speech, in batches that never make
the event loop wait (a worker process or the recognition threads decode them), so when voice
activity detection decides the caller has finished only the last batch and the final result
remain. With `deliver` set, the finished utterance is handed over when its transcript is ready and
hear() goes on meanwhile: keys and the end of the call are seen at once while recognition works.
Keypad tones found in the audio count like DTMF frames. The detectors and the recogniser are passed
in (voice.stages); voice/gateway.py's `telephone_listener` builds the real ones.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable, Deque, List, Optional, Set, Union

from voice.recognition import LiveRecognition, LiveStream, SpeechUnavailable, Transcript
from voice.stages import BargeInDetection, KeypadDetection, UtteranceDetection
from voice.transport import FRAME_BYTES, RATE
from voice.vad import SpeechStarted, UtteranceEnded

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
    """One call's caller side: each frame goes to the keypad detector, then barge-in (while the bot speaks) and
    the utterance detector; speech goes to the recogniser (None: keypad only, utterances are heard as nothing)."""

    def __init__(
        self,
        recogniser: Optional[LiveRecognition],
        utterances: UtteranceDetection,
        barge_in: BargeInDetection,
        keypad: KeypadDetection,
    ) -> None:
        self._recogniser = recogniser
        self._stream: Optional[LiveStream] = None
        self._vad, self._barge_in, self._dtmf = utterances, barge_in, keypad
        self._recent: Deque[bytes] = deque(maxlen=PRE_ROLL_FRAMES)
        self._batch: List[bytes] = []
        self._in_utterance = False
        self._fed = False  # audio went to the stream since its last finish or discard
        self._recognising: Set[asyncio.Task] = set()
        self.deliver: Optional[Callable[[Utterance], None]] = None  # set: utterances arrive here, hear() does not wait

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
            heard.extend(await self._finish(event))
        return heard

    def _start_utterance(self) -> None:
        self._in_utterance = True
        self._batch = list(self._recent)
        self._recent.clear()

    def _feed(self) -> None:
        """Send the batch to the recogniser, after the batches before it (returns at once)."""
        audio, self._batch = b"".join(self._batch), []
        if self._recogniser is not None and audio:
            self._opened().feed(audio)
            self._fed = True

    def _opened(self) -> LiveStream:
        """The call's recognition stream, opened on first use (only ever with a recogniser)."""
        if self._stream is None:
            assert self._recogniser is not None, "no recogniser: a keypad-only call opens no recognition stream"
            self._stream = self._recogniser.live(RATE)
        return self._stream

    async def _finish(self, event: UtteranceEnded) -> List[Heard]:
        ended_at = time.monotonic() - (event.detected_at_ms - event.speech_ended_at_ms) / 1000
        self._feed()
        self._in_utterance, self._fed = False, False
        seconds = len(event.audio) / (2 * RATE)
        if self._recogniser is None:
            return [Utterance("", 0.0, seconds, ended_at, event.truncated)]
        transcript = self._opened().finish()  # queued now, after this utterance's audio
        if self.deliver is None:
            return [await self._heard(transcript, seconds, ended_at, event.truncated)]
        deliver = self.deliver

        async def recognised() -> None:
            deliver(await self._heard(transcript, seconds, ended_at, event.truncated))

        task = asyncio.ensure_future(recognised())
        self._recognising.add(task)
        task.add_done_callback(self._recognising.discard)
        return []

    @staticmethod
    async def _heard(transcript: "asyncio.Future[Transcript]", seconds: float, ended_at: float, truncated: bool) -> Utterance:
        """The utterance, or one heard as nothing (confidence 0) when recognition failed."""
        try:
            heard = await transcript
        except SpeechUnavailable:
            heard = Transcript("", 0.0, seconds)
        return Utterance(heard.text, heard.confidence, seconds, ended_at, truncated)

    def prepare(self) -> None:
        """Open the call's recognition stream now, so its recogniser is ready (warm) for the first utterance."""
        if self._recogniser is not None:
            self._opened().open()

    def forget_speech(self) -> None:
        """Drop a half-heard utterance (a key was pressed, or the bot starts a new turn)."""
        self._vad.reset()
        self._barge_in.reset()
        self._batch, self._in_utterance = [], False
        if self._fed:
            self._opened().discard()  # empties the recogniser for the next utterance
            self._fed = False

    def close(self) -> None:
        """The call is over: give its recogniser back (utterances still being recognised are dropped)."""
        for task in list(self._recognising):
            task.cancel()
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    @property
    def caller_speaking(self) -> bool:
        return self._vad.in_speech

    def bot_started_speaking(self) -> None:
        self._barge_in.reset()
