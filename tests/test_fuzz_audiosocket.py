"""AudioSocket frames, generated, into the gateway's parser and transport (voice/audiosocket.py): any byte stream
(wrong kinds, lengths that lie, truncated headers, oversize payloads, call ids missing or repeated, DTMF of any
byte, random bytes) gives frames, a clean end or a ProtocolError, never another exception; the transport turns it
into audio, digits or a hang-up, and good frames read back as they were written."""

from __future__ import annotations

import asyncio
from typing import List, Optional

from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz_strategies import frame_sequences, fuzz_settings, good_frames
from voice.audiosocket import AudioSocketTransport, Frame, Kind, ProtocolError, encode, read_frame
from voice.transport import AudioIn, DigitIn, HungUp


def reader_of(data: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    return reader


async def frames_of(data: bytes) -> List[Optional[Frame]]:
    reader = reader_of(data)
    frames: List[Optional[Frame]] = []
    while True:
        try:
            frame = await read_frame(reader)
        except ProtocolError:
            return frames
        frames.append(frame)
        if frame is None:
            return frames


class _Writer:
    """The transport's writer side, recording what the gateway would send."""

    def __init__(self) -> None:
        self.sent = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent += data

    async def drain(self) -> None:
        return None

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


@fuzz_settings(400)
@given(data=frame_sequences)
@example(data=b"\x01\x00")  # a truncated header
@example(data=encode(Kind.AUDIO, bytes(320)))  # audio before the call id
@example(data=encode(Kind.ID, bytes(16)) + encode(Kind.ID, bytes(16)) + encode(Kind.DTMF, b"\xff"))
@example(data=bytes([Kind.AUDIO]) + (0xFFFF).to_bytes(2, "big") + bytes(0xFFFF))
def test_any_byte_stream_gives_frames_an_end_or_a_protocol_error(data: bytes) -> None:
    frames = asyncio.run(frames_of(data))
    assert all(frame is None or isinstance(frame, Frame) for frame in frames)

    async def call() -> List[object]:
        transport = AudioSocketTransport(reader_of(data), _Writer())  # type: ignore[arg-type]  # a stand-in writer
        try:
            await transport.open(timeout=1.0)
        except (ProtocolError, ValueError, asyncio.TimeoutError):
            return []  # the gateway refuses the call (voice/gateway.py catches exactly these)
        received: List[object] = []
        while not received or not isinstance(received[-1], HungUp):
            received.append(await transport.receive())
            assert len(received) < 1000
        return received

    received = asyncio.run(call())
    assert all(isinstance(item, (AudioIn, DigitIn, HungUp)) for item in received)


@fuzz_settings(200)
@given(frames=st.lists(good_frames, max_size=6))
def test_good_frames_read_back_as_written(frames: List[bytes]) -> None:
    read = asyncio.run(frames_of(b"".join(frames)))
    assert read[-1] is None and [encode(f.kind, f.payload) for f in read[:-1] if f is not None] == frames
