"""Lock store candidates in one run: Rasa's RedisLockStore, OrderedLockStore on Redis, OrderedLockStore on PostgreSQL.

Each candidate gets the same work from N worker processes (asyncio, `--concurrency` messages in flight each): `--turns` messages per
process on ONE conversation (every process contends for the same lock), then on MANY conversations (each message picks
one of `--conversations` at random). A message logs when it asks, enters and leaves (an RPUSH to a Redis list of its
own, with the wall clock), holds the lock `--hold-ms`, and measures its acquire time (asking to entering: the wait
behind the others plus the store's own work) and its release time. From the merged log: throughput (messages per
second of the phase), overlaps (a message entering while another holds the same conversation) and order violations
(a message entering while one of the same conversation that asked more than `--order-slack-ms` before it still
waits; the slack covers the gap between logging the ask and reaching the store). Rasa's store polls every
`--poll-ms` here (Rasa's processor polls once a second, which only makes its waits longer).

Needs the machine's Redis (127.0.0.1:6379, keys under a prefix of the run's own, deleted after) and PostgreSQL
(advisory locks only; nothing is created). Prints the figures, writes bench/results/lock_stores-<time>.json and
docs/results/lock_stores.md.

    make bench-lock-stores     # or: .venv/bin/python -m bench.lock_stores [--processes 4 --turns 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import random
import statistics
import time
import uuid
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import redis

from bench.summary import ROOT, Table, write_summary

REDIS_URL = "redis://127.0.0.1:6379/0"
POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
CANDIDATES = ("rasa-redis", "ours-redis", "ours-postgresql")


def make_store(candidate: str, prefix: str, poll_seconds: float) -> Any:
    if candidate == "rasa-redis":
        from rasa.core.lock_store import RedisLockStore

        return RedisLockStore(host="127.0.0.1", port=6379, db=0, key_prefix=prefix.replace("-", ""))
    from onewindow.rasa_plugins.lock_store import OrderedLockStore

    url = REDIS_URL if candidate == "ours-redis" else POSTGRES_URL
    return OrderedLockStore(url=url, key_prefix=prefix, wait_seconds=120, poll_seconds=poll_seconds)


def worker(
    candidate: str, prefix: str, log_key: str, worker_id: int, conversations: List[str], args: Dict[str, Any], start: Any
) -> None:
    """One process: `turns` messages, `concurrency` at a time (like a Rasa instance serving several messages at once),
    once every process is ready; times and log entries go to Redis."""

    async def go() -> None:
        store, log = make_store(candidate, prefix, args["poll_seconds"]), redis.Redis.from_url(REDIS_URL)
        start.wait(120)
        chooser = random.Random(worker_id)
        timings: List[Tuple[float, float]] = []
        turns = iter(range(args["turns"]))

        async def sender() -> None:
            for turn in turns:
                await message(turn)

        async def message(turn: int) -> None:
            conversation = chooser.choice(conversations)
            name = f"{worker_id}.{turn}"
            log.rpush(log_key, f"ask {conversation} {name} {time.time()}")
            asked = time.perf_counter()
            async with store.lock(conversation, args["lifetime_seconds"], args["poll_seconds"]):
                entered = time.perf_counter()
                log.rpush(log_key, f"in {conversation} {name} {time.time()}")
                await asyncio.sleep(args["hold_seconds"])
                log.rpush(log_key, f"out {conversation} {name} {time.time()}")
                leaving = time.perf_counter()
            timings.append((entered - asked, time.perf_counter() - leaving))

        try:
            await asyncio.gather(*(sender() for _lane in range(args["concurrency"])))
        finally:  # a LockError ends the process, after the timings of the messages it had
            log.rpush(f"{log_key}:timings", json.dumps(timings))
            if hasattr(store, "close"):
                await store.close()

    asyncio.run(go())


def analyse(entries: List[str], slacks: List[float]) -> Dict[str, int]:
    """Overlaps, and order violations for each slack (seconds), in a merged ask/in/out log."""
    holders: Dict[str, set] = {}
    waiting: Dict[str, Dict[str, float]] = {}
    counts = {"overlaps": 0, **{f"order_violations_{slack * 1000:g}ms": 0 for slack in slacks}}
    for entry in entries:
        kind, conversation, name, stamp = entry.split(" ")
        if kind == "ask":
            waiting.setdefault(conversation, {})[name] = float(stamp)
        elif kind == "in":
            queue = waiting.get(conversation, {})
            asked = queue.pop(name, float(stamp))
            for slack in slacks:
                counts[f"order_violations_{slack * 1000:g}ms"] += any(other < asked - slack for other in queue.values())
            held = holders.setdefault(conversation, set())
            counts["overlaps"] += bool(held)
            held.add(name)
        else:
            holders[conversation].discard(name)
    return counts


def stopped(row: Dict[str, Any]) -> str:
    return f"{row['failed_processes']} / {row['unfinished_processes']}"


def percentile(values: List[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(int(share * len(ordered)), len(ordered) - 1)] if ordered else 0.0


def run_phase(candidate: str, phase: str, args: argparse.Namespace) -> Dict[str, Any]:
    prefix = f"owbench{uuid.uuid4().hex[:8]}"
    log_key = f"{prefix}:log"
    count = 1 if phase == "one conversation" else args.conversations
    conversations = [f"{prefix}-c{number}" for number in range(count)]
    options = {"turns": args.turns, "hold_seconds": args.hold_ms / 1000, "poll_seconds": args.poll_ms / 1000}
    options["lifetime_seconds"], options["concurrency"] = args.lifetime, args.concurrency
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(args.processes)
    processes = [
        context.Process(target=worker, args=(candidate, prefix, log_key, number, conversations, options, start))
        for number in range(args.processes)
    ]
    client = redis.Redis.from_url(REDIS_URL)
    started = time.perf_counter()
    for process in processes:
        process.start()
    for process in processes:
        process.join(max(started + args.phase_seconds - time.perf_counter(), 0.1))
    stuck = [process for process in processes if process.is_alive()]
    for process in stuck:
        process.kill()
        process.join()
    wall = time.perf_counter() - started
    failed = sum(process.exitcode != 0 for process in processes)
    entries = [entry.decode() for entry in client.lrange(log_key, 0, -1)]
    timings = [pair for raw in client.lrange(f"{log_key}:timings", 0, -1) for pair in json.loads(raw)]
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    for key in client.scan_iter(f"*{prefix}*"):  # Rasa's store puts its prefix after its own
        client.delete(key)
    # the first message of each process waits for the others to start: the rate counts from the first entry
    ins = sorted(float(entry.split(" ")[3]) for entry in entries if entry.startswith("in "))
    outs = sorted(float(entry.split(" ")[3]) for entry in entries if entry.startswith("out "))
    span = (outs[-1] - ins[0]) if ins and outs else wall
    acquire, release = [pair[0] for pair in timings], [pair[1] for pair in timings]
    return {
        "candidate": candidate,
        "phase": phase,
        "processes": args.processes,
        "messages": len(ins),
        "failed_processes": failed,
        "unfinished_processes": len(stuck),
        "throughput": round(len(ins) / span, 1) if span > 0 else None,
        "acquire_p50_ms": round(percentile(acquire, 0.5) * 1000, 1),
        "acquire_p95_ms": round(percentile(acquire, 0.95) * 1000, 1),
        "release_p50_ms": round(percentile(release, 0.5) * 1000, 2),
        "release_p95_ms": round(percentile(release, 0.95) * 1000, 2),
        "acquire_mean_ms": round(statistics.fmean(acquire) * 1000, 1) if acquire else None,
        **analyse(entries, [0.0, args.order_slack_ms / 1000, 4 * args.order_slack_ms / 1000]),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=4, help="worker processes (default 4)")
    parser.add_argument("--turns", type=int, default=60, help="messages per process in each phase (default 60)")
    parser.add_argument("--concurrency", type=int, default=2, help="messages each process has in flight (default 2)")
    parser.add_argument("--conversations", type=int, default=64, help="conversations of the many-conversations phase")
    parser.add_argument("--hold-ms", type=float, default=5.0, help="how long a message holds the lock (default 5)")
    parser.add_argument("--poll-ms", type=float, default=20.0, help="waiters' poll interval (ours on Redis; Rasa's)")
    parser.add_argument("--order-slack-ms", type=float, default=5.0, help="asks closer than this are not ordered (5)")
    parser.add_argument("--lifetime", type=float, default=10.0, help="lock lifetime, s (Rasa's default: 60)")
    parser.add_argument("--phase-seconds", type=float, default=60.0, help="processes still running then are killed")
    parser.add_argument("--only", choices=CANDIDATES, action="append", help="measure only these candidates")
    args = parser.parse_args(argv)
    rows: List[Dict[str, Any]] = []
    for phase in ("one conversation", "many conversations"):
        for candidate in args.only or CANDIDATES:
            row = run_phase(candidate, phase, args)
            rows.append(row)
            print(json.dumps(row), flush=True)
    folder = ROOT / "bench" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    record = folder / f"lock_stores-{time.strftime('%Y%m%d-%H%M%S')}.json"
    record.write_text(json.dumps({"arguments": vars(args), "rows": rows}, indent=2))
    header = ["phase", "candidate", "messages", "msg/s", "acquire p50 ms", "acquire p95 ms", "release p50 ms"]
    header += ["release p95 ms", "overlaps", "order violations (0 / slack / 4 x slack)", "processes failed / unfinished"]
    keys = ["phase", "candidate", "messages", "throughput", "acquire_p50_ms", "acquire_p95_ms", "release_p50_ms"]
    slack = f"{args.order_slack_ms:g}"
    keys += ["release_p95_ms", "overlaps", "order_violations_0ms", f"order_violations_{slack}ms"]
    keys += [f"order_violations_{4 * args.order_slack_ms:g}ms"]
    table = Table(
        f"{args.processes} processes, {args.turns} messages each per phase ({args.concurrency} at a time), "
        f"lock held {args.hold_ms:g} ms",
        header,
        [[row[key] for key in keys[:-3]] + [" / ".join(str(row[key]) for key in keys[-3:])] + [stopped(row)] for row in rows],
    )
    print(table.markdown())
    notes = [
        f"Rasa's RedisLockStore polls every {args.poll_ms:g} ms here (Rasa's processor: 1 s); OrderedLockStore on Redis "
        f"polls every {args.poll_ms:g} ms; on PostgreSQL waiters wait in the server's lock queue. Lock lifetime "
        f"{args.lifetime:g} s (Rasa's 60 s): a ticket Rasa's store loses holds its conversation that long.",
        f"Processes still running {args.phase_seconds:g} s after a phase began are killed (unfinished); a failed "
        "process ended with an error (a LockError).",
        "Order violations: a message entered while one of its conversation that asked earlier still waited, counted "
        f"with no slack, {slack} ms and {4 * args.order_slack_ms:g} ms of slack (an ask is logged just before the store "
        "is reached: under load that gap makes a few violations with no slack whatever the store does). Overlaps: a "
        "message entered while another held its conversation.",
    ]
    summary = write_summary("lock_stores", "Lock store candidates", [table], record=record, notes=notes)
    print(f"==> {record.relative_to(ROOT)}, {Path(summary).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
