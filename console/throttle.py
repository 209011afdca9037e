"""Login throttling per source address and per account, the same for names that are accounts and names that are not.

Every failed login is stored as keyed hashes of the typed name and of the source address (`login_failures`).
A login attempt is refused (`wait_seconds` > 0) when, within the last WINDOW_MINUTES:

- this source failed PAIR_FAILURES times for this name: this source waits out the window, while the real user
  from another address is not stopped;
- this source failed SOURCE_FAILURES times for any names (someone trying many names);
- this name failed ACCOUNT_FAILURES times from all sources (a spread-out attack): then every attempt waits an
  exponential backoff after the last failure, doubling per further failure up to MAX_BACKOFF_SECONDS, so the
  account is slowed down, never closed for good.

A successful login forgets its source's failures for that name; an admin's unlock forgets all of the account's.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from typing import Dict, Iterable, Optional

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from onewindow.infra.logs import SALT
from onewindow.storage import models

WINDOW_MINUTES = 15
PAIR_FAILURES = 5
SOURCE_FAILURES = 20
ACCOUNT_FAILURES = 30
MAX_BACKOFF_SECONDS = 15 * 60
Failure = models.LoginFailure


def _key(kind: str, value: str) -> str:
    return hmac.new(SALT.encode("utf-8"), f"login-{kind}:{value}".encode("utf-8"), hashlib.sha256).hexdigest()


def account_key(username: str) -> str:
    return _key("account", username.strip().lower())


def source_key(address: str) -> str:
    return _key("source", address)


def record_failure(engine: Engine, username: str, address: str) -> None:
    """Remember one failed login (old failures of everyone are removed on the way)."""
    now = datetime.utcnow()
    with Session(engine, future=True) as session, session.begin():
        session.execute(delete(Failure).where(Failure.at < now - timedelta(minutes=WINDOW_MINUTES)))
        session.add(Failure(at=now, account_key=account_key(username), source_key=source_key(address)))


def wait_seconds(engine: Engine, username: str, address: str, now: Optional[datetime] = None) -> int:
    """How long this source must wait before trying this name again; 0 when it may try now."""
    now = now or datetime.utcnow()
    since = now - timedelta(minutes=WINDOW_MINUTES)
    account, source = account_key(username), source_key(address)
    recent = (Failure.at > since,)
    with Session(engine, future=True) as session:

        def count_and_last(*conditions: object) -> "tuple[int, Optional[datetime]]":
            row = session.execute(select(func.count(Failure.id), func.max(Failure.at)).where(*recent, *conditions)).one()
            return int(row[0] or 0), row[1]

        pair, pair_last = count_and_last(Failure.account_key == account, Failure.source_key == source)
        from_source, source_last = count_and_last(Failure.source_key == source)
        on_account, account_last = count_and_last(Failure.account_key == account)
    window = timedelta(minutes=WINDOW_MINUTES)
    waits = [0]
    if pair >= PAIR_FAILURES and pair_last is not None:
        waits.append(int((pair_last + window - now).total_seconds()) + 1)
    if from_source >= SOURCE_FAILURES and source_last is not None:
        waits.append(int((source_last + window - now).total_seconds()) + 1)
    if on_account >= ACCOUNT_FAILURES and account_last is not None:
        backoff = min(MAX_BACKOFF_SECONDS, 2 ** min(on_account - ACCOUNT_FAILURES, 20))
        waits.append(int((account_last + timedelta(seconds=backoff) - now).total_seconds()) + 1)
    return max(0, *waits)


def forget(engine: Engine, username: str, address: Optional[str] = None) -> int:
    """Forget the name's failures from `address` (after a successful login) or from everywhere (an admin's unlock);
    returns how many were forgotten."""
    conditions = [Failure.account_key == account_key(username)]
    if address is not None:
        conditions.append(Failure.source_key == source_key(address))
    with Session(engine, future=True) as session, session.begin():
        return session.execute(delete(Failure).where(*conditions)).rowcount or 0


def recent_failures(engine: Engine, usernames: Iterable[str]) -> Dict[str, int]:
    """Failed logins within the window per username (for the admin's Users page)."""
    keys = {account_key(name): name for name in usernames}
    since = datetime.utcnow() - timedelta(minutes=WINDOW_MINUTES)
    with Session(engine, future=True) as session:
        rows = session.execute(
            select(Failure.account_key, func.count(Failure.id))
            .where(Failure.at > since, Failure.account_key.in_(list(keys)))
            .group_by(Failure.account_key)
        ).all()
    return {keys[key]: int(count) for key, count in rows}
