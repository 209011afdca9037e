"""Staff console accounts, sessions, CSRF, roles and the audit log, over real HTTP against `python -m console serve`."""

from __future__ import annotations

import itertools
import random
from datetime import datetime, timedelta
from typing import Dict, Iterator, List

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from console import audit, password_policy, passwords, throttle
from console.accounts import UNKNOWN_ACCOUNT
from console.users import authenticate
from onewindow.storage import models
from onewindow.storage.db import make_engine
from tests import expect
from tests.console_server import (
    ConsoleRoute,
    RunningConsole,
    StaffClient,
    console_routes,
    create_staff_user,
    csrf_token_in,
    logged_in_client,
    run_console,
)

PASSWORD = "correct horse battery"
PUBLIC = {("GET", "/login"), ("POST", "/login")}
PUBLIC |= {(m, p) for p in ("/health/live", "/health/ready") for m in ("GET", "HEAD")} | {("GET", "/metrics")}  # probes
names = (f"user{n}" for n in itertools.count(1))


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    workdir = tmp_path_factory.mktemp("console")
    # one proxy in front: each test's logins come from their own X-Forwarded-For address (login throttling is per source)
    with RunningConsole(f"sqlite:///{workdir / 'onewindow.db'}", workdir, env={"CONSOLE_PROXIES_COUNT": "1"}) as running:
        yield running


@pytest.fixture(scope="module")
def routes(console: RunningConsole) -> List[ConsoleRoute]:
    return console_routes(console)


@pytest.fixture(scope="module")
def engine(console: RunningConsole) -> Iterator:
    engine = make_engine(console.database_url)
    yield engine
    engine.dispose()


def staff(console: RunningConsole, role: str) -> str:
    """A new staff member of `role` (password PASSWORD); returns the username."""
    username = next(names)
    create_staff_user(console.database_url, username, role, PASSWORD)
    return username


def client_as(console: RunningConsole, role: str) -> StaffClient:
    return logged_in_client(console.base_url, staff(console, role), PASSWORD)


def a_source() -> str:
    """A documentation-range address (RFC 5737) that no other login in these tests comes from, most likely."""
    return f"203.0.{random.randrange(256)}.{random.randrange(1, 255)}"


def login(console: RunningConsole, username: str, password: str, source: str = "") -> httpx.Response:
    client = httpx.Client(base_url=console.base_url, headers={"X-Forwarded-For": source or a_source()})
    token = csrf_token_in(client.get("/login").text)
    return client.post("/login", data={"csrf_token": token, "username": username, "password": password, "next": "/queue"})


# --- passwords -----------------------------------------------------------------------------------


def test_passwords_are_stored_as_salted_scrypt_hashes(console: RunningConsole, engine) -> None:
    first, second = staff(console, "agent"), staff(console, "agent")
    with Session(engine) as session:
        hashes = dict(
            session.execute(
                select(models.StaffUser.username, models.StaffUser.password_hash).where(
                    models.StaffUser.username.in_([first, second])
                )
            ).all()
        )
    assert all(stored.startswith("scrypt$") and PASSWORD not in stored for stored in hashes.values())
    assert hashes[first] != hashes[second]  # same password, different salt
    assert passwords.verify_password(PASSWORD, hashes[first])
    assert not passwords.verify_password(PASSWORD + "!", hashes[first])
    assert not passwords.verify_password(PASSWORD, "not a hash")


def test_password_checks_compare_in_constant_time_and_cost_the_same_for_unknown_users(
    console: RunningConsole, engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    username = staff(console, "agent")
    compared: List[int] = []
    derived: List[int] = []
    real_compare, real_scrypt = passwords.hmac.compare_digest, passwords._scrypt

    def counted_compare(a: bytes, b: bytes) -> bool:
        compared.append(1)
        return real_compare(a, b)

    def counted_scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        derived.append(1)
        return real_scrypt(password, salt, n, r, p)

    monkeypatch.setattr(passwords.hmac, "compare_digest", counted_compare)
    monkeypatch.setattr(passwords, "_scrypt", counted_scrypt)
    assert authenticate(engine, username, "wrong password") is None
    assert authenticate(engine, "nobody-here", PASSWORD) is None
    assert expect.present(authenticate(engine, username, PASSWORD), "the member, signed in").username == username
    assert compared == [1, 1, 1] and derived == [1, 1, 1]


def test_short_passwords_are_refused() -> None:
    with pytest.raises(password_policy.WeakPasswordError, match="at least 10 characters"):
        password_policy.check_password("short")


# --- logging in and out --------------------------------------------------------------------------


def test_login_with_the_right_password_starts_a_session(console: RunningConsole) -> None:
    username = staff(console, "agent")
    answer = login(console, username, PASSWORD)
    assert answer.status_code == 303 and answer.headers["location"] == "/queue"
    cookie = answer.headers["set-cookie"]
    assert "ow_session=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie


@pytest.mark.parametrize("credentials", ["wrong password", "unknown user"])
def test_login_with_wrong_credentials_is_refused(console: RunningConsole, credentials: str) -> None:
    username = staff(console, "agent")
    answer = login(console, username if credentials == "wrong password" else "nobody", "not the password")
    assert answer.status_code == 401
    assert "Wrong username or password" in answer.text
    assert "ow_session" not in answer.headers.get("set-cookie", "")


def test_repeated_failed_logins_lock_the_account_for_a_while(console: RunningConsole, engine) -> None:
    username, source = staff(console, "agent"), a_source()
    for _ in range(throttle.PAIR_FAILURES):
        assert login(console, username, "not the password", source).status_code == 401
    locked = login(console, username, PASSWORD, source)
    assert locked.status_code == 429 and "Too many failed logins" in locked.text
    assert "ow_session" not in locked.headers.get("set-cookie", "")
    with Session(engine) as session, session.begin():  # the window passes
        session.execute(
            update(models.LoginFailure)
            .where(models.LoginFailure.account_key == throttle.account_key(username))
            .values(at=datetime.utcnow() - timedelta(minutes=throttle.WINDOW_MINUTES + 1))
        )
    assert login(console, username, PASSWORD, source).status_code == 303


def test_a_failed_login_names_only_existing_accounts_in_the_audit_log(console: RunningConsole, engine) -> None:
    typed = "my-secret-password-in-the-wrong-box"
    assert login(console, typed, "whatever it is").status_code == 401
    with Session(engine) as session:
        targets = session.scalars(select(models.AuditEntry.target).where(models.AuditEntry.action == "login.failed")).all()
    assert typed not in targets and UNKNOWN_ACCOUNT in targets


@pytest.mark.parametrize("token", [None, "forged"])
def test_login_form_needs_its_csrf_token(console: RunningConsole, token: str) -> None:
    username = staff(console, "agent")
    client = httpx.Client(base_url=console.base_url)
    client.get("/login")  # the pre-session token cookie is set, but the form field is missing or wrong
    data = {"username": username, "password": PASSWORD, **({"csrf_token": token} if token else {})}
    answer = client.post("/login", data=data)
    assert answer.status_code == 403
    assert "ow_session" not in answer.headers.get("set-cookie", "")


def test_login_only_redirects_within_the_console(console: RunningConsole) -> None:
    username = staff(console, "agent")
    client = httpx.Client(base_url=console.base_url)
    token = csrf_token_in(client.get("/login?next=//evil.example/x").text)
    answer = client.post(
        "/login", data={"csrf_token": token, "username": username, "password": PASSWORD, "next": "//evil.example/x"}
    )
    assert answer.headers["location"] == "/queue"


def test_a_page_asked_for_before_login_is_shown_after_it(console: RunningConsole) -> None:
    username = staff(console, "supervisor")
    client = httpx.Client(base_url=console.base_url)
    first = client.get("/audit?user=ann")
    assert first.status_code == 302 and first.headers["location"] == "/login?next=%2Faudit%3Fuser%3Dann"
    page = client.get(first.headers["location"]).text
    answer = client.post(
        "/login", data={"csrf_token": csrf_token_in(page), "username": username, "password": PASSWORD, "next": "/audit?user=ann"}
    )
    assert answer.headers["location"] == "/audit?user=ann"


def test_logout_deletes_the_session_on_the_server(console: RunningConsole, engine) -> None:
    username = staff(console, "agent")
    client = logged_in_client(console.base_url, username, PASSWORD)
    stolen = client.cookies["ow_session"]
    answer = client.post("/logout", data={"csrf_token": client.csrf_token})
    assert answer.status_code == 303 and answer.headers["location"] == "/login"
    with Session(engine) as session:
        user_id = session.scalar(select(models.StaffUser.id).where(models.StaffUser.username == username))
        assert session.scalars(select(models.StaffSession).where(models.StaffSession.user_id == user_id)).all() == []
    replay = httpx.Client(base_url=console.base_url, cookies={"ow_session": stolen})
    assert replay.get("/queue").status_code == 302


def test_an_expired_session_is_refused(console: RunningConsole, engine) -> None:
    username = staff(console, "agent")
    client = logged_in_client(console.base_url, username, PASSWORD)
    assert client.get("/queue").status_code == 200
    with engine.begin() as connection:
        user_id = connection.scalar(select(models.StaffUser.id).where(models.StaffUser.username == username))
        connection.execute(
            update(models.StaffSession)
            .where(models.StaffSession.user_id == user_id)
            .values(expires_at=datetime.utcnow() - timedelta(seconds=1))
        )
    assert client.get("/queue").headers["location"] == "/login?next=%2Fqueue"
    assert client.post("/logout", data={"csrf_token": client.csrf_token}).status_code == 401


# --- every route ---------------------------------------------------------------------------------


def test_only_the_login_page_is_public(routes: List[ConsoleRoute]) -> None:
    assert {(r.method, r.path) for r in routes if r.access == "public"} == PUBLIC
    assert all(r.access in ("public", "agent", "supervisor", "admin") for r in routes)
    assert len(routes) > 20  # the whole console is enumerated, not just this helper's pages


def test_unauthenticated_requests_are_refused_on_every_route(console: RunningConsole, routes: List[ConsoleRoute]) -> None:
    client = httpx.Client(base_url=console.base_url)
    for route in routes:
        if (route.method, route.path) in PUBLIC:
            continue
        answer = client.request(route.method, route.path)
        if route.method in ("GET", "HEAD"):
            assert answer.status_code == 302, route
            assert answer.headers["location"].startswith("/login?next="), route
        else:
            assert answer.status_code == 401, route


def test_every_state_changing_route_needs_the_session_csrf_token(console: RunningConsole, routes: List[ConsoleRoute]) -> None:
    client = client_as(console, "admin")
    changing = [r for r in routes if r.method not in ("GET", "HEAD") and (r.method, r.path) not in PUBLIC]
    assert changing
    for route in changing:
        attempts: List[Dict[str, Dict[str, str]]] = [
            {},
            {"data": {"csrf_token": "forged"}},
            {"headers": {"X-CSRF-Token": "forged"}},
        ]
        for attempt in attempts:
            answer = client.request(route.method, route.path, data=attempt.get("data"), headers=attempt.get("headers"))
            assert answer.status_code == 403 and "This form has expired" in answer.text, (route, attempt)


def test_agents_cannot_reach_supervisor_or_admin_pages(console: RunningConsole, routes: List[ConsoleRoute], engine) -> None:
    client = client_as(console, "agent")
    higher = [r for r in routes if r.access in ("supervisor", "admin")]
    assert {"/admin/users", "/audit"} <= {r.path for r in higher}
    for route in higher:
        answer = client.request(
            route.method,
            route.path,
            data={"csrf_token": client.csrf_token, "username": "made-by-agent", "role": "admin", "password": PASSWORD},
        )
        assert answer.status_code == 403, route
    with Session(engine) as session:
        assert session.scalar(select(models.StaffUser.id).where(models.StaffUser.username == "made-by-agent")) is None


def test_nav_shows_only_what_the_role_may_open(console: RunningConsole) -> None:
    agent_page = client_as(console, "agent").get("/queue").text
    admin_page = client_as(console, "admin").get("/queue").text
    assert 'href="/audit"' not in agent_page and 'href="/admin/users"' not in agent_page
    assert 'href="/audit"' in admin_page and 'href="/admin/users"' in admin_page


def test_pages_carry_security_headers(console: RunningConsole) -> None:
    answer = httpx.get(f"{console.base_url}/login")
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    assert answer.headers["x-frame-options"] == "DENY" and answer.headers["cache-control"] == "no-store"


# --- user management -----------------------------------------------------------------------------


def test_admin_creates_and_deactivates_users(console: RunningConsole) -> None:
    admin = client_as(console, "admin")
    username = next(names)
    created = admin.post(
        "/admin/users", data={"csrf_token": admin.csrf_token, "username": username, "role": "supervisor", "password": PASSWORD}
    )
    assert created.status_code == 200 and f"Created {username} (supervisor)" in created.text
    duplicate = admin.post(
        "/admin/users", data={"csrf_token": admin.csrf_token, "username": username, "role": "agent", "password": PASSWORD}
    )
    assert duplicate.status_code == 400 and "already exists" in duplicate.text
    member = logged_in_client(console.base_url, username, PASSWORD)
    assert member.get("/audit").status_code == 200
    page = admin.get("/admin/users").text
    row = page[page.index(f"<td>{username}</td>") :]
    user_id = row[row.index('action="/admin/users/') + len('action="/admin/users/') :].split("/")[0]
    deactivated = admin.post(f"/admin/users/{user_id}/deactivate", data={"csrf_token": admin.csrf_token})
    assert f"Deactivated {username}" in deactivated.text
    assert member.get("/audit").status_code == 302  # their session ended
    assert login(console, username, PASSWORD).status_code == 401


def test_admin_cannot_create_a_user_with_a_bad_role_or_name(console: RunningConsole) -> None:
    admin = client_as(console, "admin")
    bad_role = admin.post(
        "/admin/users", data={"csrf_token": admin.csrf_token, "username": next(names), "role": "root", "password": PASSWORD}
    )
    assert bad_role.status_code == 400 and "the role must be one of" in bad_role.text
    bad_name = admin.post(
        "/admin/users", data={"csrf_token": admin.csrf_token, "username": "<b>x</b>", "role": "agent", "password": PASSWORD}
    )
    assert bad_name.status_code == 400 and "&lt;b&gt;x&lt;/b&gt;" in bad_name.text and "<b>x</b>" not in bad_name.text


# --- the audit log -------------------------------------------------------------------------------


def test_supervisors_read_the_audit_log_filtered_and_paginated(console: RunningConsole, engine) -> None:
    supervisor = client_as(console, "supervisor")
    reader = next(names)
    for number in range(audit.PER_PAGE + 5):
        audit.write(engine, reader, "transcript.view", f"conversation:{number}", {"channel": "telegram"})
    audit.write(engine, reader, "personal_data.reveal", "conversation:7", {})
    first = supervisor.get("/audit", params={"user": reader, "action": "transcript.view"})
    assert first.status_code == 200
    assert f"{audit.PER_PAGE + 5} entries" in first.text and "Page 1 of 2" in first.text
    assert "conversation:54" in first.text and "personal_data.reveal</code>" not in first.text
    second = supervisor.get("/audit", params={"user": reader, "action": "transcript.view", "page": "2"})
    assert "conversation:0<" in second.text and "conversation:54" not in second.text
    reveals = supervisor.get("/audit", params={"user": reader, "action": "personal_data.reveal"})
    assert "1 entry" in reveals.text and "conversation:7" in reveals.text


@pytest.mark.parametrize("params", [{"user": "<script>"}, {"action": "x' OR 1=1"}, {"page": "-1"}, {"page": "abc"}])
def test_audit_filters_are_validated(console: RunningConsole, params: dict) -> None:
    answer = client_as(console, "supervisor").get("/audit", params=params)
    assert answer.status_code == 400 and "<script>" not in answer.text


def test_logins_and_user_changes_are_audited(console: RunningConsole, engine) -> None:
    admin_name = staff(console, "admin")
    admin = logged_in_client(console.base_url, admin_name, PASSWORD)
    login(console, admin_name, "wrong password")
    admin.post(
        "/admin/users", data={"csrf_token": admin.csrf_token, "username": next(names), "role": "agent", "password": PASSWORD}
    )
    with Session(engine) as session:
        logged = session.execute(
            select(models.AuditEntry.username, models.AuditEntry.action, models.AuditEntry.target).where(
                models.AuditEntry.target == admin_name
            )
        ).all()
        created = session.scalars(select(models.AuditEntry.action).where(models.AuditEntry.username == admin_name)).all()
    assert (admin_name, "login", admin_name) in logged and ("-", "login.failed", admin_name) in logged
    assert "user.create" in created


# --- the command line ----------------------------------------------------------------------------


def test_create_user_command(console: RunningConsole) -> None:
    username = next(names)
    created = run_console(
        console, "create-user", "--username", username, "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert created.returncode == 0 and created.stdout.strip() == f"created admin {username}"
    assert logged_in_client(console.base_url, username, PASSWORD).get("/admin/users").status_code == 200
    duplicate = run_console(
        console, "create-user", "--username", username, "--role", "agent", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert duplicate.returncode == 1 and "already exists" in duplicate.stderr
    bad_role = run_console(
        console, "create-user", "--username", next(names), "--role", "root", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert bad_role.returncode == 1 and "the role must be one of: agent, supervisor, admin" in bad_role.stderr
    weak = run_console(console, "create-user", "--username", next(names), "--role", "agent", "--password-stdin", stdin="short\n")
    assert weak.returncode == 1 and "at least 10 characters" in weak.stderr
    trivial = run_console(
        console, "create-user", "--username", next(names), "--role", "agent", "--password-stdin", stdin="aaaaaaaaaa\n"
    )
    assert trivial.returncode == 1 and "too easy to guess" in trivial.stderr


def test_purge_command_forgets_old_conversations(console: RunningConsole) -> None:
    from onewindow.rasa_plugins.events_table import events, tracker_engine

    tracker = tracker_engine(console.endpoints)
    old, recent = ((datetime.now() - timedelta(days=days)).timestamp() for days in (40, 1))
    with tracker.begin() as connection:
        connection.execute(
            events.insert(),
            [
                {"sender_id": "purge-old", "type_name": "user", "timestamp": old, "data": "{}"},
                {"sender_id": "purge-recent", "type_name": "user", "timestamp": recent, "data": "{}"},
            ],
        )
    refused = run_console(console, "purge", "--older-than-days", "0")
    assert refused.returncode == 1 and "at least 1 day" in refused.stderr
    purged = run_console(console, "purge", "--older-than-days", "30")
    assert purged.returncode == 0 and "forgot 1 conversation(s)" in purged.stdout
    with tracker.connect() as connection:
        senders = set(connection.execute(select(events.c.sender_id)).scalars())
    tracker.dispose()
    assert "purge-recent" in senders and "purge-old" not in senders
