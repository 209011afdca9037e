"""Analytics in the real console over HTTP: the SVG charts carry the figures of the sample conversations,
with the numbers beside them; the date range is checked."""

from __future__ import annotations

import re
from typing import Dict, Iterator

import pytest

from tests.console_server import RunningConsole
from tests.tracker_rows import console_with_samples, staff

CHART = re.compile(r'<svg class="chart" data-chart="([a-z-]+)" data-points="(\d+)"')
BAR = re.compile(r'<rect class="bar"[^>]* data-label="([^"]*)" data-value="([^"]*)"')


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    with console_with_samples(tmp_path_factory.mktemp("console-analytics")) as running:
        yield running


def chart(page: str, name: str) -> str:
    start = page.index(f'data-chart="{name}"')
    return page[start : page.index("</svg>", start)]


def bars(svg: str) -> Dict[str, str]:
    return dict(BAR.findall(svg))


def test_the_charts_show_the_range_s_figures(console: RunningConsole) -> None:
    with staff(console, "agent", landing="/analytics") as agent:
        page = agent.get("/analytics", params={"from": "2026-03-01", "to": "2026-03-04"})
    assert page.status_code == 200
    assert dict(CHART.findall(page.text)) == {
        "per-day": "5",
        "outcomes": "3",
        "handoff-reasons": "1",
        "top-intents": "8",
        "unmet": "3",
        "wait": "1",
    }
    assert bars(chart(page.text, "per-day")) == {
        "2026-03-02 telegram": "1",
        "2026-03-02 phone": "1",
        "2026-03-02 kiosk": "1",
        "2026-03-02 rest": "2",
        "2026-03-03 rest": "1",
    }
    assert bars(chart(page.text, "outcomes")) == {
        "resolved by the assistant": "2",
        "handed off to a person": "1",
        "not understood (left after a fallback)": "2",
    }
    assert ">1 (100%)</text>" in chart(page.text, "handoff-reasons") and "(40%)" in chart(page.text, "outcomes")
    assert bars(chart(page.text, "top-intents"))["nlu_fallback"] == "2"
    assert set(bars(chart(page.text, "unmet"))) == {"zzz", "100% sure_thing", "&lt;script&gt;alert(1)&lt;/script&gt;"}
    assert bars(chart(page.text, "wait")) == {"2026-03-02": "12"} and 'id="median-wait">12.0 min' in page.text
    assert "<script>alert(1)" not in page.text
    assert "<td>rest</td><td>3</td>" in page.text and "<td>40%</td>" in page.text  # the numbers beside the pictures
    for svg in CHART.findall(page.text):
        assert f'data-chart="{svg[0]}" data-points="{svg[1]}" role="img" aria-label="' in page.text


def test_an_empty_range_and_the_default_range(console: RunningConsole) -> None:
    with staff(console, "agent", landing="/analytics") as agent:
        empty = agent.get("/analytics", params={"from": "2026-04-01", "to": "2026-04-02"})
        default = agent.get("/analytics")
    assert empty.status_code == 200 and dict(CHART.findall(empty.text))["outcomes"] == "3"
    assert bars(chart(empty.text, "per-day")) == {} and "no handoff claimed in this range" in empty.text
    assert default.status_code == 200 and len(CHART.findall(default.text)) == 6


@pytest.mark.parametrize(
    "params",
    [
        {"from": "2026-02-30"},
        {"from": "2026-03-05", "to": "2026-03-01"},
        {"from": "2020-01-01", "to": "2026-01-01"},
        {"to": "<script>"},
    ],
)
def test_an_invalid_range_gets_400_with_a_message(console: RunningConsole, params: Dict[str, str]) -> None:
    with staff(console, "agent", landing="/analytics") as agent:
        page = agent.get("/analytics", params=params)
    assert page.status_code == 400 and 'id="filter-error"' in page.text and "<svg" not in page.text
    assert "<script>" not in page.text
