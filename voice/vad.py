"""Turn-taking on telephone audio: where the caller's utterances start and end, and barge-in, with webrtcvad."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Deque, Optional, Union

import numpy
import webrtcvad

from voice.dtmf import keypad_tone

FRAME_MS = 20
RATES = (8000, 16000, 32000, 48000)  # what webrtcvad takes
PRE_ROLL_MS = 200  # audio kept from before speech began, so the recogniser hears the first sound whole
START_RATIO = 0.75  # speech starts when min_speech_ms of speech frames make this share of a short window
SILENCE_RMS = 16  # quieter frames (-66 dBFS) are digital silence or an idle line, never speech
BACKGROUND_MARGIN_DB = 3  # a speech frame stands this far above the background: webrtcvad's hangover does not
BACKGROUND_RISE_DB = 0.1  # per frame (5 dB a second): how fast the background estimate follows a louder line
TAIL_DB = 40  # a frame this far below the utterance's loudest is its fading tail, not speech


@dataclass(frozen=True)
class SpeechStarted:
    """The caller started speaking."""

    at_ms: int  # stream time (ms since the detector started) where speech began


@dataclass(frozen=True)
class UtteranceEnded:
    """The caller stopped speaking: the utterance's audio and when it ended."""

    # From about PRE_ROLL_MS before speech began to the end of speech, without the trailing silence; the
    # caller's voice, so never in a repr (or a log line).
    audio: bytes = field(repr=False)
    speech_ended_at_ms: int  # stream time of the end of the last speech frame
    detected_at_ms: int  # stream time when the end was decided (speech_ended_at_ms + end_silence_ms)
    truncated: bool = False  # cut at max_utterance_ms after speech began


def _energy(frame: bytes) -> float:
    """Mean square of the frame's samples."""
    samples = numpy.frombuffer(frame, dtype="<i2").astype(numpy.float64)
    return float(samples @ samples) / len(samples)


class _SpeechEnergy:
    """The energy of a frame if it is speech, else 0: webrtcvad's verdict, less keypad tones (which it calls speech) and its hangover."""

    def __init__(self, rate: int, aggressiveness: int) -> None:
        """webrtcvad in mode `aggressiveness` (0 to 3) for 20 ms frames at `rate` Hz."""
        if rate not in RATES:
            raise ValueError(f"webrtcvad takes 8000, 16000, 32000 or 48000 Hz, got {rate}")
        if aggressiveness not in range(4):
            raise ValueError(f"aggressiveness is 0 to 3, got {aggressiveness}")
        self.rate = rate
        self.frame_bytes = rate * FRAME_MS // 1000 * 2
        self._vad = webrtcvad.Vad(aggressiveness)
        self._background: Optional[float] = None  # mean square of the frames webrtcvad calls non-speech

    def __call__(self, frame: bytes) -> float:
        """The mean square of `frame` (20 ms of s16le) if it is speech, else 0; ValueError for another size.

        webrtcvad goes on calling frames speech for 60 to 140 ms after any sound it took for speech (its
        hangover): those frames hold only the background, so a frame must stand out from the background.
        """
        if len(frame) != self.frame_bytes:
            raise ValueError(f"a {FRAME_MS} ms frame at {self.rate} Hz is {self.frame_bytes} bytes, got {len(frame)}")
        speech = self._vad.is_speech(frame, self.rate)  # on every frame: webrtcvad adapts to the line
        energy = _energy(frame)
        if not speech:
            if self._background is None or energy < self._background:  # follow a quieter line at once,
                self._background = energy
            else:  # a louder one slowly: webrtcvad calls some speech frames non-speech
                self._background = min(energy, self._background * 10 ** (BACKGROUND_RISE_DB / 10))
            return 0.0
        floor = max(SILENCE_RMS**2, (self._background or 0.0) * 10 ** (BACKGROUND_MARGIN_DB / 10))
        if energy < floor or keypad_tone(frame, self.rate) is not None:
            return 0.0
        return energy


class UtteranceDetector:
    """End of utterance by voice activity detection (webrtcvad), not vosk's endpointing."""

    def __init__(
        self,
        rate: int = 8000,
        aggressiveness: int = 2,
        end_silence_ms: int = 600,
        min_speech_ms: int = 120,
        max_utterance_ms: int = 15000,
    ) -> None:
        """Speech starts after `min_speech_ms` of mostly speech frames, ends after `end_silence_ms` without."""
        self._speech_energy = _SpeechEnergy(rate, aggressiveness)
        self.end_silence_ms = end_silence_ms
        self.max_utterance_ms = max_utterance_ms
        self._min_frames = max(1, -(-min_speech_ms // FRAME_MS))
        window = max(self._min_frames, round(self._min_frames / START_RATIO))
        self._window: Deque[float] = deque(maxlen=window)  # the energy of recent speech frames, 0 for the others
        self._history: Deque[bytes] = deque(maxlen=window + PRE_ROLL_MS // FRAME_MS)
        self._now_ms = 0  # stream time at the end of the last frame fed
        self.reset()

    def reset(self) -> None:
        """Forget any partial utterance (stream time and what was learnt about the line stay)."""
        self._window.clear()
        self._history.clear()
        self._audio = bytearray()
        self._began_ms: Optional[int] = None
        self._speech_end_ms = 0
        self._speech_bytes = 0
        self._peak = 0.0

    @property
    def in_speech(self) -> bool:
        """True between SpeechStarted and UtteranceEnded."""
        return self._began_ms is not None

    def feed(self, frame: bytes) -> Optional[Union[SpeechStarted, UtteranceEnded]]:
        """Take one 20 ms frame; SpeechStarted or UtteranceEnded when this frame decides one, else None."""
        energy = self._speech_energy(frame)
        self._now_ms += FRAME_MS
        self._history.append(frame)
        if self._began_ms is None:
            self._window.append(energy)
            return self._start() if self._window[-1] and sum(map(bool, self._window)) >= self._min_frames else None
        self._audio += frame
        if energy and energy * 10 ** (TAIL_DB / 10) >= self._peak:
            self._peak = max(self._peak, energy)
            self._speech_end_ms, self._speech_bytes = self._now_ms, len(self._audio)
        elif self._now_ms - self._speech_end_ms >= self.end_silence_ms:
            return self._end(truncated=False)
        if self._now_ms - self._began_ms >= self.max_utterance_ms:
            return self._end(truncated=True)
        return None

    def _start(self) -> SpeechStarted:
        """Speech began at the window's first speech frame; keep the audio from the pre-roll on."""
        speech_frames = len(self._window) - list(map(bool, self._window)).index(True)
        kept = list(self._history)[-(speech_frames + PRE_ROLL_MS // FRAME_MS) :]
        self._audio = bytearray(b"".join(kept))
        self._peak = max(self._window)
        self._speech_end_ms, self._speech_bytes = self._now_ms, len(self._audio)
        self._began_ms = self._now_ms - speech_frames * FRAME_MS
        return SpeechStarted(at_ms=self._began_ms)

    def _end(self, truncated: bool) -> UtteranceEnded:
        """The utterance up to its last speech frame; wait for the next one."""
        ended = UtteranceEnded(bytes(self._audio[: self._speech_bytes]), self._speech_end_ms, self._now_ms, truncated)
        self._window.clear()
        self._audio = bytearray()
        self._began_ms = None
        return ended


class BargeIn:
    """Caller speech while the bot talks: continuous voiced audio for at least `speech_ms` (about 200–300 ms)."""

    def __init__(self, rate: int = 8000, aggressiveness: int = 3, speech_ms: int = 240) -> None:
        """Confirm barge-in after `speech_ms` of speech frames in a row."""
        self._speech_energy = _SpeechEnergy(rate, aggressiveness)
        self._needed = max(1, -(-speech_ms // FRAME_MS))
        self.reset()

    def reset(self) -> None:
        """Start counting afresh (and allow the next barge-in)."""
        self._run = 0
        self._confirmed = False

    def feed(self, frame: bytes) -> bool:
        """Take one 20 ms frame; True on the frame where barge-in is confirmed (once until reset)."""
        self._run = self._run + 1 if self._speech_energy(frame) else 0
        if self._confirmed or self._run < self._needed:
            return False
        self._confirmed = True
        return True
