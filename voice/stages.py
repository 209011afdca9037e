"""The stages a call is built from, as small interfaces, so a call can run on stand-ins (tests/test_call_logic.py).

After pipecat's decomposition of a voice pipeline (transport in and out, processors in between), a call
(voice/call.py) is: a line (`voice.transport.CallTransport`: audio and keys in, audio out), the caller's
side (`voice.listening.Listener`, which runs a `KeypadDetection`, an `UtteranceDetection` and a
`BargeInDetection` on every frame and feeds speech to a `voice.recognition.LiveRecognition`), the
assistant (`Assistant`: Rasa's REST channel), the bot's voice (`SpeechOutput`, made from a
`Synthesiser`) and the outbound clock (`voice.playback.Playback` on a `Clock`). voice/gateway.py builds
the real ones for each call.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Dict, List, Optional, Protocol, Union

from voice.audio import Pcm
from voice.speech_synthesis import Voice
from voice.vad import SpeechStarted, UtteranceEnded


class KeypadDetection(Protocol):
    """Keypad tones in the caller's audio (voice.dtmf.DtmfDetector)."""

    def feed(self, frame: bytes) -> Optional[str]:
        """The digit confirmed in this audio, once per key press; None otherwise."""

    def reset(self) -> None:
        """Forget buffered audio and any tone in progress."""


class UtteranceDetection(Protocol):
    """Where the caller's utterances start and end (voice.vad.UtteranceDetector)."""

    @property
    def in_speech(self) -> bool:
        """True between SpeechStarted and UtteranceEnded."""

    def feed(self, frame: bytes) -> Optional[Union[SpeechStarted, UtteranceEnded]]:
        """Take one 20 ms frame; SpeechStarted or UtteranceEnded when this frame decides one."""

    def reset(self) -> None:
        """Forget any partial utterance."""


class BargeInDetection(Protocol):
    """Caller speech over the bot (voice.vad.BargeIn)."""

    def feed(self, frame: bytes) -> bool:
        """Take one 20 ms frame; True on the frame where barge-in is confirmed (once until reset)."""

    def reset(self) -> None:
        """Start counting afresh (and allow the next barge-in)."""


class Synthesiser(Protocol):
    """Text to speech audio (voice.speech_synthesis.SpeechSynthesiser); blocking, called from worker threads."""

    def synthesise(self, text: str, voice: Voice = ..., rate: Optional[int] = None) -> Pcm:
        """`text` spoken in `voice`, at `rate` Hz (None: the engine's own rate)."""


class SpeechOutput(Protocol):
    """The bot's voice on the line (voice.sentence_audio.SentenceAudio)."""

    def audio(self, text: str, voice: Voice, fixed: bool = False) -> AsyncIterator[bytes]:
        """8 kHz s16le audio of `text` as it is made; `fixed`: a prompt worth caching (the greeting, reprompts)."""


class Assistant(Protocol):
    """The conversation a call takes part in (onewindow.channels.rasa_client.RasaClient)."""

    channel: str

    def sender_id(self, external_id: object) -> str:
        """The conversation's sender id for a caller ("phone:<number or call id>")."""

    async def send(self, external_id: object, text: str, metadata: Optional[Dict[str, Any]] = None) -> List[Dict[str, Any]]:
        """The assistant's responses to one message; raises RasaUnavailable when it cannot answer."""


class Clock(Protocol):
    """The outbound clock's time and waits (voice.playback.LoopClock: the event loop's)."""

    def now(self) -> float:
        """Seconds on this clock."""

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` on this clock."""
