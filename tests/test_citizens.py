"""Citizens and linked channel identities: a chat or a caller finds business done on any channel."""
from __future__ import annotations

from datetime import date, timedelta

import pytest

from onewindow.backend import ServiceBackend
from onewindow.backend.citizens import normalise_phone


@pytest.mark.parametrize(
    "text, expected",
    [("0412 345 678", "0412345678"), ("(0412) 345-678", "0412345678"), ("+61 412 345 678", "+61412345678"),
     ("12345", None), ("call me", None), ("", None), (None, None)],
)
def test_phone_numbers_are_normalised_or_refused(text: str, expected: str) -> None:
    assert normalise_phone(text) == expected


def test_linking_a_chat_by_phone_finds_an_appointment_booked_on_another_channel(module_backend: ServiceBackend) -> None:
    day = date.today() + timedelta(days=3)
    start = module_backend.bookings.next_free("north_centre", day, 1)[0]
    booked = module_backend.bookings.book("passport_renewal", "north_centre", start, "Ana Silva", "0433 111 222", "rest")

    citizen = module_backend.citizens.link_identity("telegram", "chat-77", "0433-111-222", name="Ana Silva")
    assert module_backend.citizens.link_identity("telegram", "chat-77", "0433 111 222") == citizen, "linking twice keeps one citizen"
    phone = module_backend.citizens.phone_for_identity("telegram", "chat-77")
    assert phone == "0433111222"
    assert [a.reference for a in module_backend.bookings.upcoming_for_phone(phone)] == [booked.reference]


def test_an_unknown_identity_has_no_phone_and_a_bad_phone_is_refused(module_backend: ServiceBackend) -> None:
    assert module_backend.citizens.phone_for_identity("telegram", "never-seen") is None
    with pytest.raises(ValueError):
        module_backend.citizens.link_identity("telegram", "chat-78", "not a number")


def test_a_chat_can_be_relinked_to_another_phone(module_backend: ServiceBackend) -> None:
    first = module_backend.citizens.link_identity("telegram", "chat-79", "0455 000 001")
    second = module_backend.citizens.link_identity("telegram", "chat-79", "0455 000 002")
    assert first != second
    assert module_backend.citizens.phone_for_identity("telegram", "chat-79") == "0455000002"
