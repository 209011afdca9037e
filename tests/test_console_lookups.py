"""The failed look-ups page (/lookups) and the retention of `record_lookups`, against the real console over HTTP on
SQLite and PostgreSQL; the rows are written by the real ownership gate (onewindow.backend.ownership), failing."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Iterator, List, Optional, Tuple

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from onewindow.__main__ import seed
from onewindow.backend import ServiceBackend
from onewindow.backend.ownership import MAX_FAILURES, Ownership, Requester
from onewindow.infra.logs import pseudonym
from onewindow.storage import models
from onewindow.storage.db import make_engine, make_sessionmaker
from tests import expect
from tests.conftest import DATABASE_KINDS, empty_database
from tests.console_server import RunningConsole, run_console
from tests.tracker_rows import staff

APPLICATION, ITS_DIGITS = "APP-100001", "0006"  # a sample application (seed demo) and the end of its phone number


@pytest.fixture(scope="module", params=DATABASE_KINDS)
def console(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    """The console on a seeded SQLite file and on a seeded throwaway PostgreSQL database."""
    workdir = tmp_path_factory.mktemp("console-lookups")
    for url in empty_database(request.param, workdir):
        seed(url, demo=True)
        with RunningConsole(url, workdir) as running:
            yield running


@pytest.fixture(scope="module")
def backend(console: RunningConsole) -> Iterator[ServiceBackend]:
    engine = make_engine(console.database_url)
    yield ServiceBackend(engine)
    engine.dispose()


def gate_at(backend: ServiceBackend, moment: datetime) -> Ownership:
    """The real gate on the console's database, its clock at `moment` (UTC)."""
    return Ownership(make_sessionmaker(backend.engine), backend.bookings, backend.applications, clock=lambda: moment)


def chat(phone: Optional[str] = None, proof: Optional[str] = None) -> Requester:
    """A new Telegram conversation; `phone`: the caller's number its channel vouched for (the source of the limits)."""
    chat_id = uuid.uuid4().hex[:10]
    return Requester(f"telegram:{chat_id}", "telegram", ("telegram", phone) if phone else None, proof)


def sections(page: str) -> Tuple[str, str]:
    """The page's table of sources with repeated failures, and its table of the latest failed look-ups."""
    repeated, latest = page.split('id="h-latest"')
    return repeated, latest


def audit_rows(backend: ServiceBackend, action: str) -> List[Tuple[str, str, dict]]:
    with Session(backend.engine) as session:
        return [
            tuple(row)
            for row in session.execute(
                select(models.AuditEntry.username, models.AuditEntry.target, models.AuditEntry.detail).where(
                    models.AuditEntry.action == action
                )
            )
        ]


def test_supervisors_see_who_keeps_failing_and_the_latest_failures_without_personal_data(
    console: RunningConsole, backend: ServiceBackend
) -> None:
    phone, reference = (
        f"04{uuid.uuid4().int % 10**8:08d}",
        f"BK-{100000 + uuid.uuid4().int % 900000}",
    )  # a body never starts with 0
    guesses = [chat(phone) for _ in range(MAX_FAILURES + 2)]  # one caller, a new conversation each time
    reasons = [backend.ownership.check("appointment", reference, guess).reason for guess in guesses]
    assert reasons == ["unknown"] * MAX_FAILURES + ["limited"] * 2
    slip = chat(proof="9999")
    assert backend.ownership.check("application", APPLICATION, slip).reason == "wrong_proof"
    with staff(console, "supervisor") as supervisor:
        answer = supervisor.get("/lookups")
        username = supervisor.username
    assert answer.status_code == 200
    repeated, latest = sections(answer.text)
    row = re.search(
        rf"<code>{pseudonym(guesses[0].source())}</code></td>\s*<td>telegram</td>\s*<td>(\d+)</td>\s*<td>(\d+)</td>", repeated
    )
    assert row is not None and row.groups() == (str(MAX_FAILURES + 2), "2")
    assert pseudonym(slip.source()) not in repeated  # one slip is not repeated
    for said in (slip, guesses[-1]):
        assert pseudonym(said.sender_id) in latest
    assert "wrong digits" in latest and "refused: a limit was reached" in latest and "no such record" in latest
    shown = re.sub(r"<code>[0-9a-f]{12}</code>", "", answer.text)  # the pseudonyms (hex) taken out, then no digits given
    secrets = [phone, reference, APPLICATION, "9999", ITS_DIGITS, *(g.sender_id for g in guesses), slip.sender_id]
    assert [secret for secret in secrets if secret in shown] == []
    assert (username, "/lookups", {"days": 7, "sources": repeated.count("<code>")}) in audit_rows(backend, "lookups.view")


def test_the_days_filter_chooses_the_period_and_a_bad_value_is_a_400(console: RunningConsole, backend: ServiceBackend) -> None:
    earlier = chat()
    gate_at(backend, datetime.utcnow() - timedelta(days=10)).check("application", "APP-999998", earlier)
    key = pseudonym(earlier.sender_id)
    with staff(console, "admin") as admin:
        assert key not in admin.get("/lookups").text
        assert key in admin.get("/lookups", params={"days": "11"}).text
        for bad in ("0", "367", "seven", "-1", "1.5"):
            refused = admin.get("/lookups", params={"days": bad})
            assert refused.status_code == 400, bad
            assert "&#39;days&#39; must be a whole number from 1 to 366" in refused.text, bad


def test_agents_are_refused_and_it_is_audited_and_the_nav_links_the_page_for_supervisors(
    console: RunningConsole, backend: ServiceBackend
) -> None:
    with staff(console, "agent") as agent, staff(console, "supervisor") as supervisor:
        assert agent.get("/lookups").status_code == 403
        assert 'href="/lookups"' not in agent.get("/queue").text and 'href="/lookups"' in supervisor.get("/queue").text
        username = agent.username
    denied = [(u, t, d["reason"]) for u, t, d in audit_rows(backend, "access.denied")]
    assert (username, "/lookups", "role") in denied
    assert username not in {u for u, _, _ in audit_rows(backend, "lookups.view")}


def repeated_count(client: httpx.Client) -> int:
    page = client.get("/analytics").text
    return int(
        expect.matched(r'id="repeated-lookups">(\d+) sources? with repeated failed look-ups in the last 7 days', page).group(1)
    )


def test_analytics_counts_the_sources_with_repeated_failures_this_week(console: RunningConsole, backend: ServiceBackend) -> None:
    phone = f"04{uuid.uuid4().int % 10**8:08d}"
    with staff(console, "agent") as agent:
        before = repeated_count(agent)
        for _ in range(MAX_FAILURES):
            backend.ownership.check("application", APPLICATION, chat(phone, proof="1111"))
        assert repeated_count(agent) == before + 1


def test_the_purge_deletes_failed_lookups_older_than_the_retention_period(
    console: RunningConsole, backend: ServiceBackend
) -> None:
    old_gate = gate_at(backend, datetime.utcnow() - timedelta(days=40))
    old = [chat(), chat()]
    for asker in old:
        old_gate.check("appointment", "BK-100000", asker)
    recent = chat()
    gate_at(backend, datetime.utcnow() - timedelta(days=29)).check("appointment", "BK-100000", recent)

    def stored(asker: Requester) -> int:
        with Session(backend.engine) as session:
            return session.scalar(select(func.count()).where(models.RecordLookup.conversation_key == pseudonym(asker.sender_id)))

    assert [stored(asker) for asker in (*old, recent)] == [1, 1, 1]
    purged = run_console(console, "purge", "--older-than-days", "30")
    assert purged.returncode == 0 and "deleted 2 failed record look-up(s) older than that" in purged.stdout, purged.stderr
    assert [stored(asker) for asker in (*old, recent)] == [0, 0, 1]
