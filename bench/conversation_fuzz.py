"""Long run of the conversation invariants: thousands of generated messages from generated states.

The same properties as tests/test_conversation_invariants.py (which `make test` runs with 80
cases, the same ones every time), here with a new random seed and many more cases; the
Telegram and phone invariant tests can be added with --channels. Prints the seed (to replay a
failure: --seed N), the number of cases and the time, and writes them to bench/results/
(and the summary to docs/results/conversation_fuzz.md).

    make bench-fuzz                     # or: .venv/bin/python -m bench.conversation_fuzz [--examples 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from bench.summary import Table, write_summary

ROOT = Path(__file__).resolve().parent.parent
TESTS = ["tests/test_conversation_invariants.py"]
CHANNEL_TESTS = [
    "tests/test_telegram.py::test_any_message_gets_an_answer_never_a_loop",
    "tests/test_voice_calls.py::test_anything_a_caller_is_heard_to_say_gets_a_spoken_answer",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=2000, help="generated cases per property (default 2000)")
    parser.add_argument("--seed", type=int, default=random.SystemRandom().randrange(2**32), help="hypothesis seed")
    parser.add_argument("--channels", action="store_true", help="also the Telegram and phone properties (slower: real time)")
    args = parser.parse_args()
    env = {**os.environ, "ONEWINDOW_FUZZ_EXAMPLES": str(args.examples), "ONEWINDOW_FUZZ_RANDOM": "1", "PYTHONPATH": str(ROOT)}
    targets = TESTS + (CHANNEL_TESTS if args.channels else [])
    print(f"==> {args.examples} cases per property, seed {args.seed}: {' '.join(targets)}", flush=True)
    started = time.monotonic()
    status = subprocess.call(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--hypothesis-seed={args.seed}",
            "--hypothesis-show-statistics",
            *targets,
        ],
        cwd=ROOT,
        env=env,
    )
    seconds = time.monotonic() - started
    outcome = (
        "passed"
        if status == 0
        else f"FAILED (replay: python -m bench.conversation_fuzz --seed {args.seed} --examples {args.examples})"
    )
    print(f"==> {outcome} in {seconds / 60:.1f} minutes")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    record = {
        "examples": args.examples,
        "seed": args.seed,
        "channels": args.channels,
        "passed": status == 0,
        "seconds": round(seconds),
        "at": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    output = results / f"conversation_fuzz-{time.strftime('%Y%m%d-%H%M%S')}.json"
    output.write_text(json.dumps(record, indent=2))
    rows = [[" ".join(targets), args.examples, args.seed, "passed" if status == 0 else "FAILED", f"{seconds / 60:.1f}"]]
    table = Table("The invariants on generated messages", ["tests", "cases per property", "seed", "outcome", "minutes"], rows)
    write_summary("conversation_fuzz", "Conversation invariants, long run", [table], output)
    return status


if __name__ == "__main__":
    sys.exit(main())
