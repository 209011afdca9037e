"""Transcripts in the real console (`python -m console serve`) over HTTP: search and filters, masking and
reveal, reviews, exports, hostile input and who may do what."""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Iterator, List

import httpx
import pytest
from sqlalchemy import select

from console.conversations import ConversationStore
from onewindow.rasa_plugins.events_table import tracker_database_url, tracker_engine
from onewindow.storage import models
from onewindow.storage.db import make_engine
from tests.console_server import RunningConsole
from tests.tracker_rows import SENDERS, console_with_samples, staff

LINK = re.compile(r'<a href="/transcripts/(\d+)">')


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    with console_with_samples(tmp_path_factory.mktemp("console-transcripts")) as running:
        yield running


@pytest.fixture(scope="module")
def store(console: RunningConsole) -> Iterator[ConversationStore]:
    tracker, service = tracker_engine(url=tracker_database_url(console.endpoints)), make_engine(console.database_url)
    yield ConversationStore(tracker, service)
    tracker.dispose()
    service.dispose()


def keys_on(page: str) -> List[int]:
    return [int(key) for key in LINK.findall(page)]


def key(store: ConversationStore, sender: str) -> int:
    found = store.key_of(sender)
    assert found is not None
    return found


def audit_actions(store: ConversationStore, username: str) -> List[tuple]:
    """What the audit log says `username` did, logging in and out left out."""
    with store.service.connect() as connection:
        rows = connection.execute(
            select(models.AuditEntry.action, models.AuditEntry.target)
            .where(models.AuditEntry.username == username, models.AuditEntry.action.notin_(("login", "logout")))
            .order_by(models.AuditEntry.id)
        )
        return [tuple(row) for row in rows]


def test_without_a_session_everything_is_refused(console: RunningConsole, store: ConversationStore) -> None:
    with httpx.Client(base_url=console.base_url) as anonymous:
        for path in (
            "/transcripts",
            f"/transcripts/{key(store, 'web-a')}",
            "/transcripts/export.csv",
            "/transcripts/export.json",
        ):
            answer = anonymous.get(path)
            assert answer.status_code in (302, 303) and answer.headers["location"].startswith("/login"), path
            assert "hello" not in answer.text
        assert anonymous.post(f"/transcripts/{key(store, 'web-a')}/reveal").status_code == 401
        assert anonymous.post(f"/transcripts/{key(store, 'web-a')}/review", data={"tags": "x"}).status_code == 401


def test_the_list_shows_every_conversation_masked_and_escaped(console: RunningConsole, store: ConversationStore) -> None:
    with staff(console, "agent") as agent:
        page = agent.get("/transcripts")
    assert page.status_code == 200
    assert set(keys_on(page.text)) == {key(store, s) for s in SENDERS}
    assert "phone:•••• 66" in page.text and "telegram:•••• 89" in page.text
    assert "0499887766" not in page.text and "123456789" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text


@pytest.mark.parametrize(
    "query, senders",
    [
        ("channel=kiosk", {"kiosk:7"}),
        ("channel=rest", {"web-a", "web-xss"}),
        ("intent=ask_documents", {"web-a"}),
        ("outcome=handed_off", {"kiosk:7"}),
        ("outcome=abandoned", {"phone:0499887766", "web-xss"}),
        ("reason=citizen_request", {"kiosk:7"}),
        ("q=passport", {"web-a"}),
        ("q=%3Cscript%3E", {"web-xss"}),
        ("q=100%25", {"kiosk:7"}),
        ("from=2026-03-03&to=2026-03-03", {"web-a"}),
        ("from=2026-03-02&to=2026-03-02&channel=telegram", {"telegram:123456789"}),
        ("to=2026-03-01", set()),
    ],
)
def test_filters_narrow_the_list(console: RunningConsole, store: ConversationStore, query: str, senders: set) -> None:
    with staff(console, "agent") as agent:
        page = agent.get(f"/transcripts?{query}")
    assert page.status_code == 200
    assert set(keys_on(page.text)) == {key(store, s) for s in senders}


def test_a_search_shows_hostile_text_as_text(console: RunningConsole) -> None:
    with staff(console, "agent") as agent:
        page = agent.get("/transcripts", params={"q": "<script>alert(1)</script>"})
    assert page.status_code == 200 and "<script>alert(1)" not in page.text
    assert page.text.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # in the search box and in the result


@pytest.mark.parametrize(
    "params, message",
    [
        ({"from": "2026-13-45"}, "&#39;from&#39; must be a date"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "&#39;to&#39; must not be before &#39;from&#39;"),
        ({"channel": "<script>alert(1)</script>"}, "&#39;channel&#39; must be one of"),
        ({"intent": "greet' OR '1'='1"}, "&#39;intent&#39; must be one of"),
        ({"outcome": "x"}, "&#39;outcome&#39; must be one of"),
        ({"reason": "x"}, "&#39;reason&#39; must be one of"),
        ({"tag": "<b>"}, "a tag is"),
        ({"q": "x" * 201}, "at most 200 characters"),
        ({"page": "0"}, "&#39;page&#39; must be a whole number"),
        ({"page": "-1; DROP TABLE events"}, "&#39;page&#39; must be a whole number"),
    ],
)
def test_invalid_parameters_get_400_with_a_message(console: RunningConsole, params: dict, message: str) -> None:
    with staff(console, "agent") as agent:
        page = agent.get("/transcripts", params=params)
        export = agent.get("/transcripts/export.csv", params=params)
    assert page.status_code == 400 and message in page.text and 'id="filter-error"' in page.text
    assert "<script>alert(1)" not in page.text
    assert export.status_code == (200 if "page" in params else 400)  # exports take the whole filtered set, no page


def test_pages_of_results(console: RunningConsole) -> None:
    with staff(console, "agent") as agent:
        far = agent.get("/transcripts", params={"page": "2"})
    assert far.status_code == 200 and keys_on(far.text) == []


def test_a_transcript_is_masked_and_its_view_audited(console: RunningConsole, store: ConversationStore) -> None:
    conversation = key(store, "telegram:123456789")
    with staff(console, "agent") as agent:
        page = agent.get(f"/transcripts/{conversation}")
        refused = agent.post(f"/transcripts/{conversation}/reveal", data={"csrf_token": agent.csrf_token})
        username = agent.username
    assert page.status_code == 200
    assert "Ana Silva" not in page.text and "0412 345 678" not in page.text and "123456789" not in page.text
    assert "my number is •••• 78" in page.text and "Thanks ••••, I have •••• 78." in page.text
    assert "intent <code>inform</code> (0.40)" in page.text and "Reveal personal data" not in page.text
    assert refused.status_code == 403 and "Ana Silva" not in refused.text
    assert audit_actions(store, username) == [
        ("transcript.view", f"conversation:{conversation}"),
        ("access.denied", f"/transcripts/{conversation}/reveal"),
    ]


def test_a_supervisor_reveals_personal_data_for_one_response_and_it_is_audited(
    console: RunningConsole, store: ConversationStore
) -> None:
    conversation = key(store, "telegram:123456789")
    with staff(console, "supervisor") as supervisor:
        assert "Reveal personal data" in supervisor.get(f"/transcripts/{conversation}").text
        forged = supervisor.post(f"/transcripts/{conversation}/reveal")
        revealed = supervisor.post(f"/transcripts/{conversation}/reveal", data={"csrf_token": supervisor.csrf_token})
        again = supervisor.get(f"/transcripts/{conversation}")
        username = supervisor.username
    assert forged.status_code == 403 and "Ana Silva" not in forged.text
    assert revealed.status_code == 200 and 'id="revealed"' in revealed.text
    assert "Thanks Ana Silva, I have 0412 345 678." in revealed.text and "telegram:123456789" in revealed.text
    assert "Ana Silva" not in again.text
    target = f"conversation:{conversation}"
    assert audit_actions(store, username) == [
        ("transcript.view", target),
        ("access.denied", f"/transcripts/{conversation}/reveal"),
        ("personal_data.reveal", target),
        ("transcript.view", target),
    ]


def test_handoffs_staff_replies_sessions_and_calls_are_shown(console: RunningConsole, store: ConversationStore) -> None:
    with staff(console, "agent") as agent:
        kiosk = agent.get(f"/transcripts/{key(store, 'kiosk:7')}").text
        web = agent.get(f"/transcripts/{key(store, 'web-a')}").text
        phone = agent.get(f"/transcripts/{key(store, 'phone:0499887766')}").text
        missing = agent.get("/transcripts/999999")
        by_sender = agent.get("/transcripts/by-sender", params={"id": "kiosk:7"})  # gone: no sender id in any address
    assert (
        "HO-100001" in kiosk and "12 min (claimed by sam)" in kiosk and "Staff: sam" in kiosk and "Hello, this is Sam." in kiosk
    )
    assert "<code>action_request_human</code>" in kiosk
    assert web.count('class="session-break"') == 2 and "<code>service</code> = passport_renewal" in web
    assert "Recognition confidence" in phone and "0.31" in phone and "caller hung up" in phone
    assert missing.status_code == 404
    assert by_sender.status_code == 404


def test_tags_notes_and_the_reviewed_mark_need_the_csrf_token(console: RunningConsole, store: ConversationStore) -> None:
    conversation = key(store, "web-xss")
    form = {"tags": "Hostile, needs review", "note": "<img src=x onerror=alert(1)>", "reviewed": "on"}
    with staff(console, "agent") as agent:
        forged = agent.post(f"/transcripts/{conversation}/review", data=form)
        saved = agent.post(f"/transcripts/{conversation}/review", data={**form, "csrf_token": agent.csrf_token})
        bad = agent.post(f"/transcripts/{conversation}/review", data={**form, "tags": "<b>", "csrf_token": agent.csrf_token})
        page = agent.get(f"/transcripts/{conversation}").text
        tagged = agent.get("/transcripts", params={"tag": "hostile"}).text
        reviewed = agent.get("/transcripts", params={"reviewed": "yes"}).text
        username = agent.username
    assert forged.status_code == 403
    assert saved.status_code == 303 and saved.headers["location"] == f"/transcripts/{conversation}"
    assert bad.status_code == 400 and "a tag is" in bad.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert 'value="hostile, needs review"' in page and "&lt;img src=x onerror=alert(1)&gt;" in page and "<img src=x" not in page
    assert f"Reviewed by</dt><dd>{username}" in page
    assert keys_on(tagged) == [conversation] and keys_on(reviewed) == [conversation]
    assert ("transcript.review", f"conversation:{conversation}") in audit_actions(store, username)
    store.save_review("web-xss", [], "", False, username)  # leave the module's data as it was


def test_csv_export_is_the_filtered_set_masked_and_audited(console: RunningConsole, store: ConversationStore) -> None:
    with staff(console, "agent") as agent:
        answer = agent.get("/transcripts/export.csv", params={"channel": "telegram"})
        everything = agent.get("/transcripts/export.csv")
        username = agent.username
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    assert [r["text"] for r in rows] == ["book an appointment", "my number is •••• 78", "Thanks ••••, I have •••• 78."]
    assert (
        {r["sender"] for r in rows} == {"telegram:•••• 89"} and rows[1]["intent"] == "inform" and rows[1]["confidence"] == "0.4"
    )
    assert "Ana" not in answer.text and "0412" not in answer.text
    all_rows = list(csv.DictReader(io.StringIO(everything.text)))
    assert {r["conversation"] for r in all_rows} == {str(key(store, s)) for s in SENDERS}
    assert {"citizen", "assistant", "staff:sam"} <= {r["from"] for r in all_rows}
    assert next(r for r in all_rows if r["text"] == "I want a person")["actions"] == "action_request_human"
    assert [a for a, _ in audit_actions(store, username)] == ["transcripts.export", "transcripts.export"]


def test_json_export_is_the_filtered_set_masked(console: RunningConsole, store: ConversationStore) -> None:
    with staff(console, "agent") as agent:
        answer = agent.get("/transcripts/export.json", params={"outcome": "handed_off"})
        masked = agent.get("/transcripts/export.json", params={"q": "number"})
    body = json.loads(answer.text)
    assert body["filter"] == {"outcome": "handed_off"}
    [conversation] = body["conversations"]
    assert conversation["conversation"] == key(store, "kiosk:7") and conversation["handoffs"][0]["wait_minutes"] == pytest.approx(
        12
    )
    turns = conversation["sessions"][0]["turns"]
    assert turns[0]["citizen"]["text"] == "100% sure_thing" and turns[1]["actions"] == ["action_request_human"]
    assert turns[1]["replies"][-1] == {**turns[1]["replies"][-1], "from": "staff", "author": "sam"}
    [telegram] = json.loads(masked.text)["conversations"]
    assert telegram["sender"] == "telegram:•••• 89" and "Ana" not in masked.text and "0412" not in masked.text
    assert {"name": "citizen_name", "value": "••••"} in telegram["sessions"][0]["turns"][0]["slots"]
