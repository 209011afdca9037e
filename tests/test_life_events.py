"""Life events: one-stop bundles of every related service, in order, from the real database."""

from __future__ import annotations

from actions.life_events import ActionLifeEvent
from tests.action_harness import make_tracker, run_action, slot_events


def test_birth_lists_every_related_service_in_order(action_backend) -> None:
    event = action_backend.catalogue.life_event("birth")
    messages, events = run_action(ActionLifeEvent(), make_tracker({"life_event": "had a baby"}, intent="life_event"))
    text = messages[0]["text"]
    positions = [text.index(step.service.name) for step in event.steps]
    assert positions == sorted(positions), "services must come in the order to do them"
    assert "Birth registration" in text and "Child benefit" in text
    departments = {step.service.department for step in event.steps}
    assert f"from {len(departments)} departments" in text
    assert slot_events(events)["life_event"] == "birth"
    assert [b["payload"] for b in messages[0]["buttons"]][0] == '/ask_documents{"service":"birth_registration"}'


def test_unknown_or_missing_life_event_offers_choices(action_backend) -> None:
    messages, events = run_action(ActionLifeEvent(), make_tracker({}, intent="life_event"))
    assert "Which of these" in messages[0]["text"]
    assert any('"life_event":"death"' in b["payload"] for b in messages[0]["buttons"])
    assert slot_events(events)["life_event"] is None


def test_every_life_event_has_steps_across_departments(action_backend) -> None:
    for event_id in (
        "birth",
        "school",
        "employment",
        "job_loss",
        "marriage",
        "housing",
        "health",
        "retirement",
        "death",
        "business",
        "moving",
        "disability_elderly",
    ):
        event = action_backend.catalogue.life_event(event_id)
        assert event is not None and len(event.steps) >= 3, event_id


SAD = ("death", "job_loss")


def test_sad_events_start_with_a_word_of_sympathy_and_others_do_not(action_backend, catalogue) -> None:
    events = {e["id"]: e for e in catalogue.life_events}
    assert all(events[event_id].get("sympathy") for event_id in SAD)
    for event_id, event in events.items():
        messages, _ = run_action(ActionLifeEvent(), make_tracker({"life_event": event_id}, intent="life_event"))
        text = messages[0]["text"]
        if event.get("sympathy"):
            assert text.startswith(f"{event['sympathy']} {event['summary']}"), event_id
        else:
            assert text.startswith(event["summary"]), event_id
    assert run_action(ActionLifeEvent(), make_tracker({"life_event": "passed away"}, intent="life_event"))[0][0][
        "text"
    ].startswith("I am very sorry")
