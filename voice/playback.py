"""The call's outbound clock: one 20 ms frame every 20 ms, stoppable at once for barge-in.

Frames are due at absolute times (a `Clock`: the event loop's in a call, one that never waits in
tests/test_call_logic.py) from the start of a turn, so a late
wake-up does not push every later frame back: the frames that fell due meanwhile go out at once
and the line catches up (the far end's jitter buffer plays them without a gap). Only when the audio
itself was late (the next sentence still being synthesised) by more than CATCH_UP_SECONDS does the
clock start again from now, so a pause is never followed by a burst. The first LEAD_FRAMES go out
at once: a small buffer at the far end that absorbs a late tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import AsyncIterator, Optional

from onewindow.infra.logs import log_event
from voice.stages import Clock
from voice.transport import FRAME_BYTES, FRAME_SECONDS, CallTransport

logger = logging.getLogger("onewindow.voice.playback")

LEAD_FRAMES = 2  # sent ahead of the clock at the start of a turn (40 ms): barge-in still stops speech at once
CATCH_UP_SECONDS = 0.1  # behind the clock by up to this, frames go out at once to catch up; further, the clock restarts


class LoopClock:
    """Real time: the running event loop's clock."""

    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


LOOP_CLOCK = LoopClock()


class Playback:
    """Plays audio on a transport in real time (on `clock`); `stop()` silences it within one frame."""

    def __init__(self, transport: CallTransport, clock: Clock = LOOP_CLOCK) -> None:
        self._transport, self._clock = transport, clock
        self._stop = asyncio.Event()
        self.playing = False
        self.first_frame_at: Optional[float] = None  # time.monotonic() of the last turn's first frame
        self.restarts = 0  # times the clock started again because audio came too late (pauses)

    async def play(self, chunks: AsyncIterator[bytes]) -> bool:
        """Play audio chunks as they come (synthesis may still be running); False when stopped early."""
        self._stop.clear()
        self.playing, self.first_frame_at = True, None
        self._due: Optional[float] = None
        pending = b""
        try:
            async for chunk in chunks:
                pending += chunk
                while len(pending) >= FRAME_BYTES:
                    if self._stop.is_set():
                        return False
                    frame, pending = pending[:FRAME_BYTES], pending[FRAME_BYTES:]
                    await self._send(frame)
            if pending and not self._stop.is_set():
                await self._send(pending.ljust(FRAME_BYTES, b"\0"))
            return not self._stop.is_set()
        finally:
            self.playing = False

    async def _send(self, frame: bytes) -> None:
        """Send one frame at its due time (at once when the clock is behind), then set the next one's."""
        now = self._clock.now()
        if self._due is None:
            self._due = now - LEAD_FRAMES * FRAME_SECONDS
        elif now - self._due > CATCH_UP_SECONDS:
            # the audio was late: a pause inside the prompt, then real time again (no burst)
            log_event(logger, "playback.paused", call=self._transport.call_id, late_ms=round((now - self._due) * 1000))
            self._due = now
            self.restarts += 1
        elif self._due > now:
            await self._clock.sleep(self._due - now)
        if self._stop.is_set():
            return
        if self.first_frame_at is None:
            self.first_frame_at = time.monotonic()
        await self._transport.send_audio(frame)
        self._due += FRAME_SECONDS

    def stop(self) -> None:
        self._stop.set()
