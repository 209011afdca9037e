"""Voice notes in (decoded, transcribed by vosk) and voice replies out (pyttsx3, OGG/Opus).

The speech engine lives in voice/ and is shared with the phone hotline; this module only
moves its blocking work off the event loop.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass

from voice.audio import decode_ogg_opus, encode_ogg_opus
from voice.recognition import SpeechRecogniser, Transcript, shared_recogniser
from voice.speech_synthesis import SLOW, Voice, shared_synthesiser

MAX_VOICE_NOTE_BYTES = 20 * 1024 * 1024  # what a bot may download from Telegram
MAX_VOICE_NOTE_SECONDS = 120  # decoding holds about 190 KB per second of audio in memory


@dataclass(frozen=True)
class VoiceReply:
    ogg: bytes
    seconds: int


async def recogniser() -> SpeechRecogniser:
    """The process's speech recogniser (loaded once, in a worker thread); raises SpeechUnavailable."""
    return await asyncio.to_thread(shared_recogniser)


async def transcribe_voice_note(ogg: bytes) -> Transcript:
    """Decode an OGG/Opus voice note and transcribe it; raises AudioError or SpeechUnavailable."""
    engine = await recogniser()
    pcm = await asyncio.to_thread(decode_ogg_opus, ogg, engine.SAMPLE_RATE)
    return await asyncio.to_thread(engine.transcribe, pcm)


async def synthesise_voice_reply(text: str, slow: bool = False) -> VoiceReply:
    """Speak `text` (slower on request) as an OGG/Opus voice note."""
    pcm = await asyncio.to_thread(shared_synthesiser().synthesise, text, SLOW if slow else Voice())
    ogg = await asyncio.to_thread(encode_ogg_opus, pcm)
    return VoiceReply(ogg, max(1, math.ceil(pcm.seconds)))
