"""Login throttling, the password policy, password change, the idle timeout and audited refusals, against the real
console over HTTP (`python -m console serve`, one proxy in front so each test's logins come from its own address)."""

from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta
from typing import Iterator, List, Tuple

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from console import throttle
from console.password_policy import WeakPasswordError, check_password
from onewindow.storage import models
from onewindow.storage.db import make_engine
from tests import expect
from tests.conftest import DATABASE_KINDS, empty_database
from tests.console_server import RunningConsole, create_staff_user, csrf_token_in, logged_in_client

PASSWORD = "correct horse battery"
NEW_PASSWORD = "marmalade tugboat orchestra"
names = (f"sec{n}" for n in itertools.count(1))
sources = (f"198.51.{n // 250}.{n % 250 + 1}" for n in itertools.count(1))  # RFC 5737 documentation addresses


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def console(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    """The console on an SQLite file and on a throwaway PostgreSQL database."""
    workdir = tmp_path_factory.mktemp("console-security")
    for url in empty_database(request.param, workdir):
        with RunningConsole(url, workdir, env={"CONSOLE_PROXIES_COUNT": "1"}) as running:
            yield running


@pytest.fixture(scope="module")
def engine(console: RunningConsole) -> Iterator:
    engine = make_engine(console.database_url)
    yield engine
    engine.dispose()


def member(console: RunningConsole, role: str = "agent") -> str:
    username = next(names)
    create_staff_user(console.database_url, username, role, PASSWORD)
    return username


def login(console: RunningConsole, username: str, password: str, source: str) -> httpx.Response:
    with httpx.Client(base_url=console.base_url, headers={"X-Forwarded-For": source}) as client:
        token = csrf_token_in(client.get("/login").text)
        return client.post("/login", data={"csrf_token": token, "username": username, "password": password, "next": "/queue"})


def answer_shape(answer: httpx.Response, username: str) -> Tuple[int, str]:
    """The status and the page with what differs by request alone (the typed name, the form token) taken out."""
    body = re.sub(r'name="csrf_token" value="[^"]+"', "", answer.text).replace(username, "NAME")
    return answer.status_code, body


def audit_rows(engine, action: str) -> List[Tuple[str, str, dict]]:
    with Session(engine) as session:
        return [
            tuple(row)
            for row in session.execute(
                select(models.AuditEntry.username, models.AuditEntry.target, models.AuditEntry.detail).where(
                    models.AuditEntry.action == action
                )
            )
        ]


# --- throttling ----------------------------------------------------------------------------------


def test_unknown_and_existing_names_are_answered_alike_all_the_way_to_the_lock(console: RunningConsole) -> None:
    real, unknown, source = member(console), "nobody-" + next(names), next(sources)
    for attempt in range(throttle.PAIR_FAILURES + 2):
        for_real, for_unknown = login(console, real, "wrong guess", source), login(console, unknown, "wrong guess", source)
        assert answer_shape(for_real, real) == answer_shape(for_unknown, unknown), attempt
        assert for_real.status_code == (401 if attempt < throttle.PAIR_FAILURES else 429)


def test_a_stranger_cannot_lock_the_real_user_out(console: RunningConsole) -> None:
    admin, stranger, office = member(console, "admin"), next(sources), next(sources)
    for _ in range(throttle.PAIR_FAILURES):
        login(console, admin, "guessing", stranger)
    assert login(console, admin, PASSWORD, stranger).status_code == 429  # even the right password, from there
    assert login(console, admin, PASSWORD, office).status_code == 303


def test_one_source_trying_many_names_is_stopped(console: RunningConsole) -> None:
    source, real = next(sources), member(console)
    for number in range(throttle.SOURCE_FAILURES):
        assert login(console, f"spray{number}", "guessing", source).status_code == 401
    assert login(console, real, PASSWORD, source).status_code == 429
    assert login(console, real, PASSWORD, next(sources)).status_code == 303


def test_an_attack_from_many_sources_slows_the_account_down_and_an_admin_unlocks_it(console: RunningConsole, engine) -> None:
    target, admin_name = member(console), member(console, "admin")
    for _ in range(throttle.ACCOUNT_FAILURES):
        throttle.record_failure(engine, target, next(sources))  # as many failed logins as that, each from elsewhere
    assert login(console, target, PASSWORD, next(sources)).status_code == 429
    admin = logged_in_client(console.base_url, admin_name, PASSWORD)
    page = admin.get("/admin/users").text
    user_id = expect.matched(rf'<td>{target}</td>.*?action="/admin/users/(\d+)/unlock"', page, re.S).group(1)
    unlocked = admin.post(f"/admin/users/{user_id}/unlock", data={"csrf_token": admin.csrf_token})
    assert unlocked.status_code == 200 and f"Unlocked {target}" in unlocked.text
    assert login(console, target, PASSWORD, next(sources)).status_code == 303
    assert (admin_name, target, {"failures": throttle.ACCOUNT_FAILURES}) in audit_rows(engine, "user.unlock")


def test_the_account_backoff_grows_and_ends(engine) -> None:
    username = "backoff-" + next(names)
    for _ in range(throttle.ACCOUNT_FAILURES):
        throttle.record_failure(engine, username, next(sources))
    waits = [throttle.wait_seconds(engine, username, next(sources), datetime.utcnow())]
    for _ in range(3):
        throttle.record_failure(engine, username, next(sources))
        waits.append(throttle.wait_seconds(engine, username, next(sources), datetime.utcnow()))
    assert 0 < waits[0] < waits[1] < waits[2] < waits[3] <= throttle.MAX_BACKOFF_SECONDS + 1
    later = datetime.utcnow() + timedelta(minutes=throttle.WINDOW_MINUTES, seconds=1)
    assert throttle.wait_seconds(engine, username, next(sources), later) == 0


def test_failures_are_stored_only_as_keyed_hashes(console: RunningConsole, engine) -> None:
    typed, source = "typed-" + next(names), next(sources)
    login(console, typed, "x", source)
    with Session(engine) as session:
        stored = session.execute(select(models.LoginFailure.account_key, models.LoginFailure.source_key)).all()
    assert (throttle.account_key(typed), throttle.source_key(source)) in stored
    assert not any(typed in key or source in key for pair in stored for key in pair)


# --- the password policy -------------------------------------------------------------------------

COMMON = [word for word in FREQUENCY_LISTS["passwords"][:3000] if len(word) >= 10]
trivial_passwords = st.one_of(
    st.builds(lambda ch, n: ch * n, st.characters(exclude_categories=["Cs"]), st.integers(10, 40)),
    st.builds(lambda chunk, n: (chunk * n)[: max(10, len(chunk))], st.text(min_size=1, max_size=3), st.integers(10, 20)),
    st.sampled_from(COMMON),
    st.builds(
        lambda start, n: "0123456789abcdefghijklmnopqrstuvwxyz"[start : start + n], st.integers(0, 20), st.integers(10, 16)
    ),
    st.builds(
        lambda word, year: f"{word}{year}",
        st.sampled_from(["password", "welcome", "onewindow", "qwerty"]),
        st.integers(1950, 2030),
    ),
)


@settings(max_examples=80, deadline=None)
@given(password=trivial_passwords)
def test_trivial_and_common_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPasswordError):
        check_password(password, ["ann"])


@pytest.mark.parametrize("password", ["aaaaaaaaaa", " " * 10, "1234567890", "ann.smith2026", "Password123!"])
def test_the_examples_of_the_issue_are_refused_by_the_admin_page(console: RunningConsole, password: str) -> None:
    admin = logged_in_client(console.base_url, member(console, "admin"), PASSWORD)
    answer = admin.post(
        "/admin/users",
        data={
            "csrf_token": admin.csrf_token,
            "username": "ann.smith",
            "role": "agent",
            "password": password,
        },
    )
    assert answer.status_code == 400 and (
        "too easy to guess" in answer.text or "at least 10" in answer.text or "only spaces" in answer.text
    )


def test_unusual_words_together_are_accepted() -> None:
    for password in (PASSWORD, NEW_PASSWORD, "Tr0ub4dor&3-lantern"):
        check_password(password, ["ann"])


# --- password change, idle timeout ---------------------------------------------------------------


def test_a_member_changes_their_password(console: RunningConsole, engine) -> None:
    username = member(console)
    here, elsewhere = (logged_in_client(console.base_url, username, PASSWORD) for _ in range(2))
    form = {"csrf_token": here.csrf_token}
    wrong = here.post("/account/password", data={**form, "current": "not it", "new": NEW_PASSWORD, "again": NEW_PASSWORD})
    weak = here.post("/account/password", data={**form, "current": PASSWORD, "new": "aaaaaaaaaa", "again": "aaaaaaaaaa"})
    differ = here.post("/account/password", data={**form, "current": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD + "x"})
    assert (wrong.status_code, weak.status_code, differ.status_code) == (400, 400, 400)
    assert "current password is not right" in wrong.text and "too easy to guess" in weak.text and "differ" in differ.text
    changed = here.post("/account/password", data={**form, "current": PASSWORD, "new": NEW_PASSWORD, "again": NEW_PASSWORD})
    assert changed.status_code == 200 and "has been changed" in changed.text
    assert here.get("/queue").status_code == 200 and elsewhere.get("/queue").status_code == 302  # other sessions ended
    assert login(console, username, PASSWORD, next(sources)).status_code == 401
    assert login(console, username, NEW_PASSWORD, next(sources)).status_code == 303
    assert [(u, t) for u, t, _ in audit_rows(engine, "password.change")] == [(username, username)]


def last_seen(engine, username: str) -> datetime:
    with Session(engine) as session:
        return session.scalar(
            select(models.StaffSession.last_seen_at).join(models.StaffUser).where(models.StaffUser.username == username)
        )


def set_last_seen(engine, username: str, moment: datetime) -> None:
    with Session(engine) as session, session.begin():
        user_id = session.scalar(select(models.StaffUser.id).where(models.StaffUser.username == username))
        session.execute(update(models.StaffSession).where(models.StaffSession.user_id == user_id).values(last_seen_at=moment))


def test_an_idle_session_ends_and_the_pages_own_requests_do_not_keep_it_alive(console: RunningConsole, engine) -> None:
    username = member(console)
    client = logged_in_client(console.base_url, username, PASSWORD)
    a_while_ago = datetime.utcnow() - timedelta(minutes=20)
    set_last_seen(engine, username, a_while_ago)
    assert client.get("/queue/items").status_code == 200
    assert last_seen(engine, username) == a_while_ago  # the live queue's own fetch is not activity
    assert client.get("/queue").status_code == 200 and last_seen(engine, username) > a_while_ago
    set_last_seen(engine, username, datetime.utcnow() - timedelta(minutes=31))  # CONSOLE_IDLE_MINUTES is 30
    assert client.get("/queue").headers["location"] == "/login?next=%2Fqueue"


# --- refusals are audited ------------------------------------------------------------------------


def test_refused_requests_are_audited_with_the_reason(console: RunningConsole, engine) -> None:
    username = member(console)
    agent = logged_in_client(console.base_url, username, PASSWORD)
    assert agent.get("/audit").status_code == 403
    assert agent.post("/handoffs/HO-100000/claim", data={"csrf_token": "forged"}).status_code == 403
    with httpx.Client(base_url=console.base_url) as anonymous:
        anonymous.get("/login")
        assert anonymous.post("/login", data={"csrf_token": "forged", "username": "x", "password": "y"}).status_code == 403
    denied = [(u, t, d["reason"]) for u, t, d in audit_rows(engine, "access.denied")]
    assert (username, "/audit", "role") in denied and (username, "/handoffs/HO-100000/claim", "csrf") in denied
    assert ("-", "/login", "csrf") in denied


def test_x_forwarded_for_from_a_connection_that_is_not_the_proxy_is_not_believed(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With CONSOLE_TRUSTED_PROXIES naming another address than this test's (loopback), a spray that names a new
    X-Forwarded-For on every attempt still counts as one source and is stopped."""
    workdir = tmp_path_factory.mktemp("console-untrusted")
    (url,) = empty_database("sqlite", workdir)
    env = {"CONSOLE_PROXIES_COUNT": "1", "CONSOLE_TRUSTED_PROXIES": "192.0.2.1"}  # RFC 5737: not this machine
    with RunningConsole(url, workdir, env=env) as running:
        create_staff_user(running.database_url, "untrusted-real", "agent", PASSWORD)
        for number in range(throttle.SOURCE_FAILURES):
            assert login(running, f"spray{number}", "guessing", next(sources)).status_code == 401
        assert login(running, "untrusted-real", PASSWORD, next(sources)).status_code == 429
