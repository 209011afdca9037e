"""Load benchmark of the Telegram bot through the local Bot API server (tests/telegram_api.py).

Starts the real stack (action server, Rasa server(s) behind HAProxy), a local Bot
API server speaking Telegram's HTTP protocol and one `python -m bot` in long-polling mode, then:

1. text: --chats simulated citizens at once, each asking --turns questions one at a time
   (the next only after the answer has arrived and the chat has been quiet for a moment);
   reports update-to-first-reply and update-to-last-message of the answer (p50, p95, max),
   messages per second (answers from the first message to the last answer, so a stuck chat
   does not stretch it), timeouts, apologies, unexpected answers and the CPU time each
   process used. A few warm-up turns in other chats come first and are not counted.
2. voice: Korean voice notes spoken by espeak-ng (about 2, 5 and 10 seconds), one at a time
   with nothing else going on; reports update-to-"I heard" (download, decode, transcribe)
   and update-to-answer, and both per second of audio. The first note is reported apart.
   The Korean model hears Korean, so the answer is the channel's "I can only read English".
3. memory: resident memory (RSS) of the bot process once started (speech model loaded),
   after the text and after the voice part.

The last message of an answer is found with the conversation tracker: the turn's bot events
say how many Telegram messages the bot had to send; turns where the count does not fit are
left out of that figure (and listed in the JSON).
Logs of every process stay in bench/results/telegram_load-<time>/, the figures go to
bench/results/telegram_load-<time>.json and their summary to docs/results/telegram_load.md.

    .venv/bin/python -m bench.telegram_load [--chats 50] [--turns 6] [--instances 2] [--voice-repeats 3] [--skip-voice]
"""

from __future__ import annotations

import argparse
import functools
import html
import json
import logging
import math
import os
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from bench.rest_load import rss_bytes
from bench.summary import Table, write_summary
from bot.rendering import split_text
from harness.speech_models import KOREAN_MODEL
from harness.stack import Stack
from tests.telegram_api import ApiCall, LocalBotApi
from voice.audio import encode_ogg_opus, read_wav

RESULTS = Path(__file__).resolve().parent / "results"
TURN_TIMEOUT = 30.0  # seconds to wait for an answer (the bot promises one, or an apology, within 10 s)
BURST_QUIET = 0.5  # an answer is over when its chat has been quiet this long (text load pacing)
VOICE_QUIET = 2.0  # the same for voice notes, measured one at a time
APOLOGY = "Sorry, I cannot answer right now"
SERVICES = ("a passport renewal", "an id card renewal")  # chats alternate between them

# A citizen's conversation: (message, a piece of the expected answer). {service} varies by chat.
SCRIPT = (
    ("hello", "Riverton"),
    ("how much does {service} cost", "cost"),
    ("what documents do I need for it", "bring"),
    ("where can I do it", "Offices for"),
    ("when is the central service centre open", "opening hours"),
    ("thanks", "welcome"),
)

# Korean voice notes of about 2, 5 and 10 seconds (espeak-ng's Korean voice; the model is Korean).
VOICE_CLIPS = {
    "short": "여권을 갱신하고 싶어요",
    "medium": "안녕하세요 여권을 갱신하고 싶은데요 수수료가 얼마인지 알려 주세요",
    "long": "여권을 갱신하고 싶은데요 수수료가 얼마인지 알려 주세요 그리고 어떤 서류가 필요한지 궁금합니다 중앙 서비스 센터는 몇 시에 문을 여나요",
}


# --- one turn ---------------------------------------------------------------------------------


@dataclass
class Turn:
    """One message of a chat and what came back (times are time.monotonic())."""

    chat: int
    text: str
    expect: str
    delivered: float
    since: int  # LocalBotApi.mark() just before the update was delivered
    typing: float | None = None  # arrival of the first "typing…" (the bot has picked up the update)
    first: float | None = None  # arrival of the first reply
    last: float | None = None  # arrival of the last message of the answer (when the tracker's count fits)
    replies: int = 0
    expected: int | None = None  # the number of messages the tracker says the answer takes
    answer: str = ""

    @property
    def timed_out(self) -> bool:
        return self.first is None

    @property
    def verified(self) -> bool:
        return self.last is not None


def reply_calls(api: LocalBotApi, chat: int, since: int, before: float = math.inf) -> list[ApiCall]:
    """The bot's messages to `chat` (every send* but "typing…") after `since` that arrived before `before`."""
    return [
        call
        for call in api.calls_to(chat_id=chat, since=since)
        if call.method.startswith("send") and call.method != "sendChatAction" and call.at < before
    ]


def reply_text(calls: Iterable[ApiCall]) -> str:
    """The texts of the bot's messages, unescaped, one per line."""
    return "\n".join(html.unescape(str(call.params.get("text", ""))) for call in calls if call.method == "sendMessage")


def wait_first_reply(api: LocalBotApi, chat: int, since: int, timeout: float = TURN_TIMEOUT) -> bool:
    """Block until the bot sends a message to `chat` after `since`; False on timeout."""
    try:
        api.wait_for("sendMessage", chat_id=chat, since=since, timeout=timeout)
    except AssertionError:
        return False
    return True


def wait_chat_quiet(api: LocalBotApi, chat: int, since: int, quiet: float, timeout: float = TURN_TIMEOUT) -> None:
    """Block until no message has reached `chat` for `quiet` seconds (or `timeout` passed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        calls = reply_calls(api, chat, since)
        silent = time.monotonic() - (calls[-1].at if calls else 0.0)
        if silent >= quiet:
            return
        time.sleep(quiet - silent)


def take_turn(api: LocalBotApi, chat: int, text: str, expect: str, act: Callable[[], Any], quiet: float) -> Turn:
    """Do something as the user, then wait for the answer and for the chat to fall quiet."""
    since = api.mark()
    turn = Turn(chat, text, expect, time.monotonic(), since)
    act()
    if wait_first_reply(api, chat, since):
        wait_chat_quiet(api, chat, since, quiet)
    return turn


# --- checking answers against the tracker -----------------------------------------------------


def telegram_messages(bot_event: dict[str, Any]) -> int:
    """How many Telegram messages the bot sends for one Rasa bot event (mirrors bot/rendering.py)."""
    data = bot_event.get("data") or {}
    custom = data.get("custom")
    return (
        (len(split_text(bot_event["text"])) if bot_event.get("text") else 0)
        + bool(data.get("image"))
        + (isinstance(custom, dict) and any(key in custom for key in ("venue", "location", "checklist")))
    )


def expected_messages(stack: Stack, chat: int) -> list[int]:
    """For each user message of the chat's conversation, the number of Telegram messages its answer takes."""
    counts: list[int] = []
    for event in stack.tracker(f"telegram:{chat}").get("events", []):
        if event["event"] == "user":
            counts.append(0)
        elif event["event"] == "bot" and counts:
            counts[-1] += telegram_messages(event)
    return counts


def settle(api: LocalBotApi, stack: Stack, turns: list[Turn]) -> None:
    """Fill in each turn's replies: a chat's answers come in order, so its messages are split by the
    tracker's count for each turn (a message that came after the next question still belongs to its
    own answer). From the first count that does not fit (an apology, a stuck chat), a turn gets the
    messages that arrived before the chat's next turn, unchecked."""
    by_chat: dict[int, list[Turn]] = {}
    for turn in sorted(turns, key=lambda t: t.delivered):
        by_chat.setdefault(turn.chat, []).append(turn)
    for chat, chat_turns in by_chat.items():
        expected = expected_messages(stack, chat)
        calls = reply_calls(api, chat, chat_turns[0].since)
        taken, counting = 0, True  # messages given to earlier turns while the counts fit
        for number, turn in enumerate(chat_turns):
            turn.expected = expected[number] if number < len(expected) else None
            mine = calls[taken : taken + (turn.expected or 0)]
            fits = counting = counting and bool(mine) and len(mine) == turn.expected and mine[0].at >= turn.delivered
            if fits:
                taken += len(mine)
            else:
                before = chat_turns[number + 1].delivered if number + 1 < len(chat_turns) else math.inf
                mine = [call for call in calls if turn.delivered <= call.at < before]
            turn.replies, turn.answer = len(mine), reply_text(mine)
            turn.first = mine[0].at if mine else None
            turn.typing = first_typing(api, turn)
            turn.last = mine[-1].at if fits else None


def first_typing(api: LocalBotApi, turn: Turn) -> float | None:
    """When the bot first showed "typing…" for a turn, if it did before its first reply."""
    shown = [
        call.at
        for call in api.calls_to("sendChatAction", chat_id=turn.chat, since=turn.since)
        if turn.delivered <= call.at <= (turn.first or math.inf)
    ]
    return shown[0] if shown else None


# --- figures ---------------------------------------------------------------------------------------


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile (`share` in 0–100) of `values`."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share / 100 * len(ordered)) - 1)]


def spread_ms(seconds: list[float]) -> dict[str, float | None]:
    """p50, p95, max and mean of durations, in milliseconds (None when there are none)."""
    if not seconds:
        return {"p50_ms": None, "p95_ms": None, "max_ms": None, "mean_ms": None}
    return {
        "p50_ms": round(percentile(seconds, 50) * 1000, 1),
        "p95_ms": round(percentile(seconds, 95) * 1000, 1),
        "max_ms": round(max(seconds) * 1000, 1),
        "mean_ms": round(statistics.mean(seconds) * 1000, 1),
    }


def first_reply_seconds(turn: Turn) -> float:
    """From the delivery of an answered turn to its first reply."""
    assert turn.first is not None, "a turn that timed out has no first reply"
    return turn.first - turn.delivered


def summarise_text(turns: list[Turn], elapsed: float) -> dict[str, Any]:
    """The text load's figures."""
    answered = [t for t in turns if not t.timed_out]
    verified = [t for t in answered if t.verified]
    # answered turns per second from the first message to the last answer (timeouts do not stretch it)
    busy = max((t.last or t.first for t in answered if t.first is not None), default=0.0) - min(
        (t.delivered for t in turns), default=0.0
    )
    return {
        "turns": len(turns),
        "wall_seconds": round(elapsed, 2),
        "busy_seconds": round(busy, 2),
        "messages_per_second": round(len(answered) / busy, 2) if busy > 0 else None,
        "timed_out": len(turns) - len(answered),
        "apologies": sum(APOLOGY in t.answer for t in answered),
        "unexpected_answers": sum(t.expect.lower() not in t.answer.lower() for t in answered),
        "bursts_verified": len(verified),
        "multi_message_answers": sum(t.replies > 1 for t in verified),
        "typing": spread_ms([t.typing - t.delivered for t in answered if t.typing]),
        "first_reply": spread_ms([first_reply_seconds(t) for t in answered]),
        "last_message": spread_ms([t.last - t.delivered for t in verified if t.last is not None]),
    }


# --- the text load ---------------------------------------------------------------------------------


def chat_script(chat: int, turns: int) -> list[tuple[str, str]]:
    """The chat's messages and expected answer pieces: the script, repeated if needed."""
    service = SERVICES[chat % len(SERVICES)]
    return [(SCRIPT[n % len(SCRIPT)][0].format(service=service), SCRIPT[n % len(SCRIPT)][1]) for n in range(turns)]


def run_chat(api: LocalBotApi, chat: int, turns: int, start_at: float, done: list[Turn]) -> None:
    """One citizen: their messages one at a time, each after the previous answer (run in a thread)."""
    time.sleep(max(0.0, start_at - time.monotonic()))
    for text, expect in chat_script(chat, turns):
        turn = take_turn(api, chat, text, expect, functools.partial(api.user_sends_text, chat, text), BURST_QUIET)
        done.append(turn)  # list.append is atomic


def run_text_load(api: LocalBotApi, chats: Iterable[int], turns: int, label: str) -> tuple[list[Turn], float]:
    """Run the chats concurrently (their starts spread over a second), with progress every 10 s; the turns and wall time."""
    chats = list(chats)
    done: list[Turn] = []
    began = time.monotonic()
    threads = [
        threading.Thread(target=run_chat, args=(api, chat, turns, began + n / len(chats), done), daemon=True)
        for n, chat in enumerate(chats)
    ]
    for thread in threads:
        thread.start()
    report_at = began + 10
    while any(thread.is_alive() for thread in threads):
        time.sleep(0.1)
        if time.monotonic() >= report_at:
            print(f"    {label}: {len(done)}/{len(chats) * turns} turns after {time.monotonic() - began:.0f} s", flush=True)
            report_at += 10
    return done, time.monotonic() - began


# --- voice notes -------------------------------------------------------------------------------------


@dataclass
class VoiceClip:
    name: str
    text: str
    ogg: bytes
    seconds: float


@dataclass
class VoiceRun:
    clip: str
    audio_seconds: float
    heard_seconds: float | None  # update -> "I heard: …"
    answer_seconds: float | None  # update -> the last message of the answer
    heard: str
    answer: str
    bot_rss_mb: int = 0  # after this note


def make_clip(name: str, text: str, workdir: Path) -> VoiceClip:
    """A Korean sentence spoken by espeak-ng, as an OGG/Opus voice note."""
    wav = workdir / f"voice-{name}.wav"
    subprocess.run(["espeak-ng", "-v", "ko", "-w", str(wav), text], check=True)
    pcm = read_wav(wav.read_bytes())
    return VoiceClip(name, text, encode_ogg_opus(pcm), pcm.seconds)


def send_voice_note(api: LocalBotApi, chat: int, clip: VoiceClip) -> VoiceRun:
    """One voice note in a fresh chat, timed from the update to "I heard" and to the answer's last message.

    Voice notes go one at a time, so the answer is over when the chat has been quiet for VOICE_QUIET
    seconds (the tracker cannot tell: the Korean transcript is answered by the channel's input check).
    """
    turn = take_turn(
        api, chat, clip.name, "I heard", lambda: api.user_sends_voice(chat, clip.ogg, math.ceil(clip.seconds)), VOICE_QUIET
    )
    calls = reply_calls(api, chat, turn.since)
    heard = next((c for c in calls if str(c.params.get("text", "")).startswith("I heard")), None)
    answer = calls[calls.index(heard) + 1 :] if heard else []
    return VoiceRun(
        clip.name,
        round(clip.seconds, 2),
        rounded(heard.at - turn.delivered if heard else None),
        rounded(answer[-1].at - turn.delivered if answer else None),
        reply_text([heard] if heard else []),
        reply_text(answer),
    )


def rounded(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def summarise_voice(runs: list[VoiceRun]) -> dict[str, Any]:
    """Turnaround of some voice notes: medians in seconds, and total processing over total audio."""
    heard = [r.heard_seconds for r in runs if r.heard_seconds is not None]
    answer_times = [r.answer_seconds for r in runs if r.answer_seconds is not None]
    answered = [r for r in runs if r.answer_seconds is not None]
    audio = sum(r.audio_seconds for r in answered)
    return {
        "runs": len(runs),
        "failed": len(runs) - len(answered),
        "audio_seconds": rounded(statistics.mean(r.audio_seconds for r in runs), 2),
        "heard_seconds": rounded(statistics.median(heard) if heard else None),
        "answer_seconds": rounded(statistics.median(answer_times) if answer_times else None),
        "heard_per_audio_second": rounded(sum(r.heard_seconds or 0 for r in answered) / audio if audio else None),
        "answer_per_audio_second": rounded(sum(r.answer_seconds or 0 for r in answered) / audio if audio else None),
    }


def run_voice(api: LocalBotApi, bot_pid: int, repeats: int, workdir: Path, first_chat: int) -> dict[str, Any]:
    """The first note (first use of the recogniser), then each clip `repeats` times, one note at a time."""
    clips = [make_clip(name, text, workdir) for name, text in VOICE_CLIPS.items()]
    print("    clips: " + ", ".join(f"{c.name} {c.seconds:.1f} s" for c in clips), flush=True)
    chats = iter(range(first_chat, first_chat + 10_000))
    first = send_voice_note(api, next(chats), clips[0])
    first.bot_rss_mb = rss_mb(bot_pid)
    print(f"    first note, not counted: {describe(first)}", flush=True)
    runs: list[VoiceRun] = []
    for clip in clips:
        for _ in range(repeats):
            runs.append(send_voice_note(api, next(chats), clip))
            runs[-1].bot_rss_mb = rss_mb(bot_pid)
            print(f"    {clip.name} ({clip.seconds:.1f} s): {describe(runs[-1])}", flush=True)
    return {
        "first": asdict(first),
        "clips": {c.name: {"text": c.text, **summarise_voice([r for r in runs if r.clip == c.name])} for c in clips},
        "overall": summarise_voice(runs),
        "runs": [asdict(r) for r in runs],
    }


def describe(run: VoiceRun) -> str:
    """One progress line for a voice note."""

    def seconds(value: float | None) -> str:
        return "never" if value is None else f"after {value:.2f} s"

    return (
        f"I heard {seconds(run.heard_seconds)}, answer {seconds(run.answer_seconds)}, bot {run.bot_rss_mb} MB: "
        f"{run.heard!r} -> {run.answer[:60]!r}"
    )


# --- processes, memory and logs -------------------------------------------------------------------


def start_bot(stack: Stack, api: LocalBotApi) -> int:
    """Start `python -m bot` (polling, Korean speech model) against the stack and the local Bot API; its pid."""
    process = stack.spawn_bot(
        "load",
        {
            "TELEGRAM_TOKEN": api.token,
            "TELEGRAM_API_URL": api.base_url,
            "TELEGRAM_FILE_URL": api.base_file_url,
            "VOSK_MODEL_PATH": str(KOREAN_MODEL),
        },
    )
    api.wait_for("setMyCommands", timeout=120)
    api.wait_listening()
    return process.pid


def wait_logged(log: Path, events: Iterable[str], timeout: float = 120.0) -> str | None:
    """Block until one of `events` appears in a JSON-lines log; the event, or None on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        found = next((event for event in events if f'"event": "{event}"' in text), None)
        if found:
            return found
        time.sleep(0.5)
    return None


class AbandonedRequests(logging.Handler):
    """Counts requests the local Bot API server could not read to the end (the bot dropped the
    connection mid-request, as a cancelled HTTP call does) instead of printing each traceback."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        logger = logging.getLogger("aiohttp.server")
        logger.addHandler(self)
        logger.propagate = False

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> int:
    return round(rss_bytes(pid) / 2**20)


def log_problems(log: Path) -> dict[str, int]:
    """Warnings and errors in a process log: JSON lines by level and event, other lines that look like errors."""
    problems: dict[str, int] = {}
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        try:
            entry = json.loads(line)
            key = f"{entry['level']}: {entry['event']}" if entry.get("level") in ("warning", "error", "critical") else ""
        except (ValueError, KeyError, TypeError, AttributeError):
            key = f"raw: {line.strip()[:120]}" if any(w in line for w in ("Error", "Traceback", "WARNING", "ERROR")) else ""
        if key:
            problems[key] = problems.get(key, 0) + 1
    return problems


# --- output ----------------------------------------------------------------------------------------


def print_summary(result: dict[str, Any]) -> None:
    text = result["text"]
    print(
        f"\nTelegram bot, {result['chats']} chats x {result['turns_per_chat']} turns, "
        f"{result['instances']} Rasa instance{'s' if result['instances'] > 1 else ''}, {result['cores']} cores"
    )
    print(
        f"  turns {text['turns']}, timed out {text['timed_out']}, apologies {text['apologies']}, "
        f"unexpected answers {text['unexpected_answers']}"
    )
    print(
        f"  {text['messages_per_second']} messages/s (answers in the {text['busy_seconds']} s from the first message to the "
        f"last answer; the text part took {text['wall_seconds']} s)"
    )
    print(f"  {'update to':<27} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'mean ms':>8}")
    for key, label in (
        ("typing", "typing… (picked up)"),
        ("first_reply", "first reply"),
        ("last_message", f"last message ({text['bursts_verified']} checked)"),
    ):
        row = text[key]
        print(
            f"  {label:<27} "
            + " ".join(f"{row[k] if row[k] is not None else '-':>8}" for k in ("p50_ms", "p95_ms", "max_ms", "mean_ms"))
        )
    print("  CPU seconds used during the text part: " + ", ".join(f"{k} {v}" for k, v in result["text_cpu_seconds"].items()))
    voice = result.get("voice")
    if voice:
        first = voice["first"]
        print(
            f"  voice notes, one at a time (the first, not counted: I heard after {first['heard_seconds']} s, "
            f"answer after {first['answer_seconds']} s); medians, and processing per second of audio"
        )
        print(
            f"  {'clip':<8} {'runs':>5} {'audio s':>8} {'heard s':>8} {'answer s':>9} {'heard/audio':>12} {'answer/audio':>13} {'failed':>7}"
        )
        for name, row in [*voice["clips"].items(), ("overall", voice["overall"])]:
            cells = [
                row[k] if row[k] is not None else "-"
                for k in (
                    "runs",
                    "audio_seconds",
                    "heard_seconds",
                    "answer_seconds",
                    "heard_per_audio_second",
                    "answer_per_audio_second",
                    "failed",
                )
            ]
            print(
                f"  {name:<8} {cells[0]:>5} {cells[1]:>8} {cells[2]:>8} {cells[3]:>9} {cells[4]:>12} {cells[5]:>13} {cells[6]:>7}"
            )
    stuck = sorted({t["chat"] for t in result["timed_out_turns"]})
    if stuck:
        print(f"  unanswered turns in chats {stuck}; the bot's calls to them afterwards are in the JSON (timed_out_turns)")
    if result["abandoned_api_requests"]:
        print(f"  Bot API requests the bot dropped mid-request (server log): {result['abandoned_api_requests']}")
    if result["failed_api_calls"]:
        print("  Bot API calls answered with an error: " + ", ".join(f"{k} x{v}" for k, v in result["failed_api_calls"].items()))
    print("  bot memory (RSS): " + ", ".join(f"{k} {v} MB" for k, v in result["bot_rss_mb"].items()))
    problems = result["bot_log_problems"]
    print("  bot log: " + ("no warnings or errors" if not problems else "; ".join(f"{k} x{v}" for k, v in problems.items())))


def problem_turns(api: LocalBotApi, turns: list[Turn], shown: int = 10) -> dict[str, Any]:
    """The slowest turns, the unanswered ones (with what the bot did in that chat afterwards), the
    unchecked ones, and the Bot API calls answered with an error."""
    slowest = sorted((t for t in turns if not t.timed_out), key=first_reply_seconds, reverse=True)
    failed: dict[str, int] = {}
    for call in api.failed_calls():
        failed[f"{call.method} {call.status}"] = failed.get(f"{call.method} {call.status}", 0) + 1
    return {
        "slowest_turns": [asdict(t) for t in slowest[:shown]],
        "timed_out_turns": [
            {**asdict(t), "bot_calls_after": [c.summary() for c in api.calls_to(chat_id=t.chat, since=t.since)][:shown]}
            for t in turns
            if t.timed_out
        ][:shown],
        "unchecked_turns": [asdict(t) for t in turns if not t.timed_out and not t.verified][:shown],
        "failed_api_calls": failed,
    }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--chats", type=int, default=50, help="simulated chats at once (default 50)")
    parser.add_argument("--turns", type=int, default=6, help="messages per chat (default 6)")
    parser.add_argument(
        "--instances",
        type=int,
        default=2 if (os.cpu_count() or 1) >= 2 else 1,
        help="Rasa server instances behind HAProxy (default 2 with two or more cores)",
    )
    parser.add_argument("--voice-repeats", type=int, default=3, help="times each voice clip is sent (default 3)")
    parser.add_argument("--skip-voice", action="store_true", help="leave out the voice notes")
    return parser.parse_args()


def measure(stack: Stack, api: LocalBotApi, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Warm-up, text load, voice notes; the figures."""
    pid = start_bot(stack, api)
    wait_logged(stack.workdir / "bot-load.log", ("bot.speech_model_loaded", "bot.speech_model_missing"))
    memory = {"started": rss_mb(pid)}
    print("==> warm-up (4 chats x 2 turns, not counted)", flush=True)
    run_text_load(api, range(900_001, 900_005), 2, "warm-up")
    print(f"==> text load: {args.chats} chats x {args.turns} turns", flush=True)
    processes = {**stack.pids(), "benchmark (chats, local Bot API)": os.getpid()}
    cpu = {name: cpu_seconds(process) for name, process in processes.items()}
    turns, elapsed = run_text_load(api, range(100_001, 100_001 + args.chats), args.turns, "text")
    cpu = {name: round(cpu_seconds(process) - cpu[name], 1) for name, process in processes.items()}
    settle(api, stack, turns)
    memory["after_text"] = rss_mb(pid)
    result: dict[str, Any] = {"text": summarise_text(turns, elapsed), "text_cpu_seconds": cpu, **problem_turns(api, turns)}
    if not args.skip_voice:
        print(f"==> voice notes: {len(VOICE_CLIPS)} clips x {args.voice_repeats}, one at a time", flush=True)
        result["voice"] = run_voice(api, pid, args.voice_repeats, workdir, 500_001)
        memory["after_voice"] = rss_mb(pid)
    result["bot_rss_mb"] = memory
    return result


def main() -> int:
    args = parse_args()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    workdir = RESULTS / f"telegram_load-{stamp}"
    workdir.mkdir(parents=True)
    print(
        f"==> starting {args.instances} Rasa instance(s), the action server, the local Bot API and the bot (logs in {workdir})",
        flush=True,
    )
    stack, api, abandoned = Stack(workdir, instances=args.instances), LocalBotApi(), AbandonedRequests()
    try:
        stack.start()
        api.start()
        figures = measure(stack, api, args, workdir)
    finally:
        if "bot load" in stack.processes:
            stack.halt("bot load")
        api.stop()
        stack.stop()
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "cores": os.cpu_count(),
        "chats": args.chats,
        "turns_per_chat": args.turns,
        "instances": args.instances,
        "voice_repeats": args.voice_repeats,
        **figures,
        "abandoned_api_requests": abandoned.count,
        "bot_log_problems": log_problems(workdir / "bot-load.log"),
        "logs": str(workdir),
    }
    print_summary(result)
    output = RESULTS / f"telegram_load-{stamp}.json"
    output.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"figures saved to {output}")
    write_summary("telegram_load", "Telegram bot under load", summary_tables(result), output, summary_notes(result))
    return 0


LATENCY_ROWS = (("first_reply", "first reply"), ("last_message", "last message of the answer"))


def summary_tables(result: dict[str, Any]) -> list[Table]:
    """The committed summary: update-to-reply latency of the text load, and the voice notes."""
    text = result["text"]
    label = f"{result['chats']} chats x {result['turns_per_chat']} turns, {result['instances']} Rasa instance(s)"
    rows = [[name] + [text[key][k] for k in ("p50_ms", "p95_ms", "max_ms")] for key, name in LATENCY_ROWS]
    tables = [Table(f"Text: {label}", ["update to", "p50 ms", "p95 ms", "max ms"], rows)]
    voice = result.get("voice")
    if voice:
        keys = ("audio_seconds", "heard_seconds", "answer_seconds", "answer_per_audio_second", "runs")
        clips = [[name] + [row[k] for k in keys] for name, row in [*voice["clips"].items(), ("overall", voice["overall"])]]
        header = ["clip", "audio s", '"I heard" after s', "answer after s", "processing per second of audio", "runs"]
        tables.append(Table("Voice notes, one at a time (medians)", header, clips))
    return tables


def summary_notes(result: dict[str, Any]) -> list[str]:
    text = result["text"]
    return [
        f"{text['turns']} turns: {text['timed_out']} timed out, {text['apologies']} apologies, "
        f"{text['unexpected_answers']} unexpected answers; {text['messages_per_second']} messages/s",
        "bot memory (RSS, MB): " + ", ".join(f"{k} {v}" for k, v in result["bot_rss_mb"].items()),
    ]


if __name__ == "__main__":
    sys.exit(main())
