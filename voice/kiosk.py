"""Kiosk mode: the hotline's voice loop on a local microphone and speaker (an assisted-service
terminal at a service centre), through PortAudio (sounddevice)."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any, Dict, List, Optional, Sequence

from voice.transport import FRAME_BYTES, RATE, AudioIn, CallTransport, HungUp, Inbound


class KioskError(RuntimeError):
    """No usable audio device, with what to do about it."""


def audio_devices() -> List[Dict[str, Any]]:
    """The sound devices PortAudio sees (empty when there are none, or no PortAudio)."""
    try:
        import sounddevice
    except OSError:  # the PortAudio library is missing
        return []
    return [dict(device) for device in sounddevice.query_devices()]


def find_device(name: Optional[str], kind: str, devices: Sequence[Dict[str, Any]]) -> int:
    """The index of the first device whose name contains `name` (any when None) with input or output channels."""
    channels = f"max_{kind}_channels"
    usable = [(index, d) for index, d in enumerate(devices) if d.get(channels, 0) > 0]
    if not usable:
        raise KioskError(f"no audio {kind} device found: connect a microphone and a speaker (see `python -m voice devices`)")
    for index, device in usable:
        if name is None or name.lower() in str(device["name"]).lower():
            return index
    names = ", ".join(str(d["name"]) for _, d in usable)
    raise KioskError(f"no {kind} device named {name!r}; there are: {names}")


class KioskTransport(CallTransport):
    """The local sound card as a call line: 8 kHz mono, 20 ms blocks both ways."""

    channel = "kiosk"

    def __init__(self, input_device: int, output_device: int) -> None:
        import sounddevice

        self.call_id = str(uuid.uuid4())
        self._loop = asyncio.get_running_loop()
        self._heard: "asyncio.Queue[Inbound]" = asyncio.Queue()
        self._to_play = bytearray()
        self._lock = threading.Lock()  # the audio callback runs in PortAudio's thread
        self._stream = sounddevice.RawStream(
            samplerate=RATE,
            channels=1,
            dtype="int16",
            blocksize=FRAME_BYTES // 2,
            device=(input_device, output_device),
            callback=self._callback,
        )
        self._stream.start()

    def _callback(self, indata: Any, outdata: Any, frames: int, time: Any, status: Any) -> None:
        self._loop.call_soon_threadsafe(self._heard.put_nowait, AudioIn(bytes(indata)))
        size = len(outdata)
        with self._lock:
            chunk, self._to_play[:size] = bytes(self._to_play[:size]), b""
        outdata[:] = chunk.ljust(size, b"\0")

    async def receive(self) -> Inbound:
        return await self._heard.get()

    async def send_audio(self, frame: bytes) -> None:
        with self._lock:
            self._to_play += frame

    async def hang_up(self) -> None:
        self._stream.stop()
        self._stream.close()
        await self._heard.put(HungUp("kiosk"))
