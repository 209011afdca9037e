"""Text to speech with pyttsx3 on espeak-ng, run in a dedicated worker process behind a pipe.

pyttsx3's engine and espeak's one global callback are not safe to share, so one process
(started with multiprocessing's "spawn") owns them and runs one job at a time. Callers in
any thread send jobs with an id; a reader thread hands each answer to the caller waiting
for it. A worker that dies is replaced by the next call.

Unlike other spawned processes, the worker does not run the parent's main script again (as
`__mp_main__`): it needs nothing from it, and scripts without `if __name__ == "__main__":`,
`python - < script` and console scripts such as `rasa` would otherwise break or import far
more than espeak needs.
"""

from __future__ import annotations

import itertools
import logging
import multiprocessing
import os
import signal
import tempfile
import threading
import time
import wave
from collections import OrderedDict
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from functools import lru_cache
from multiprocessing import spawn
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

import numpy

from onewindow.infra.logs import log_event
from voice.audio import Pcm, resample

if TYPE_CHECKING:
    from voice.stages import Synthesiser

logger = logging.getLogger("onewindow.voice.speech_synthesis")
TIMEOUT_SECONDS = 30.0  # per job, from the call to the answer (read at each call)
STOP_SECONDS = 5.0  # how long close() lets the worker finish its queued jobs
NATIVE_RATE = 22050  # what espeak-ng writes
MIN_WORDS_PER_MINUTE, MAX_WORDS_PER_MINUTE = 80, 450  # espeak's range


@dataclass(frozen=True)
class Voice:
    """How to speak: the speed in words per minute and an espeak-ng voice ("en-us", "en-gb"; None: the default)."""

    words_per_minute: int = 160
    name: Optional[str] = None

    def __post_init__(self) -> None:
        if not MIN_WORDS_PER_MINUTE <= self.words_per_minute <= MAX_WORDS_PER_MINUTE:
            raise ValueError(
                f"espeak speaks at {MIN_WORDS_PER_MINUTE} to {MAX_WORDS_PER_MINUTE} words per minute, not {self.words_per_minute}"
            )


SLOW = Voice(words_per_minute=120)


# The worker process. Everything from here to SpeechSynthesiser runs only there.


def _wait_until_espeak_idle() -> None:
    """Wait until espeak's own thread has run every queued command (parameters and speech are asynchronous)."""
    from pyttsx3.drivers import _espeak  # loads libespeak-ng

    deadline = time.monotonic() + TIMEOUT_SECONDS
    while _espeak.IsPlaying():
        if time.monotonic() > deadline:
            raise RuntimeError("espeak did not finish its queued work")
        time.sleep(0.001)


def _new_engine() -> Any:
    """The process's one pyttsx3 engine, ready so its first job runs like every other one."""
    import pyttsx3

    engine = pyttsx3.init()
    _wait_until_espeak_idle()
    # A new engine queues commands until its first loop: this empty loop drains it. Only ever on a new
    # engine: on a used one, an empty runAndWait speaks the last text again into the last file name.
    engine.runAndWait()
    return engine


def _voice_table(engine: Any) -> Dict[str, str]:
    """Every name a caller may use for a voice, lower case, to its pyttsx3 id ("en-us" -> "gmw/en-us")."""
    voices = engine.getProperty("voices")
    table: Dict[str, str] = {}
    # ids first ("gmw/en-us", then "en-us"), then languages ("en-gb" is the file "gmw/en"), then display names
    for keys in (
        lambda voice: [voice.id, voice.id.rsplit("/", 1)[-1]],
        lambda voice: list(voice.languages or []),
        lambda voice: [voice.name],
    ):
        for voice in voices:
            for key in keys(voice):
                if key:
                    table.setdefault(str(key).lower(), voice.id)
    return table


class _Espeak:
    """The worker's engine and what it is set to."""

    def __init__(self) -> None:
        self.engine = _new_engine()
        self.voices = _voice_table(self.engine)
        self.default_voice = self.engine.getProperty("voice")
        self.voice = self.default_voice

    def voice_id(self, name: Optional[str]) -> str:
        if name is None:
            return self.default_voice
        voice_id = self.voices.get(name.strip().lower())
        if voice_id is None:
            english = sorted(key for key in self.voices if key.startswith("en-") and "/" not in key)
            raise ValueError(f"espeak-ng has no voice {name!r}; English ones: {', '.join(english)}")
        return voice_id

    def speak(self, text: str, words_per_minute: int, name: Optional[str]) -> Tuple[bytes, int]:
        """One job: set the voice and speed, write one WAV file with one runAndWait, read it back."""
        voice_id = self.voice_id(name)
        if voice_id != self.voice:
            self.engine.setProperty("voice", voice_id)
            self.voice = voice_id
        self.engine.setProperty("rate", words_per_minute)
        _wait_until_espeak_idle()  # otherwise runAndWait's stop() cancels the pending changes
        if self.engine.getProperty("voice") != voice_id:
            self.voice = self.engine.getProperty("voice")
            raise RuntimeError(f"espeak-ng did not switch to the voice {voice_id!r}")
        handle, path = tempfile.mkstemp(prefix="onewindow-speech-", suffix=".wav")
        os.close(handle)
        try:
            self.engine.save_to_file(text, path)
            self.engine.runAndWait()
            _wait_until_espeak_idle()  # the loop may return before espeak's thread has written the file
            try:
                with wave.open(path, "rb") as wav:
                    if (wav.getnchannels(), wav.getsampwidth()) != (1, 2):
                        raise RuntimeError("espeak-ng wrote audio that is not mono 16-bit")
                    frames, rate = wav.readframes(wav.getnframes()), wav.getframerate()
            except (EOFError, wave.Error):
                frames, rate = b"", NATIVE_RATE
        finally:
            os.unlink(path)
        if not frames:
            raise RuntimeError(f"speech synthesis produced no audio for {len(text)} characters")
        return frames, rate


def _serve(jobs: Connection, answers: Connection) -> None:
    """The worker process: one engine, one job at a time, until the pipe closes or None arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C in a terminal is for the parent, which stops us
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)  # pyttsx3 prints "Audio saved to <file>" for every job: keep it out of the server's log
    os.close(devnull)
    started = time.perf_counter()
    espeak: Optional[_Espeak] = None
    failure = ""
    try:
        espeak = _Espeak()
        resample(Pcm(numpy.zeros(NATIVE_RATE // 100, dtype=numpy.int16), NATIVE_RATE), 8000)  # imports scipy now
    except Exception as error:  # every job must hear why there is no speech
        failure = f"speech synthesis is unavailable (pyttsx3 on espeak-ng): {error}"
    try:
        answers.send((0, "ready", time.perf_counter() - started, failure))
    except (EOFError, OSError):
        return
    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if job is None:
            return
        job_id, text, words_per_minute, name, rate = job
        if espeak is None:
            answer: tuple = (job_id, "error", failure)
        else:
            answer = _job(espeak, job_id, text, words_per_minute, name, rate)
        try:
            answers.send(answer)
        except (EOFError, OSError):
            return


def _job(espeak: _Espeak, job_id: int, text: str, words_per_minute: int, name: Optional[str], rate: Optional[int]) -> tuple:
    """One job's answer for the caller: ok with the audio and its rate, or an error."""
    started = time.perf_counter()
    try:
        frames, native_rate = espeak.speak(text, words_per_minute, name)
        if rate is not None and rate != native_rate:  # here, so the caller's process spends no time on it
            frames = resample(Pcm.from_bytes(frames, native_rate), rate).to_bytes()
        else:
            rate = native_rate
        return (job_id, "ok", frames, rate, time.perf_counter() - started)
    except ValueError as error:  # a bad voice name
        return (job_id, "value", str(error))
    except Exception as error:  # handed to the caller
        return (job_id, "error", f"speech synthesis failed: {error or type(error).__name__}")


# The caller's side.

_PATCHING = threading.Lock()


def _start_without_main(process: Any) -> None:
    """Start a spawn-context process that does not import the parent's __main__ (its target is importable).

    multiprocessing has no option for it: its preparation data is changed while this thread
    starts the process, and only for calls from this thread.
    """
    starter = threading.get_ident()
    with _PATCHING:
        original = spawn.get_preparation_data

        def preparation(name: str) -> Dict[str, Any]:
            data = original(name)
            if threading.get_ident() == starter:
                data.pop("init_main_from_path", None)
                data.pop("init_main_from_name", None)
            return data

        spawn.get_preparation_data = preparation
        try:
            process.start()
        finally:
            spawn.get_preparation_data = original


class _Worker:
    """One worker process, its two pipes and the thread that reads its answers."""

    def __init__(self) -> None:
        context = multiprocessing.get_context("spawn")
        jobs_out, jobs_in = context.Pipe(duplex=False)  # (receiving end, sending end)
        answers_out, answers_in = context.Pipe(duplex=False)
        started = time.perf_counter()
        self.process = context.Process(target=_serve, args=(jobs_out, answers_in), name="onewindow-speech-synthesis", daemon=True)
        _start_without_main(self.process)
        jobs_out.close()  # only the worker holds these ends now: its death closes the pipes (EOF)
        answers_in.close()
        self.pid: int = self.process.pid  # type: ignore[assignment]  # a started process has its pid
        self._jobs, self._answers = jobs_in, answers_out
        self._sending = threading.Lock()
        self._lock = threading.Lock()
        self.pending: Dict[int, "Future[tuple]"] = {}
        self.stopped = False
        self.ready = False
        self.reason = ""
        self._started = started
        self._reader = threading.Thread(target=self._read, name=f"onewindow-speech-answers-{self.pid}", daemon=True)
        self._reader.start()

    def usable(self) -> bool:
        return not self.stopped and self.process.is_alive()

    def submit(self, job_id: int, job: tuple, answer: "Future[tuple]") -> None:
        """Send one job; raises OSError when the worker is gone."""
        with self._lock:
            if self.stopped:
                raise BrokenPipeError("the worker has stopped")
            self.pending[job_id] = answer
        try:
            with self._sending:
                self._jobs.send((job_id, *job))
        except (OSError, ValueError):
            self.forget(job_id)
            raise BrokenPipeError("the worker has stopped") from None

    def forget(self, job_id: int) -> None:
        with self._lock:
            self.pending.pop(job_id, None)

    def stop(self, reason: str, graceful: bool) -> None:
        """Stop the process: after its queued jobs (graceful) or at once. The reader fails what is still pending."""
        with self._lock:
            if not self.reason:
                self.reason = reason
        if graceful:
            try:
                with self._sending:
                    self._jobs.send(None)
            except (OSError, ValueError):
                pass
            self.process.join(STOP_SECONDS)
        if self.process.is_alive():
            self.process.kill()
        self.process.join(STOP_SECONDS)
        self._reader.join(STOP_SECONDS)

    def _read(self) -> None:
        """The reader thread: resolve each answer's future; when the pipe closes, fail every job still pending."""
        while True:
            try:
                job_id, status, *rest = self._answers.recv()
            except (EOFError, OSError):
                break
            if status == "ready":
                self.ready = True
                log_event(
                    logger,
                    "speech.worker_started",
                    pid=self.pid,
                    engine=round(rest[0], 3),
                    elapsed=round(time.perf_counter() - self._started, 3),
                    unavailable=bool(rest[1]),
                )
                continue
            with self._lock:
                answer = self.pending.pop(job_id, None)
            if answer is None:  # its caller gave up (timed out)
                continue
            if status == "ok":
                answer.set_result(tuple(rest))
            elif status == "value":
                answer.set_exception(ValueError(rest[0]))
            else:
                answer.set_exception(RuntimeError(rest[0]))
        self.process.join(STOP_SECONDS)
        code = self.process.exitcode
        with self._lock:
            self.stopped = True
            pending, self.pending = self.pending, {}
            reason = self.reason or (f"killed by signal {-code}" if code is not None and code < 0 else f"exit code {code}")
            if not self.ready and not self.reason:
                reason += " while starting"
        self._jobs.close()
        self._answers.close()
        if pending or not self.reason:
            log_event(logger, "speech.worker_stopped", pid=self.pid, reason=reason, failed_jobs=len(pending))
        for answer in pending.values():
            answer.set_exception(
                RuntimeError(
                    f"the speech synthesis worker process (pid {self.pid}) stopped ({reason}) before finishing"
                    " this job; the next request starts a new worker"
                )
            )


class SpeechSynthesiser:
    """pyttsx3 in a dedicated worker process; `synthesise` is safe from any number of threads at once."""

    def __init__(self) -> None:
        """Nothing starts yet: the worker process starts with the first job (and again after it dies)."""
        self._lock = threading.Lock()
        self._worker: Optional[_Worker] = None
        self._closed = False
        self._ids = itertools.count(1)

    @property
    def worker_pid(self) -> Optional[int]:
        """The process id of the running worker (None before the first job, once it has stopped, and after close())."""
        worker = self._worker
        return worker.pid if worker is not None and not worker.stopped else None

    def _running_worker(self) -> _Worker:
        with self._lock:
            if self._closed:
                raise RuntimeError("the speech synthesiser is closed")
            worker = self._worker
            if worker is None or not worker.usable():
                if worker is not None:
                    threading.Thread(target=worker.stop, args=("it had stopped", False), daemon=True).start()
                self._worker = None
                try:
                    worker = self._worker = _Worker()
                except OSError as error:
                    raise RuntimeError(f"cannot start the speech synthesis worker process: {error}") from error
            return worker

    def synthesise(self, text: str, voice: Voice = Voice(), rate: Optional[int] = None) -> Pcm:
        """Speech for `text`: at 22,050 Hz, or resampled to `rate` (8000 for calls). Blocking; safe from any thread."""
        if not text.strip():
            raise ValueError("nothing to say: the text is empty")
        if rate is not None and rate <= 0:
            raise ValueError(f"sample rate must be positive, got {rate}")
        started = time.perf_counter()
        for attempt in (1, 2):  # a job that could not be sent is sent once more, to a new worker
            worker = self._running_worker()
            # a new id and future per attempt: the reader of a dying worker may fail the one it saw pending
            job_id = next(self._ids)
            answer: "Future[tuple]" = Future()
            try:
                worker.submit(job_id, (text, voice.words_per_minute, voice.name, rate), answer)
                break
            except BrokenPipeError:
                with self._lock:
                    if self._worker is worker:
                        self._worker = None
                if attempt == 2:
                    raise RuntimeError("the speech synthesis worker process could not be started") from None
        timeout = TIMEOUT_SECONDS
        try:
            frames, answer_rate, busy = answer.result(timeout=timeout)
        except FutureTimeout:
            worker.forget(job_id)
            # the worker is stuck (a job takes milliseconds): replace it; the jobs queued behind fail
            with self._lock:
                if self._worker is worker:
                    self._worker = None
            worker.stop(f"a job took longer than {timeout:g} s", graceful=False)
            raise RuntimeError(f"speech synthesis took longer than {timeout:g} s; its worker process was stopped") from None
        pcm = Pcm.from_bytes(frames, answer_rate)
        log_event(
            logger,
            "speech.synthesised",
            characters=len(text),
            seconds=round(pcm.seconds, 2),
            words_per_minute=voice.words_per_minute,
            voice=voice.name,
            rate=pcm.rate,
            synthesis=round(busy, 3),
            elapsed=round(time.perf_counter() - started, 3),
        )
        return pcm

    def close(self) -> None:
        """Finish the queued jobs and stop the worker process; later calls raise RuntimeError."""
        with self._lock:
            self._closed = True
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.stop("the synthesiser was closed", graceful=True)


@lru_cache(maxsize=1)
def shared_synthesiser() -> SpeechSynthesiser:
    """The process's one speech synthesiser."""
    return SpeechSynthesiser()


class PromptCache:
    """Synthesised fixed prompts (greeting, reprompts), kept in memory."""

    def __init__(self, synthesiser: Synthesiser, size: int = 256) -> None:
        if size < 1:
            raise ValueError("a prompt cache holds at least one prompt")
        self.synthesiser = synthesiser
        self._size = size
        self._prompts: "OrderedDict[Tuple[str, Voice, Optional[int]], Pcm]" = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._prompts)

    def _cached(self, key: Tuple[str, Voice, Optional[int]]) -> Optional[Pcm]:
        pcm = self._prompts.get(key)
        if pcm is not None:
            self._prompts.move_to_end(key)
        return pcm

    def cached(self, text: str, voice: Voice = Voice(), rate: Optional[int] = None) -> Optional[Pcm]:
        """The prompt's audio if it is already made (never waits for synthesis: safe on an event loop)."""
        with self._lock:
            pcm = self._cached((text, voice, rate))
            if pcm is not None:
                self.hits += 1
            return pcm

    def get(self, text: str, voice: Voice = Voice(), rate: Optional[int] = None) -> Pcm:
        """The prompt's audio: the same object every time while it stays among the `size` most recently used.

        The samples are read-only, since every call shares them.
        """
        key = (text, voice, rate)
        with self._lock:
            pcm = self._cached(key)
            if pcm is not None:
                self.hits += 1
                return pcm
            self.misses += 1
        pcm = self.synthesiser.synthesise(text, voice, rate)  # outside the lock: other prompts need not wait
        pcm.samples.flags.writeable = False
        with self._lock:
            earlier = self._cached(key)  # another thread made it meanwhile: everyone gets the same object
            if earlier is not None:
                return earlier
            self._prompts[key] = pcm
            while len(self._prompts) > self._size:
                self._prompts.popitem(last=False)
        return pcm
