"""A PostgreSQL engine that rides out a lost connection: reported once, connecting retried with backoff, reads again.

Three SQLAlchemy mechanisms, nothing looped by hand around the queries:

- the pool checks a connection before lending it (`pool_pre_ping`); after a restart of PostgreSQL the first
  check finds the dead socket and the whole pool is replaced, so no request sees the stale connections;
- connecting (the `do_connect` event) retries a refused or failed attempt with exponential backoff, from 50 ms, for
  at most `retry_seconds`; once the database is known to be down, each request makes at most one attempt, no
  sooner than the previous attempt's wait, doubled up to 4 s, and requests in between fail at once with an
  OperationalError that says so: nothing hangs and PostgreSQL is not flooded while it starts;
- a session's statement that fails because its connection was lost is run once more on a new connection when the
  session's transaction wrote nothing yet and is not an explicit `begin()` block (ReadRetrySession); anything else
  raises to the caller, whose transaction is rolled back.

The outage is logged once at ERROR with its traceback (`database.connection_lost`), its end once at INFO
(`database.connection_recovered`, with the seconds it lasted); errors are counted in onewindow_database_errors_total.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Optional

from sqlalchemy import event, exc
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, SessionTransaction

from onewindow.infra.logs import log_event

logger = logging.getLogger(__name__)

FIRST_DELAY_SECONDS = 0.05
OUTAGE_MAX_DELAY_SECONDS = 4.0


class Outage:
    """Whether a database is down, when to try it next, and the one log line at each end of an outage."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.guard = threading.Lock()
        self.down_since: Optional[float] = None
        self.delay = FIRST_DELAY_SECONDS
        self.next_attempt = 0.0  # after a failed connection attempt: when the next one may be made

    def lost(self, error: BaseException) -> None:
        """A connection in use was lost: the outage begins (the next connect tries at once)."""
        self._down(error)

    def connect_failed(self, error: BaseException) -> None:
        """Connecting failed: the next attempt waits twice as long as the last one (at most 4 s)."""
        with self.guard:
            self.delay = FIRST_DELAY_SECONDS if self.next_attempt == 0.0 else min(self.delay * 2, OUTAGE_MAX_DELAY_SECONDS)
            self.next_attempt = time.monotonic() + self.delay
        self._down(error)

    def _down(self, error: BaseException) -> None:
        with self.guard:
            first = self.down_since is None
            if first:
                self.down_since = time.monotonic()
        if first:
            log_event(logger, "database.connection_lost", level=logging.ERROR, exc_info=error, database=self.database)

    def recovered(self) -> None:
        with self.guard:
            since, self.down_since, self.next_attempt = self.down_since, None, 0.0
        if since is not None:
            seconds = round(time.monotonic() - since, 1)
            log_event(logger, "database.connection_recovered", level=logging.INFO, database=self.database, seconds=seconds)

    def wait_left(self) -> Optional[float]:
        """Seconds until the next connection attempt is due after a failed one; None when none failed."""
        with self.guard:
            if self.next_attempt == 0.0:
                return None
            return max(self.next_attempt - time.monotonic(), 0.0)


def install(engine: Engine, database: str, retry_seconds: float) -> Outage:
    """Add connecting with backoff and the outage reports to `engine` (a PostgreSQL engine)."""
    outage = Outage(database)
    dbapi_error = engine.dialect.dbapi.OperationalError

    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        wait = outage.wait_left()
        if wait is not None and wait > 0:
            raise dbapi_error(f"database {database} unreachable; next connection attempt in {wait:.1f} s")
        deadline = time.monotonic() + (retry_seconds if wait is None else 0.0)
        delay = FIRST_DELAY_SECONDS
        while True:
            try:
                connection = dialect.connect(*cargs, **cparams)
            except dbapi_error as error:
                if time.monotonic() + delay > deadline:
                    outage.connect_failed(error)
                    raise
                time.sleep(delay)
                delay *= 2
            else:
                outage.recovered()
                return connection

    def lost(context: Any) -> None:
        if context.is_disconnect and context.connection is not None:
            outage.lost(context.original_exception)

    event.listen(engine, "do_connect", connect)
    event.listen(engine, "handle_error", lost)
    return outage


class ReadRetrySession(Session):
    """A Session whose statements are run again once on a new connection after a lost one, while its transaction
    (begun by itself, not by `begin()`) has written nothing."""

    explicit = False  # inside `with session.begin()` / `sessionmaker.begin()`
    wrote = False  # this transaction flushed or ran a statement other than a SELECT

    def begin(self, *args: Any, **kwargs: Any) -> SessionTransaction:
        self.explicit = True
        return super().begin(*args, **kwargs)

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        retry = not (self.explicit or self.wrote or self.new or self.dirty or self.deleted)
        if not getattr(statement, "is_select", False):  # ORM and Core SELECTs; anything else may write
            self.wrote = True
        try:
            return super().execute(statement, *args, **kwargs)
        except exc.DBAPIError as error:
            if not (retry and error.connection_invalidated):
                raise
            self.rollback()
            return super().execute(statement, *args, **kwargs)


@event.listens_for(ReadRetrySession, "after_flush")
def _flushed(session: ReadRetrySession, _context: Any) -> None:
    session.wrote = True


@event.listens_for(ReadRetrySession, "after_transaction_end")
def _ended(session: ReadRetrySession, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.explicit = session.wrote = False
