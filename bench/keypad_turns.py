"""Turn latency of whole keypad-only hotline calls, over REST against the real stack.

Each call is what the gateway sends for keys alone (signed "phone:<number>", metadata
{"input": "keypad", "speech": false}): the main menu, a booking under the caller's number (every
free day and time offered), then a report with the part of the city. Prints, per step, the
p50/p95 latency and how many options the step offered (what the gateway pages), and writes them to
docs/results/keypad_turns.md.

    .venv/bin/python -m bench.keypad_turns [--calls 20]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from bench.summary import Table, write_summary
from harness.stack import Stack
from onewindow.channels.senders import sign_sender

# (step, how to choose: a title prefix or a payload fragment; "" for the call start)
CALL: List[Tuple[str, str]] = [
    ("main menu", ""),
    ("appointments", "Appointments"),
    ("book", "Book an appointment"),
    ("service", "Passport renewal"),
    ("office", "North Service Centre"),
    ("day", '"date"'),
    ("time", '"time"'),
    ("book under the number", "Book under the number"),
    ("confirm", "Yes"),
    ("menu again", ""),
    ("report", "Report a problem"),
    ("category", "Broken street light"),
    ("part of the city", "Somewhere in North"),
    ("send as it is", "Send the report as it is"),
]


def send(port: int, sender: str, message: str, metadata: Dict[str, Any]) -> List[Dict[str, Any]]:
    body = {"sender": sender, "message": message, "metadata": {**metadata, "sender_signature": sign_sender(sender)}}
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/rest/webhook",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


def one_call(port: int, number: int, timings: Dict[str, List[float]], options: Dict[str, int]) -> None:
    sender = f"phone:0413{number:06d}"
    last: List[Dict[str, Any]] = []
    for step, choose in CALL:
        if choose:
            buttons = [b for m in last for b in m.get("buttons") or []]
            chosen = next(b for b in buttons if b["title"].startswith(choose) or choose in b["payload"])
            message, metadata = chosen["payload"], {"channel": "phone", "input": "keypad", "speech": False}
        else:
            message, metadata = "/main_menu", {"channel": "phone", "input": "call_start", "speech": False}
        started = time.perf_counter()
        last = send(port, sender, message, metadata)
        timings[step].append((time.perf_counter() - started) * 1000)
        options[step] = max(options.get(step, 0), sum(len(m.get("buttons") or []) for m in last))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20)
    args = parser.parse_args()
    timings: Dict[str, List[float]] = defaultdict(list)
    options: Dict[str, int] = {}
    with tempfile.TemporaryDirectory() as folder:
        stack = Stack(Path(folder), instances=1).start()
        try:
            one_call(stack.rasa_port, 999_999, defaultdict(list), {})  # warm-up
            for number in range(args.calls):
                one_call(stack.rasa_port, number, timings, options)
        finally:
            stack.stop()
    rows = step_rows(timings, options)
    print(f"{args.calls} keypad-only calls, {len(CALL)} turns each (ms)")
    print(f"{'step':24} {'p50':>7} {'p95':>7} {'options':>8}")
    for step, p50, p95, offered in rows:
        print(f"{step:24} {p50:7.0f} {p95:7.0f} {'' if offered is None else offered:>8}")
    table = Table(
        f"{args.calls} keypad-only calls, {len(CALL)} turns each", ["step", "p50 ms", "p95 ms", "options offered"], rows
    )
    write_summary("keypad_turns", "Keypad-only hotline calls over REST", [table])


def step_rows(timings: Dict[str, List[float]], options: Dict[str, int]) -> List[Tuple[str, int, int, Optional[int]]]:
    """Per step, then for every turn: p50 and p95 latency (ms) and the options the step offered."""

    def spread(values: List[float]) -> Tuple[int, int]:
        ordered = sorted(values)
        return round(statistics.median(ordered)), round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))])

    rows: List[Tuple[str, int, int, Optional[int]]] = [(step, *spread(timings[step]), options[step]) for step, _ in CALL]
    return rows + [("every turn", *spread([v for values in timings.values() for v in values]), None)]


if __name__ == "__main__":
    main()
