"""Finding an office and its opening hours with ActionAnswerOfficeQuestion, from the seeded database."""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timedelta
from typing import Any, Dict, List, Optional, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasa_sdk import Tracker

from actions import offices as office_actions
from actions.offices import MAX_LISTED, ActionAnswerOfficeQuestion
from onewindow.backend import ServiceBackend
from onewindow.service_catalogue import Catalogue
from onewindow.service_catalogue.schema import WEEKDAYS
from tests import expect
from tests.action_harness import load_domain, make_tracker, run_action, slot_events

THURSDAY = datetime(2026, 11, 26, 10, 0)
SUNDAY = datetime(2026, 11, 29, 10, 0)


@pytest.fixture
def actions_db(module_action_backend: ServiceBackend, monkeypatch: pytest.MonkeyPatch) -> ServiceBackend:
    """The actions' backend on the module's seeded database; the actions' clock reads Thursday 10 am."""
    monkeypatch.setattr(office_actions, "now", lambda: THURSDAY)
    return module_action_backend


def tracker(slots: Dict[str, Any], intent: str) -> Tracker:
    """A tracker as Rasa sends it: the latest message also carries its intent ranking."""
    made = make_tracker(slots, intent=intent)
    made.latest_message["intent_ranking"] = [{"name": intent, "confidence": 0.99}]
    return made


def ask(slots: Dict[str, Any], intent: str = "find_office", day: Optional[str] = None) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    asked = tracker(slots, intent)
    if day is not None:
        asked.latest_message["entities"].append({"entity": "date", "value": day})
    messages, events = run_action(ActionAnswerOfficeQuestion(), asked, load_domain())
    texts = [m for m in messages if not m.get("custom")]
    assert len(texts) == 1
    return texts[0], slot_events(events)


def payloads(message: Dict[str, Any]) -> List[Tuple[str, Dict[str, Any]]]:
    found = []
    for button in message["buttons"]:
        intent, _, entities = button["payload"][1:].partition("{")
        found.append((intent, json.loads("{" + entities) if entities else {}))
    return found


def spoken(hhmm: str) -> str:
    """ "08:30" -> "8:30 am", "19:00" -> "7 pm" (written here independently of the code under test)."""
    hour, minute = (int(part) for part in hhmm.split(":"))
    suffix = "am" if hour < 12 else "pm"
    hour = hour % 12 or 12
    return f"{hour} {suffix}" if minute == 0 else f"{hour}:{minute:02d} {suffix}"


def hours_words(catalogue: Catalogue, office_id: str, day: str) -> str:
    """The catalogue's hours for one day, as the assistant should say them ("8:30 am to 7 pm")."""
    office = next(o for o in catalogue.offices if o["id"] == office_id)
    value = office["hours"][day]
    if value == "closed":
        return "closed"
    parts = [f"{spoken(p.split('-')[0].strip())} to {spoken(p.split('-')[1].strip())}" for p in value.split(",")]
    return " and ".join(parts)


def offices_offering(catalogue: Catalogue, service_id: str) -> List[str]:
    return next(s["offices"] for s in catalogue.services if s["id"] == service_id)


# --- one office ---------------------------------------------------------------------------


def test_named_office_gives_address_hours_today_accessibility_and_phone(actions_db: ServiceBackend, catalogue: Catalogue) -> None:
    office = next(o for o in catalogue.offices if o["id"] == "central_centre")
    message, slots = ask({"office": "market square office"})
    text = message["text"]
    assert office["address"] in text and office["phone"] in text
    assert all(item in text for item in office["accessibility"])
    assert f"Open today from {hours_words(catalogue, 'central_centre', 'thu')}." in text
    assert slots == {"office": "central_centre"}


def test_named_office_offers_booking_and_hours_buttons(actions_db: ServiceBackend) -> None:
    message, _ = ask({"office": "North Service Centre"})
    assert payloads(message) == [
        ("book_appointment", {"office": "north_centre"}),
        ("ask_opening_hours", {"office": "north_centre"}),
    ]


def test_named_office_mentions_services_offered_there(actions_db: ServiceBackend, catalogue: Catalogue) -> None:
    offered = sorted(s["id"] for s in catalogue.services if "business_centre" in s["offices"])
    assert len(offered) > 3
    message, _ = ask({"office": "business_centre"})
    names = [s["name"] for s in catalogue.services if s["id"] in offered[:3]]
    assert all(name in message["text"] for name in names)
    assert f"and {len(offered) - 3} more." in message["text"]


def test_office_closed_today_says_when_it_next_opens(
    actions_db: ServiceBackend, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(office_actions, "now", lambda: SUNDAY)
    assert hours_words(catalogue, "central_centre", "sun") == "closed"
    message, _ = ask({"office": "central_centre"})
    monday = hours_words(catalogue, "central_centre", "mon")
    assert f"Closed today. Next open Monday 30 November, {monday}." in message["text"]


def test_mobile_point_gives_its_note(actions_db: ServiceBackend, catalogue: Catalogue) -> None:
    office = next(o for o in catalogue.offices if o["kind"] == "mobile_point")
    message, slots = ask({"office": office["id"]})
    assert office["note"].split(".")[0] in message["text"]
    assert slots == {"office": office["id"]}


@pytest.mark.parametrize(
    "day", [datetime(2026, 11, 30, 10, 0) + timedelta(days=offset) for offset in range(7)], ids=lambda d: d.strftime("%a")
)
def test_the_van_is_shown_where_it_stops_today(
    actions_db: ServiceBackend, catalogue: Catalogue, monkeypatch: pytest.MonkeyPatch, day: datetime
) -> None:
    monkeypatch.setattr(office_actions, "now", lambda: day)
    van = next(o for o in catalogue.offices if o["kind"] == "mobile_point")
    stop = van["stops"].get(WEEKDAYS[day.weekday()])
    messages, _ = run_action(ActionAnswerOfficeQuestion(), tracker({"office": van["id"]}, "find_office"), load_domain())
    place = stop["place"] if stop else van["address"]
    location = stop["location"] if stop else van["location"]
    assert messages[0]["text"].startswith(f"{van['name']}, {'today at ' if stop else ''}{place}.")
    assert messages[-1]["custom"]["venue"] == {
        "latitude": location["lat"],
        "longitude": location["lon"],
        "title": van["name"],
        "address": place,
    }


DAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def week_words(catalogue: Catalogue, office_id: str) -> str:
    """ "Monday to Wednesday: 8:30 am to 5 pm. Thursday: ..." built from the catalogue file."""
    groups: List[Tuple[int, int, str]] = []
    for index, day in enumerate(WEEKDAYS):
        words = hours_words(catalogue, office_id, day)
        if groups and groups[-1][2] == words:
            groups[-1] = (groups[-1][0], index, words)
        else:
            groups.append((index, index, words))
    return " ".join(f"{day_range(a, b)}: {words}." for a, b, words in groups)


def day_range(first: int, last: int) -> str:
    """ "Monday", or "Monday to Friday" (days counted from Monday = 0)."""
    return DAY_NAMES[first] if first == last else f"{DAY_NAMES[first]} to {DAY_NAMES[last]}"


@pytest.mark.parametrize("office_id", ["central_centre", "north_centre", "riverside_point", "mobile_van"])
def test_opening_hours_give_the_whole_week(actions_db: ServiceBackend, catalogue: Catalogue, office_id: str) -> None:
    office = next(o for o in catalogue.offices if o["id"] == office_id)
    message, slots = ask({"office": office["name"].lower()}, "ask_opening_hours")
    assert message["text"].startswith(f"{office['name']} opening hours. {week_words(catalogue, office_id)}")
    assert slots == {"office": office_id}


def test_central_centre_is_open_late_on_thursday(actions_db: ServiceBackend) -> None:
    message, _ = ask({"office": "central_centre"}, "ask_opening_hours")
    assert "Thursday: 8:30 am to 7 pm." in message["text"] and "Sunday: closed." in message["text"]


def test_opening_hours_on_the_day_asked_about(actions_db: ServiceBackend, catalogue: Catalogue) -> None:
    """Thursday 10 am: "is the central service centre open on saturday" answers for Saturday first."""
    message, _ = ask({"office": "central_centre"}, "ask_opening_hours", day="saturday")
    saturday = hours_words(catalogue, "central_centre", "sat")
    assert message["text"].startswith(
        f"Central Service Centre: Open on Saturday 28 November from {saturday}. All its opening hours:"
    )
    message, _ = ask({"office": "central_centre"}, "ask_opening_hours", day="sunday")
    monday = hours_words(catalogue, "central_centre", "mon")
    assert message["text"].startswith(
        f"Central Service Centre: Closed on Sunday 29 November. Next open Monday 30 November, {monday}."
    )
    today, _ = ask({"office": "central_centre"}, "ask_opening_hours", day="today")
    assert today["text"] == ask({"office": "central_centre"}, "ask_opening_hours")[0]["text"], "today: the usual answer"


def test_opening_hours_of_office_with_lunch_break(actions_db: ServiceBackend, catalogue: Catalogue) -> None:
    with_break = [o for o in catalogue.offices if any("," in str(h) for h in o["hours"].values())]
    if not with_break:
        pytest.skip("no office closes for lunch in the catalogue")
    office = with_break[0]
    day = next(d for d in WEEKDAYS if "," in str(office["hours"][d]))
    message, _ = ask({"office": office["id"]}, "ask_opening_hours")
    assert hours_words(catalogue, office["id"], day) in message["text"]


# --- several offices ---------------------------------------------------------------------------


def test_district_lists_its_offices(actions_db: ServiceBackend, catalogue: Catalogue) -> None:
    expected = {o["id"] for o in catalogue.offices if o["district"] == "north"}
    assert len(expected) >= 2
    message, slots = ask({"district": "northside"})
    listed = {entities["office"] for intent, entities in payloads(message) if intent == "find_office"}
    assert listed == expected
    names = {o["name"] for o in catalogue.offices if o["id"] in expected}
    assert all(name in message["text"] for name in names)
    others = {o["name"] for o in catalogue.offices if o["district"] != "north"}
    assert not any(name in message["text"] for name in others)
    assert slots == {"district": "north"}


def test_service_in_context_narrows_to_offices_offering_it(actions_db: ServiceBackend, catalogue: Catalogue) -> None:
    expected = set(offices_offering(catalogue, "business_licence"))
    assert 0 < len(expected) <= MAX_LISTED
    message, _ = ask({"service": "business licence"})
    assert {e["office"] for _, e in payloads(message)} == expected
    assert "for business licence" in message["text"]


def test_service_and_district_together(actions_db: ServiceBackend, catalogue: Catalogue) -> None:
    in_district = {o["id"] for o in catalogue.offices if o["district"] == "east"}
    expected = in_district & set(offices_offering(catalogue, "company_registration"))
    assert expected and expected != in_district
    message, slots = ask({"service": "company_registration", "district": "east"})
    assert {e["office"] for _, e in payloads(message)} == expected
    assert slots == {"district": "east"}


def test_service_not_offered_in_district_offers_other_offices(actions_db: ServiceBackend, catalogue: Catalogue) -> None:
    offering = set(offices_offering(catalogue, "passport_renewal"))
    in_riverside = {o["id"] for o in catalogue.offices if o["district"] == "riverside"}
    assert in_riverside and not offering & in_riverside
    message, _ = ask({"service": "passport_renewal", "district": "riverside"})
    assert message["text"].startswith("No office in that district offers this service.")
    buttons = [e["office"] for _, e in payloads(message)]
    assert set(buttons) == offering and len(offering) > MAX_LISTED  # every office can be chosen
    names = {o["id"]: o["name"] for o in catalogue.offices}
    for number, office in enumerate(buttons, start=1):  # item n of the list is button n, the first few with hours
        assert f" {number}. {names[office]}{',' if number <= MAX_LISTED else '.'}" in message["text"]
    assert "more" not in message["text"]


# --- nothing to go on ---------------------------------------------------------------------------


@pytest.mark.parametrize("intent", ["find_office", "ask_opening_hours"])
def test_no_office_district_or_service_asks_with_buttons(actions_db: ServiceBackend, catalogue: Catalogue, intent: str) -> None:
    message, slots = ask({}, intent)
    assert "Which office, or which part of the city" in message["text"]
    buttons = payloads(message)
    assert buttons and {i for i, _ in buttons} == {intent}
    known = {o["id"] for o in catalogue.offices}
    assert {e["office"] for _, e in buttons} <= known
    kinds = {o["id"]: o["kind"] for o in catalogue.offices}
    assert "rural_point" in {kinds[e["office"]] for _, e in buttons}
    assert slots == {}


def test_unknown_office_name_asks_again(actions_db: ServiceBackend) -> None:
    message, _ = ask({"office": "moon base office"})
    assert "Which office" in message["text"]


def test_today_text_uses_the_day_of_the_clock(actions_db: ServiceBackend, catalogue: Catalogue) -> None:
    office = expect.office(actions_db.catalogue, "central_centre")
    saturday = date(2026, 11, 28)
    assert office_actions.today_text(office, saturday) == (f"Open today from {hours_words(catalogue, 'central_centre', 'sat')}.")


# --- a shared location (Telegram) finds the nearest offices ---------------------------


def located(position: Dict[str, Any], slots: Dict[str, Any]) -> List[Dict[str, Any]]:
    made = make_tracker(slots, intent="find_office", metadata={"location": position})
    messages, _ = run_action(ActionAnswerOfficeQuestion(), made, load_domain())
    return messages


def by_distance(catalogue: Catalogue, lat: float, lon: float, service: str = "") -> List[str]:
    """Office ids nearest first, by plain Euclidean degrees (fine at city scale; independent of the code)."""
    offered = {o for s in catalogue.services if s["id"] == service for o in s["offices"]} if service else None
    offices = [o for o in catalogue.offices if offered is None or o["id"] in offered]
    scale = math.cos(math.radians(lat))
    return [
        o["id"]
        for o in sorted(offices, key=lambda o: (o["location"]["lat"] - lat) ** 2 + ((o["location"]["lon"] - lon) * scale) ** 2)
    ]


def test_shared_location_lists_the_three_nearest_offices_with_distances(actions_db: ServiceBackend, catalogue: Catalogue) -> None:
    north = next(o for o in catalogue.offices if o["id"] == "north_centre")["location"]
    messages = located({"latitude": north["lat"] + 0.001, "longitude": north["lon"]}, {})
    text = messages[0]["text"]
    expected = by_distance(catalogue, north["lat"] + 0.001, north["lon"])[:3]
    assert [intent_entities["office"] for _, intent_entities in payloads(messages[0])] == expected
    assert "1. North Service Centre" in text and "100 metres away" in text
    assert messages[1]["custom"]["venue"]["title"] == "North Service Centre"
    assert messages[1]["custom"]["venue"]["latitude"] == north["lat"]


def test_shared_location_only_lists_offices_offering_the_service_in_context(
    actions_db: ServiceBackend, catalogue: Catalogue
) -> None:
    lat, lon = 52.036, 5.229  # by the rural Riverside point, which does not issue passports
    messages = located({"latitude": lat, "longitude": lon}, {"service": "passport_renewal"})
    listed = [entities["office"] for _, entities in payloads(messages[0])]
    assert listed == by_distance(catalogue, lat, lon, "passport_renewal")[:3]
    assert "riverside_point" not in listed
    assert "for passport renewal" in messages[0]["text"]
    assert "kilometres away" in messages[0]["text"]


@given(
    lat=st.floats(52.0, 52.13),
    lon=st.floats(5.05, 5.27),
    alias=st.sampled_from(["passport", "business licence", "death registration", "id card renewal"]),
)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_nearest_offices_all_offer_a_service_in_context(
    actions_db: ServiceBackend, catalogue: Catalogue, lat: float, lon: float, alias: str
) -> None:
    meant = {s["id"] for s in catalogue.services if alias in s["aliases"]}
    assert meant
    offering = {o for s in catalogue.services if s["id"] in meant for o in s["offices"]}
    messages = located({"latitude": lat, "longitude": lon}, {"service": alias})
    listed = [entities["office"] for _, entities in payloads(messages[0])]
    assert listed and set(listed) <= offering
    assert len(listed) == min(3, len(offering))


@pytest.mark.parametrize("position", [{"latitude": 999, "longitude": 5.1}, {"latitude": "52", "longitude": 5.1}, {}])
def test_an_invalid_location_is_ignored(actions_db: ServiceBackend, position: Dict[str, Any]) -> None:
    messages = located(position, {})
    assert "Which office, or which part of the city" in messages[0]["text"]


def test_a_described_office_comes_with_its_map_pin(actions_db: ServiceBackend, catalogue: Catalogue) -> None:
    made = tracker({"office": "central_centre"}, "find_office")
    messages, _ = run_action(ActionAnswerOfficeQuestion(), made, load_domain())
    central = next(o for o in catalogue.offices if o["id"] == "central_centre")
    assert messages[-1]["custom"] == {
        "venue": {
            "latitude": central["location"]["lat"],
            "longitude": central["location"]["lon"],
            "title": central["name"],
            "address": central["address"],
        }
    }
