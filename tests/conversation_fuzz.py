"""Generated citizen messages, conversation states to send them in, and the invariants every turn keeps.

Used by tests/test_conversation_invariants.py (a bounded run in `make test`) and by
bench/conversation_fuzz.py (a long run). A state is reached by ordinary messages and checked
from the stored conversation, so a state that drifts (a form no longer opening) fails loudly.
"""

from __future__ import annotations

import json
import re
import string
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from hypothesis import strategies as st
from ruamel.yaml import YAML

from actions.conversation import REPHRASE, REPHRASE_IN_TASK
from harness.stack import Stack
from onewindow.settings import PROJECT_ROOT

MAX_MESSAGES_PER_TURN = 4
MAX_ACTIONS_PER_TURN = 7  # below onewindow.rasa_plugins.turn_guard_policy.MAX_ACTIONS_PER_TURN: the guard must never be needed
BROKEN_TURN_MARKS = ("Circuit breaker tripped", "turn_guard.stopped")
SESSION_EXPIRY_SECONDS = 2 * 3600

Replies = List[Dict[str, Any]]


@dataclass(frozen=True)
class State:
    """Where a conversation is when the generated message arrives, and the ordinary message that comes next."""

    name: str
    setup: Sequence[str]
    active_loop: Optional[str] = None
    handed_off: bool = False
    then: str = "hello"
    expire_session: bool = False


STATES = [
    State("fresh", []),
    State("after one misunderstanding", ["xyzzy plugh frobnicate"]),
    State("booking, asked the service", ["I want to book an appointment"], "appointment_form", then="passport renewal"),
    State(
        "booking, asked the office",
        ["book an appointment for a passport renewal"],
        "appointment_form",
        then="north service centre",
    ),
    State("moving an appointment", ["I want to move my appointment"], "reschedule_form", then="stop"),
    State("cancelling an appointment", ["I want to cancel my appointment"], "cancel_form", then="stop"),
    State("checking an appointment", ["I want to check my appointment"], "check_appointment_form", then="stop"),
    State("application status", ["what is the status of my application"], "status_form", then="stop"),
    State("reporting a problem", ["I want to report a pothole"], "report_form", then="stop"),
    State("waiting for a person", ["I want to talk to a person"], handed_off=True, then="how long will it take"),
    State("a new session after an hour", ["what do I need for a passport renewal"], expire_session=True),
]


ANNOTATION = re.compile(r"\[([^\]]+)\]\([^)]*\)|\[([^\]]+)\]\{[^}]*\}")
NAMED = re.compile(r"\]\((service|office|life_event)\)")
# questions a citizen may ask in the middle of a task; those about a service or an office must name it
CHITCHAT = ("greet", "thank", "help", "bot_challenge")
QUESTIONS = (
    "ask_service_info",
    "ask_documents",
    "ask_fee",
    "ask_processing_time",
    "ask_online",
    "ask_opening_hours",
    "find_office",
    "life_event",
)


def nlu_examples() -> List[Tuple[str, str]]:
    """Every training example of nlu/*.yml as (intent, annotated text)."""
    examples: List[Tuple[str, str]] = []
    for path in sorted((PROJECT_ROOT / "nlu").glob("*.yml")):
        for block in YAML(typ="safe").load(path.read_text()).get("nlu", []):
            for line in str(block.get("examples", "")).splitlines():
                if line.strip().startswith("- ") and block.get("intent"):
                    examples.append((block["intent"], line.strip()[2:]))
    return examples


def plain(annotated: str) -> str:
    return ANNOTATION.sub(lambda m: m.group(1) or m.group(2), annotated)


def nlu_phrases() -> List[str]:
    """Every training example of nlu/*.yml as plain text (entity annotations removed)."""
    return [plain(text) for _, text in nlu_examples()]


def other_requests() -> List[str]:
    """Messages that change the subject, whose answer does not depend on what came before (they name what they ask about)."""
    return [plain(text) for intent, text in nlu_examples() if intent in CHITCHAT or (intent in QUESTIONS and NAMED.search(text))]


def with_noise(phrase: str, draw: Callable[[Any], Any]) -> str:
    """A phrase with typos, doubled letters, stray symbols or emoji, in upper or lower case."""
    characters = list(phrase)
    for _ in range(draw(st.integers(0, 4))):
        if not characters:
            break
        where = draw(st.integers(0, len(characters) - 1))
        kind = draw(st.sampled_from(["drop", "double", "insert", "swap"]))
        if kind == "drop":
            del characters[where]
        elif kind == "double":
            characters.insert(where, characters[where])
        elif kind == "insert":
            characters.insert(where, draw(st.sampled_from(list("!?.,;:@#*~😀🙏👍 \t") + list(string.ascii_lowercase))))
        elif where + 1 < len(characters):
            characters[where], characters[where + 1] = characters[where + 1], characters[where]
    text = "".join(characters)
    return draw(st.sampled_from([text, text.upper(), text.lower()]))


EMOJI = st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF)
SYMBOLS = st.characters(categories=["So", "Sm", "Sc", "Sk", "Po", "Ps", "Pe", "Pd", "Pc", "Pi", "Pf"])


@st.composite
def citizen_messages(draw: Callable[[Any], Any], phrases: Sequence[str]) -> str:
    """Any message a citizen might send: the kinds an outside probe used, and any Unicode at all."""
    kind = draw(
        st.sampled_from(
            [
                "unicode",
                "emoji",
                "punctuation",
                "digits",
                "id",
                "reference",
                "slash",
                "brace",
                "long",
                "phrase",
                "markup",
            ]
        )
    )
    if kind == "unicode":
        return draw(st.text(min_size=1, max_size=60))
    if kind == "emoji":
        return draw(st.text(EMOJI, min_size=1, max_size=8))
    if kind == "punctuation":
        return draw(st.text(SYMBOLS, min_size=1, max_size=12))
    if kind == "digits":
        return draw(st.from_regex(r"[+]?\d{1,24}", fullmatch=True))
    if kind == "id":
        prefix = draw(st.sampled_from(["", "my id is ", "ID: ", "id number "]))
        return prefix + draw(st.from_regex(r"\d{15,18}[\dXx]", fullmatch=True))
    if kind == "reference":
        return draw(st.from_regex(r"(BK|APP|RPT|HO|bk|app|rpt|ho)[ -]?[0-9A-Za-z]{3,12}", fullmatch=True))
    if kind == "slash":
        name = draw(
            st.sampled_from(
                [
                    "restart",
                    "session_start",
                    "stop",
                    "inform",
                    "affirm",
                    "greet",
                    "request_human",
                    "book_appointment",
                    "back",
                    "nlu_fallback",
                    "out_of_scope",
                    "x",
                ]
            )
        )
        body = draw(
            st.sampled_from(
                [
                    "",
                    '{"handoff_active": false}',
                    '{"service": "passport_renewal"}',
                    "{",
                    "{}}",
                    '{"appointment_reference": "BK-100001"}',
                ]
            )
        )
        return "/" + name + body + draw(st.text(max_size=6))
    if kind == "brace":
        return draw(st.sampled_from(["{", "{}", '{"text": "hi"}', '{"a": [1, 2]}'])) + draw(st.text(max_size=10))
    if kind == "long":
        return draw(st.sampled_from(phrases)) + " " + draw(st.text(min_size=1500, max_size=2500))
    if kind == "markup":
        return draw(
            st.sampled_from(
                [
                    "'; DROP TABLE appointments; --",
                    "<script>alert(1)</script>",
                    "<b>hi</b>",
                    "${jndi:ldap://x}",
                    "{{7*7}}",
                    "%s%s%n",
                    "\\x00",
                    "\u202eevil",
                ]
            )
        )
    return with_noise(draw(st.sampled_from(phrases)), draw)


def messages_problem(replies: Replies) -> Optional[str]:
    """What is wrong with one turn's replies, or None: at least one, at most a few, no message twice."""
    if not replies:
        return "no reply at all"
    if len(replies) > MAX_MESSAGES_PER_TURN:
        return f"{len(replies)} messages in one turn"
    shown = [json.dumps(reply, sort_keys=True) for reply in replies]
    if len(set(shown)) < len(shown):
        return "the same message twice in one turn"
    if not all(reply.get("text") or reply.get("custom") or reply.get("image") or reply.get("buttons") for reply in replies):
        return "an empty message"
    return None


def last_turn_problem(tracker: Dict[str, Any]) -> Optional[str]:
    """What is wrong with how the latest turn ended in the stored conversation, or None."""
    events = tracker.get("events") or []
    if not events or events[-1].get("event") != "action" or events[-1].get("name") != "action_listen":
        return "the turn did not end by listening"
    actions = 0
    for event in reversed(events[:-1]):
        if event.get("event") == "action" and event.get("name") in ("action_listen", "action_session_start"):
            break
        actions += event.get("event") == "action"
    return f"{actions} actions in one turn" if actions > MAX_ACTIONS_PER_TURN else None


def misunderstood(replies: Replies) -> bool:
    """Whether the assistant only asked to rephrase (so the conversation must be where it was before)."""
    return [reply.get("text") for reply in replies] == [REPHRASE] or [reply.get("text") for reply in replies] == [
        REPHRASE_IN_TASK
    ]


def handoff_reason(replies: Replies) -> Optional[str]:
    return next(
        ((r.get("custom") or {}).get("handoff", {}).get("reason") for r in replies if "handoff" in (r.get("custom") or {})), None
    )


def shown(replies: Replies) -> List[Any]:
    """What a citizen sees of the replies: the texts and the buttons' titles (payloads carry generated keys)."""
    return [(r.get("text"), [b.get("title") for b in r.get("buttons") or []]) for r in replies]


class Conversations:
    """Conversations on one running stack: each gets a fresh sender; every turn is checked as it is sent."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.logs = sorted(Path(stack.workdir).glob("rasa-server-*.log"))
        self.log_sizes = {path: path.stat().st_size for path in self.logs}

    def new_sender(self) -> str:
        return f"fuzz-{uuid.uuid4().hex[:16]}"

    def say(self, sender: str, text: str, what: str) -> Replies:
        replies = self.stack.say(sender, text)
        problem = messages_problem(replies)
        assert problem is None, f"{what}: {problem} after {text!r}: {replies}"
        return replies

    def enter(self, state: State, age: Callable[[Stack, str, float], None]) -> str:
        """A new conversation in `state`, checked from the stored tracker."""
        sender = self.new_sender()
        for text in state.setup:
            self.say(sender, text, f"setting up {state.name!r}")
        if state.expire_session:
            age(self.stack, sender, SESSION_EXPIRY_SECONDS)
        tracker = self.stack.tracker(sender) if state.setup else {}
        loop = (tracker.get("active_loop") or {}).get("name")
        assert loop == state.active_loop, f"state {state.name!r}: active loop {loop!r}"
        assert bool((tracker.get("slots") or {}).get("handoff_active")) == state.handed_off, f"state {state.name!r}"
        return sender

    def broken_turns_logged(self) -> List[str]:
        """Lines the Rasa servers logged since the last call that mean a turn looped."""
        found: List[str] = []
        for path in self.logs:
            with path.open("rb") as log:
                log.seek(self.log_sizes[path])
                text = log.read().decode(errors="replace")
                self.log_sizes[path] = log.tell()
            found += [line for line in text.splitlines() if any(mark in line for mark in BROKEN_TURN_MARKS)]
        return found
