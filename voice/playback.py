"""The call's outbound clock: one 20 ms frame every 20 ms, stoppable at once for barge-in."""
from __future__ import annotations

import asyncio
import time
from typing import AsyncIterator, Optional

from voice.transport import FRAME_BYTES, FRAME_SECONDS, CallTransport


class Playback:
    """Plays audio on a transport in real time; `stop()` silences it within one frame."""

    def __init__(self, transport: CallTransport) -> None:
        self._transport = transport
        self._stop = asyncio.Event()
        self.playing = False
        self.first_frame_at: Optional[float] = None  # time.monotonic() of the last turn's first frame

    async def play(self, chunks: AsyncIterator[bytes]) -> bool:
        """Play audio chunks as they come (synthesis may still be running); False when stopped early."""
        self._stop.clear()
        self.playing, self.first_frame_at = True, None
        loop = asyncio.get_running_loop()
        due = loop.time()
        pending = b""
        try:
            async for chunk in chunks:
                pending += chunk
                while len(pending) >= FRAME_BYTES:
                    if self._stop.is_set():
                        return False
                    frame, pending = pending[:FRAME_BYTES], pending[FRAME_BYTES:]
                    due = await self._send(frame, max(due, loop.time()))
            if pending and not self._stop.is_set():
                await self._send(pending.ljust(FRAME_BYTES, b"\0"), max(due, loop.time()))
            return not self._stop.is_set()
        finally:
            self.playing = False

    async def _send(self, frame: bytes, due: float) -> float:
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, due - loop.time()))
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
        await self._transport.send_audio(frame)
        return due + FRAME_SECONDS

    def stop(self) -> None:
        self._stop.set()
