"""Patch: Rasa's SQL tracker store, same table and same trackers, with less work per message.

Overrides `rasa.core.tracker_store.SQLTrackerStore._retrieve` (private: the read behind `retrieve` and
`retrieve_full_tracker`) and `save`, and uses the store's internals (`engine`, `sessionmaker`,
`SQLEvent`, `domain`); endpoints.yml names it as onewindow.rasa_plugins.tracker_store.LeanSQLTrackerStore.
Profiling the Rasa server under load (bench/rest_load.py, py-spy) showed Rasa's SQLTrackerStore
taking about 40 % of its time, nearly all of it in SQLAlchemy's ORM: loading every event of
the conversation as an ORM object, then, to save, counting the stored events again with the same
query and adding each new event as an ORM object. This store reads and writes the same `events`
table with plain SQL statements built once, and remembers on the tracker how many of its events
came from the table, so saving needs no count.

It also keeps the trackers it saved last (`keep_trackers`, default 200 conversations): the next
message of a conversation takes its tracker back instead of reading and replaying every event,
after one indexed query shows that the conversation's rows are still exactly the ones saved
(newest row id and row count). Anything that changed them (another Rasa instance, the staff
console through Rasa's API, `/forget` or the retention purge deleting rows) makes it read the
table again. An SQLite file keeps one open connection instead of opening one per statement; PostgreSQL gets the
engine of onewindow/storage/db.py (TRACKER_POOL_SIZE + TRACKER_MAX_OVERFLOW connections per Rasa instance instead of
Rasa's 50 + 100, checked before use, reconnecting with backoff).
Checked by tests/test_tracker_store.py (the same rows and trackers as SQLTrackerStore, SQLite and
PostgreSQL) and tests/test_rasa_patches.py (`_retrieve` against the original on the same rows).
"""

from __future__ import annotations

import itertools
import json
from collections import OrderedDict
from typing import Any, Dict, Optional, Tuple

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.nlu.constants import INTENT_NAME_KEY
from sqlalchemy.orm import sessionmaker
from sqlalchemy.pool import NullPool, SingletonThreadPool

from onewindow.settings.variables import TRACKER_MAX_OVERFLOW, TRACKER_POOL_SIZE
from onewindow.storage.db import make_engine

# how many of a tracker's events are stored; set when the tracker is read or saved here
STORED_EVENTS = "_onewindow_stored_events"


class LeanSQLTrackerStore(SQLTrackerStore):
    """An SQLTrackerStore that reads with one plain query and saves without re-counting."""

    engine: sa.engine.Engine  # set by SQLTrackerStore.__init__ (replaced here for SQLite)

    def __init__(self, *args: Any, keep_trackers: int = 200, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.engine.dialect.name == "sqlite" and isinstance(self.engine.pool, NullPool):
            self.engine.dispose()
            self.engine = sa.create_engine(self.engine.url, poolclass=SingletonThreadPool)
            self.sessionmaker = sessionmaker(bind=self.engine)
        elif self.engine.dialect.name == "postgresql":  # Rasa's pool (50 + 100 per instance) and no reconnecting
            url = self.engine.url.render_as_string(hide_password=False)
            self.engine.dispose()
            self.engine = make_engine(url, TRACKER_POOL_SIZE.read(), TRACKER_MAX_OVERFLOW.read())
            self.sessionmaker = sessionmaker(bind=self.engine)
        self.keep_trackers = int(keep_trackers)
        # sender -> ((newest row id, row count) when saved, the tracker as saved)
        self._kept: "OrderedDict[str, Tuple[Tuple[Any, int], DialogueStateTracker]]" = OrderedDict()
        table = self.SQLEvent.__table__
        sender = sa.bindparam("sender_id")
        session_start = (
            sa.select(sa.func.max(table.c.timestamp))
            .where(table.c.sender_id == sender, table.c.type_name == SessionStarted.type_name)
            .scalar_subquery()
        )
        in_latest_session = sa.or_(table.c.timestamp >= session_start, session_start.is_(None))
        self._all_sessions_query = sa.select(table.c.data).where(table.c.sender_id == sender).order_by(table.c.id)
        self._latest_session_query = self._all_sessions_query.where(in_latest_session)
        self._latest_session_count = sa.select(sa.func.count()).where(table.c.sender_id == sender, in_latest_session)
        self._rows_now = sa.select(sa.func.max(table.c.id), sa.func.count()).where(table.c.sender_id == sender)
        self._insert = table.insert()

    async def _retrieve(self, sender_id: str, fetch_events_from_all_sessions: bool) -> Optional[DialogueStateTracker]:
        query = self._all_sessions_query if fetch_events_from_all_sessions else self._latest_session_query
        kept = None if fetch_events_from_all_sessions else self._kept.pop(sender_id, None)
        if kept is not None and getattr(kept[1], STORED_EVENTS, None) != len(kept[1].events):
            kept = None  # changed in memory after it was saved
        with self.engine.connect() as connection:
            if kept is not None and self._rows_of(connection, sender_id) == kept[0]:
                return kept[1]  # nothing changed since it was saved here
            rows = connection.execute(query, {"sender_id": sender_id}).scalars().all()
        if not (self.domain and rows):
            return None
        tracker = DialogueStateTracker.from_dict(sender_id, [json.loads(row) for row in rows], self.domain.slots)
        if not fetch_events_from_all_sessions:
            setattr(tracker, STORED_EVENTS, len(rows))
        return tracker

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Store the events of the tracker that are not in the table yet."""
        await self.stream_events(tracker)
        with self.engine.begin() as connection:
            stored = getattr(tracker, STORED_EVENTS, None)
            read_here = stored is not None
            if stored is None:  # a tracker not read here (new, or rebuilt by Rasa): count as Rasa does
                stored = connection.execute(self._latest_session_count, {"sender_id": tracker.sender_id}).scalar_one()
            new_events = list(itertools.islice(tracker.events, stored, None))
            if new_events:
                connection.execute(self._insert, [event_row(tracker.sender_id, event) for event in new_events])
            started_session = any(isinstance(event, SessionStarted) for event in new_events)
            keep = read_here and not started_session and self.keep_trackers > 0
            rows_now = self._rows_of(connection, tracker.sender_id) if keep else None
        setattr(tracker, STORED_EVENTS, len(tracker.events))
        self._keep(tracker, rows_now)

    def _rows_of(self, connection: Any, sender_id: str) -> Tuple[Any, int]:
        newest, count = connection.execute(self._rows_now, {"sender_id": sender_id}).one()
        return newest, count

    def _keep(self, tracker: DialogueStateTracker, rows_now: Optional[Tuple[Any, int]]) -> None:
        """Keep the tracker as saved for its next message (`rows_now` None: do not keep it).

        Only a tracker read here from the latest session, which began no new session this turn,
        is kept: anything else holds events that a read of the latest session leaves out.
        """
        self._kept.pop(tracker.sender_id, None)
        if rows_now is None:
            return
        self._kept[tracker.sender_id] = (rows_now, tracker)
        while len(self._kept) > self.keep_trackers:
            self._kept.popitem(last=False)


def event_row(sender_id: str, event: Event) -> Dict[str, Any]:
    """One row of the `events` table, with the same columns Rasa's SQLTrackerStore writes."""
    data = event.as_dict()
    return {
        "sender_id": sender_id,
        "type_name": event.type_name,
        "timestamp": data.get("timestamp"),
        "intent_name": data.get("parse_data", {}).get("intent", {}).get(INTENT_NAME_KEY),
        "action_name": data.get("name"),
        "data": json.dumps(data),
    }
