"""Long run of the entry-point fuzz tests (tests/test_fuzz_*.py: REST and the HTTP API, Telegram updates into the bot,
AudioSocket lines into the running gateway and its parser, console forms and parameters, catalogue files): rounds
with a new random seed and many more cases, until the time is up.

`make test` runs the same files with a few dozen cases each, the same in every run; here each round multiplies every
test's count by --scale and draws new cases (ONEWINDOW_FUZZ_RANDOM) from a seed it prints (to replay a failing round:
--seed N --rounds 1). Writes the rounds to bench/results/ and the summary to docs/results/entry_fuzz.md.

    make bench-entry-fuzz               # or: .venv/bin/python -m bench.entry_fuzz --minutes 10 [--scale 5]
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
from typing import List, Optional

from bench.summary import Table, write_summary

ROOT = Path(__file__).resolve().parent.parent
TESTS = [
    "tests/test_fuzz_rest.py",
    "tests/test_fuzz_telegram.py",
    "tests/test_fuzz_gateway.py",
    "tests/test_fuzz_audiosocket.py",
    "tests/test_fuzz_console.py",
    "tests/test_fuzz_catalogue.py",
]


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="stop starting rounds after this long (default 10)")
    parser.add_argument("--scale", type=float, default=5.0, help="cases per test, as a multiple of make test's (default 5)")
    parser.add_argument("--seed", type=int, default=None, help="the first round's hypothesis seed (default: random)")
    parser.add_argument("--rounds", type=int, default=0, help="at most this many rounds (default: as many as fit)")
    args = parser.parse_args(argv)
    env = {**os.environ, "ONEWINDOW_ENTRY_FUZZ_SCALE": str(args.scale), "ONEWINDOW_FUZZ_RANDOM": "1", "PYTHONPATH": str(ROOT)}
    seeds = random.SystemRandom()
    started, failed = time.monotonic(), 0
    rows: List[List[object]] = []
    while time.monotonic() - started < args.minutes * 60 and (not args.rounds or len(rows) < args.rounds):
        seed = args.seed if args.seed is not None and not rows else seeds.randrange(2**32)
        print(f"==> round {len(rows) + 1}: seed {seed}, scale {args.scale}", flush=True)
        began = time.monotonic()
        status = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--hypothesis-seed={seed}", *TESTS],
            cwd=ROOT,
            env=env,
        )
        failed += status != 0
        rows.append(
            [
                len(rows) + 1,
                seed,
                "passed" if status == 0 else f"FAILED (replay: --seed {seed} --rounds 1)",
                f"{(time.monotonic() - began) / 60:.1f}",
            ]
        )
    minutes = (time.monotonic() - started) / 60
    print(f"==> {len(rows)} rounds, {failed} failed, {minutes:.1f} minutes")
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    output = results / f"entry_fuzz-{time.strftime('%Y%m%d-%H%M%S')}.json"
    output.write_text(json.dumps({"scale": args.scale, "rounds": rows, "failed": failed, "minutes": round(minutes, 1)}, indent=2))
    table = Table(
        f"Rounds of {' '.join(TESTS)}, {args.scale} times make test's cases", ["round", "seed", "outcome", "minutes"], rows
    )
    write_summary("entry_fuzz", "Entry-point fuzzing, long run", [table], output)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
