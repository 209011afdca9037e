"""The staff console's live handoff queue, over real HTTP against `python -m console serve`.

Handoffs are real rows made by the service backend (as the assistant's handoff action makes them);
every change goes through the console's web forms and StaffDesk. Staff replies to a Telegram chat
reach the local Bot API server (tests/telegram_api.py) through the console's own outbound channel.
"""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import time
from typing import Dict, Iterator, List, Optional

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from onewindow.backend import ServiceBackend
from onewindow.settings import PROJECT_ROOT
from onewindow.storage import models
from tests.console_server import RunningConsole, StaffClient, create_staff_user, logged_in_client
from tests.fixtures_stack import RunningStack
from tests.telegram_api import LocalBotApi

PASSWORD = "correct horse battery"
REFERENCE_LINK = re.compile(r'href="/handoffs/(HO-\d{6})"')
chats = itertools.count(7001)
names = (f"staff{n}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def telegram() -> Iterator[LocalBotApi]:
    with LocalBotApi() as api:
        yield api


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, telegram: LocalBotApi) -> Iterator[RunningConsole]:
    workdir = tmp_path_factory.mktemp("console-queue")
    env = {"TELEGRAM_TOKEN": telegram.token, "TELEGRAM_API_URL": telegram.base_url}
    with RunningConsole(f"sqlite:///{workdir / 'onewindow.db'}", workdir, env=env) as running:
        yield running


@pytest.fixture(scope="module")
def backend(console: RunningConsole) -> Iterator[ServiceBackend]:
    backend = ServiceBackend.from_url(console.database_url)
    yield backend
    backend.engine.dispose()


def staff(console: RunningConsole, role: str = "agent") -> StaffClient:
    username = next(names)
    create_staff_user(console.database_url, username, role, PASSWORD)
    client = logged_in_client(console.base_url, username, PASSWORD)
    return client


def handoff(
    backend: ServiceBackend,
    telegram: Optional[LocalBotApi] = None,
    priority: int = 2,
    summary: Optional[Dict] = None,
    reason: str = "citizen_request",
) -> str:
    """A new handoff as the assistant records it; from a Telegram chat the local Bot API knows, when given."""
    chat = next(chats)
    if telegram is not None:
        telegram.user_sends_text(chat, "I want to talk to a person")
    summary = summary or {
        "intents": ["ask_fee"],
        "slots": {"service": "passport_renewal"},
        "last_turns": [{"from": "citizen", "text": "I want to talk to a person"}],
    }
    record = backend.handoffs.request(f"telegram:{chat}", "telegram", reason, summary, priority)
    return record.reference


def row(backend: ServiceBackend, reference: str) -> models.HandoffRequest:
    with Session(backend.engine) as session:
        found = session.scalars(select(models.HandoffRequest).where(models.HandoffRequest.reference == reference)).one()
        _ = found.messages  # load them before the session closes
        return found


def audited(backend: ServiceBackend, username: str) -> List[tuple]:
    with Session(backend.engine) as session:
        return session.execute(
            select(models.AuditEntry.action, models.AuditEntry.target)
            .where(models.AuditEntry.username == username)
            .order_by(models.AuditEntry.id)
        ).all()


def form(client: StaffClient, **fields: str) -> Dict[str, str]:
    return {"csrf_token": client.csrf_token, **fields}


# --- the list ------------------------------------------------------------------------------------


def test_queue_shows_highest_priority_first_then_the_longest_waiting(console: RunningConsole, backend: ServiceBackend) -> None:
    agent = staff(console)
    low, normal_old, high, normal_new = (handoff(backend, priority=p) for p in (3, 2, 1, 2))
    claimed = handoff(backend, priority=1)
    assert agent.post(f"/handoffs/{claimed}/claim", data=form(agent)).status_code == 303
    page = agent.get("/queue")
    assert page.status_code == 200
    shown = [ref for ref in REFERENCE_LINK.findall(page.text) if ref in (low, normal_old, high, normal_new, claimed)]
    assert shown == [high, claimed, normal_old, normal_new, low]
    claimed_row = page.text[page.text.index(claimed) :].split("</tr>")[0]
    assert agent.username in claimed_row
    items = agent.get("/queue/items").text  # the fragment the page fetches on a live update
    assert REFERENCE_LINK.findall(items) == REFERENCE_LINK.findall(page.text)


def test_queue_rows_show_reason_channel_priority_and_place(console: RunningConsole, backend: ServiceBackend) -> None:
    reference = handoff(backend, priority=1, reason="urgent_report")
    page = staff(console).get("/queue").text
    cells = page[page.index(f'href="/handoffs/{reference}"') :].split("</tr>")[0]
    assert "urgent report" in cells and "telegram" in cells and "high" in cells and " min" in cells


# --- working on a handoff ------------------------------------------------------------------------


def test_claim_reply_note_and_resolve_through_the_web(
    console: RunningConsole, backend: ServiceBackend, telegram: LocalBotApi
) -> None:
    agent = staff(console)
    reference = handoff(backend, telegram)
    chat = int(row(backend, reference).sender_id.split(":")[1])

    assert agent.post(f"/handoffs/{reference}/claim", data=form(agent)).headers["location"] == f"/handoffs/{reference}"
    assert row(backend, reference).status == "claimed" and row(backend, reference).claimed_by == agent.username

    reply = agent.post(f"/handoffs/{reference}/reply", data=form(agent, text="Hello, this is Sam from the service centre."))
    assert reply.status_code == 303
    telegram.wait_for("sendMessage", chat_id=chat)
    assert "Hello, this is Sam from the service centre." in telegram.sent_texts(chat)

    agent.post(f"/handoffs/{reference}/note", data=form(agent, text="Citizen needs the fee waiver form."))
    messages = [(m.kind, m.text, m.delivered) for m in row(backend, reference).messages]
    assert messages == [
        ("reply", "Hello, this is Sam from the service centre.", True),
        ("note", "Citizen needs the fee waiver form.", False),
    ]
    assert "Citizen needs the fee waiver form." not in telegram.sent_texts(chat)  # notes are never sent

    page = agent.get(f"/handoffs/{reference}").text
    reply_at, note_at = page.index("Reply to citizen"), page.index("Internal note</strong>")
    assert reply_at < page.index("Hello, this is Sam") < note_at < page.index("Citizen needs the fee waiver form.")
    assert "delivered" in page

    resolved = agent.post(f"/handoffs/{reference}/resolve", data=form(agent, outcome="answered"))
    assert resolved.status_code == 303 and resolved.headers["location"] == "/queue"
    closed = row(backend, reference)
    assert (closed.status, closed.outcome) == ("resolved", "answered")
    assert reference not in agent.get("/queue").text
    actions = [action for action, target in audited(backend, agent.username) if target == reference]
    assert actions == ["handoff.claim", "handoff.reply", "handoff.note", "handoff.view", "handoff.resolve"]


def test_hand_back_returns_the_conversation_to_the_assistant(
    console: RunningConsole, backend: ServiceBackend, telegram: LocalBotApi
) -> None:
    agent = staff(console)
    reference = handoff(backend, telegram)
    chat = int(row(backend, reference).sender_id.split(":")[1])
    agent.post(f"/handoffs/{reference}/claim", data=form(agent))
    answer = agent.post(f"/handoffs/{reference}/hand-back", data=form(agent))
    assert answer.status_code == 303 and answer.headers["location"] == "/queue"
    assert row(backend, reference).status == "returned"
    telegram.wait_for("sendMessage", chat_id=chat)
    assert any("back with the assistant" in text for text in telegram.sent_texts(chat))
    page = agent.get(f"/handoffs/{reference}").text
    assert "status-returned" in page and "/claim" not in page  # no actions on a closed handoff


def test_a_handoff_claimed_by_someone_else_cannot_be_worked_on(console: RunningConsole, backend: ServiceBackend) -> None:
    first, second = staff(console), staff(console)
    reference = handoff(backend)
    first.post(f"/handoffs/{reference}/claim", data=form(first))
    for action, fields in (("claim", {}), ("reply", {"text": "hi"}), ("resolve", {"outcome": "answered"}), ("hand-back", {})):
        answer = second.post(f"/handoffs/{reference}/{action}", data=form(second, **fields))
        assert answer.status_code == 409, action
        assert f"claimed by {first.username}" in answer.text
    assert row(backend, reference).claimed_by == first.username


def test_a_closed_handoff_answers_409_and_unknown_ones_404(console: RunningConsole, backend: ServiceBackend) -> None:
    agent = staff(console)
    reference = handoff(backend)
    agent.post(f"/handoffs/{reference}/resolve", data=form(agent, outcome="booked"))
    late = agent.post(f"/handoffs/{reference}/reply", data=form(agent, text="Are you still there?"))
    assert late.status_code == 409 and "is resolved" in late.text
    assert agent.get("/handoffs/HO-000001").status_code == 404
    assert agent.get("/handoffs/not-a-reference").status_code == 404
    assert agent.post("/handoffs/HO-000001/claim", data=form(agent)).status_code == 404


@pytest.mark.parametrize(
    "action, fields",
    [
        ("reply", {"text": "   "}),
        ("note", {"text": ""}),
        ("reply", {"text": "x" * 2001}),
        ("resolve", {"outcome": "made up"}),
        ("resolve", {}),
    ],
)
def test_bad_forms_are_refused_with_400(
    console: RunningConsole, backend: ServiceBackend, action: str, fields: Dict[str, str]
) -> None:
    agent = staff(console)
    reference = handoff(backend)
    assert agent.post(f"/handoffs/{reference}/{action}", data=form(agent, **fields)).status_code == 400
    assert row(backend, reference).status == "open" and row(backend, reference).messages == []


def test_notes_follow_the_ownership_rules_of_replies(console: RunningConsole, backend: ServiceBackend) -> None:
    first, second = staff(console), staff(console)
    claimed, closed = handoff(backend), handoff(backend)
    first.post(f"/handoffs/{claimed}/claim", data=form(first))
    refused = second.post(f"/handoffs/{claimed}/note", data=form(second, text="I will take this over"))
    assert refused.status_code == 409 and f"claimed by {first.username}" in refused.text
    assert first.post(f"/handoffs/{claimed}/note", data=form(first, text="called back")).status_code == 303
    first.post(f"/handoffs/{closed}/resolve", data=form(first, outcome="answered"))
    late = first.post(f"/handoffs/{closed}/note", data=form(first, text="afterthought"))
    assert late.status_code == 409 and "is resolved" in late.text
    assert [(m.author, m.text) for m in row(backend, claimed).messages] == [(first.username, "called back")]
    assert row(backend, closed).messages == []


def test_supervisors_release_or_reassign_a_handoff_whose_claimer_left(console: RunningConsole, backend: ServiceBackend) -> None:
    leaver, colleague, supervisor = staff(console), staff(console), staff(console, "supervisor")
    admin = staff(console, "admin")
    reference = handoff(backend)
    leaver.post(f"/handoffs/{reference}/claim", data=form(leaver))
    users_page = admin.get("/admin/users").text
    leaver_row = users_page[users_page.index(f"<td>{leaver.username}</td>") :]
    leaver_id = leaver_row[leaver_row.index('action="/admin/users/') + len('action="/admin/users/') :].split("/")[0]
    assert admin.post(f"/admin/users/{leaver_id}/deactivate", data=form(admin)).status_code == 200
    assert colleague.post(f"/handoffs/{reference}/resolve", data=form(colleague, outcome="answered")).status_code == 409
    assert colleague.post(f"/handoffs/{reference}/reassign", data=form(colleague, to="")).status_code == 403
    to_nobody = supervisor.post(f"/handoffs/{reference}/reassign", data=form(supervisor, to=leaver.username))
    assert to_nobody.status_code == 400 and "active staff member" in to_nobody.text
    released = supervisor.post(f"/handoffs/{reference}/reassign", data=form(supervisor, to=""))
    assert released.status_code == 303 and row(backend, reference).status == "open" and row(backend, reference).claimed_by is None
    given = supervisor.post(f"/handoffs/{reference}/reassign", data=form(supervisor, to=colleague.username))
    assert given.status_code == 303 and row(backend, reference).claimed_by == colleague.username
    assert colleague.post(f"/handoffs/{reference}/resolve", data=form(colleague, outcome="answered")).status_code == 303
    assert row(backend, reference).status == "resolved"
    actions = [action for action, target in audited(backend, supervisor.username) if target == reference]
    assert actions == ["handoff.release", "handoff.reassign"]
    closed = supervisor.post(f"/handoffs/{reference}/reassign", data=form(supervisor, to=""))
    assert closed.status_code == 409


# --- what the pages show -------------------------------------------------------------------------


def test_hostile_citizen_text_is_shown_as_text(console: RunningConsole, backend: ServiceBackend) -> None:
    agent = staff(console)
    script = "<script>alert('x')</script>"
    summary = {
        "intents": ["<b>intent</b>"],
        "slots": {"service": '<img src=x onerror="alert(1)">'},
        "last_turns": [{"from": "citizen", "text": f"hello {script}"}],
    }
    reference = handoff(backend, summary=summary)
    agent.post(f"/handoffs/{reference}/note", data=form(agent, text=f"note {script}"))
    page = agent.get(f"/handoffs/{reference}").text
    assert script not in page and "<img src=x" not in page and "<b>intent</b>" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page


def test_personal_data_is_masked_and_only_supervisors_reveal_it(console: RunningConsole, backend: ServiceBackend) -> None:
    summary = {
        "intents": ["book_appointment"],
        "slots": {"citizen_name": "Maria Jones", "citizen_phone": "0412 345 678"},
        "last_turns": [{"from": "citizen", "text": "I am Maria Jones, call me on 0412 345 678"}],
    }
    reference = handoff(backend, summary=summary)
    agent, supervisor = staff(console), staff(console, "supervisor")
    for client in (agent, supervisor):
        page = client.get(f"/handoffs/{reference}").text
        assert "Maria Jones" not in page and "0412 345 678" not in page and "•••• 78" in page
    assert agent.post(f"/handoffs/{reference}/reveal", data=form(agent)).status_code == 403
    revealed = supervisor.post(f"/handoffs/{reference}/reveal", data=form(supervisor))
    assert revealed.status_code == 200 and "Maria Jones" in revealed.text and "0412 345 678" in revealed.text
    assert ("personal_data.reveal", reference) in audited(backend, supervisor.username)
    assert ("personal_data.reveal", reference) not in audited(backend, agent.username)


def test_a_name_the_assistant_echoed_is_masked_after_the_slot_was_cleared(
    console: RunningConsole, backend: ServiceBackend
) -> None:
    echo = "Please check: Passport renewal at Central, on Friday 4 December at 10:00, for Rosa Delgado. Shall I book it?"
    summary = {
        "intents": ["book_appointment"],
        "slots": {"appointment_date": "2026-12-04", "report_location": "7 Elm Street"},
        "last_turns": [
            {"from": "assistant", "text": echo},
            {"from": "citizen", "text": "no, Ms Delgado is my mother"},
            {"from": "citizen", "text": "write to rosa.d@example.org"},
        ],
    }
    reference = handoff(backend, summary=summary)
    page = staff(console).get(f"/handoffs/{reference}").text
    assert "Rosa" not in page and "Delgado" not in page and "rosa.d@example.org" not in page and "7 Elm Street" not in page
    assert "for ••••. Shall I book it?" in page and "Ms •••• is my mother" in page and "••••@••••" in page
    assert "2026-12-04" in page and "10:00" in page  # dates and times are shown as they are


def test_the_handoff_page_links_to_the_transcript_without_the_sender_id(console: RunningConsole, backend: ServiceBackend) -> None:
    from onewindow.rasa_plugins.events_table import events, tracker_engine

    sender = "phone:0412777888"
    tracker = tracker_engine(console.endpoints)
    with tracker.begin() as connection:
        connection.execute(
            events.insert(),
            [{"sender_id": sender, "type_name": "user", "timestamp": time.time(), "data": '{"text": "a person please"}'}],
        )
        key = connection.scalar(select(events.c.id).where(events.c.sender_id == sender))
    tracker.dispose()
    reference = backend.handoffs.request(
        sender, "phone", "citizen_request", {"intents": [], "slots": {}, "last_turns": []}
    ).reference
    page = staff(console).get(f"/handoffs/{reference}").text
    assert f'href="/transcripts/{key}"' in page
    assert "0412777888" not in page and "by-sender" not in page


# --- live updates --------------------------------------------------------------------------------


def create_handoff_in_another_process(console: RunningConsole, sender: str) -> str:
    """A handoff written by a separate Python process (as the action server writes them)."""
    code = (
        "import sys; from onewindow.backend import ServiceBackend; "
        "print(ServiceBackend.from_url(sys.argv[1]).handoffs.request(sys.argv[2], 'rest', 'citizen_request', "
        "{'intents': [], 'slots': {}, 'last_turns': []}, 2).reference)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, console.database_url, sender],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
        timeout=60,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


class EventStream:
    """Reads server-sent events from an open httpx streaming response."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next_event(self, deadline: float) -> Dict[str, str]:
        event: Dict[str, str] = {}
        for line in self.lines:
            if time.monotonic() > deadline:
                raise AssertionError("no event in time")
            if not line:
                if "event" in event:
                    return event
                event = {}
                continue
            if not line.startswith(":"):
                name, _, value = line.partition(":")
                event[name] = value.strip()
        raise AssertionError("the stream ended")


def test_event_stream_announces_a_handoff_made_by_another_process(console: RunningConsole) -> None:
    agent = staff(console)
    with agent.stream("GET", "/queue/events", timeout=httpx.Timeout(30.0)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = EventStream(response)
        first = stream.next_event(time.monotonic() + 10)
        assert first["event"] == "queue"
        started = time.monotonic()
        reference = create_handoff_in_another_process(console, "web-sse-1")
        update = stream.next_event(time.monotonic() + 10)
        assert update["event"] == "queue" and update["data"] != first["data"]
        assert time.monotonic() - started < 10
    assert reference in agent.get("/queue/items").text


def test_event_stream_ends_when_the_session_ends(console: RunningConsole) -> None:
    agent = staff(console)
    with agent.stream("GET", "/queue/events", timeout=httpx.Timeout(30.0)) as response:
        stream = EventStream(response)
        stream.next_event(time.monotonic() + 10)
        assert agent.post("/logout", data=form(agent)).status_code == 303
        create_handoff_in_another_process(console, "web-sse-2")  # the next change wakes the stream up
        assert stream.next_event(time.monotonic() + 10)["event"] == "logout"
        assert list(stream.lines) == []  # and the server closed it


def test_two_consoles_share_sessions_and_the_live_queue(
    console: RunningConsole, backend: ServiceBackend, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two console processes on one database (as behind the proxy): a session made on one is valid on the other,
    work done through the second shows on the first's live queue, and a logout on the second ends the first's stream."""
    env = {"TELEGRAM_TOKEN": "", "TELEGRAM_API_URL": ""}
    with RunningConsole(console.database_url, tmp_path_factory.mktemp("console-two"), console.endpoints, env=env) as other:
        agent = staff(console)
        elsewhere = httpx.Client(base_url=other.base_url, cookies=agent.cookies, timeout=30)
        assert elsewhere.get("/queue").status_code == 200 and agent.username in elsewhere.get("/queue").text
        reference = handoff(backend)
        with agent.stream("GET", "/queue/events", timeout=httpx.Timeout(30.0)) as response:
            stream = EventStream(response)
            first = stream.next_event(time.monotonic() + 10)
            claimed = elsewhere.post(f"/handoffs/{reference}/claim", data=form(agent))
            assert claimed.status_code == 303 and row(backend, reference).claimed_by == agent.username
            update = stream.next_event(time.monotonic() + 10)
            assert update["event"] == "queue" and update["data"] != first["data"]
            assert elsewhere.post("/logout", data=form(agent)).status_code == 303
            create_handoff_in_another_process(console, "web-sse-two")  # the next change wakes the stream
            assert stream.next_event(time.monotonic() + 10)["event"] == "logout"
        assert agent.get("/queue").status_code != 200  # logged out on both
        elsewhere.close()


# --- with the real assistant ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def assistant(tmp_path_factory: pytest.TempPathFactory, running_stack: RunningStack) -> Iterator[tuple]:
    """The real Rasa server and action server, and a console on the same databases and Rasa HTTP API."""
    stack = running_stack(fresh=True)  # the queue must hold only this module's handoff
    with RunningConsole(
        stack.database_url,
        tmp_path_factory.mktemp("console-assistant"),
        endpoints=stack.endpoints,
        rasa_url=stack.api_url,
        env=stack.api_env(),
    ) as running:
        yield stack, running


def test_a_citizen_asks_for_a_person_and_staff_answer_then_hand_back(assistant: tuple) -> None:
    stack, running = assistant
    citizen = "web-citizen-1"
    stack.say(citizen, "I want to talk to a person")
    agent = staff(running)
    references = REFERENCE_LINK.findall(agent.get("/queue").text)
    assert len(references) == 1  # the handoff the assistant's action recorded
    reference = references[0]
    assert agent.post(f"/handoffs/{reference}/reply", data=form(agent, text="Hello, I am here to help.")).status_code == 303
    events = stack.tracker(citizen)["events"]
    staff_said = [e for e in events if e["event"] == "bot" and (e.get("metadata") or {}).get("staff") == agent.username]
    assert [e["text"] for e in staff_said] == ["Hello, I am here to help."]
    assert stack.tracker(citizen)["slots"]["handoff_active"] is True
    assert agent.post(f"/handoffs/{reference}/hand-back", data=form(agent)).status_code == 303
    assert stack.tracker(citizen)["slots"]["handoff_active"] is False
    answers = stack.say(citizen, "what are the opening hours of the north service centre")
    assert any(answer.get("text") for answer in answers)  # the assistant answers again (with staff it sends no text)
