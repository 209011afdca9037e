"""Conversations, not only messages: simulated citizens reach their goals over REST against the real stack.

Every goal of tests/citizen_goals.yml is one conversation with the real Rasa model, action server,
HAProxy and database (tests/citizen_simulator.py plays the citizen). The table of goals (success, turns
to success, the last exchanges of each failure) and the totals by area and style are printed at the
end of the pytest run and written to results/citizen_goals.txt. The rule is the rate: the build fails
below SUCCESS_THRESHOLD percent of goals met, not on any single goal.
Only the goals: `.venv/bin/python -m pytest tests/test_citizen_goals.py` (the table is printed at the end).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import List

import pytest

from harness.stack import Stack
from onewindow.settings import PROJECT_ROOT
from tests.citizen_simulator import (
    AREAS,
    CRITERIA,
    FICTIONAL_PHONE,
    GOALS_REPORT,
    SLOT_FACTS,
    STYLES,
    Outcome,
    World,
    load_goals,
    rate,
    report,
    run_goal,
    timed,
)

GOALS_FILE = Path(__file__).with_name("citizen_goals.yml")
RESULTS_FILE = PROJECT_ROOT / "results" / "citizen_goals.txt"
SUCCESS_THRESHOLD = 95.0
CONVERSATIONS_AT_ONCE = 4
GOALS = load_goals(GOALS_FILE)


@pytest.fixture(scope="module")
def outcomes(stack: Stack, request: pytest.FixtureRequest) -> List[Outcome]:
    """Every goal's conversation, a few at once; the report is printed at the end of the run and written to results/."""
    world = World(stack)
    with ThreadPoolExecutor(CONVERSATIONS_AT_ONCE) as pool:
        held, seconds = timed(lambda: list(pool.map(lambda goal: run_goal(world, goal), GOALS)))
    text = report(held, seconds, SUCCESS_THRESHOLD)
    RESULTS_FILE.parent.mkdir(exist_ok=True)
    RESULTS_FILE.write_text(text + "\n", encoding="utf-8")
    request.config.stash[GOALS_REPORT] = text
    return held


def test_the_goals_cover_every_area_and_style_with_made_up_data() -> None:
    assert len(GOALS) >= 40
    assert len({goal.id for goal in GOALS}) == len(GOALS), "goal ids must be unique"
    assert {goal.area for goal in GOALS} == set(AREAS)
    assert {goal.style for goal in GOALS} == set(STYLES)
    for goal in GOALS:
        assert goal.say and goal.success, goal.id
        assert set(goal.success) <= set(CRITERIA), f"{goal.id}: unknown criterion"
        assert set(goal.facts) <= set(SLOT_FACTS), f"{goal.id}: facts answer form slots"
        assert all(isinstance(text, str) for text in [*goal.say, *goal.facts.values(), *goal.choose]), goal.id
        if "appointment" in goal.success:
            assert goal.success["appointment"]["phone"] == goal.facts["citizen_phone"], goal.id
    booked_with = [goal.facts["citizen_phone"] for goal in GOALS if "citizen_phone" in goal.facts]
    given = [goal.given["appointment"]["phone"] for goal in GOALS if "appointment" in goal.given]
    assert all(FICTIONAL_PHONE.match(phone) for phone in booked_with + given), "phone numbers from the block for fiction"
    assert len(set(booked_with + given)) == len(booked_with + given), "each goal books with its own phone number"


@pytest.mark.stack
def test_citizens_reach_their_goals(outcomes: List[Outcome]) -> None:
    failed = [f"{o.goal.id} ({o.reason})" for o in outcomes if not o.success]
    assert rate(outcomes) >= SUCCESS_THRESHOLD, (
        f"task success {rate(outcomes):.1f} % is below {SUCCESS_THRESHOLD:g} %; failed: {'; '.join(failed)}"
    )
