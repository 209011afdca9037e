"""Console forms and query parameters, generated, against the real staff console over HTTP (`python -m console serve`
on sample conversations): every route of the Sanic application, with generated values in every field its pages offer
(found by reading every page as an admin: the forms' fields and the links' parameters) and in names no page offers,
sent as a form, as multipart or as a raw body of any content type.

- without a session: never a 5xx, and never a 2xx on anything but the public pages (login, health, metrics);
- logged in (agent, supervisor or admin) with the session's CSRF token: never a 5xx, every 4xx is a page that says
  what is wrong, and no generated text comes back unescaped;
- logged in without the CSRF token, with a wrong one or with another session's: every POST is refused (403).

tests/test_console_inputs.py holds the hand-picked bad inputs of the issue and the log's privacy.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Dict, Iterator, List, Optional, Set, Tuple
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.console_server import (
    SAMPLE_VALUES,
    ConsoleRoute,
    RunningConsole,
    StaffClient,
    console_routes,
    create_staff_user,
    logged_in_client,
)
from tests.fuzz_strategies import MARKER, fuzz_settings, texts
from tests.tracker_rows import PASSWORD, console_with_samples

pytestmark = pytest.mark.console
ROLES = ("agent", "supervisor", "admin")
# logged in with a valid token: /logout would end the session the generated requests use, and /queue/events is a
# stream that never ends by itself (tests/test_console_queue.py reads it); both are in the other two tests
NOT_LOGGED_IN_TOO = ("/logout", "/queue/events")
numbers = itertools.count(1)


class OfferedFields(HTMLParser):
    """What pages offer: their forms' fields (query or form fields by the form's method), their links' query
    parameters, and the addresses of their links (`links`) and forms (`addresses`, links included)."""

    def __init__(self) -> None:
        super().__init__()
        self.query: Set[str] = set()
        self.form: Set[str] = set()
        self.links: Set[str] = set()
        self.addresses: Set[str] = set()
        self._method = ""

    def handle_starttag(self, tag: str, attrs: List[Tuple[str, Optional[str]]]) -> None:
        found = dict(attrs)
        if tag == "form":
            self._method = (found.get("method") or "get").lower()
        target = urlsplit((found.get("href") if tag == "a" else found.get("action") if tag == "form" else None) or "")
        if target.path.startswith("/") and not target.netloc:
            self.addresses.add(target.path)
            if tag == "a":
                self.links.add(target.path)
            self.query.update(name for name, _ in parse_qsl(target.query))
        if tag in ("input", "select", "textarea", "button") and found.get("name"):
            (self.form if self._method == "post" else self.query).add(found["name"] or "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._method = ""


def crawl(client: StaffClient, start: List[str], limit: int = 150) -> OfferedFields:
    """Open `start` and every page they link to (up to `limit` pages) as `client`; what they offer."""
    offered, seen, waiting = OfferedFields(), set(NOT_LOGGED_IN_TOO), list(start)
    while waiting and len(seen) < limit:
        path = waiting.pop(0)
        if path in seen:
            continue
        seen.add(path)
        answer = client.get(path)
        if answer.headers.get("content-type", "").startswith("text/html"):
            offered.feed(answer.text)
            waiting.extend(sorted(offered.links - seen))
    return offered


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    with console_with_samples(tmp_path_factory.mktemp("fuzz-console")) as running:
        yield running


@pytest.fixture(scope="module")
def routes(console: RunningConsole) -> List[ConsoleRoute]:
    return [route for route in console_routes(console) if route.method != "HEAD"]


def new_member(console: RunningConsole, role: str) -> StaffClient:
    username = f"fuzz-{role}-{next(numbers)}"
    create_staff_user(console.database_url, username, role, PASSWORD)
    return logged_in_client(console.base_url, username, PASSWORD)


@pytest.fixture(scope="module")
def members(console: RunningConsole) -> Iterator[Dict[str, StaffClient]]:
    """One logged-in member of each role; one an admin's generated request deactivated is replaced."""
    logged_in = {role: new_member(console, role) for role in ROLES}
    yield logged_in
    for client in logged_in.values():
        client.close()


@dataclass(frozen=True)
class Offered:
    query: List[str]  # every query parameter name the pages offer
    form: List[str]  # every form field name (but the CSRF token, which the tests set)
    paths: List[str]  # every address the pages link to or post to (real ids and references in route parameters)


@pytest.fixture(scope="module")
def fields(routes: List[ConsoleRoute], members: Dict[str, StaffClient]) -> Offered:
    """What every page the admin can reach from the routes offers."""
    found = crawl(members["admin"], [route.path for route in routes if route.method == "GET"])
    offered = Offered(sorted(found.query), sorted(found.form - {"csrf_token"}), sorted(found.addresses))
    assert {"q", "page", "from", "to"} <= set(offered.query), offered
    assert {"username", "password", "text", "outcome", "note", "to"} <= set(offered.form), offered
    return offered


values = st.one_of(
    texts,
    st.just(MARKER),
    st.just("x" * 5000),
    st.integers(-(2**70), 2**70).map(str),
    st.sampled_from(["", " ", "0", "-1", "1e309", "nan", "2026-02-30", "9999-12-31", "../..", "%00", "true", "[]"]),
)


def requests(routes: List[ConsoleRoute], fields: Offered) -> st.SearchStrategy:
    """A request: (route, path, query, form fields, how the body is sent)."""

    def path(route: ConsoleRoute) -> st.SearchStrategy[str]:
        parts = re.split(r"(<[^>]+>)", route.pattern)
        pattern = re.compile("".join("[^/]+" if part.startswith("<") else re.escape(part) for part in parts) + "$")
        offered = [path for path in fields.paths if pattern.match(path)]  # with ids and references that exist
        segments = [
            st.one_of(st.sampled_from(sorted(set(SAMPLE_VALUES.values()))), values.map(lambda v: quote(v, safe="")))
            if part.startswith("<")
            else st.just(part)
            for part in parts
        ]
        generated = st.tuples(*segments).map("".join)
        return st.one_of(st.sampled_from(offered), generated) if offered else generated

    names = st.one_of(st.sampled_from(fields.query), texts)
    query = st.lists(st.tuples(names, values), max_size=4).map(
        lambda pairs: "&".join(f"{quote(name, safe='')}={quote(value, safe='')}" for name, value in pairs)
    )
    form = st.dictionaries(st.one_of(st.sampled_from(fields.form), texts), values, max_size=5)
    body = st.sampled_from(["form", "multipart", "raw"])
    return st.sampled_from(routes).flatmap(lambda route: st.tuples(st.just(route), path(route), query, form, body))


RAW_BODIES = st.one_of(
    st.binary(max_size=64),
    st.sampled_from([b"--x\r\nContent-Disposition: form-data\r\n\r\n", b"--x--", b"a=%ff%fe&b", b"\xff" * 10]),
)
RAW_TYPES = st.sampled_from(
    ["multipart/form-data", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "application/json", ""]
)


def send(
    client: httpx.Client, route: ConsoleRoute, url: str, form: Dict[str, str], body: str, raw: Tuple[bytes, str]
) -> httpx.Response:
    if route.method != "POST":
        return client.request(route.method, url)
    if body == "multipart":
        return client.post(url, files={name: (None, value) for name, value in form.items()})
    if body == "raw":
        content, content_type = raw
        return client.post(url, content=content, headers={"Content-Type": content_type} if content_type else {})
    return client.post(url, data=form)


def says_why(answer: httpx.Response) -> bool:
    return bool(re.search(r'role="alert"[^>]*>[^<]{10,}<', answer.text))


@fuzz_settings(150)
@given(data=st.data(), raw=st.tuples(RAW_BODIES, RAW_TYPES))
def test_without_a_session_nothing_but_the_public_pages_answers_and_nothing_fails(
    console: RunningConsole, routes: List[ConsoleRoute], fields: Offered, data: st.DataObject, raw
) -> None:
    route, path, query, form, body = data.draw(requests(routes, fields), label="request")
    url = f"{path}?{query}" if query else path
    with httpx.Client(base_url=console.base_url, timeout=30) as stranger:
        answer = send(stranger, route, url, form, body, raw)
    assert answer.status_code < 500, (route.method, url)
    if route.access != "public":
        assert not 200 <= answer.status_code < 300, (route.method, url, answer.status_code)
        if answer.status_code in (301, 302, 303, 307, 308):
            assert answer.headers["location"].startswith("/login"), answer.headers["location"]


@fuzz_settings(250)
@given(data=st.data(), role=st.sampled_from(ROLES), raw=st.tuples(RAW_BODIES, RAW_TYPES))
def test_staff_input_with_the_token_gets_a_page_never_a_failure(
    console: RunningConsole,
    routes: List[ConsoleRoute],
    fields: Offered,
    members: Dict[str, StaffClient],
    data: st.DataObject,
    role: str,
    raw,
) -> None:
    client = members[role]
    usable = [route for route in routes if route.pattern not in NOT_LOGGED_IN_TOO]
    route, path, query, form, body = data.draw(requests(usable, fields), label="request")
    url = f"{path}?{query}" if query else path
    raw_body, raw_type = raw
    if body == "raw" and raw_type.startswith("application/x-www-form-urlencoded"):
        raw = (raw_body + b"&csrf_token=" + client.csrf_token.encode(), raw_type)
    answer = send(client, route, url, {**form, "csrf_token": client.csrf_token}, body, raw)
    what = f"{role} {route.method} {url} {body}"
    assert answer.status_code < 500, what
    if 400 <= answer.status_code < 500 and answer.headers.get("content-type", "").startswith("text/html"):
        assert says_why(answer), what
    assert MARKER not in answer.text, what  # generated text is escaped wherever it is shown
    for other, member in list(members.items()):
        if member.get("/account/password").status_code != 200:  # logged out: only an admin deactivating them may do that
            assert role == "admin" and route.pattern.endswith("/deactivate"), f"the {other} was logged out by {what}"
            members[other] = new_member(console, other)


@fuzz_settings(80)
@given(
    data=st.data(),
    role=st.sampled_from(ROLES),
    token=st.one_of(st.none(), texts, st.sampled_from(["other session", "in the header"])),
)
def test_a_post_without_the_sessions_token_is_refused(
    routes: List[ConsoleRoute],
    fields: Offered,
    members: Dict[str, StaffClient],
    data: st.DataObject,
    role: str,
    token: Optional[str],
) -> None:
    client = members[role]
    posts = [route for route in routes if route.method == "POST"]
    route, _, _, form, _ = data.draw(requests(posts, fields), label="request")
    headers: Dict[str, str] = {}
    if token == "other session":
        form["csrf_token"] = members[next(other for other in ROLES if other != role)].csrf_token
    elif token == "in the header":  # a wrong header wins over the right field
        form["csrf_token"], headers["X-CSRF-Token"] = client.csrf_token, "forged"
    elif token is not None:
        form["csrf_token"] = token
    else:
        form.pop("csrf_token", None)
    answer = client.post(route.path, data=form, headers=headers)
    assert answer.status_code == 403, (role, route.path, token, answer.status_code)
