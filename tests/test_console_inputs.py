"""Any input in the address gets an answer, never a 5xx, against the real console over HTTP: generated text (and raw
bytes) in every query parameter and path segment of every route, as an admin (who may open every page); bad ones
get a 400 page saying what is wrong. The console's log holds no address, query or search text."""

from __future__ import annotations

import re
from typing import Iterator, List
from urllib.parse import quote, quote_from_bytes

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.console_server import ConsoleRoute, RunningConsole, StaffClient, console_routes
from tests.tracker_rows import console_with_samples, staff

QUERY_NAMES = (
    "from",
    "to",
    "channel",
    "intent",
    "outcome",
    "reason",
    "tag",
    "q",
    "reviewed",
    "page",
    "all",
    "user",
    "action",
    "next",
    "id",
    "days",
)
FORM_NAMES = (
    "text",
    "outcome",
    "to",
    "tags",
    "note",
    "reviewed",
    "event_id",
    "intent",
    "back",
    "username",
    "role",
    "password",
    "current",
    "new",
    "again",
)
# /logout would end the session the generated requests use; /queue/events is a stream that never ends by itself
# (its parameters are none: tests/test_console_queue.py reads it)
NOT_GENERATED = ("/logout", "/queue/events")
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=24)
encoded = st.one_of(
    texts.map(lambda value: quote(value, safe="")), st.binary(max_size=12).map(lambda b: quote_from_bytes(b, safe=""))
)
queries = st.lists(st.tuples(st.sampled_from(QUERY_NAMES), encoded), max_size=4).map(
    lambda pairs: "&".join(f"{name}={value}" for name, value in pairs)
)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    with console_with_samples(tmp_path_factory.mktemp("console-inputs")) as running:
        yield running


@pytest.fixture(scope="module")
def routes(console: RunningConsole) -> List[ConsoleRoute]:
    return [route for route in console_routes(console) if route.pattern not in NOT_GENERATED and route.method != "HEAD"]


@pytest.fixture(scope="module")
def admin(console: RunningConsole) -> Iterator[StaffClient]:
    with staff(console, "admin") as client:
        yield client


def check(answer: httpx.Response, what: str) -> None:
    assert answer.status_code < 500, what
    if answer.status_code == 400:
        assert re.search(r'role="alert"[^>]*>[^<]{10,}<', answer.text), what  # the page says what is wrong


@settings(max_examples=250, deadline=None)
@given(data=st.data())
def test_generated_addresses_never_get_a_server_error(
    routes: List[ConsoleRoute], admin: StaffClient, data: st.DataObject
) -> None:
    route = data.draw(st.sampled_from(routes), label="route")
    path = re.sub(r"<[^>]+>", lambda _: data.draw(encoded, label="segment"), route.pattern)
    url = f"{path}?{data.draw(queries, label='query')}"
    form = {
        "csrf_token": admin.csrf_token,
        **data.draw(st.dictionaries(st.sampled_from(FORM_NAMES), texts, max_size=3), label="form"),
    }
    answer = admin.request(route.method, url, data=form if route.method == "POST" else None)
    check(answer, f"{route.method} {url}")


@pytest.mark.parametrize(
    "url, message",
    [
        ("/transcripts?page=%C2%B2", "'page' must be a whole number"),
        ("/audit?page=%C2%B2", "'page' must be a whole number"),
        ("/improve?page=%C2%B2", "'page' must be a whole number"),
        ("/transcripts?from=0001-01-01&to=9999-12-31", "'from' must be a date from 2000-01-01"),
        ("/analytics?to=0001-01-01", "'to' must be a date from 2000-01-01"),
        ("/transcripts/export.csv?to=9999-12-31", "'to' must be a date from"),
        ("/transcripts/99999999999999999999999", "not one that exists"),
        ("/static/console.css%00.txt", "characters that are not allowed"),
        ("/transcripts?q=a%00b", "'q' contains characters that are not allowed"),
        ("/improve?all=yes", "'all' must be one of"),
        ("/lookups?days=eight", "'days' must be a whole number from 1 to 366"),
    ],
)
def test_the_bad_inputs_of_the_issue_get_a_400_that_says_why(admin: httpx.Client, url: str, message: str) -> None:
    answer = admin.get(url)
    assert answer.status_code == 400 and message in answer.text.replace("&#39;", "'"), answer.text[-600:]


def test_the_log_holds_no_address_query_or_search_text(console: RunningConsole) -> None:
    secrets = ["0412 345 678", "Ana Silva", "maria@example.org"]
    with staff(console, "supervisor") as supervisor:
        for secret in secrets:
            assert supervisor.get("/transcripts", params={"q": secret}).status_code == 200
            supervisor.get("/transcripts/export.csv", params={"q": secret, "page": "²"})
        supervisor.get("/transcripts/99999999999999999999999", params={"q": secrets[0]})
        supervisor.get("/nowhere", params={"q": secrets[1]})
    log = console.log_path.read_text(encoding="utf-8", errors="replace")
    assert "Starting worker" in log  # it is the console's log
    for secret in secrets + [quote(secrets[0]), quote(secrets[1]), "q=", "/transcripts", "/nowhere"]:
        assert secret not in log, secret
