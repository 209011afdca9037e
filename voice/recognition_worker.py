"""Speech recognition for the hotline in worker processes, so decoding never takes CPU or the GIL
from the gateway's event loop (its playout clock, keypad and prompts).

Each worker is `python -m voice.recognition_worker`, started with pipes to its stdin and stdout: it
loads the vosk model once, lowers its own CPU priority (os.nice) below the gateway's, and decodes
the streams of the calls given to it, one message at a time, with recognisers that are created
once, reset between utterances and reused by the next call (vosk's first decoding on a new
recogniser costs about half a second of CPU). It warms `warm` spare recognisers before it says it
is ready, and more whenever no message waits and fewer are left.

The gateway's side (RecognitionPool) is asynchronous: audio is written to a worker's pipe without
waiting (asyncio buffers it), a transcript is awaited. A worker that dies is replaced; the streams
it served move to a live worker with the audio of their current utterance, so calls go on.

Messages are pickled tuples framed as multiprocessing.connection frames (4-byte big-endian length,
then the bytes), which the worker reads and writes with multiprocessing.connection.Connection.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import pickle
import signal
import struct
import sys
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Awaitable, Dict, List, Optional, Sequence, Set, Tuple

from onewindow.infra.logs import log_event
from onewindow.settings.variables import VOICE_RECOGNITION_NICE, VOICE_RECOGNITION_WORKERS, VOICE_WARM_RECOGNISERS
from voice.recognition import (
    LiveRecognition,
    LiveStream,
    RecognitionStream,
    SpeechRecogniser,
    SpeechUnavailable,
    Transcript,
)

logger = logging.getLogger("onewindow.voice.recognition")
ROOT = Path(__file__).resolve().parent.parent  # the worker imports voice/ from here
START_SECONDS = 120.0  # a worker loads its model and warms its spares within this (about 6 s for the Korean model)
STOP_SECONDS = 5.0
FINISH_ATTEMPTS = 3  # a transcript asked of workers that die is asked of their replacement, this many times
WARM_UP_AUDIO = bytes(8000)  # half a second of silence at 8 kHz: vosk's first decoding builds its search state


@dataclass(frozen=True)
class PoolSettings:
    """How many worker processes, how much lower their CPU priority, how many warm recognisers each keeps."""

    workers: int = VOICE_RECOGNITION_WORKERS.default_value
    niceness: int = VOICE_RECOGNITION_NICE.default_value
    warm: int = VOICE_WARM_RECOGNISERS.default_value

    @classmethod
    def from_environment(cls) -> "PoolSettings":
        """VOICE_RECOGNITION_WORKERS (default: the number of cores), VOICE_RECOGNITION_NICE (10), VOICE_WARM_RECOGNISERS (6)."""
        return cls(
            workers=max(1, VOICE_RECOGNITION_WORKERS.read()),
            niceness=VOICE_RECOGNITION_NICE.read(),
            warm=VOICE_WARM_RECOGNISERS.read(),
        )


class WorkerGone(RuntimeError):
    """The worker process stopped before answering."""


# --- the worker process -------------------------------------------------------------------------------

StreamKey = Tuple[int, Optional[Tuple[str, ...]]]  # (rate, grammar)


class _Decoder:
    """The worker's model, its calls' streams and its spare (reset, warm) recognisers."""

    def __init__(self, recogniser: SpeechRecogniser, warm: int) -> None:
        self.recogniser, self.warm = recogniser, warm
        self.streams: Dict[int, Tuple[StreamKey, RecognitionStream]] = {}
        self.spare: Dict[StreamKey, List[RecognitionStream]] = {}
        self.failures: Dict[int, str] = {}

    def new_stream(self, key: StreamKey) -> RecognitionStream:
        rate, grammar = key
        return self.recogniser.stream(rate, list(grammar) if grammar is not None else None, partials=False)

    def needs_warming(self) -> bool:
        return (
            len(self.spare.get((8000, None), [])) + sum(1 for key, _ in self.streams.values() if key == (8000, None)) < self.warm
        )

    def warm_one(self) -> None:
        stream = self.new_stream((8000, None))
        stream.accept(WARM_UP_AUDIO)
        stream.finish()
        self.spare.setdefault((8000, None), []).append(stream)

    def handle(self, message: tuple) -> Optional[tuple]:
        """Do what one message says; the answer to send, if it wants one."""
        kind, stream_id, *rest = message
        if kind == "open":
            rate, grammar = rest
            key: StreamKey = (rate, tuple(grammar) if grammar is not None else None)
            spare = self.spare.get(key)
            try:
                self.streams[stream_id] = (key, spare.pop() if spare else self.new_stream(key))
            except (ValueError, TypeError) as error:
                self.failures[stream_id] = str(error)
            return None
        if kind == "close":
            closed = self.streams.pop(stream_id, None)
            self.failures.pop(stream_id, None)
            if closed is not None:
                closed[1].reset()
                self.spare.setdefault(closed[0], []).append(closed[1])
            return None
        if stream_id not in self.streams:
            failure = self.failures.get(stream_id, "no such stream")
            return ("failed", rest[0], failure) if kind == "finish" else None
        stream = self.streams[stream_id][1]
        if kind == "feed":
            stream.accept(rest[0])
        elif kind == "reset":
            stream.reset()
        elif kind == "finish":
            started = time.perf_counter()
            transcript = stream.finish()
            return ("transcript", rest[0], transcript, time.perf_counter() - started)
        return None


def serve(model_path: str, niceness: int, warm: int) -> None:
    """The worker process: answer the messages on stdin until it closes or None arrives."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the gateway, which stops us
    os.nice(niceness)
    answers_fd = os.dup(1)
    os.dup2(2, 1)  # anything printed goes to stderr, never into the answers
    jobs, answers = Connection(0, writable=False), Connection(answers_fd, readable=False)
    started = time.perf_counter()
    decoder: Optional[_Decoder] = None
    failure = ""
    try:
        loaded = _Decoder(SpeechRecogniser(model_path), warm)
        while loaded.needs_warming():  # the first calls find warm recognisers
            loaded.warm_one()
        decoder = loaded
    except SpeechUnavailable as error:
        decoder, failure = None, str(error)
    answers.send(("ready", os.getpid(), time.perf_counter() - started, failure))
    if decoder is None:
        return
    while True:
        if decoder.needs_warming() and not jobs.poll(0):
            decoder.warm_one()  # only while no message waits
            continue
        try:
            message = jobs.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        answer = decoder.handle(message)
        if answer is not None:
            answers.send(answer)


# --- the gateway's side --------------------------------------------------------------------------------

_stream_ids = itertools.count(1)
_request_ids = itertools.count(1)


class _Worker:
    """One worker process seen from the event loop: its pipes, the answers awaited, the streams it serves."""

    def __init__(self) -> None:
        self.process: Optional[asyncio.subprocess.Process] = None
        self.pid = 0
        self.alive = False
        self.streams: Set[int] = set()
        self._waiting: Dict[int, "asyncio.Future[Tuple[Transcript, float]]"] = {}
        self._reading: Optional[asyncio.Task] = None

    async def start(self, model_path: str, settings: PoolSettings) -> str:
        """Start the process and wait until its model is loaded; the reason when it cannot recognise ("" when it can)."""
        path = os.environ.get("PYTHONPATH", "")
        env = {**os.environ, "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else "")}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "voice.recognition_worker",
            model_path,
            str(settings.niceness),
            str(settings.warm),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env=env,
        )
        self.pid = self.process.pid
        closed = asyncio.ensure_future(self.process.stdin.wait_closed())  # type: ignore[union-attr]  # started just above, with a stdin pipe
        closed.add_done_callback(lambda done: done.cancelled() or done.exception())  # a dead worker's pipe: seen by _read
        try:
            kind, _, seconds, failure = await asyncio.wait_for(self._receive(), START_SECONDS)
        except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError) as error:
            await self.stop()
            return f"the recognition worker did not start ({type(error).__name__})"
        if failure:
            await self.stop()
            return failure
        self.alive = True
        self._reading = asyncio.ensure_future(self._read())
        log_event(logger, "speech.worker_started", pid=self.pid, seconds=round(seconds, 2), niceness=settings.niceness)
        return ""

    async def _receive(self) -> tuple:
        reader = self.process.stdout  # type: ignore[union-attr]  # start() made the process, with a stdout pipe
        (length,) = struct.unpack("!i", await reader.readexactly(4))  # type: ignore[union-attr]  # as above
        return pickle.loads(await reader.readexactly(length))  # type: ignore[union-attr]  # as above

    def send(self, message: Optional[tuple]) -> None:
        """Write one message to the worker's pipe; never waits (asyncio buffers what the pipe cannot take yet)."""
        data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
        self.process.stdin.write(struct.pack("!i", len(data)) + data)  # type: ignore[union-attr]  # only sent to after start(), with a stdin pipe

    def finish(self, stream_id: int) -> "asyncio.Future[Tuple[Transcript, float]]":
        request = next(_request_ids)
        answer: "asyncio.Future[Tuple[Transcript, float]]" = asyncio.get_running_loop().create_future()
        self._waiting[request] = answer
        self.send(("finish", stream_id, request))
        return answer

    def decode(self, rate: int, grammar: Optional[List[str]], audio: List[bytes]) -> "asyncio.Future[Tuple[Transcript, float]]":
        """The transcript of `audio` on a stream of its own (an utterance whose worker died)."""
        stream_id = next(_stream_ids)
        self.send(("open", stream_id, rate, grammar))
        for pcm in audio:
            self.send(("feed", stream_id, pcm))
        answer = self.finish(stream_id)
        self.send(("close", stream_id))
        return answer

    async def _read(self) -> None:
        """Resolve each awaited answer; when the pipe closes (the process died), fail what is still awaited."""
        try:
            while True:
                kind, request, *rest = await self._receive()
                answer = self._waiting.pop(request, None)
                if answer is None or answer.done():
                    continue
                if kind == "transcript":
                    answer.set_result((rest[0], rest[1]))
                else:
                    answer.set_exception(SpeechUnavailable(f"recognition failed: {rest[0]}"))
        except (asyncio.IncompleteReadError, ConnectionError, EOFError):
            pass
        finally:
            self.alive = False
            for answer in self._waiting.values():
                if not answer.done():
                    answer.set_exception(WorkerGone(f"the recognition worker (pid {self.pid}) stopped"))
            self._waiting.clear()
        await self.process.wait()  # type: ignore[union-attr]  # read only after start()

    async def stop(self) -> None:
        """Ask the process to end, and kill it if it does not within STOP_SECONDS."""
        self.alive = False
        if self.process is None:
            return
        if self.process.returncode is None:
            try:
                self.send(None)
                self.process.stdin.close()  # type: ignore[union-attr]  # started with a stdin pipe
                await asyncio.wait_for(self.process.wait(), STOP_SECONDS)
            except (asyncio.TimeoutError, ConnectionError):
                self.process.kill()
                await self.process.wait()
        if self._reading is not None:
            await asyncio.gather(self._reading, return_exceptions=True)


class RecognitionPool(LiveRecognition):
    """vosk in `settings.workers` worker processes at lower CPU priority; each call's stream stays on one worker."""

    def __init__(self, model_path: str, settings: PoolSettings = PoolSettings()) -> None:
        self.path, self.settings = model_path, settings  # the model folder (its name tells its language)
        self.workers: List[_Worker] = []
        self._ready = asyncio.Event()
        self._tasks: Set[asyncio.Task] = set()  # watching workers, starting replacements
        self._closed = False

    @property
    def pids(self) -> List[int]:
        """The process ids of the live workers."""
        return [worker.pid for worker in self.workers if worker.alive]

    async def start(self) -> None:
        """Start the workers and wait for their models; SpeechUnavailable when none can recognise."""
        if not Path(self.path).is_dir():
            raise SpeechUnavailable(f"no vosk model folder at {self.path!r}")
        self._ready = asyncio.Event()  # on the loop that runs the pool
        started = time.perf_counter()
        workers = [_Worker() for _ in range(self.settings.workers)]
        failures = [failure for failure in await asyncio.gather(*(self._add(w) for w in workers)) if failure]
        if not self.workers:
            raise SpeechUnavailable(failures[0] if failures else "no recognition worker started")
        log_event(logger, "speech.workers_ready", workers=len(self.workers), seconds=round(time.perf_counter() - started, 2))

    async def _add(self, worker: _Worker) -> str:
        failure = await worker.start(self.path, self.settings)
        if not failure:
            if self._closed:
                await worker.stop()
                return "the pool was closed"
            self.workers.append(worker)
            self._ready.set()
            self._keep(self._watch(worker))
        return failure

    async def _watch(self, worker: _Worker) -> None:
        """When a worker's process ends unasked, start another in its place."""
        await worker.process.wait()  # type: ignore[union-attr]  # watched only once started
        if worker in self.workers:
            self.workers.remove(worker)
        if not any(w.alive for w in self.workers):
            self._ready.clear()
        if self._closed:
            return
        log_event(
            logger,
            "speech.worker_stopped",
            pid=worker.pid,
            exit_code=worker.process.returncode,  # type: ignore[union-attr]  # as above
            streams=len(worker.streams),
        )
        self._keep(self._replace())

    def _keep(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _replace(self) -> None:
        while not self._closed:
            failure = await self._add(_Worker())
            if not failure:
                return
            log_event(logger, "speech.worker_not_started", reason=failure)
            await asyncio.sleep(1.0)

    def pick(self) -> Optional[_Worker]:
        """The live worker serving the fewest streams, or None while there is none."""
        live = [worker for worker in self.workers if worker.alive]
        return min(live, key=lambda worker: len(worker.streams)) if live else None

    async def available(self) -> _Worker:
        """A live worker, waiting for a replacement if every worker has died."""
        deadline = time.monotonic() + START_SECONDS
        while not self._closed:
            worker = self.pick()
            if worker is not None:
                return worker
            self._ready.clear()
            try:
                await asyncio.wait_for(self._ready.wait(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                break
        raise SpeechUnavailable("no recognition worker is running")

    def live(self, rate: int, grammar: Optional[Sequence[str]] = None) -> LiveStream:
        return _RemoteStream(self, rate, list(grammar) if grammar is not None else None)

    async def close(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*(worker.stop() for worker in self.workers), return_exceptions=True)
        self.workers = []


class _RemoteStream(LiveStream):
    """One call's stream on a worker; it keeps the audio of the current utterance to replay on another worker."""

    def __init__(self, pool: RecognitionPool, rate: int, grammar: Optional[List[str]]) -> None:
        self._pool, self._rate, self._grammar = pool, rate, grammar
        self._id = next(_stream_ids)
        self._worker: Optional[_Worker] = None
        self._utterance: List[bytes] = []

    @property
    def worker_pid(self) -> Optional[int]:
        """The process that decodes this stream (None before its first audio)."""
        return self._worker.pid if self._worker is not None and self._worker.alive else None

    def _attached(self) -> Optional[_Worker]:
        """The stream's live worker: the one it had, else the least busy one, given the utterance so far."""
        if self._worker is not None and self._worker.alive:
            return self._worker
        if self._worker is not None:
            self._worker.streams.discard(self._id)
        self._worker = self._pool.pick()
        if self._worker is not None:
            self._worker.streams.add(self._id)
            self._worker.send(("open", self._id, self._rate, self._grammar))
            for pcm in self._utterance:
                self._worker.send(("feed", self._id, pcm))
        return self._worker

    def open(self) -> None:
        """Take a worker's recogniser now (a warm spare when it has one), so the first utterance finds it ready."""
        self._attached()

    def feed(self, pcm: bytes) -> None:
        worker = self._attached()
        self._utterance.append(pcm)
        if worker is not None:
            worker.send(("feed", self._id, pcm))

    def finish(self) -> "asyncio.Future[Transcript]":
        worker = self._attached()  # on a new worker, after the utterance so far
        utterance, self._utterance = self._utterance, []
        answer = (worker, worker.finish(self._id)) if worker is not None else None  # queued now, after the audio
        return asyncio.ensure_future(self._transcript(answer, utterance))

    async def _transcript(
        self, answer: "Optional[Tuple[_Worker, asyncio.Future[Tuple[Transcript, float]]]]", utterance: List[bytes]
    ) -> Transcript:
        """The answer; if its worker dies first, the utterance decoded again on a live worker."""
        started = time.perf_counter()
        for _ in range(FINISH_ATTEMPTS):
            if answer is None:
                worker = await self._pool.available()
                answer = (worker, worker.decode(self._rate, self._grammar, utterance))
            worker, pending = answer
            try:
                transcript, busy = await pending
            except WorkerGone:
                answer = None
                continue
            log_event(
                logger,
                "speech.transcribed",
                rate=self._rate,
                worker=worker.pid,
                seconds=round(transcript.seconds, 2),
                words=len(transcript.words),
                confidence=round(transcript.confidence, 2),
                final=round(busy, 3),
                elapsed=round(time.perf_counter() - started, 3),
            )
            return transcript
        raise SpeechUnavailable("the recognition workers stopped while decoding this utterance")

    def discard(self) -> None:
        if self._utterance and self._worker is not None and self._worker.alive:
            self._worker.send(("reset", self._id))
        self._utterance = []

    def close(self) -> None:
        if self._worker is not None:
            self._worker.streams.discard(self._id)
            if self._worker.alive:
                self._worker.send(("close", self._id))
        self._worker = None


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
