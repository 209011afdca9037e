"""Nobody reaches another citizen's records: the real stack over REST (HAProxy, Rasa, action server, database)."""

from __future__ import annotations

import json
import re
import urllib.request
from datetime import date
from typing import Any, Dict, List, Optional

import pytest

from harness.stack import Stack
from onewindow.backend import ServiceBackend
from onewindow.backend.ownership import MAX_FAILURES
from onewindow.channels.senders import sign_sender
from onewindow.infra.logs import pseudonym

pytestmark = pytest.mark.stack
REFERENCE = re.compile(r"\bBK-\d{5}-\d{5}\b")
REFUSAL = "For your security I cannot show or change this"


@pytest.fixture(scope="module")
def backend(stack: Stack) -> ServiceBackend:
    return ServiceBackend.from_url(stack.database_url)


def say(stack: Stack, sender: str, text: str, metadata: Optional[Dict[str, Any]] = None) -> str:
    """One REST message, with the metadata a channel adapter would add; the bot's texts joined."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{stack.rasa_port}/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": text, "metadata": metadata or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        messages: List[Dict[str, Any]] = json.loads(answer.read())
    return " ".join(m.get("text", "") for m in messages)


@pytest.fixture(scope="module")
def reference(stack: Stack, backend: ServiceBackend) -> str:
    """An appointment booked by someone whose phone number ends in 5678."""
    start = backend.bookings.next_free("north_centre", date.today(), 2)[1]
    record = backend.bookings.book("passport_renewal", "north_centre", start, "Ana Silva", "0412 345 678", "telegram")
    backend.citizens.link_identity("telegram", "8801", "0412 345 678")
    assert REFERENCE.fullmatch(record.reference)
    return record.reference


def test_a_stranger_with_the_number_is_asked_for_proof_and_sees_nothing(stack: Stack, reference: str) -> None:
    answer = say(stack, "e2e-stranger", f"cancel appointment {reference}")
    assert "last four digits" in answer and "North Service Centre" not in answer and "passport" not in answer.lower()
    answer = say(stack, "e2e-stranger", "1111")
    assert "do not match" in answer and "Shall I cancel" not in answer
    answer = say(stack, "e2e-stranger", "stop")
    answer = say(stack, "e2e-stranger", f"check my appointment {reference}")
    assert "last four digits" in answer and "North" not in answer


def test_the_owner_proves_it_with_the_last_four_digits(stack: Stack, reference: str) -> None:
    answer = say(stack, "e2e-owner", f"check my appointment {reference.lower().replace('-', ' ')}")
    assert "last four digits" in answer
    answer = say(stack, "e2e-owner", "5678")
    assert reference in answer and "North Service Centre" in answer


def test_a_signed_telegram_chat_linked_to_the_phone_is_not_asked(stack: Stack, reference: str) -> None:
    sender = "telegram:8801"
    answer = say(stack, sender, f"check my appointment {reference}", {"sender_signature": sign_sender(sender)})
    assert reference in answer and "North Service Centre" in answer and "last four digits" not in answer


def test_the_same_sender_id_claimed_without_the_signature_is_asked(stack: Stack, reference: str) -> None:
    answer = say(stack, "telegram:8801", f"check my appointment {reference}", {"sender_signature": "0" * 64})
    assert "last four digits" in answer and "North Service Centre" not in answer


def test_guessing_stops_after_five_failures_and_staff_see_them(stack: Stack, backend: ServiceBackend) -> None:
    sender = "e2e-guesser"
    answers = [say(stack, sender, f"check my appointment BK-{100000 + n}") for n in range(MAX_FAILURES + 1)]
    assert all("could not find" in a for a in answers[:MAX_FAILURES]), answers
    assert REFUSAL in answers[-1] and "talk to a person" in answers[-1]
    assert REFUSAL in say(stack, sender, "check my appointment BK-100009")
    rows = [r for r in backend.ownership.failed_lookups() if r.conversation_key == pseudonym(sender)]
    assert [r.reason for r in reversed(rows)][:MAX_FAILURES] == ["unknown"] * MAX_FAILURES
    assert "limited" in {r.reason for r in rows} and {r.channel for r in rows} == {"rest"}


def test_application_status_needs_the_digits(stack: Stack) -> None:
    answer = say(stack, "e2e-app", "what is the status of APP-48291-37508")
    assert "last four digits" in answer and "photo" not in answer
    answer = say(stack, "e2e-app", "0110")
    assert "APP-48291-37508" in answer and "We are checking your photo." in answer
    answer = say(stack, "e2e-app-2", "status of APP-48291-37580")
    assert "has a mistake" in answer
