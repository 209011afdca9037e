"""Text to call audio, sentence by sentence: playback starts after the first sentence is ready."""

from __future__ import annotations

import asyncio
import re
from typing import AsyncIterator, List

from voice.audio import Pcm
from voice.speech_synthesis import PromptCache, Voice
from voice.transport import RATE

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def sentences(text: str) -> List[str]:
    return [part for part in SENTENCE_END.split(text.strip()) if part.strip()]


class SentenceAudio:
    """The bot's voice on a call (a voice.stages.SpeechOutput): fixed prompts from the prompt cache, answers
    synthesised, the next sentence made while this one plays."""

    def __init__(self, prompts: PromptCache) -> None:
        self._prompts = prompts

    async def audio(self, text: str, voice: Voice, fixed: bool = False) -> AsyncIterator[bytes]:
        """8 kHz s16le audio of `text`; the next sentence is synthesised while this one plays.

        Fixed prompts (the greeting, reprompts) come from the prompt cache; answers are synthesised.
        """
        parts = sentences(text)
        if not parts:
            return
        current = self._start(parts[0], voice, fixed)
        for following in parts[1:] + [None]:
            upcoming = self._start(following, voice, fixed) if following is not None else None
            try:
                yield (await current).to_bytes()
            except BaseException:
                if upcoming is not None:
                    upcoming.cancel()
                raise
            if upcoming is None:
                return
            current = upcoming

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
