"""Load benchmark over the REST channel: OneWindow against a stock `rasa init` assistant.

Drives each running stack with 1 and with 20 concurrent conversations of mixed flows and
prints turn latency (p50/p95/p99), messages per second and the peak memory (RSS) of each
server process. The stock assistant is created with `rasa init` in a temporary folder and
trained once per run (about 2 minutes); pass --skip-reference to leave it out. The figures go to
bench/results/rest_load.json and their summary to docs/results/rest_load.md.

OneWindow runs as `make run` starts it: the Rasa instances behind HAProxy (onewindow/infra/haproxy.py);
`--rounds` measures that many fresh stacks one after the other (the spread between them is the machine's noise);
`--lock-store redis://...` gives the instances a shared lock store, so HAProxy spreads messages without stickiness.

    make bench              # or: .venv/bin/python -m bench.rest_load [--turns 2000] [--rounds 2 --skip-reference]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import aiohttp

from bench.summary import Table, write_summary
from harness.stack import Stack, free_port

RESULTS = Path(__file__).resolve().parent / "results"

QUESTION_FLOW = [
    "hello",
    "what documents do I need for a passport renewal",
    "how much is it",
    "how long does it take",
    "can I do it online",
    "thanks",
]
LIFE_EVENT_FLOW = [
    "hi",
    "I just had a baby",
    "what do I need for birth registration",
    "where is the north service centre",
    "when is it open",
    "bye",
]
OFFICE_FLOW = [
    "where can I get an id card renewal",
    "is the central service centre open on saturday",
    "my father passed away",
    "tell me about the funeral subsidy",
    "goodbye",
]
STOCK_FLOW = ["hello", "I am feeling sad", "yes", "great", "are you a bot?", "bye"]


@dataclass
class Sampler:
    """Peak resident memory of some processes, sampled in a thread."""

    pids: Dict[str, int]
    peak: Dict[str, int] = field(default_factory=dict)
    running: bool = True

    def start(self) -> "Sampler":
        threading.Thread(target=self._loop, daemon=True).start()
        return self

    def _loop(self) -> None:
        while self.running:
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak.get(name, 0), rss_bytes(pid))
            time.sleep(0.2)


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


async def booking_flow(session: aiohttp.ClientSession, url: str, sender: str, spread: int, latencies: List[float]) -> None:
    """A full booking, pressing the buttons the assistant offers (spread over days and times)."""
    answer = await say(session, url, sender, "I want to book an appointment for a passport renewal", latencies)
    for wanted in ('"office"', '"date"', '"time"'):
        buttons = [b["payload"] for m in answer for b in m.get("buttons", []) if wanted in b["payload"]]
        if not buttons:
            return
        answer = await say(session, url, sender, buttons[spread % len(buttons)], latencies)
    for text in ("Sam Lee", f"0412 {spread % 1000:03d} 678", "yes"):
        answer = await say(session, url, sender, text, latencies)


async def say(session: aiohttp.ClientSession, url: str, sender: str, text: str, latencies: List[float]) -> list:
    started = time.perf_counter()
    async with session.post(url, json={"sender": sender, "message": text}) as response:
        answer = await response.json()
    latencies.append(time.perf_counter() - started)
    return answer


async def conversation_loop(url: str, number: int, turns: int, flows: List, latencies: List[float]) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
        round_ = 0
        while len(latencies) < turns:
            flow = flows[(number + round_) % len(flows)]
            sender = f"bench-{number}-{round_}-{time.monotonic_ns()}"
            if callable(flow):
                await flow(session, url, sender, number * 7 + round_, latencies)
            else:
                for text in flow:
                    await say(session, url, sender, text, latencies)
            round_ += 1


def run_load(url: str, concurrency: int, turns: int, flows: List) -> Dict[str, float]:
    latencies: List[float] = []

    async def main() -> float:
        started = time.perf_counter()
        await asyncio.gather(*(conversation_loop(url, n, turns, flows, latencies) for n in range(concurrency)))
        return time.perf_counter() - started

    elapsed = asyncio.run(main())
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    return {
        "concurrency": concurrency,
        "messages": len(ordered),
        "seconds": round(elapsed, 2),
        "messages_per_second": round(len(ordered) / elapsed, 1),
        "p50_ms": round(pct(50), 1),
        "p95_ms": round(pct(95), 1),
        "p99_ms": round(pct(99), 1),
        "mean_ms": round(statistics.mean(ordered) * 1000, 1),
    }


def measure(name: str, url: str, pids: Dict[str, int], flows: List, turns: int) -> Dict:
    run_load(url, 4, 40, flows)  # warm-up: first requests load lazily built parts
    sampler = Sampler(pids).start()
    single = run_load(url, 1, max(60, turns // 5), flows)
    many = run_load(url, 20, turns, flows)
    sampler.running = False
    time.sleep(0.3)
    memory = {k: round(v / 2**20) for k, v in sampler.peak.items()}
    result = {"assistant": name, "single": single, "twenty": many, "peak_rss_mb": memory, "total_rss_mb": sum(memory.values())}
    print_result(result)
    return result


def print_result(result: Dict) -> None:
    print(f"\n{result['assistant']}")
    print(f"  {'conversations':>13} {'messages':>8} {'msg/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7}")
    for key in ("single", "twenty"):
        r = result[key]
        print(
            f"  {r['concurrency']:>13} {r['messages']:>8} {r['messages_per_second']:>7} {r['p50_ms']:>7} {r['p95_ms']:>7} {r['p99_ms']:>7}"
        )
    memory = ", ".join(f"{k} {v} MB" for k, v in result["peak_rss_mb"].items())
    print(f"  peak memory: {memory}; total {result['total_rss_mb']} MB")


def answered(url: str) -> bool:
    """True when the REST channel at `url` answers a greeting (the model is loaded)."""
    request = urllib.request.Request(
        url,
        data=json.dumps({"sender": "bench-ready", "message": STOCK_FLOW[0]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return bool(json.loads(answer.read()))
    except (OSError, ValueError):
        return False


def start_stock_assistant(workdir: Path) -> tuple:
    """`rasa init` in a temporary folder (trains its model), then serve it over REST."""
    rasa = str(Path(sys.executable).with_name("rasa"))
    print("==> rasa init (trains the stock assistant, about 2 minutes)", flush=True)
    workdir.mkdir(parents=True, exist_ok=True)
    subprocess.run([rasa, "init", "--no-prompt", "--init-dir", str(workdir)], check=True, capture_output=True)
    port = free_port()
    log = open(workdir / "rasa.log", "wb")
    process = subprocess.Popen(  # the REST channel only: no HTTP API to open
        [rasa, "run", "-i", "127.0.0.1", "-p", str(port), "-m", "models"],
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if answered(f"http://127.0.0.1:{port}/webhooks/rest/webhook"):
            return process, port
        time.sleep(0.5)
    raise RuntimeError("the stock assistant did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--turns", type=int, default=2000, help="messages in the 20-conversation run (2000: the p95 rests on 100 of them)"
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=int(os.environ.get("RASA_INSTANCES", "2")),
        help="Rasa server instances behind HAProxy",
    )
    parser.add_argument("--skip-reference", action="store_true", help="do not measure the stock rasa init assistant")
    parser.add_argument("--rounds", type=int, default=1, help="fresh stacks measured one after the other")
    parser.add_argument(
        "--lock-store",
        default="",
        help="a lock store the instances share (redis://...): HAProxy then spreads every message; "
        "without one (make run's default) each conversation sticks to an instance",
    )
    args = parser.parse_args()
    results = []
    rounds = args.rounds
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(1, rounds + 1):
            stack = Stack(Path(scratch) / f"stack-{round_}", instances=args.instances, lock_store_url=args.lock_store)
            stack.workdir.mkdir()
            try:
                stack.start()
                pids = stack.pids()
                url = f"http://127.0.0.1:{stack.rasa_port}/webhooks/rest/webhook"
                flows: List = [QUESTION_FLOW, LIFE_EVENT_FLOW, booking_flow, OFFICE_FLOW]
                name = f"OneWindow ({args.instances} Rasa instance{'s' if args.instances > 1 else ''}"
                name += f", HAProxy, {'shared lock store' if args.lock_store else 'sticky'}{f', round {round_}' if rounds > 1 else ''})"
                results.append(measure(name, url, pids, flows, args.turns) | {"round": round_})
            finally:
                stack.stop()
        if not args.skip_reference:
            process, port = start_stock_assistant(Path(scratch) / "stock")
            try:
                url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
                results.append(
                    measure(
                        "stock `rasa init` assistant (reference)", url, {"rasa server": process.pid}, [STOCK_FLOW], args.turns
                    )
                )
            finally:
                process.terminate()
                process.wait(timeout=20)
    if not args.skip_reference:
        ours, stock = results[0]["twenty"], results[-1]["twenty"]
        print(
            f"\nthroughput at 20 conversations: {ours['messages_per_second'] / stock['messages_per_second']:.1f}x the stock assistant"
        )
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "rest_load.json").write_text(
        json.dumps({"when": time.strftime("%Y-%m-%d %H:%M"), "cores": os.cpu_count(), "results": results}, indent=2)
    )
    print(f"figures saved to {RESULTS / 'rest_load.json'}")
    write_summary("rest_load", "REST channel under load", summary_tables(results), RESULTS / "rest_load.json")
    return 0


def summary_tables(results: List[Dict]) -> List[Table]:
    """The committed summary: messages per second, latency and memory of each assistant."""
    rows = [
        [
            r["assistant"],
            r[key]["concurrency"],
            r[key]["messages_per_second"],
            r[key]["p50_ms"],
            r[key]["p95_ms"],
            r[key]["p99_ms"],
        ]
        + [f"{r['total_rss_mb']} MB" if key == "single" else None]
        for r in results
        for key in ("single", "twenty")
    ]
    header = ["assistant", "conversations", "msg/s", "p50 ms", "p95 ms", "p99 ms", "peak memory (RSS, all servers)"]
    return [Table("Throughput and turn latency", header, rows)]


if __name__ == "__main__":
    sys.exit(main())
