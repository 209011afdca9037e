"""The webhook's record of updates taken on, in the service database: none lost, none answered twice.

Telegram delivers an update again and again until the webhook answers 2xx. The bot answers only once the
update has been handled, so an update whose bot process died mid-way comes back. Which process handles a
delivered update is decided here, atomically, for any number of bot processes (an active one and its
standby behind the proxy, or one restarted):

- `take`: the first delivery inserts the row (`holder` = this process, `lease_until` = now + lease) and
  handles the update; a delivery of an update already answered (`handled_at` set) is answered 200 at once;
  one still held by a live holder (its lease renewed) is refused for now (Telegram tries again later); one
  whose holder stopped renewing (killed) is taken over by changing the row only while its lease is past.
- `renew` pushes the lease forward while the update is handled; `done` marks it answered.

The window left: a process killed after the reply reached Telegram and before `done` committed gets the
update handled again on redelivery (a few milliseconds per update; at-least-once, never lost).
Rows older than a day are deleted (Telegram keeps an undelivered update at most 24 hours).
"""

from __future__ import annotations

import enum
import secrets
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import and_, delete, insert, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from onewindow.storage.models import TelegramUpdate

KEEP_FOR = timedelta(days=1)
TABLE = TelegramUpdate.__table__


class Taken(enum.Enum):
    """What a delivery of an update should do."""

    HANDLE = "handle"  # this process holds it now: handle it, then answer 200
    ANSWERED = "answered"  # handled before: answer 200, do nothing
    BUSY = "busy"  # another live process is handling it: refuse for now, Telegram delivers it again


class UpdateLedger:
    def __init__(self, engine: Engine, bot_id: str, lease: float, clock: Callable[[], datetime] = datetime.utcnow) -> None:
        self.engine = engine
        self.bot_id = bot_id
        self.lease = timedelta(seconds=lease)
        self.holder = secrets.token_hex(8)  # this process, for this start only
        self.clock = clock

    def take(self, update_id: int) -> Taken:
        now = self.clock()
        row = {"bot_id": self.bot_id, "update_id": update_id, "holder": self.holder, "lease_until": now + self.lease}
        try:
            with self.engine.begin() as connection:
                connection.execute(insert(TABLE).values(**row))
            return Taken.HANDLE
        except IntegrityError:
            pass
        key = and_(TABLE.c.bot_id == self.bot_id, TABLE.c.update_id == update_id)
        with self.engine.begin() as connection:
            taken_over = connection.execute(
                update(TABLE)
                .where(key, TABLE.c.handled_at.is_(None), or_(TABLE.c.lease_until < now, TABLE.c.holder == self.holder))
                .values(holder=self.holder, lease_until=now + self.lease)
            ).rowcount
            if taken_over:
                return Taken.HANDLE
            handled = connection.execute(select(TABLE.c.handled_at).where(key)).scalar_one_or_none()
        return Taken.ANSWERED if handled is not None else Taken.BUSY

    def renew(self, update_id: int) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                update(TABLE)
                .where(TABLE.c.bot_id == self.bot_id, TABLE.c.update_id == update_id, TABLE.c.holder == self.holder)
                .values(lease_until=self.clock() + self.lease)
            )

    def done(self, update_id: int) -> None:
        now = self.clock()
        with self.engine.begin() as connection:
            connection.execute(
                update(TABLE).where(TABLE.c.bot_id == self.bot_id, TABLE.c.update_id == update_id).values(handled_at=now)
            )
            connection.execute(delete(TABLE).where(TABLE.c.bot_id == self.bot_id, TABLE.c.lease_until < now - KEEP_FOR))

    def reachable(self) -> bool:
        """True when the database answers (the webhook's readiness)."""
        try:
            with self.engine.connect() as connection:
                connection.execute(select(TABLE.c.update_id).limit(1))
            return True
        except Exception:  # any failure means not ready; the reason is in the database's own log
            return False
