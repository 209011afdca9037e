"""Health, readiness, draining and metrics of the real staff console process over HTTP (onewindow/infra/health.py,
onewindow/infra/metrics.py), on a PostgreSQL database of the module's own that the tests make unreachable."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Dict, Iterator, Set, Tuple

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import POSTGRES_ADMIN_URL, postgres_database
from tests.console_server import RunningConsole

pytestmark = [pytest.mark.postgres, pytest.mark.console]
Samples = Dict[Tuple[str, Tuple[Tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    yield from postgres_database()


@pytest.fixture(scope="module")
def console(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningConsole]:
    with RunningConsole(database, tmp_path_factory.mktemp("health"), env={"ONEWINDOW_DRAIN_SECONDS": "2"}) as running:
        yield running


def samples(base_url: str) -> Samples:
    """Every sample of /metrics, parsed with prometheus_client's own parser."""
    answer = httpx.get(f"{base_url}/metrics", timeout=10)
    assert answer.status_code == 200
    found: Samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def requests_to(found: Samples, route: str, status: str) -> float:
    return found.get(("onewindow_http_requests_total", (("process", "console"), ("route", route), ("status", status))), 0.0)


def allow_connections(database: str, allowed: bool) -> None:
    """Let clients connect to `database` or refuse them (and end the connections it has): the database is unreachable."""
    name = make_url(database).database
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}'))
            if not allowed:
                connection.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name})
    finally:
        admin.dispose()


def test_live_and_ready_answer(console: RunningConsole) -> None:
    assert httpx.get(f"{console.base_url}/health/live").json() == {"live": True}
    ready = httpx.get(f"{console.base_url}/health/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "checks": {"not_draining": True, "database": True}}


def test_ready_is_503_while_the_database_is_unreachable_and_200_when_it_is_back(console: RunningConsole, database: str) -> None:
    errors = ("onewindow_database_errors_total", (("database", make_url(database).database),))
    before = samples(console.base_url).get(errors, 0.0)
    allow_connections(database, False)
    try:
        down = httpx.get(f"{console.base_url}/health/ready", timeout=10)
        assert down.status_code == 503
        assert down.json()["checks"]["database"] is False
        assert samples(console.base_url)[errors] > before  # the refused connection was counted
        assert httpx.get(f"{console.base_url}/health/live").status_code == 200  # alive, only not ready
    finally:
        allow_connections(database, True)
    assert httpx.get(f"{console.base_url}/health/ready", timeout=10).status_code == 200


def test_requests_are_counted_by_route_pattern_exactly(console: RunningConsole) -> None:
    before = samples(console.base_url)
    for _ in range(3):
        httpx.get(f"{console.base_url}/login")
    for reference in ("HO-100001", "HO-100002"):
        httpx.get(f"{console.base_url}/handoffs/{reference}")
    after = samples(console.base_url)
    assert requests_to(after, "/login", "200") - requests_to(before, "/login", "200") == 3
    moved = {key: value - before.get(key, 0.0) for key, value in after.items() if key[0] == "onewindow_http_requests_total"}
    assert not any("HO-10000" in str(key) for key in after), "a raw path became a label"
    assert sum(value for key, value in moved.items() if ("route", "/metrics") not in key[1]) == 5


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126, blacklist_characters="?#%"), max_size=40))
def test_generated_paths_create_no_new_label_values(console: RunningConsole, path: str) -> None:
    before = {key for key in samples(console.base_url) if key[0] == "onewindow_http_requests_total"}
    httpx.get(f"{console.base_url}/{path}")
    after = {key for key in samples(console.base_url) if key[0] == "onewindow_http_requests_total"}
    routes = {dict(labels)["route"] for _, labels in after - before}
    assert routes <= known_routes(console), f"/{path} made new route labels {routes}"


KNOWN: Dict[int, Set[str]] = {}


def known_routes(console: RunningConsole) -> Set[str]:
    """Every label a console request may carry: its routes' patterns (sanic's spelling), /metrics, unmatched."""
    if console.port not in KNOWN:
        patterns = {route.path for route in console_app_routes(console)}
        KNOWN[console.port] = {"unmatched", "/metrics", "/health/live", "/health/ready", *patterns}
    return KNOWN[console.port]


def console_app_routes(console: RunningConsole) -> list:
    from console.app import create_app
    from console.settings import ConsoleSettings

    settings = ConsoleSettings(
        host="127.0.0.1",
        port=console.port,
        database_url=console.database_url,
        endpoints=console.endpoints,
        rasa_url=console.rasa_url,
        rasa_api_secret="x" * 32,
        session_minutes=60,
        secure_cookies=False,
    )
    app = create_app(settings)
    routes = [type("R", (), {"path": "/" + route.path.lstrip("/")}) for route in app.router.routes]
    app.ctx.backend.engine.dispose()
    app.ctx.tracker.dispose()
    return routes


def test_metrics_hold_the_contract_names_and_no_personal_data(console: RunningConsole) -> None:
    body = httpx.get(f"{console.base_url}/metrics").text
    for name in ("onewindow_handoff_queue_length", "onewindow_handoff_wait_seconds_bucket", "onewindow_ready"):
        assert name in body
    assert "telegram:" not in body and "phone:" not in body and "+61" not in body


def test_sigterm_makes_ready_503_at_once_then_the_process_exits_0(database: str, tmp_path: Path) -> None:
    with RunningConsole(database, tmp_path, env={"ONEWINDOW_DRAIN_SECONDS": "2"}) as console:
        assert console.process is not None
        assert httpx.get(f"{console.base_url}/health/ready").status_code == 200
        console.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        draining = httpx.get(f"{console.base_url}/health/ready")
        assert draining.status_code == 503
        assert draining.json()["checks"]["not_draining"] is False
        assert httpx.get(f"{console.base_url}/login").status_code == 200  # still serving while draining
        assert console.process.wait(timeout=20) == 0
