"""The service backend on a PostgreSQL cluster of the test's own (tests/pg_cluster.py), stopped and restarted under it.

One ServiceBackend, never recreated: it answers before; while PostgreSQL is stopped each request fails with an
OperationalError (no hang) and the outage is logged at ERROR once; it answers again once PostgreSQL is back, the
recovery logged once at INFO; after `pg_ctl restart` with no request in between, the first request is answered
(the pool's pre-ping replaces the dead connections). A read whose connection is lost mid-session is run again;
a session that wrote, or an explicit transaction, gets the error.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator, List, TypeVar

import pytest
from sqlalchemy import create_engine, exc, select, text

from onewindow.backend import ServiceBackend
from onewindow.storage import models
from onewindow.storage.migrate import migrate
from tests.pg_cluster import PgCluster, available

pytestmark = [pytest.mark.postgres, pytest.mark.skipif(not available(), reason="needs root and initdb/pg_ctl")]
T = TypeVar("T")
HANG_SECONDS = 60  # a request still unanswered after this long counts as hanging


@pytest.fixture(scope="module")
def cluster() -> Iterator[PgCluster]:
    cluster = PgCluster().start()
    try:
        migrate(cluster.create_database("onewindow"))
        yield cluster
    finally:
        cluster.remove()


@pytest.fixture
def backend(cluster: PgCluster) -> Iterator[ServiceBackend]:
    backend = ServiceBackend.from_url(cluster.url("onewindow"))
    yield backend
    backend.engine.dispose()


def bounded(call: Callable[[], T]) -> T:
    """`call()` in a thread; a call that has not returned or raised after HANG_SECONDS fails the test."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(call).result(timeout=HANG_SECONDS)


class Records(logging.Handler):
    """The records of onewindow.storage.reconnect (whose JSON logs do not propagate to pytest's capture)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: List[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def named(self, name: str) -> List[logging.LogRecord]:
        return [record for record in self.records if record.getMessage() == name]


@pytest.fixture
def logged() -> Iterator[Records]:
    logger, records = logging.getLogger("onewindow.storage.reconnect"), Records()
    level = logger.level
    logger.addHandler(records)
    logger.setLevel(logging.INFO)
    yield records
    logger.removeHandler(records)
    logger.setLevel(level)


def test_the_backend_fails_clearly_while_postgresql_is_down_and_answers_again_after(
    cluster: PgCluster, backend: ServiceBackend, logged: Records
) -> None:
    backend.preferences.update("telegram", "outage", reply_by_voice=True)
    assert backend.preferences.get("telegram", "outage").reply_by_voice
    cluster.stop()
    try:
        for _request in range(5):
            with pytest.raises(exc.OperationalError):
                bounded(lambda: backend.preferences.get("telegram", "outage"))
            time.sleep(0.2)
    finally:
        cluster.resume()
    lost = logged.named("database.connection_lost")
    assert len(lost) == 1 and lost[0].levelno == logging.ERROR and lost[0].exc_info
    deadline = time.monotonic() + HANG_SECONDS
    while True:  # the next attempt is due within the backoff (at most 4 s)
        try:
            answer = backend.preferences.get("telegram", "outage")
            break
        except exc.OperationalError:
            assert time.monotonic() < deadline, "not answering again after PostgreSQL came back"
            time.sleep(0.2)
    assert answer.reply_by_voice  # the same data, through the same backend
    recovered = logged.named("database.connection_recovered")
    assert len(recovered) == 1 and recovered[0].levelno == logging.INFO
    assert len(logged.named("database.connection_lost")) == 1

    cluster.restart()  # every pooled connection is dead now; the first request after it is answered
    assert backend.preferences.get("telegram", "outage").reply_by_voice
    backend.preferences.update("telegram", "outage", slow_speech=True)
    assert backend.preferences.get("telegram", "outage").slow_speech


def terminate_backend_of(cluster: PgCluster, pid: int) -> None:
    admin = create_engine(cluster.url(), isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as connection:
        assert connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
    admin.dispose()


def test_a_read_is_run_again_on_a_new_connection_but_not_after_a_write(cluster: PgCluster, backend: ServiceBackend) -> None:
    sessions = backend.preferences._sessions
    backend.preferences.update("telegram", "reads", reply_by_voice=True)
    query = select(models.ChatPreference.reply_by_voice).where(models.ChatPreference.external_id == "reads")

    with sessions() as session:  # a reading session: its connection dies between two reads
        pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
        terminate_backend_of(cluster, pid)
        assert session.execute(query).scalar() is True
        assert session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar() != pid

    with sessions() as session:  # a session that wrote (flushed) first: the error reaches the caller
        session.add(models.ChatPreference(channel="telegram", external_id="lost", reply_by_voice=True, slow_speech=False))
        session.flush()
        terminate_backend_of(cluster, session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar())
        with pytest.raises(exc.DBAPIError) as lost:
            session.execute(query)
        assert lost.value.connection_invalidated
        session.rollback()
    assert backend.preferences.get("telegram", "lost").reply_by_voice is False  # never stored

    with pytest.raises(exc.DBAPIError):  # an explicit transaction is the caller's to repeat
        with sessions.begin() as session:
            terminate_backend_of(cluster, session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar())
            session.execute(query)
    assert backend.preferences.get("telegram", "reads").reply_by_voice
