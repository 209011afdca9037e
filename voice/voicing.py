"""Text to call audio, sentence by sentence: playback starts after the first sentence is ready."""

from __future__ import annotations

import asyncio
import re
from typing import AsyncIterator, List

from voice.audio import Pcm
from voice.synthesis import PromptCache, Voice
from voice.transport import RATE

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> List[str]:
    return [part for part in SENTENCE_END.split(text.strip()) if part.strip()]


class Voicing:
    def __init__(self, prompts: PromptCache) -> None:
        self._prompts = prompts

    async def audio(self, text: str, voice: Voice, fixed: bool = False) -> AsyncIterator[bytes]:
        """8 kHz s16le audio of `text`; the next sentence is synthesised while this one plays.

        Fixed prompts (the greeting, reprompts) come from the prompt cache; answers are synthesised.
        """
        parts = sentences(text)
        upcoming = self._start(parts[0], voice, fixed) if parts else None
        for index in range(len(parts)):
            current = upcoming
            upcoming = self._start(parts[index + 1], voice, fixed) if index + 1 < len(parts) else None
            try:
                yield (await current).to_bytes()  # type: ignore[misc]
            except BaseException:
                if upcoming is not None:
                    upcoming.cancel()
                raise

    def _start(self, sentence: str, voice: Voice, fixed: bool) -> "asyncio.Future[Pcm]":
        """The sentence's audio: a fixed prompt already in the cache at once, anything else from the
        synthesis worker process (waited for in a thread, so the event loop goes on)."""
        ready = self._prompts.cached(sentence, voice, RATE) if fixed else None
        if ready is not None:
            done: "asyncio.Future[Pcm]" = asyncio.get_running_loop().create_future()
            done.set_result(ready)
            return done
        speak = self._prompts.get if fixed else self._prompts.synthesiser.synthesise
        return asyncio.ensure_future(asyncio.to_thread(speak, sentence, voice, RATE))
