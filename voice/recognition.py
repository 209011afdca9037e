"""Speech to text with vosk: one model per process, one recogniser per call."""
from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Optional

import vosk

from onewindow.logs import log_event
from voice.audio import Pcm, resample

logger = logging.getLogger("onewindow.voice.recognition")
CHUNK_SECONDS = 0.5
_LOADING = threading.Lock()


class SpeechUnavailable(RuntimeError):
    """No speech model is configured or it cannot be loaded."""


@dataclass(frozen=True)
class Transcript:
    """What was said, how sure the recogniser is (mean word confidence, 0 to 1) and how long the audio was."""

    text: str
    confidence: float
    seconds: float


class SpeechRecogniser:
    """A loaded vosk model; `transcribe` may be called from many threads at once."""

    SAMPLE_RATE = 16000

    def __init__(self, model_path: str) -> None:
        """Load the vosk model in the folder `model_path` (a path, never a model name: names download)."""
        folder = Path(model_path) if model_path else None
        if folder is None or not folder.is_dir():
            raise SpeechUnavailable(f"no vosk model folder at {model_path!r}")
        vosk.SetLogLevel(-1)
        started = time.perf_counter()
        try:
            self.model = vosk.Model(model_path=str(folder))
        except Exception as error:  # noqa: BLE001 - vosk raises a bare Exception
            raise SpeechUnavailable(f"vosk cannot load the model in {model_path!r}: {error}") from error
        log_event(logger, "speech.model_loaded", seconds=round(time.perf_counter() - started, 2))

    def transcribe(self, pcm: Pcm) -> Transcript:
        """The words in `pcm` (blocking: run it in a worker thread)."""
        started = time.perf_counter()
        audio = resample(pcm, self.SAMPLE_RATE).to_bytes()
        recogniser = vosk.KaldiRecognizer(self.model, self.SAMPLE_RATE)
        recogniser.SetWords(True)
        chunk = 2 * int(self.SAMPLE_RATE * CHUNK_SECONDS)
        results = []
        for start in range(0, len(audio), chunk):
            if recogniser.AcceptWaveform(audio[start : start + chunk]):
                results.append(json.loads(recogniser.Result()))
        results.append(json.loads(recogniser.FinalResult()))
        words = [word for result in results for word in result.get("result", [])]
        text = " ".join(result["text"] for result in results if result.get("text"))
        confidence = sum(word["conf"] for word in words) / len(words) if words else 0.0
        log_event(
            logger,
            "speech.transcribed",
            seconds=round(pcm.seconds, 2),
            words=len(words),
            confidence=round(confidence, 2),
            elapsed=round(time.perf_counter() - started, 3),
        )
        return Transcript(text=text, confidence=confidence, seconds=pcm.seconds)


def model_path_from_environment() -> Optional[str]:
    """The vosk model folder named by VOSK_MODEL_PATH, or None."""
    return os.environ.get("VOSK_MODEL_PATH") or None


@lru_cache(maxsize=1)
def _load_shared_recogniser() -> SpeechRecogniser:
    """Load the model named by VOSK_MODEL_PATH (callers hold _LOADING)."""
    path = model_path_from_environment()
    if path is None:
        raise SpeechUnavailable("speech recognition is off: set VOSK_MODEL_PATH (see scripts/get-vosk-model.sh)")
    try:
        return SpeechRecogniser(path)
    except SpeechUnavailable as error:
        raise SpeechUnavailable(f"{error}; set VOSK_MODEL_PATH (see scripts/get-vosk-model.sh)") from error


def shared_recogniser() -> SpeechRecogniser:
    """The process's one recogniser, loaded from VOSK_MODEL_PATH on first use (concurrent first calls load it once)."""
    with _LOADING:
        return _load_shared_recogniser()


shared_recogniser.cache_clear = _load_shared_recogniser.cache_clear  # type: ignore[attr-defined]  # as with lru_cache
