"""Text to speech with pyttsx3 on espeak-ng, run in one worker thread behind a queue."""
from __future__ import annotations

import logging
import os
import queue
import tempfile
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional, Tuple

import pyttsx3

from onewindow.logs import log_event
from voice.audio import AudioError, Pcm, read_wav

logger = logging.getLogger("onewindow.voice.synthesis")
TIMEOUT_SECONDS = 30.0
# espeak has one global callback and one command queue per process: one job at a time, whatever the instance.
_ESPEAK = threading.Lock()


@dataclass(frozen=True)
class Voice:
    """How to speak: the speed in words per minute."""

    words_per_minute: int = 160


SLOW = Voice(words_per_minute=120)
Job = Tuple[str, Voice, "Future[Pcm]"]


def _wait_until_espeak_idle() -> None:
    """Wait until espeak's own thread has run every queued command (parameters and speech are asynchronous)."""
    from pyttsx3.drivers import _espeak  # loads libespeak-ng: only once speech is wanted

    deadline = time.monotonic() + TIMEOUT_SECONDS
    while _espeak.IsPlaying():
        if time.monotonic() > deadline:
            raise RuntimeError("espeak did not finish its queued work")
        time.sleep(0.001)


@lru_cache(maxsize=1)
def _engine() -> Any:
    """The process's one pyttsx3 engine (call with _ESPEAK held), ready so its first job runs like every other one."""
    engine = pyttsx3.init()
    _wait_until_espeak_idle()
    # A new engine queues commands until its first loop: this empty loop drains it. Only ever on a new
    # engine: on a used one, an empty runAndWait speaks the last text again into the last file name.
    engine.runAndWait()
    return engine


def _speak(engine: Any, text: str, voice: Voice) -> Pcm:
    """One job: set the speed, write one WAV file with one runAndWait, read it back."""
    engine.setProperty("rate", voice.words_per_minute)
    _wait_until_espeak_idle()  # otherwise runAndWait's stop() cancels the pending rate change
    handle, name = tempfile.mkstemp(prefix="onewindow-speech-", suffix=".wav")
    os.close(handle)
    try:
        engine.save_to_file(text, name)
        engine.runAndWait()
        _wait_until_espeak_idle()  # the loop may return before espeak's thread has written the file
        data = Path(name).read_bytes()
    finally:
        os.unlink(name)
    try:
        return read_wav(data)
    except AudioError as error:
        raise RuntimeError(f"speech synthesis produced no audio for {len(text)} characters") from error


class SpeechSynthesiser:
    """pyttsx3 in one dedicated worker thread behind a queue (espeak has one global callback)."""

    def __init__(self) -> None:
        """Prepare the queue; the worker thread and its pyttsx3 engine start with the first job."""
        self._jobs: "queue.Queue[Optional[Job]]" = queue.Queue()
        self._lock = threading.Lock()
        self._worker: Optional[threading.Thread] = None
        self._closed = False

    def synthesise(self, text: str, voice: Voice = Voice()) -> Pcm:
        """Speech for `text` at 22,050 Hz (blocking; safe from any thread)."""
        if not text.strip():
            raise ValueError("nothing to say: the text is empty")
        job: "Future[Pcm]" = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the speech synthesiser is closed")
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="onewindow-speech-synthesis", daemon=True)
                self._worker.start()
            self._jobs.put((text, voice, job))
        try:
            return job.result(timeout=TIMEOUT_SECONDS)
        except FutureTimeout:
            job.cancel()
            raise RuntimeError(f"speech synthesis took longer than {TIMEOUT_SECONDS:.0f} s") from None

    def close(self) -> None:
        """Finish the queued jobs and stop the worker thread."""
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
            if worker is not None:
                self._jobs.put(None)
        if worker is not None:
            worker.join(TIMEOUT_SECONDS)

    def _work(self) -> None:
        """The worker thread: gets the pyttsx3 engine (made here, in a worker thread) and runs one job at a time."""
        engine, failure = None, None
        try:
            with _ESPEAK:
                engine = _engine()
        except Exception as error:  # noqa: BLE001 - every job must hear why there is no speech
            failure = RuntimeError(f"speech synthesis is unavailable (pyttsx3 on espeak-ng): {error}")
        while (item := self._jobs.get()) is not None:
            text, voice, job = item
            if not job.set_running_or_notify_cancel():
                continue
            if failure is not None:
                job.set_exception(failure)
                continue
            started = time.perf_counter()
            try:
                with _ESPEAK:
                    pcm = _speak(engine, text, voice)
            except Exception as error:  # noqa: BLE001 - handed to the caller
                job.set_exception(error)
                continue
            log_event(
                logger,
                "speech.synthesised",
                characters=len(text),
                seconds=round(pcm.seconds, 2),
                words_per_minute=voice.words_per_minute,
                elapsed=round(time.perf_counter() - started, 3),
            )
            job.set_result(pcm)


@lru_cache(maxsize=1)
def shared_synthesiser() -> SpeechSynthesiser:
    """The process's one speech synthesiser."""
    return SpeechSynthesiser()
