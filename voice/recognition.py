"""Speech to text with vosk: one model per process, one recogniser per call, streaming.

A call's audio reaches a recogniser through a `LiveStream`: fed without waiting, finished with an
await. An in-process `Recogniser` decodes in this module's own thread pool (never the event
loop's default executor, where speech synthesis and the database wait); the hotline gateway uses
voice.recognition_worker.RecognitionPool instead, which decodes in worker processes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import vosk

from onewindow.infra.logs import log_event
from onewindow.settings.variables import VOSK_MODEL_PATH
from voice.audio import AudioError, Pcm, resample

logger = logging.getLogger("onewindow.voice.recognition")
CHUNK_SECONDS = 0.5  # how much audio transcribe() feeds at a time
RATES = (8000, 16000)  # telephone audio and vosk models' own rate
_LOADING = threading.Lock()
# What a vosk model folder holds; named in the error when a folder cannot be loaded.
MODEL_FILES = ("am/final.mdl", "conf/model.conf")
GRAMMAR_FILES = ("graph/HCLr.fst", "graph/Gr.fst")  # runtime grammars need both (lookahead models)


class SpeechUnavailable(RuntimeError):
    """No speech model is configured or it cannot be loaded."""


@dataclass(frozen=True)
class Word:
    """One recognised word: seconds from the start of its stream, and vosk's confidence (0 to 1)."""

    text: str
    start: float
    end: float
    confidence: float


@dataclass(frozen=True)
class Transcript:
    """What was said, how sure the recogniser is (mean word confidence, 0 to 1), how long the audio was, and each word."""

    text: str
    confidence: float
    seconds: float
    words: Tuple[Word, ...] = ()


class RecognitionStream(ABC):
    """One caller's audio, fed as it arrives; used by one task/thread only."""

    rate: int

    @abstractmethod
    def accept(self, pcm: bytes) -> str:
        """Feed mono signed 16-bit little-endian audio at `self.rate`; the current partial text ("" if none)."""

    @abstractmethod
    def finish(self) -> Transcript:
        """The final result of everything fed since the last finish(); the stream is then ready for the next utterance."""

    def reset(self) -> None:
        """Forget everything fed since the last finish() (by default: finish and drop the result)."""
        self.finish()


class LiveStream(ABC):
    """One call's recognition as the event loop uses it: `feed` never waits, `finish` is awaited."""

    @abstractmethod
    def open(self) -> None:
        """The call starts: get the recogniser ready now (in the background), not at the first utterance."""

    @abstractmethod
    def feed(self, pcm: bytes) -> None:
        """Queue audio (8 kHz s16le) after the audio fed before it; returns at once."""

    @abstractmethod
    def finish(self) -> "asyncio.Future[Transcript]":
        """The transcript of everything fed since the last finish() or discard(), queued now (await the answer)."""

    @abstractmethod
    def discard(self) -> None:
        """Forget what was fed since the last finish() (a key was pressed, or the bot starts a turn)."""

    @abstractmethod
    def close(self) -> None:
        """The call is over: the recogniser may serve another call."""


class LiveRecognition(ABC):
    """Where calls' audio is recognised: opens one live stream per call."""

    async def start(self) -> None:  # noqa: B027 - an optional hook: only engines with worker processes start anything
        """Get ready before the first call (nothing to do unless the engine has processes to start)."""

    async def close(self) -> None:  # noqa: B027 - an optional hook, as start()
        """Stop what start() started."""

    @abstractmethod
    def live(self, rate: int, grammar: Optional[Sequence[str]] = None) -> LiveStream:
        """A live stream for one call at `rate` Hz, free-form or limited to the phrases in `grammar`."""


class Recogniser(LiveRecognition):
    """The engine interface channels use; a test may put scripted text here when no English model exists."""

    @abstractmethod
    def stream(self, rate: int, grammar: Optional[Sequence[str]] = None) -> RecognitionStream:
        """A new stream for one call (or one turn) at `rate` Hz, free-form or limited to the phrases in `grammar`."""

    def live(self, rate: int, grammar: Optional[Sequence[str]] = None) -> LiveStream:
        """A live stream decoded in this process, in the recognition thread pool."""
        return _ThreadedStream(lambda: self.stream(rate, grammar))


_DECODING = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="onewindow-recognition")


class _ThreadedStream(LiveStream):
    """A RecognitionStream driven from the event loop: each piece of work runs in the recognition
    thread pool after the work queued before it, so one thread at a time uses the stream."""

    def __init__(self, new_stream: Callable[[], RecognitionStream]) -> None:
        self._new_stream = new_stream
        self._stream: Optional[RecognitionStream] = None
        self._last: "Optional[asyncio.Future[Any]]" = None

    def _opened(self) -> RecognitionStream:
        """The stream, created on first use (in the pool: a vosk recogniser takes tens of ms)."""
        if self._stream is None:
            self._stream = self._new_stream()
        return self._stream

    def _in_turn(self, work: Any) -> "asyncio.Future[Any]":
        before, loop = self._last, asyncio.get_running_loop()

        async def after_before() -> Any:
            if before is not None:
                await asyncio.gather(before, return_exceptions=True)
            return await loop.run_in_executor(_DECODING, work)

        self._last = asyncio.ensure_future(after_before())
        return self._last

    def open(self) -> None:
        """Create the stream and decode half a second of silence: vosk's first decoding on a new recogniser is slow."""

        def warm_up() -> None:
            stream = self._opened()
            stream.accept(bytes(stream.rate))
            stream.finish()

        self._in_turn(warm_up)

    def feed(self, pcm: bytes) -> None:
        self._in_turn(lambda: self._opened().accept(pcm))

    def finish(self) -> "asyncio.Future[Transcript]":
        return self._in_turn(lambda: self._opened().finish())

    def discard(self) -> None:
        self._in_turn(lambda: self._opened().reset())

    def close(self) -> None:
        """Nothing to hand back: the stream is dropped with the call."""


def _mean_confidence(words: Sequence[Word]) -> float:
    return sum(word.confidence for word in words) / len(words) if words else 0.0


class _VoskStream(RecognitionStream):
    """A KaldiRecognizer fed incrementally; its results are kept until finish() so a mid-stream endpoint loses nothing."""

    def __init__(self, model: vosk.Model, rate: int, grammar: Optional[str], partials: bool = True) -> None:
        self.rate = rate
        self.grammar = grammar is not None
        self.partials = partials  # vosk's partial result costs about three times the decoding itself
        self._kaldi = vosk.KaldiRecognizer(model, rate, grammar) if grammar is not None else vosk.KaldiRecognizer(model, rate)
        self._kaldi.SetWords(True)
        self._results: List[Dict[str, Any]] = []  # utterances vosk closed itself (its endpoints) since the last finish()
        self._bytes = 0
        self._busy = 0.0  # seconds spent in vosk since the last finish()

    def _settled_text(self) -> List[str]:
        return [result["text"] for result in self._results if result.get("text")]

    def accept(self, pcm: bytes) -> str:
        """Feed audio; the text heard so far in this utterance (vosk's partial result after any endpoint text)."""
        if len(pcm) % 2:
            raise AudioError(f"16-bit audio needs an even number of bytes, got {len(pcm)}")
        if not pcm:
            return " ".join(self._settled_text())
        started = time.perf_counter()
        if self._kaldi.AcceptWaveform(bytes(pcm)):
            # vosk found an endpoint (a pause): keep its result, or the words before the pause are lost
            self._results.append(json.loads(self._kaldi.Result()))
        # after an endpoint vosk answers {"text": ""} until new speech: hence get()
        partial = json.loads(self._kaldi.PartialResult()).get("partial", "") if self.partials else ""
        self._busy += time.perf_counter() - started
        self._bytes += len(pcm)
        return " ".join(self._settled_text() + ([partial] if partial else []))

    def finish(self) -> Transcript:
        """Everything heard since the last finish(); the next accept() starts a new utterance on the same recogniser."""
        started = time.perf_counter()
        self._results.append(json.loads(self._kaldi.FinalResult()))
        busy = self._busy + time.perf_counter() - started
        words = tuple(
            Word(text=word["word"], start=float(word["start"]), end=float(word["end"]), confidence=float(word["conf"]))
            for result in self._results
            for word in result.get("result", [])
        )
        transcript = Transcript(
            text=" ".join(self._settled_text()),
            confidence=_mean_confidence(words),
            seconds=self._bytes / 2 / self.rate,
            words=words,
        )
        self._results, self._bytes, self._busy = [], 0, 0.0
        log_event(
            logger,
            "speech.transcribed",
            rate=self.rate,
            grammar=self.grammar,
            seconds=round(transcript.seconds, 2),
            words=len(words),
            confidence=round(transcript.confidence, 2),
            elapsed=round(busy, 3),
        )
        return transcript

    def reset(self) -> None:
        """Forget what was fed since the last finish(), without FinalResult's work (Kaldi's own reset)."""
        self._kaldi.Reset()
        self._results, self._bytes, self._busy = [], 0, 0.0


class SpeechRecogniser(Recogniser):
    """A loaded vosk model shared by every stream; `stream` and `transcribe` may be called from many threads at once."""

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
        except Exception as error:  # vosk raises a bare Exception
            missing = [name for name in MODEL_FILES if not (folder / name).is_file()]
            hint = f"; missing {', '.join(missing)}" if missing else ""
            raise SpeechUnavailable(
                f"vosk cannot load the model in {model_path!r} ({error}{hint}): "
                "the folder must be an unpacked vosk model (am/, conf/, graph/, ivector/)"
            ) from error
        self.path = str(folder)
        self.supports_grammar = all((folder / name).is_file() for name in GRAMMAR_FILES)
        self._unknown_word = self.model.vosk_model_find_word("[unk]") >= 0
        self._warned: set = set()
        self._warning = threading.Lock()
        log_event(
            logger,
            "speech.model_loaded",
            seconds=round(time.perf_counter() - started, 2),
            grammars=self.supports_grammar,
        )

    def _warn_once(self, key: Any, event: str, **fields: Any) -> None:
        with self._warning:
            if key in self._warned:
                return
            self._warned.add(key)
        logger.warning(event, extra={"fields": fields})  # the fields as log_event writes them, at warning level

    def _in_vocabulary(self, word: str) -> Optional[str]:
        """The word as the model spells it (as given, else lower case), or None when the model does not know it."""
        for candidate in (word, word.lower()):
            if self.model.vosk_model_find_word(candidate) >= 0:
                return candidate
        return None

    def _grammar_json(self, grammar: Sequence[str]) -> Optional[str]:
        """vosk's grammar for these phrases, or None to recognise freely (the model cannot, or knows none of them)."""
        if isinstance(grammar, str):
            raise TypeError("a grammar is a sequence of phrases, not one string")
        phrases = [" ".join(str(phrase).split()) for phrase in grammar]
        if not any(phrases):
            raise ValueError("a grammar needs at least one phrase")  # vosk crashes the process on an empty grammar
        if not self.supports_grammar:
            self._warn_once("unsupported", "speech.grammar_ignored", reason="model has no graph/HCLr.fst and graph/Gr.fst")
            return None
        kept: List[str] = []
        missing: List[str] = []
        for phrase in phrases:
            spelled = [self._in_vocabulary(word) for word in phrase.split()]
            known = [word for word in spelled if word is not None]
            if spelled and len(known) == len(spelled):
                kept.append(" ".join(known))
            else:
                missing.extend(word for word, known in zip(phrase.split(), spelled) if not known)
        if missing:
            # vosk would silently drop the unknown words from a phrase ("press one" -> "press"): drop the phrase
            self._warn_once(tuple(phrases), "speech.grammar_words_missing", missing=sorted(set(missing))[:20])
        if not kept:
            self._warn_once(("none", tuple(phrases)), "speech.grammar_ignored", reason="the model knows none of its words")
            return None
        if self._unknown_word:
            kept.append("[unk]")
        # ensure_ascii=False: vosk's JSON reader does not decode \u escapes, so "네" would become an unknown word
        return json.dumps(kept, ensure_ascii=False)

    def stream(self, rate: int, grammar: Optional[Sequence[str]] = None, partials: bool = True) -> RecognitionStream:
        """A new KaldiRecognizer for one call at 8,000 or 16,000 Hz, with word times and confidences
        (and partial results from accept(), unless `partials` is False).

        With `grammar` (phrases such as ["yes", "no"] or digits) and a model that supports runtime
        grammars, only those phrases (and "[unk]" when the model has it) can be heard; otherwise the
        grammar is ignored (logged once) and recognition is free-form.
        """
        if rate not in RATES:
            raise ValueError(f"a recognition stream takes audio at {' or '.join(map(str, RATES))} Hz, not {rate}")
        return _VoskStream(self.model, rate, self._grammar_json(grammar) if grammar is not None else None, partials)

    def live(self, rate: int, grammar: Optional[Sequence[str]] = None) -> LiveStream:
        """A live stream decoded in this process's recognition threads, without partial results (calls never read them)."""
        return _ThreadedStream(lambda: self.stream(rate, grammar, partials=False))

    def transcribe(self, pcm: Pcm) -> Transcript:
        """The words in `pcm`, at any rate (blocking: run it in a worker thread)."""
        if pcm.rate not in RATES:
            pcm = resample(pcm, self.SAMPLE_RATE)
        stream = self.stream(pcm.rate)
        audio = pcm.to_bytes()
        chunk = 2 * int(pcm.rate * CHUNK_SECONDS)
        for start in range(0, len(audio), chunk):
            stream.accept(audio[start : start + chunk])
        return stream.finish()


def model_path_from_environment() -> Optional[str]:
    """The vosk model folder named by VOSK_MODEL_PATH, or None."""
    return VOSK_MODEL_PATH.read()


@lru_cache(maxsize=1)
def _load_shared_recogniser() -> SpeechRecogniser:
    """Load the model named by VOSK_MODEL_PATH (callers hold _LOADING)."""
    path = model_path_from_environment()
    if path is None:
        raise SpeechUnavailable("speech recognition is off: set VOSK_MODEL_PATH (see scripts/get-vosk-model.sh)")
    try:
        return SpeechRecogniser(path)
    except SpeechUnavailable as error:
        raise SpeechUnavailable(f"{error}; set VOSK_MODEL_PATH (see scripts/get-vosk-model.sh)") from None


def shared_recogniser() -> SpeechRecogniser:
    """The process's one recogniser, loaded from VOSK_MODEL_PATH on first use (concurrent first calls load it once)."""
    with _LOADING:
        return _load_shared_recogniser()


def forget_shared_recogniser() -> None:
    """Forget the loaded model: the next shared_recogniser() loads VOSK_MODEL_PATH again."""
    with _LOADING:
        _load_shared_recogniser.cache_clear()
