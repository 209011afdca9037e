"""Asterisk's AudioSocket protocol (Asterisk 18+): frames of 1 byte kind, 2 bytes big-endian length, payload.

Kinds: 0x00 hangup, 0x01 call id (16-byte UUID, first frame), 0x03 one DTMF digit, 0x10 audio
(8 kHz mono s16le, 320 bytes per 20 ms), 0xff error. Unknown kinds are skipped; a malformed
frame ends that call only.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from enum import IntEnum
from typing import Optional

from onewindow.infra.logs import log_event
from voice.transport import AudioIn, CallTransport, DigitIn, HungUp, Inbound

logger = logging.getLogger("onewindow.voice.audiosocket")
MAX_AUDIO_PAYLOAD = 16_000  # 1 s of audio; Asterisk sends 320 bytes
DTMF_KEYS = "0123456789*#ABCD"


class Kind(IntEnum):
    HANGUP = 0x00
    ID = 0x01
    DTMF = 0x03
    AUDIO = 0x10
    ERROR = 0xFF


class ProtocolError(ValueError):
    """A frame that breaks the protocol (the call is ended, the gateway goes on)."""


@dataclass(frozen=True)
class Frame:
    kind: int
    payload: bytes = b""


def encode(kind: int, payload: bytes = b"") -> bytes:
    if len(payload) > 0xFFFF:
        raise ProtocolError("payload longer than 65535 bytes")
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


async def read_frame(reader: asyncio.StreamReader) -> Optional[Frame]:
    """The next frame; None at a clean end of stream; ProtocolError for a truncated or malformed one."""
    try:
        header = await reader.readexactly(3)
    except asyncio.IncompleteReadError as error:
        if error.partial:
            raise ProtocolError("truncated frame header") from None
        return None
    kind, length = header[0], int.from_bytes(header[1:], "big")
    try:
        payload = await reader.readexactly(length)
    except asyncio.IncompleteReadError:
        raise ProtocolError(f"truncated frame: {length} bytes announced") from None
    check_frame(kind, payload)
    return Frame(kind, payload)


def check_frame(kind: int, payload: bytes) -> None:
    """Raise ProtocolError when a known kind has a payload it cannot have."""
    if kind == Kind.ID and len(payload) != 16:
        raise ProtocolError(f"call id of {len(payload)} bytes (16 expected)")
    if kind == Kind.AUDIO and (len(payload) % 2 or len(payload) > MAX_AUDIO_PAYLOAD):
        raise ProtocolError(f"audio payload of {len(payload)} bytes")
    if kind == Kind.DTMF and (len(payload) != 1 or chr(payload[0]) not in DTMF_KEYS):
        raise ProtocolError("DTMF frame without one keypad character")


class AudioSocketTransport(CallTransport):
    """One AudioSocket TCP connection; `open()` reads the call id first."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self.call_id = ""
        self._gone = False

    async def open(self, timeout: float = 5.0) -> str:
        """Read the first frame, which must be the call id; returns it as a UUID string."""
        first = await asyncio.wait_for(read_frame(self._reader), timeout)
        if first is None or first.kind != Kind.ID:
            raise ProtocolError("the first frame must be the call id")
        self.call_id = str(uuid.UUID(bytes=first.payload))
        return self.call_id

    async def receive(self) -> Inbound:
        while not self._gone:
            try:
                frame = await read_frame(self._reader)
            except (ProtocolError, ConnectionError) as error:
                log_event(logger, "audiosocket.bad_frame", call=self.call_id, error=str(error))
                return self._ended("protocol_error")
            if frame is None or frame.kind == Kind.HANGUP:
                return self._ended("caller")
            if frame.kind == Kind.ERROR:
                return self._ended("pbx_error")
            if frame.kind == Kind.AUDIO:
                return AudioIn(frame.payload)
            if frame.kind == Kind.DTMF:
                return DigitIn(chr(frame.payload[0]))
            log_event(logger, "audiosocket.unknown_frame_skipped", call=self.call_id, kind=frame.kind)
        return HungUp("caller")

    def _ended(self, reason: str) -> HungUp:
        self._gone = True
        return HungUp(reason)

    async def send_audio(self, frame: bytes) -> None:
        if self._gone or self._writer.is_closing():
            return
        self._writer.write(encode(Kind.AUDIO, frame))
        try:
            await self._writer.drain()
        except ConnectionError:
            self._gone = True

    async def hang_up(self) -> None:
        if not self._writer.is_closing():
            try:
                self._writer.write(encode(Kind.HANGUP))
                await self._writer.drain()
            except ConnectionError:
                pass
            self._writer.close()
        self._gone = True
