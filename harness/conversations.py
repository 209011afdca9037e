"""Scripted conversations over the REST channel whose answers name the message they answer, for the multi-host
tests and bench (harness/hosts.py): each message's outcome is classified, and the stored trackers are checked.

Every turn asks what to bring for one service of the real catalogue; the answer starts "For <service>, please
bring", so an answer given to the wrong message (another turn, another conversation) is seen. A conversation
sends its next message once the previous one is answered (a person waits for the reply), with an optional pause.

Each message ends as one of:

- `answered`: 200, every message addressed to its sender, the first text naming its service;
- `wrong`: 200 with an answer to something else (never acceptable);
- `apology`: 200 with the channel's technical apology (onewindow/text/wording.py);
- `http_error`: any other status (HAProxy's 502/503/504 with a JSON body);
- `closed`: the connection was closed before any answer: what HAProxy did here, instead of a 502, when a server
  died mid-request on a kept-alive client connection (the client sees the failure at once; it does not retry a POST);
- `no_answer`: nothing came back within the client's timeout, or no connection to the proxy.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import aiohttp
from sqlalchemy.engine import Engine

from onewindow.rasa_plugins.events_table import events_of
from onewindow.service_catalogue import load_catalogue
from onewindow.settings import PROJECT_ROOT
from onewindow.text.wording import TECHNICAL_APOLOGY

ANSWERED, WRONG, APOLOGY, HTTP_ERROR, CLOSED, NO_ANSWER = "answered", "wrong", "apology", "http_error", "closed", "no_answer"
KINDS = (ANSWERED, WRONG, APOLOGY, HTTP_ERROR, CLOSED, NO_ANSWER)
CLEAR_ERRORS = (APOLOGY, HTTP_ERROR, CLOSED)  # a message not answered, its sender told so at once
APOLOGY_START = TECHNICAL_APOLOGY.text.split(".")[0]
CLIENT_TIMEOUT = 90.0  # seconds: above HAProxy's server timeout (75 s), so that HAProxy's own error arrives first


@dataclass(frozen=True)
class Turn:
    sender: str
    number: int
    text: str
    expected: str  # the first text of the answer starts with this (lower case)


@dataclass(frozen=True)
class Outcome:
    turn: Turn
    sent: float  # time.monotonic()
    done: float
    kind: str
    status: int = 0
    detail: str = ""  # the client's error (no_answer)

    @property
    def seconds(self) -> float:
        return self.done - self.sent


def questions() -> List[Tuple[str, str]]:
    """(message, expected start of its answer) for every service of the catalogue."""
    services = load_catalogue(PROJECT_ROOT / "catalogue").services
    names = [str(service["name"]).lower() for service in (services.values() if isinstance(services, dict) else services)]
    return [(f"what do I need for {name}", f"for {name},") for name in names]


def scripts(prefix: str, conversations: int, turns: int) -> List[List[Turn]]:
    """`conversations` conversations (senders `<prefix>-<n>`) of `turns` messages, each about a different service."""
    asked = questions()
    if turns > len(asked):
        raise ValueError(f"at most {len(asked)} turns: one per service")
    return [[Turn(f"{prefix}-{c}", i, *asked[(c + i) % len(asked)]) for i in range(turns)] for c in range(conversations)]


def classify(turn: Turn, status: int, body: bytes) -> str:
    if status != 200:
        return HTTP_ERROR
    try:
        messages = json.loads(body)
        texts = [str(message.get("text", "")) for message in messages]
        recipients = {message.get("recipient_id") for message in messages}
    except (ValueError, AttributeError, TypeError):
        return WRONG
    if any(text.startswith(APOLOGY_START) for text in texts):
        return APOLOGY
    if texts and recipients == {turn.sender} and texts[0].lower().startswith(turn.expected):
        return ANSWERED
    return WRONG


async def send(session: aiohttp.ClientSession, url: str, turn: Turn) -> Outcome:
    started = time.monotonic()
    try:
        async with session.post(url, json={"sender": turn.sender, "message": turn.text}) as response:
            body = await response.read()
            return Outcome(turn, started, time.monotonic(), classify(turn, response.status, body), response.status)
    except aiohttp.ServerDisconnectedError as error:
        return Outcome(turn, started, time.monotonic(), CLOSED, detail=f"{error.__class__.__name__}: {error}")
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        return Outcome(turn, started, time.monotonic(), NO_ANSWER, detail=f"{error.__class__.__name__}: {error}")


@dataclass
class Load:
    """The conversations of `scripts` sent through `url` at once in a thread; `stop()` ends each after its turn."""

    url: str
    scripts: Sequence[Sequence[Turn]]
    pause: float = 0.0  # seconds between a reply and the conversation's next message
    outcomes: List[Outcome] = field(default_factory=list)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: Optional[threading.Thread] = None

    def start(self) -> "Load":
        self._thread = threading.Thread(target=lambda: asyncio.run(self._all()), daemon=True)
        self._thread.start()
        return self

    def run(self) -> List[Outcome]:
        """Send everything in this thread and return the outcomes."""
        asyncio.run(self._all())
        return self.outcomes

    async def _all(self) -> None:
        connector = aiohttp.TCPConnector(limit=0)
        timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            await asyncio.gather(*(self._converse(session, turns) for turns in self.scripts))

    async def _converse(self, session: aiohttp.ClientSession, turns: Sequence[Turn]) -> None:
        for turn in turns:
            if self._stopping.is_set():
                return
            self.outcomes.append(await send(session, self.url, turn))
            if self.pause:
                await asyncio.sleep(self.pause)

    def wait_for(self, done: int, timeout: float = 120.0) -> None:
        """Wait until `done` messages have an outcome (the load is under way)."""
        deadline = time.monotonic() + timeout
        while len(self.outcomes) < done:
            if time.monotonic() > deadline or not (self._thread and self._thread.is_alive()):
                raise RuntimeError(f"only {len(self.outcomes)} of {done} messages done")
            time.sleep(0.05)

    def stop(self) -> None:
        self._stopping.set()

    def join(self, timeout: float = 600.0) -> List[Outcome]:
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"the load did not finish within {timeout:.0f} s")
        return self.outcomes


def tally(outcomes: Sequence[Outcome]) -> Dict[str, int]:
    """How many messages ended each way (every kind listed, 0 included)."""
    counts = Counter(outcome.kind for outcome in outcomes)
    return {kind: counts.get(kind, 0) for kind in KINDS}


@dataclass(frozen=True)
class Losses:
    """What a fault cost: the messages not answered, and those in flight at some moment of the fault."""

    counts: Dict[str, int]
    in_flight: int
    lost: List[Outcome]
    lost_outside: List[Outcome]  # not answered although sent after the fault ended or answered before it began

    def report(self) -> str:
        kinds = ", ".join(f"{kind} {n}" for kind, n in self.counts.items())
        outside = [(o.turn.sender, o.turn.number, o.kind) for o in self.lost_outside[:5]]
        errors = sorted({o.detail for o in self.lost if o.detail})
        return (
            f"{sum(self.counts.values())} messages: {kinds}; {self.in_flight} in flight during the fault, "
            f"{len(self.lost)} lost, {len(self.lost_outside)} of them outside the fault {outside}"
            + (f"; client errors: {errors}" if errors else "")
        )


def losses(outcomes: Sequence[Outcome], fault_start: float, fault_end: float) -> Losses:
    """Classify `outcomes` against the fault window [fault_start, fault_end] (time.monotonic())."""
    overlapping = [o for o in outcomes if o.sent <= fault_end and o.done >= fault_start]
    lost = [o for o in outcomes if o.kind != ANSWERED]
    outside = [o for o in lost if not (o.sent <= fault_end and o.done >= fault_start)]
    return Losses(tally(outcomes), len(overlapping), lost, outside)


def tracker_problems(tracker: Engine, outcomes: Sequence[Outcome]) -> List[str]:
    """What is wrong in the stored trackers of the conversations of `outcomes`: every answered message stored once,
    in the order sent, followed by its answer; a lost message at most once."""
    by_sender: Dict[str, List[Outcome]] = {}
    for outcome in sorted(outcomes, key=lambda o: o.turn.number):
        by_sender.setdefault(outcome.turn.sender, []).append(outcome)
    with tracker.connect() as connection:
        rows = events_of(connection, list(by_sender), ["user", "bot"])
    stored: Dict[str, List[Tuple[str, str]]] = {}
    for row in rows:
        stored.setdefault(row.sender_id, []).append((row.type_name, str(json.loads(row.data).get("text") or "")))
    problems = []
    for sender, sent in by_sender.items():
        said = [text for kind, text in stored.get(sender, []) if kind == "user"]
        order = [o.turn.text for o in sent]
        answered = [o.turn.text for o in sent if o.kind == ANSWERED]
        if len(set(said)) != len(said):
            problems.append(f"{sender}: a message stored twice: {said}")
        elif [text for text in order if text in said] != said or not set(answered) <= set(said):
            problems.append(f"{sender}: stored {said}, sent {order}, answered {answered}")
        for outcome in sent:
            if outcome.kind == ANSWERED and not answer_follows(stored.get(sender, []), outcome.turn):
                problems.append(f"{sender}: turn {outcome.turn.number} not followed by its answer in the tracker")
    return problems


def answer_follows(events: Sequence[Tuple[str, str]], turn: Turn) -> bool:
    """The user event of `turn` is followed, before the next user event, by a bot event answering it."""
    for index, (kind, text) in enumerate(events):
        if kind == "user" and text == turn.text:
            for later_kind, later_text in events[index + 1 :]:
                if later_kind == "user":
                    return False
                if later_text.lower().startswith(turn.expected):
                    return True
    return False
