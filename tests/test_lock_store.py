"""OrderedLockStore's Redis backend on the machine's real Redis (a key prefix of the test's own), across OS processes.

One conversation's holders never overlap, whichever process they run in; messages queued one after another get
the lock in that order; a process killed with SIGKILL while it holds the lock stops blocking the conversation
once its lease lapses (seconds), where Rasa's RedisLockStore keeps its ticket for 60 s.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import signal
import uuid
from typing import Iterator, List

import pytest
import redis

from onewindow.rasa_plugins.lock_store import OrderedLockStore

REDIS_URL = "redis://127.0.0.1:6379/0"


def redis_up() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except redis.RedisError:
        return False


pytestmark = pytest.mark.skipif(not redis_up(), reason="needs the machine's Redis on 127.0.0.1:6379")


@pytest.fixture
def prefix() -> Iterator[str]:
    name = f"owtest-{uuid.uuid4().hex[:8]}"
    yield name
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{name}:*"):
        client.delete(key)


def store(prefix: str, wait_seconds: float = 30.0) -> OrderedLockStore:
    return OrderedLockStore(url=REDIS_URL, key_prefix=prefix, lease_seconds=1.5, wait_seconds=wait_seconds)


def hold_turns(prefix: str, conversation: str, worker: int, turns: int, log_key: str) -> None:
    """In a process of its own: take the lock `turns` times and log entry and exit to a Redis list."""

    async def go() -> None:
        locks, log = store(prefix), redis.Redis.from_url(REDIS_URL)
        for turn in range(turns):
            async with locks.lock(conversation, 60):
                log.rpush(log_key, f"in {worker} {turn}")
                await asyncio.sleep(0.005)
                log.rpush(log_key, f"out {worker} {turn}")
        await locks.close()

    asyncio.run(go())


def test_holders_in_several_processes_never_overlap(prefix: str) -> None:
    conversation, log_key = f"c-{uuid.uuid4().hex[:6]}", f"{prefix}:log"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=hold_turns, args=(prefix, conversation, n, 15, log_key)) for n in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(120)
        assert process.exitcode == 0
    log = [entry.decode() for entry in redis.Redis.from_url(REDIS_URL).lrange(log_key, 0, -1)]
    assert len(log) == 4 * 15 * 2
    for entered, left in zip(log[::2], log[1::2]):  # every entry is followed by the same holder's exit
        assert entered.startswith("in ") and left == "out " + entered[3:]


def test_messages_get_the_lock_in_the_order_they_arrived(prefix: str) -> None:
    async def go() -> List[int]:
        locks, order = store(prefix), []

        async def message(number: int) -> None:
            await asyncio.sleep(number * 0.01)  # arrives 10 ms after the one before
            async with locks.lock("one-conversation", 60):
                order.append(number)
                await asyncio.sleep(0.03)  # longer than the gap: later messages queue behind it

        await asyncio.gather(*(message(n) for n in range(12)))
        await locks.close()
        return order

    assert asyncio.run(go()) == list(range(12))


def hold_forever(prefix: str, conversation: str, ready: "multiprocessing.synchronize.Event") -> None:
    async def go() -> None:
        async with store(prefix).lock(conversation, 600):
            ready.set()
            await asyncio.sleep(3600)

    asyncio.run(go())


def test_a_killed_holder_frees_the_conversation_within_seconds(prefix: str) -> None:
    conversation = f"c-{uuid.uuid4().hex[:6]}"
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    holder = context.Process(target=hold_forever, args=(prefix, conversation, ready))
    holder.start()
    assert ready.wait(60)
    os.kill(holder.pid or 0, signal.SIGKILL)
    holder.join(10)

    async def take() -> bool:
        locks = store(prefix, wait_seconds=15.0)  # LockError after 15 s; Rasa's store keeps a dead ticket 60 s
        async with locks.lock(conversation, 60):
            taken = True
        await locks.close()
        return taken

    assert asyncio.run(take())
