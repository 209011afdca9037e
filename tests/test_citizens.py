"""Citizens and linked channel identities: a chat or a caller finds business done on any channel."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from onewindow.backend import ServiceBackend
from onewindow.backend.citizens import normalise_phone
from onewindow.backend.preferences import Preferences


@pytest.mark.parametrize(
    "text, expected",
    [
        ("0412 345 678", "0412345678"),
        ("(0412) 345-678", "0412345678"),
        ("+61 412 345 678", "0412345678"),
        ("61412345678", "0412345678"),
        ("+44 20 7946 0958", "+442079460958"),
        ("0061", None),
        ("12345", None),
        ("call me", None),
        ("", None),
        (None, None),
    ],
)
def test_phone_numbers_are_normalised_or_refused(text: str, expected: str) -> None:
    assert normalise_phone(text) == expected


def test_linking_a_chat_by_phone_finds_an_appointment_booked_on_another_channel(module_backend: ServiceBackend) -> None:
    day = date.today() + timedelta(days=3)
    start = module_backend.bookings.next_free("north_centre", day, 1)[0]
    booked = module_backend.bookings.book("passport_renewal", "north_centre", start, "Ana Silva", "0433 111 222", "rest")

    citizen = module_backend.citizens.link_identity("telegram", "chat-77", "0433-111-222", name="Ana Silva")
    assert module_backend.citizens.link_identity("telegram", "chat-77", "0433 111 222") == citizen, (
        "linking twice keeps one citizen"
    )
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


def test_unlinking_forgets_the_chat_but_keeps_the_citizens_appointments(module_backend: ServiceBackend) -> None:
    module_backend.citizens.link_identity("telegram", "unlink-1", "0412 700 700")
    assert module_backend.citizens.unlink_identity("telegram", "unlink-1") is True
    assert module_backend.citizens.phone_for_identity("telegram", "unlink-1") is None
    assert module_backend.citizens.unlink_identity("telegram", "unlink-1") is False
    module_backend.citizens.link_identity("telegram", "unlink-2", "0412 700 700")  # the citizen record is still there
    assert module_backend.citizens.phone_for_identity("telegram", "unlink-2") == "0412700700"


def test_chat_preferences_default_off_persist_and_are_forgotten(module_backend: ServiceBackend) -> None:
    preferences = module_backend.preferences
    assert preferences.get("telegram", "prefs-1") == Preferences(reply_by_voice=False, slow_speech=False)
    assert preferences.update("telegram", "prefs-1", reply_by_voice=True) == Preferences(True, False)
    assert preferences.update("telegram", "prefs-1", slow_speech=True) == Preferences(True, True)
    assert preferences.get("telegram", "prefs-1") == Preferences(True, True)
    assert preferences.get("phone", "prefs-1") == Preferences()  # per channel
    with pytest.raises(ValueError, match="unknown preferences"):
        preferences.update("telegram", "prefs-1", loud=True)
    preferences.forget("telegram", "prefs-1")
    assert preferences.get("telegram", "prefs-1") == Preferences()


def test_nearest_offices_are_sorted_by_distance_and_filtered_by_service(module_backend: ServiceBackend) -> None:
    catalogue = module_backend.catalogue
    nearest = catalogue.nearest_offices(52.1181, 5.1151, limit=14)
    assert nearest[0][0].id == "north_centre" and nearest[0][1] < 0.05
    distances = [km for _, km in nearest]
    assert distances == sorted(distances) and len(nearest) == 14
    passports = catalogue.nearest_offices(52.1181, 5.1151, "passport_renewal", limit=14)
    assert {o.id for o, _ in passports} == {o.id for o in catalogue.offices(service_id="passport_renewal")}
    # one degree of latitude is about 111.2 km anywhere on Earth
    far = dict((o.id, km) for o, km in catalogue.nearest_offices(51.1180, 5.1150, limit=14))
    assert far["north_centre"] == pytest.approx(111.2, abs=0.3)


def test_a_linked_caller_has_the_record_name_and_the_chats_linked_to_the_same_number(module_backend: ServiceBackend) -> None:
    module_backend.citizens.link_identity("telegram", "chat-4401", "0433 440 001", name="Rosa Diaz")
    module_backend.citizens.link_identity("telegram", "chat-4402", "0433 440 001")
    module_backend.citizens.link_identity("phone", "0433440001", "0433440001")
    assert module_backend.citizens.name_for_identity("phone", "0433440001") == "Rosa Diaz"
    assert sorted(module_backend.citizens.chats_for_phone("0433 440 001")) == ["chat-4401", "chat-4402"]
    assert module_backend.citizens.name_for_identity("phone", "0433440002") is None, "an unlinked number tells nothing"
    assert (
        module_backend.citizens.chats_for_phone("0433 440 002") == [] and module_backend.citizens.chats_for_phone("call me") == []
    )
