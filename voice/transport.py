"""What a call loop needs from a telephone line or a microphone: audio and keys in, audio out.

AudioSocket (voice/audiosocket.py) and the kiosk's sound card (voice/kiosk.py) implement it;
Asterisk's WebSocket channel or a Twilio-style media stream would be two more.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Optional, Union

RATE = 8000
FRAME_BYTES = 320  # 20 ms of 8 kHz mono signed 16-bit audio
FRAME_SECONDS = 0.02


@dataclass(frozen=True)
class AudioIn:
    pcm: bytes


@dataclass(frozen=True)
class DigitIn:
    digit: str


@dataclass(frozen=True)
class HungUp:
    reason: str = "caller"


Inbound = Union[AudioIn, DigitIn, HungUp]


class CallTransport(ABC):
    """One call's line: 8 kHz mono s16le in 20 ms frames both ways."""

    call_id: str
    channel: str = "phone"
    caller: Optional[str] = None

    @abstractmethod
    async def receive(self) -> Inbound:
        """The next thing from the caller; HungUp when the line is gone (then keep returning HungUp)."""

    @abstractmethod
    async def send_audio(self, frame: bytes) -> None:
        """Play one 20 ms frame now (the call loop owns the clock)."""

    @abstractmethod
    async def hang_up(self) -> None:
        """End the call from our side."""
