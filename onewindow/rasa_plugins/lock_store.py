"""OrderedLockStore: one conversation's messages run one at a time, in arrival order, across every Rasa instance.

Rasa 3.6's RedisLockStore reads a conversation's ticket queue as one JSON value, changes it and writes it back
with no WATCH/MULTI or script, so two instances can overwrite each other's tickets and run one conversation's
turns at the same time; a dead instance's ticket blocks the conversation for 60 s; waiters poll once a second.
This store is loaded from endpoints.yml through Rasa's public LockStore API (it overrides `lock`, the only method
Rasa calls):

    lock_store:
      type: onewindow.rasa_plugins.lock_store.OrderedLockStore
      url: redis://redis:6379/0          # or postgresql://onewindow@db:5432/onewindow
      key_prefix: onewindow              # optional: Redis key prefix, or the namespace hashed into PostgreSQL keys
      lease_seconds: 3                   # optional (Redis): a ticket lapses this long after its process stopped
      wait_seconds: 20                   # optional: a message waits at most this long, then Rasa's LockError

Two backends, chosen by the URL's scheme:

- ``redis://``: atomic tickets. INCR numbers a message's ticket; every read-modify-write of the queue (a sorted
  set of tickets) and of the leases (a hash: ticket -> expiry in Redis' own clock) is one Lua script. Each live
  ticket's lease (holder and waiters alike) is refreshed every lease/3 by a heartbeat thread, which runs even while
  a turn keeps the event loop busy; a killed process's tickets lapse after `lease_seconds` and the next waiter
  reaps them. Waiters poll every `poll_seconds` (20 ms).
- ``postgresql://``: session advisory locks (`pg_advisory_lock` on a hash of the conversation id) on a connection
  of their own per held or awaited lock; PostgreSQL frees the lock when the session ends (a killed process's socket
  closes at once; a vanished host is found by the TCP keepalives each lock connection sets: 2 s idle, 1 s interval,
  3 probes, tcp_user_timeout 5 s). It queues waiters in the order their server processes reach the lock, which is
  not always the order the requests were sent (measured: tests/test_lock_store.py, bench/lock_stores.py): one
  conversation at a time, but not in arrival order, so Redis is the production choice (docs/production.md).

Both: within one instance a conversation's messages enter the shared queue in their local arrival order (a local
FIFO around the entry step only, so a message arriving later at another instance still queues behind one that
arrived earlier here). A lost Redis or PostgreSQL connection is logged at ERROR with its traceback, counted in
`onewindow_lock_errors_total`, and retried with backoff until the message's wait time runs out (then LockError);
nothing needs a restart. A turn holds its lock at most `lock_lifetime` seconds (Rasa's TICKET_LOCK_LIFETIME, 60 s),
after which the lock is given up and the overrun logged. `onewindow_lock_wait_seconds` records each message's wait.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncGenerator, Dict, List, Optional, Tuple, Type
from urllib.parse import urlsplit

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LOCK_LIFETIME, LockError, LockStore
from rasa.utils.endpoints import EndpointConfig

from onewindow.infra.logs import log_event, pseudonym
from onewindow.infra.metrics import LOCK_ERRORS, LOCK_WAIT_SECONDS

logger = logging.getLogger(__name__)

DEFAULT_KEY_PREFIX = "onewindow"
DEFAULT_LEASE_SECONDS = 3.0
DEFAULT_WAIT_SECONDS = 20.0
DEFAULT_POLL_SECONDS = 0.02
RETRY_FIRST_SECONDS = 0.05
RETRY_MAX_SECONDS = 1.0
# PostgreSQL: server-side keepalives of each lock session (USERSET parameters), so that a host that vanishes
# without closing its sockets loses its locks within about idle + interval * count = 5 s
PG_SESSION_SETTINGS = {
    "application_name": "onewindow-lock",
    "tcp_keepalives_idle": "2",
    "tcp_keepalives_interval": "1",
    "tcp_keepalives_count": "3",
    "tcp_user_timeout": "5000",
    "client_connection_check_interval": "1000",  # PostgreSQL 14+: a waiter whose client died stops waiting
    "idle_in_transaction_session_timeout": "0",
}
PG_CLIENT_KEEPALIVES = {"keepalives": 1, "keepalives_idle": 2, "keepalives_interval": 1, "keepalives_count": 3}
PG_IDLE_CONNECTIONS = 16  # lock connections kept open for the next message (one per held or awaited lock)


@dataclass
class Hold:
    """One message's place in its conversation's queue: a Redis ticket or a PostgreSQL lock session."""

    conversation_id: str
    ticket: int = 0
    key: int = 0
    connection: Any = None
    cursor: Any = None  # psycopg2's asynchronous cursor of the pending lock request (kept referenced)
    held: bool = False
    watchdog: Optional[asyncio.TimerHandle] = field(default=None, repr=False)


class ConnectionLost(Exception):
    """The lock backend's server could not be reached (the original error is the cause)."""


class TicketLost(Exception):
    """A waiting ticket vanished (its lease lapsed while this process stalled, or Redis lost its data)."""


def report_connection_error(operation: str, conversation_id: str, error: BaseException) -> None:
    LOCK_ERRORS.inc()
    log_event(
        logger,
        "lock_store.connection_error",
        level=logging.ERROR,
        exc_info=error,
        operation=operation,
        conversation=pseudonym(conversation_id),
    )


# --- Redis: atomic tickets ------------------------------------------------------------------------------------
# KEYS: 1 the ticket counter, 2 the queue (sorted set, score = ticket), 3 the leases (hash ticket -> expiry ms)
_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) "
_TOUCH = "for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[3]) end "
ENTER_SCRIPT = (
    _NOW + "local ticket = redis.call('INCR', KEYS[1]) "
    "redis.call('ZADD', KEYS[2], ticket, ticket) "
    "redis.call('HSET', KEYS[3], ticket, now + tonumber(ARGV[2])) " + _TOUCH + "return ticket"
)
# ARGV: 1 ticket, 2 lease ms, 3 key ttl ms -> 1 first in line (holds), 0 waiting, -1 ticket lost
TRY_SCRIPT = (
    _NOW + "if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 0 then return -1 end "
    "redis.call('HSET', KEYS[3], ARGV[1], now + tonumber(ARGV[2])) " + _TOUCH + "while true do "
    "local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1] "
    "if not head then return -1 end "
    "if head == ARGV[1] then return 1 end "
    "local expiry = tonumber(redis.call('HGET', KEYS[3], head)) "
    "if expiry and expiry > now then return 0 end "
    "redis.call('ZREM', KEYS[2], head) redis.call('HDEL', KEYS[3], head) end"
)
# ARGV: 1 ticket, 2 lease ms, 3 key ttl ms, 4 "1" for a holder -> 1 refreshed, 2 holder put back at the head of
# an empty queue (Redis lost its data, or the lease lapsed while nobody else came), 0 lost
REFRESH_SCRIPT = (
    _NOW + "if redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then "
    "redis.call('HSET', KEYS[3], ARGV[1], now + tonumber(ARGV[2])) " + _TOUCH + "return 1 end "
    "if ARGV[4] == '1' and redis.call('ZCARD', KEYS[2]) == 0 then "
    "redis.call('ZADD', KEYS[2], 0, ARGV[1]) redis.call('HSET', KEYS[3], ARGV[1], now + tonumber(ARGV[2])) "
    + _TOUCH
    + "return 2 end return 0"
)
# ARGV: 1 ticket -> how many tickets are left; an empty queue's keys are deleted (the counter starts again)
LEAVE_SCRIPT = (
    "redis.call('ZREM', KEYS[2], ARGV[1]) redis.call('HDEL', KEYS[3], ARGV[1]) "
    "local left = redis.call('ZCARD', KEYS[2]) "
    "if left == 0 then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) end return left"
)


class RedisTickets:
    """Atomic tickets in Redis (see the module's docstring)."""

    def __init__(self, url: str, key_prefix: str, lease_seconds: float, poll_seconds: float) -> None:
        import redis
        import redis.asyncio

        self.prefix = key_prefix or DEFAULT_KEY_PREFIX
        self.lease_ms = int(lease_seconds * 1000)
        self.key_ttl_ms = self.lease_ms * 4
        self.poll_seconds = poll_seconds
        timeouts = {"socket_timeout": max(lease_seconds / 3, 0.5), "socket_connect_timeout": max(lease_seconds / 3, 0.5)}
        self.client = redis.asyncio.Redis.from_url(url, **timeouts)
        self.enter_script = self.client.register_script(ENTER_SCRIPT)
        self.try_script = self.client.register_script(TRY_SCRIPT)
        self.leave_script = self.client.register_script(LEAVE_SCRIPT)
        self.connection_errors: Tuple[Type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)
        self.heartbeat = Heartbeat(redis.Redis.from_url(url, **timeouts), self, lease_seconds / 3)

    def keys(self, conversation_id: str) -> List[str]:
        base = f"{self.prefix}:lock:{conversation_id}"
        return [f"{base}:next", f"{base}:queue", f"{base}:leases"]

    async def enter(self, hold: Hold, deadline: float) -> None:
        """Take a ticket (the message's place in the queue); the heartbeat keeps its lease alive."""
        try:
            ticket = await self.enter_script(self.keys(hold.conversation_id), [0, self.lease_ms, self.key_ttl_ms])
        except self.connection_errors as error:
            raise ConnectionLost() from error
        hold.ticket = int(ticket)
        self.heartbeat.track(hold)

    async def wait(self, hold: Hold, deadline: float) -> None:
        """Poll until the ticket is first in line (expired tickets before it are removed by the script)."""
        keys = self.keys(hold.conversation_id)
        while True:
            try:
                state = await self.try_script(keys, [hold.ticket, self.lease_ms, self.key_ttl_ms])
            except self.connection_errors as error:
                raise ConnectionLost() from error
            if state == 1:
                hold.held = True
                self.heartbeat.track(hold)
                return
            if state == -1:
                self.heartbeat.forget(hold)
                hold.ticket = 0
                raise TicketLost()
            if time.monotonic() >= deadline:
                raise LockError(f"Could not acquire lock for conversation_id '{hold.conversation_id}'.")
            await asyncio.sleep(self.poll_seconds)

    async def release(self, hold: Hold) -> None:
        self.heartbeat.forget(hold)
        if hold.ticket:
            await self.leave_script(self.keys(hold.conversation_id), [hold.ticket])

    def abandon(self, hold: Hold) -> None:
        """Stop refreshing the ticket (it lapses within the lease); used for a turn past its lifetime."""
        self.heartbeat.forget(hold)

    async def close(self) -> None:
        self.heartbeat.stop()
        await self.client.close()


class Heartbeat:
    """A daemon thread refreshing the leases of this process's live tickets every `interval` seconds."""

    def __init__(self, client: Any, tickets: RedisTickets, interval: float) -> None:
        self.client = client
        self.tickets = tickets
        self.interval = interval
        self.refresh = client.register_script(REFRESH_SCRIPT)
        self.live: Dict[Tuple[str, int], bool] = {}  # (conversation, ticket) -> holds the lock
        self.guard = threading.Lock()
        self.stopped = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def track(self, hold: Hold) -> None:
        with self.guard:
            self.live[(hold.conversation_id, hold.ticket)] = hold.held
            if self.thread is None:
                self.thread = threading.Thread(target=self.run, name="onewindow-lock-heartbeat", daemon=True)
                self.thread.start()

    def forget(self, hold: Hold) -> None:
        with self.guard:
            self.live.pop((hold.conversation_id, hold.ticket), None)

    def stop(self) -> None:
        self.stopped.set()

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            with self.guard:
                live = list(self.live.items())
            for (conversation_id, ticket), held in live:
                try:
                    args = [ticket, self.tickets.lease_ms, self.tickets.key_ttl_ms, "1" if held else "0"]
                    state = self.refresh(self.tickets.keys(conversation_id), args)
                except Exception as error:  # any failure is reported and retried next beat
                    report_connection_error("heartbeat", conversation_id, error)
                    continue
                if held and state != 1:
                    event = "lock_store.lock_reclaimed" if state == 2 else "lock_store.lock_lost"
                    LOCK_ERRORS.inc()
                    log_event(logger, event, level=logging.ERROR, conversation=pseudonym(conversation_id), ticket=ticket)


# --- PostgreSQL: advisory locks -------------------------------------------------------------------------------
class PostgresAdvisoryLocks:
    """Session advisory locks, one connection per held or awaited lock (see the module's docstring)."""

    def __init__(self, url: str, key_prefix: str) -> None:
        import psycopg2
        import psycopg2.errors

        self.psycopg2 = psycopg2
        self.dsn = url.replace("postgresql+psycopg2://", "postgresql://", 1)
        self.prefix = key_prefix or DEFAULT_KEY_PREFIX
        self.idle: List[Any] = []
        self.timeout_error = psycopg2.errors.LockNotAvailable
        self.connection_errors: Tuple[Type[BaseException], ...] = (psycopg2.OperationalError, psycopg2.InterfaceError, OSError)

    def key(self, conversation_id: str) -> int:
        """The advisory lock's bigint key: a hash of the namespace and the conversation id."""
        digest = hashlib.blake2b(f"{self.prefix}:{conversation_id}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big", signed=True)

    async def wait_ready(self, connection: Any) -> None:
        """Drive psycopg2's asynchronous mode with the event loop's reader and writer callbacks."""
        loop = asyncio.get_running_loop()
        psycopg2 = self.psycopg2
        while True:
            state = connection.poll()
            if state == psycopg2.extensions.POLL_OK:
                return
            ready = loop.create_future()

            def wake(future: asyncio.Future = ready) -> None:
                if not future.done():
                    future.set_result(None)

            descriptor = connection.fileno()
            reading = state == psycopg2.extensions.POLL_READ
            (loop.add_reader if reading else loop.add_writer)(descriptor, wake)
            try:
                await ready
            finally:
                (loop.remove_reader if reading else loop.remove_writer)(descriptor)

    async def connect(self) -> Any:
        if self.idle:
            return self.idle.pop()
        connection = self.psycopg2.connect(self.dsn, async_=1, connect_timeout=5, **PG_CLIENT_KEEPALIVES)
        try:
            await self.wait_ready(connection)
            cursor = connection.cursor()
            cursor.execute("".join(f"SET {name} = '{value}';" for name, value in PG_SESSION_SETTINGS.items()))
            await self.wait_ready(connection)
        except BaseException:
            connection.close()
            raise
        return connection

    async def enter(self, hold: Hold, deadline: float) -> None:
        """Send `pg_advisory_lock` on a lock connection: PostgreSQL queues the message behind earlier ones."""
        hold.key = self.key(hold.conversation_id)
        try:
            hold.connection = await self.connect()
            timeout_ms = max(int((deadline - time.monotonic()) * 1000), 1)
            hold.cursor = cursor = hold.connection.cursor()
            cursor.execute(f"SET lock_timeout = {timeout_ms}; SELECT pg_advisory_lock(%s)", (hold.key,))
        except self.connection_errors as error:
            self.discard(hold)
            raise ConnectionLost() from error

    async def wait(self, hold: Hold, deadline: float) -> None:
        try:
            await self.wait_ready(hold.connection)
        except self.timeout_error as error:
            self.discard(hold)
            raise LockError(f"Could not acquire lock for conversation_id '{hold.conversation_id}'.") from error
        except self.connection_errors as error:
            self.discard(hold)
            raise ConnectionLost() from error
        except BaseException:  # cancelled: the session ends, and with it the wait
            self.discard(hold)
            raise
        hold.held = True
        hold.cursor = None

    async def release(self, hold: Hold) -> None:
        if hold.connection is None:
            return
        try:
            cursor = hold.connection.cursor()
            cursor.execute("SELECT pg_advisory_unlock(%s)", (hold.key,))
            await self.wait_ready(hold.connection)
            unlocked = cursor.fetchone()[0]
        except BaseException:
            self.discard(hold)
            raise
        if not unlocked:
            LOCK_ERRORS.inc()
            log_event(logger, "lock_store.lock_lost", level=logging.ERROR, conversation=pseudonym(hold.conversation_id))
        if len(self.idle) < PG_IDLE_CONNECTIONS and not hold.connection.closed:
            self.idle.append(hold.connection)
        else:
            hold.connection.close()
        hold.connection = None

    def discard(self, hold: Hold) -> None:
        """Close the hold's session: PostgreSQL drops its lock or its place in the queue."""
        if hold.connection is not None:
            try:
                if hold.connection.isexecuting():
                    hold.connection.cancel()
            except Exception:  # the connection is closed next whatever happens
                pass
            hold.connection.close()
            hold.connection = None
            hold.cursor = None

    def abandon(self, hold: Hold) -> None:
        self.discard(hold)

    async def close(self) -> None:
        for connection in self.idle:
            connection.close()
        self.idle.clear()


# --- the store ------------------------------------------------------------------------------------------------
class OrderedLockStore(LockStore):
    """Rasa's lock store interface over atomic Redis tickets or PostgreSQL advisory locks (the URL's scheme)."""

    def __init__(
        self,
        endpoint_config: Optional[EndpointConfig] = None,
        *,
        url: str = "",
        key_prefix: str = "",
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        wait_seconds: float = DEFAULT_WAIT_SECONDS,
        poll_seconds: float = DEFAULT_POLL_SECONDS,
    ) -> None:
        options: Dict[str, Any] = dict(endpoint_config.kwargs) if endpoint_config else {}
        url = url or (endpoint_config.url if endpoint_config and endpoint_config.url else "")
        key_prefix = str(options.get("key_prefix", key_prefix) or "")
        lease_seconds = float(options.get("lease_seconds", lease_seconds))
        self.wait_seconds = float(options.get("wait_seconds", wait_seconds))
        poll_seconds = float(options.get("poll_seconds", poll_seconds))
        scheme = urlsplit(url).scheme
        self.backend: Any
        if scheme in ("redis", "rediss", "unix"):
            self.backend = RedisTickets(url, key_prefix, lease_seconds, poll_seconds)
        elif scheme in ("postgresql", "postgres", "postgresql+psycopg2"):
            self.backend = PostgresAdvisoryLocks(url, key_prefix)
        else:
            raise ValueError(f"OrderedLockStore: a redis:// or postgresql:// url, not {scheme or 'none'}")
        self.entries: Dict[str, Tuple[asyncio.Lock, int]] = {}  # conversation -> local entry FIFO, users
        super().__init__()

    @asynccontextmanager
    async def lock(
        self, conversation_id: str, lock_lifetime: float = LOCK_LIFETIME, wait_time_in_seconds: float = 1
    ) -> AsyncGenerator[TicketLock, None]:
        """Hold `conversation_id`'s lock for the block: wait (at most `wait_seconds`) behind the messages that
        arrived before, across every instance; give it up after `lock_lifetime` seconds. `wait_time_in_seconds`
        (Rasa's poll interval) is not used: waiters poll every `poll_seconds` or wait in PostgreSQL's queue."""
        started = time.monotonic()
        hold = await self.acquire(conversation_id, started + self.wait_seconds)
        LOCK_WAIT_SECONDS.observe(time.monotonic() - started)
        hold.watchdog = asyncio.get_running_loop().call_later(lock_lifetime, self.overrun, hold, lock_lifetime)
        try:
            yield TicketLock(conversation_id)
        finally:
            hold.watchdog.cancel()
            await self.release(hold)

    async def acquire(self, conversation_id: str, deadline: float) -> Hold:
        """Queue a message and wait for its turn; connection failures are reported and retried until `deadline`."""
        delay = RETRY_FIRST_SECONDS
        hold = Hold(conversation_id)
        while True:
            try:
                if not (hold.ticket or hold.connection is not None):  # not in the queue (yet, or any more)
                    async with self.entry(conversation_id):
                        await self.backend.enter(hold, deadline)
                await self.backend.wait(hold, deadline)
                return hold
            except (ConnectionLost, TicketLost) as problem:
                # a Redis ticket keeps its place through a lost connection; a lost ticket or session queues again
                if isinstance(problem, ConnectionLost):
                    report_connection_error("acquire", conversation_id, problem.__cause__ or problem)
                else:
                    log_event(logger, "lock_store.ticket_lost", level=logging.WARNING, conversation=pseudonym(conversation_id))
                if time.monotonic() + delay >= deadline:
                    LOCK_ERRORS.inc()
                    self.backend.abandon(hold)
                    raise LockError(f"Could not acquire lock for conversation_id '{conversation_id}'.") from problem
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_SECONDS)
            except LockError:
                LOCK_ERRORS.inc()
                await self.release(hold)
                log_event(logger, "lock_store.wait_exceeded", level=logging.WARNING, conversation=pseudonym(conversation_id))
                raise
            except BaseException:
                await asyncio.shield(self.release(hold))
                raise

    async def release(self, hold: Hold) -> None:
        """Leave the queue; a failure is reported and retried briefly (the lease or the session ends it anyway)."""
        delay = RETRY_FIRST_SECONDS
        for _attempt in range(4):
            try:
                await self.backend.release(hold)
                return
            except self.backend.connection_errors as error:
                report_connection_error("release", hold.conversation_id, error)
                await asyncio.sleep(delay)
                delay *= 2
        self.backend.abandon(hold)

    def overrun(self, hold: Hold, lifetime: float) -> None:
        """A turn held its lock longer than `lifetime`: let the next message in (as Rasa's tickets expire)."""
        LOCK_ERRORS.inc()
        log_event(
            logger,
            "lock_store.lifetime_exceeded",
            level=logging.ERROR,
            conversation=pseudonym(hold.conversation_id),
            seconds=lifetime,
        )
        self.backend.abandon(hold)

    @asynccontextmanager
    async def entry(self, conversation_id: str) -> AsyncGenerator[None, None]:
        """This instance's FIFO for a conversation's entry step (taking the ticket, sending the lock request)."""
        lock, users = self.entries.get(conversation_id, (asyncio.Lock(), 0))
        self.entries[conversation_id] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self.entries[conversation_id]
            if users <= 1:
                del self.entries[conversation_id]
            else:
                self.entries[conversation_id] = (lock, users - 1)

    async def close(self) -> None:
        """Close the backend's connections (tests and benchmarks; Rasa keeps its store for the process's life)."""
        await self.backend.close()
