"""OneWindow across hosts (network namespaces, harness/hosts.py): scaling from one app host to two, against the stock
`rasa init` assistant on the same harness, and a soak.

For OneWindow with one and with two app hosts, then the stock assistant with one and with two (its own `rasa run`,
Rasa's SQL tracker store on the same PostgreSQL host and Rasa's Redis lock store, HAProxy in front, checked on `/`):

- closed loop: `--conversations` conversations at once (each sends its next message once answered) for
  `--messages` messages: messages per second and p50/p95/p99 turn latency;
- open-loop ramp: messages offered at fixed rates (`--rates`, `--step-seconds` each, whatever the answers'
  pace), each rate's p95 and losses; the rate sustained is the highest with p95 at most 500 ms and every message
  answered. The ramp stops at the first rate whose p95 exceeds 4 s.

The stock assistant is made with `rasa init --no-prompt` (which trains it) once, in var/bench/stock-assistant/ (not in
git). `--soak SECONDS` instead runs OneWindow on two app hosts at `--soak-rate` messages per second for that long,
samples the resident memory of every process of every host each minute, and checks the bound SOAK_BOUND.

    make bench-multihost       # or: .venv/bin/python -m bench.multihost [--skip-reference] [--soak 600]

Full figures: bench/results/multihost.json (and multihost-soak.json); summary: docs/results/multihost.md.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Deque, Dict, Iterator, List, Optional, Sequence

import aiohttp

from bench.rest_load import STOCK_FLOW
from bench.summary import ROOT, SUMMARIES, Table, write_summary
from harness.conversations import ANSWERED, CLIENT_TIMEOUT, Load, Outcome, Turn, scripts, send, tally
from harness.hosts import Topology, sweep_stale
from onewindow.processes import RASA

RESULTS = Path(__file__).resolve().parent / "results"
STOCK_PROJECT = ROOT / "var" / "bench" / "stock-assistant"
TARGET_P95_MS = 500.0
GIVE_UP_P95_MS = 4000.0
SOAK_SAMPLE_SECONDS = 60.0
# the soak's bound: from the first sample (after a minute of load) to the last, no process's resident memory grows
# by more than this many MB (Rasa's and the action server's caches fill in the first minutes, then stay)
SOAK_BOUND_MB = 64


def percentile(values: Sequence[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else 0.0


def latency_figures(outcomes: Sequence[Outcome], seconds: float) -> Dict[str, float]:
    answered = [o.seconds * 1000 for o in outcomes if o.kind == ANSWERED]
    return {
        "messages": len(outcomes),
        "answered": len(answered),
        "seconds": round(seconds, 1),
        "messages_per_second": round(len(answered) / seconds, 1) if seconds else 0.0,
        "p50_ms": round(percentile(answered, 50), 1),
        "p95_ms": round(percentile(answered, 95), 1),
        "p99_ms": round(percentile(answered, 99), 1),
    }


def stock_scripts(prefix: str, conversations: int, turns: int) -> List[List[Turn]]:
    """The stock assistant's conversations: its own flow (any answer counts: it has no service names to check)."""
    flow = itertools.cycle(STOCK_FLOW)
    return [[Turn(f"{prefix}-{c}", i, next(flow), "") for i in range(turns)] for c in range(conversations)]


ScriptMaker = Callable[[str, int, int], List[List[Turn]]]


def closed_loop(topology: Topology, make: ScriptMaker, conversations: int, messages: int, prefix: str) -> Dict[str, float]:
    turns = max(1, messages // conversations)
    started = time.monotonic()
    outcomes = Load(topology.url, make(prefix, conversations, turns)).run()
    figures = latency_figures(outcomes, time.monotonic() - started)
    return {
        **figures,
        "conversations": conversations,
        **{f"lost_{k}": n for k, n in tally(outcomes).items() if k != ANSWERED and n},
    }


async def offered(url: str, rate: float, seconds: float, conversations: Iterator[List[Turn]]) -> List[Outcome]:
    """Send `rate` messages per second for `seconds`, each the next turn of an idle conversation (new ones as needed),
    whether or not earlier messages were answered (open loop); latency counts from the scheduled moment."""
    idle: Deque[Iterator[Turn]] = deque()
    outcomes: List[Outcome] = []

    async def one(session: aiohttp.ClientSession, script: Iterator[Turn], due: float) -> None:
        turn = next(script, None)
        if turn is None:
            script = iter(next(conversations))
            turn = next(script)
        outcome = await send(session, url, turn)
        outcomes.append(Outcome(outcome.turn, due, outcome.done, outcome.kind, outcome.status, outcome.detail))
        idle.append(script)

    timeout = aiohttp.ClientTimeout(total=CLIENT_TIMEOUT)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
        start, tasks = time.monotonic(), []
        for n in itertools.count():
            due = start + n / rate
            if due - start >= seconds:
                break
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            script = idle.popleft() if idle else iter(next(conversations))
            tasks.append(asyncio.create_task(one(session, script, due)))
        await asyncio.gather(*tasks)
    return outcomes


def conversation_source(make: ScriptMaker, prefix: str) -> Iterator[List[Turn]]:
    """New conversations of 10 turns, one at a time, never a sender twice."""
    for batch in itertools.count():
        yield from make(f"{prefix}-{batch}", 20, 10)


def ramp(topology: Topology, make: ScriptMaker, rates: Sequence[float], step_seconds: float, prefix: str) -> List[Dict]:
    steps = []
    source = conversation_source(make, prefix)
    for rate in rates:
        outcomes = asyncio.run(offered(topology.url, rate, step_seconds, source))
        lost = {k: n for k, n in tally(outcomes).items() if k != ANSWERED and n}
        step: Dict[str, Any] = {"offered_per_second": rate, **latency_figures(outcomes, step_seconds), "lost": lost}
        steps.append(step)
        print(
            f"    offered {rate:>5} msg/s: p50 {step['p50_ms']:>7} ms, p95 {step['p95_ms']:>7} ms, lost {lost or 0}", flush=True
        )
        if step["p95_ms"] > GIVE_UP_P95_MS:
            break
    return steps


def sustained(steps: Sequence[Dict]) -> float:
    """The highest offered rate with p95 at most TARGET_P95_MS and nothing lost (0 when none)."""
    good = [s["offered_per_second"] for s in steps if s["p95_ms"] <= TARGET_P95_MS and not s["lost"]]
    return max(good, default=0.0)


def stock_project() -> Path:
    """The `rasa init` assistant, created and trained once (var/bench/stock-assistant/)."""
    if not list((STOCK_PROJECT / "models").glob("*.tar.gz")):
        print("==> rasa init --no-prompt (creates and trains the stock assistant, about 2 minutes)", flush=True)
        STOCK_PROJECT.mkdir(parents=True, exist_ok=True)
        subprocess.run([RASA, "init", "--no-prompt", "--init-dir", str(STOCK_PROJECT)], check=True, capture_output=True)
    return STOCK_PROJECT


def measure(assistant: str, apps: int, stock: Optional[Path], args: argparse.Namespace) -> Dict:
    make: ScriptMaker = stock_scripts if stock else scripts
    print(f"==> {assistant}, {apps} app host{'s' if apps > 1 else ''}", flush=True)
    topology = Topology(apps=apps, stock=stock)
    try:
        topology.start()
        Load(topology.url, make("warm", 4, 5)).run()
        closed = closed_loop(topology, make, args.conversations, args.messages, "closed")
        print(f"    closed loop, {args.conversations} conversations: {closed}", flush=True)
        steps = ramp(topology, make, args.rates, args.step_seconds, "ramp")
        memory = {name: round(rss / 2**20) for name, rss in topology.memory().items()}
    finally:
        topology.stop()
    result = {
        "assistant": assistant,
        "app_hosts": apps,
        "closed_loop": closed,
        "ramp": steps,
        "sustained_per_second": sustained(steps),
        "load_average": round(os.getloadavg()[1], 1),  # the machine is shared: its 5 minutes' load (2 cores)
    }
    print(
        f"    sustained with p95 <= {TARGET_P95_MS:.0f} ms: {result['sustained_per_second']} msg/s; memory {memory} MB",
        flush=True,
    )
    return {**result, "rss_mb": memory}


def scaling_tables(results: Sequence[Dict]) -> List[Table]:
    closed = [
        [r["assistant"], r["app_hosts"], r["closed_loop"]["conversations"], r["closed_loop"]["messages"]]
        + [r["closed_loop"][k] for k in ("messages_per_second", "p50_ms", "p95_ms", "p99_ms")]
        + [r["sustained_per_second"], r.get("load_average")]
        for r in results
    ]
    header = ["assistant", "app hosts", "conversations", "messages", "msg/s", "p50 ms", "p95 ms", "p99 ms"]
    header += [f"sustained msg/s (open loop, p95 <= {TARGET_P95_MS:.0f} ms)", "machine load (5 min) after"]
    ramps = [
        [r["assistant"], r["app_hosts"], s["offered_per_second"], s["answered"], s["p50_ms"], s["p95_ms"], s["p99_ms"]]
        + [", ".join(f"{k} {n}" for k, n in s["lost"].items()) or "none"]
        for r in results
        for s in r["ramp"]
    ]
    ramp_header = ["assistant", "app hosts", "offered msg/s", "answered", "p50 ms", "p95 ms", "p99 ms", "lost"]
    return [
        Table("Closed loop and the rate sustained", header, closed),
        Table("Open-loop ramp (latency from the moment each message was due)", ramp_header, ramps),
    ]


def soak(seconds: float, rate: float) -> Dict:
    """OneWindow on two app hosts at `rate` messages per second for `seconds`, memory sampled every minute."""
    topology = Topology(apps=2)
    samples: List[Dict] = []
    outcomes: List[Outcome] = []
    try:
        topology.start()
        source = conversation_source(scripts, "soak")
        started = time.monotonic()
        chunks = max(1, round(seconds / SOAK_SAMPLE_SECONDS))
        for _ in range(chunks):
            outcomes += asyncio.run(offered(topology.url, rate, seconds / chunks, source))
            sample = {"minute": round((time.monotonic() - started) / 60, 1), "load": round(os.getloadavg()[0], 1)}
            sample.update({name: round(rss / 2**20, 1) for name, rss in topology.memory().items()})
            samples.append(sample)
            print(f"    {sample}", flush=True)
        elapsed = time.monotonic() - started
    finally:
        topology.stop()
    names = sorted({k for s in samples for k in s if k not in ("minute", "load")})
    growth = {name: round(samples[-1].get(name, 0) - samples[0].get(name, 0), 1) for name in names}
    figures = latency_figures(outcomes, elapsed)
    lost = {k: n for k, n in tally(outcomes).items() if k != ANSWERED and n}
    return {"seconds": seconds, "rate": rate, **figures, "lost": lost, "samples": samples, "growth_mb": growth}


def soak_tables(record: Dict) -> List[Table]:
    names = sorted(record["growth_mb"])
    rows = [[s["minute"], s["load"], *(s.get(name) for name in names)] for s in record["samples"]]
    rows.append(["growth", None, *(record["growth_mb"][name] for name in names)])
    caption = (
        f"Soak: {record['rate']} msg/s for {record['seconds']:.0f} s, two app hosts: {record['answered']} of "
        f"{record['messages']} answered, p95 {record['p95_ms']} ms; resident memory (MB) of every process each minute"
    )
    return [Table(caption, ["minute", "machine load (1 min)", *names], rows)]


def summarise_soak(record: Dict, notes: Sequence[str] = ()) -> bool:
    """docs/results/multihost-soak.md from the soak's record; whether it kept within the bound."""
    worst = max(record["growth_mb"].values())
    within = worst <= SOAK_BOUND_MB and not record["lost"]
    bound = f"bound: no process grows by more than {SOAK_BOUND_MB} MB from the first minute to the last, nothing lost"
    verdict = f"{'within' if within else 'OUTSIDE'} the bound (largest growth {worst} MB; lost {record['lost'] or 'none'})"
    print(f"soak: {verdict}")
    with tempfile.TemporaryDirectory() as scratch:  # the summary is named after this bench, its file after the soak
        written = write_summary(
            "multihost",
            "Multi-host soak",
            soak_tables(record),
            RESULTS / "multihost-soak.json",
            [bound, verdict, *notes],
            Path(scratch),
        )
        shutil.move(str(written), SUMMARIES / "multihost-soak.md")
    return within


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conversations", type=int, default=40, help="closed loop: conversations at once")
    parser.add_argument("--messages", type=int, default=1200, help="closed loop: messages in all")
    parser.add_argument(
        "--rates", type=lambda text: [float(r) for r in text.split(",")], default=[10, 20, 30, 40, 50, 60, 80, 100]
    )
    parser.add_argument("--step-seconds", type=float, default=15.0, help="each rate of the ramp this long")
    parser.add_argument("--skip-reference", action="store_true", help="leave out the stock rasa init assistant")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds: only the soak, memory sampled every minute")
    parser.add_argument("--soak-rate", type=float, default=10.0, help="messages per second during the soak")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("network namespaces need root")
    sweep_stale()
    RESULTS.mkdir(exist_ok=True)
    if args.soak:
        record = {"when": time.strftime("%Y-%m-%d %H:%M"), "bound_mb": SOAK_BOUND_MB, **soak(args.soak, args.soak_rate)}
        (RESULTS / "multihost-soak.json").write_text(json.dumps(record, indent=2))
        return 0 if summarise_soak(record) else 1
    results = [measure("OneWindow", apps, None, args) for apps in (1, 2)]
    if not args.skip_reference:
        project = stock_project()
        results += [measure("stock `rasa init`", apps, project, args) for apps in (1, 2)]
    (RESULTS / "multihost.json").write_text(json.dumps({"when": time.strftime("%Y-%m-%d %H:%M"), "results": results}, indent=2))
    summarise(results)
    return 0


def summarise(results: Sequence[Dict]) -> None:
    """docs/results/multihost.md from the scaling results."""
    notes = [
        "Hosts are network namespaces on one 2-core machine: two app hosts share the same two cores, so the second host "
        "adds a process, not CPU; the figures show the harness and the ordering machinery, not a second machine's capacity.",
        "OneWindow: HAProxy on the edge, Rasa + action server per app host (action calls through HAProxy), tracker store on "
        "PostgreSQL and the OrderedLockStore on Redis on the data host. Stock: `rasa run` with Rasa's SQL tracker store and "
        "Redis lock store on the same data host, no action server.",
    ]
    write_summary("multihost", "OneWindow across hosts: scaling", scaling_tables(results), RESULTS / "multihost.json", notes)


if __name__ == "__main__":
    sys.exit(main())
