"""The committed summary of a benchmark run: docs/results/<bench>.md, the latest figures with the date, machine and commit.

Each bench keeps its full record in bench/results/ (not committed) and also calls `write_summary`, so that
docs/performance.md can cite a file that the next run replaces instead of copying figures that go stale.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence

ROOT = Path(__file__).resolve().parent.parent
SUMMARIES = ROOT / "docs" / "results"


@dataclass(frozen=True)
class Table:
    """A captioned Markdown table; a cell of None is written as "-"."""

    caption: str
    header: Sequence[str]
    rows: Sequence[Sequence[object]]

    def markdown(self) -> str:
        lines = [f"## {self.caption}", "", row_line(self.header), row_line(["---"] * len(self.header))]
        lines += [row_line(row) for row in self.rows]
        return "\n".join(lines)


def row_line(cells: Iterable[object]) -> str:
    return "| " + " | ".join("-" if cell is None else str(cell).replace("|", "\\|") for cell in cells) + " |"


def machine() -> str:
    """This machine in a few words: cores, CPU model, memory."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.1f} GB RAM"
    except (OSError, ValueError):
        memory = ""
    return f"{os.cpu_count()} cores ({model}){memory}"


def commit() -> str:
    """The checked-out commit, and whether the working tree had changes."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        changes = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" with uncommitted changes" if changes.stdout.strip() else "")


def command_line(bench: str) -> str:
    """How this run was started, as `python -m bench.<name> ...`."""
    return shlex.join(["python", "-m", f"bench.{bench}", *sys.argv[1:]])


def write_summary(
    bench: str,
    title: str,
    tables: Sequence[Table],
    record: Optional[Path] = None,
    notes: Sequence[str] = (),
    folder: Path = SUMMARIES,
) -> Path:
    """Replace docs/results/<bench>.md with this run's figures; returns its path."""
    facts = [
        ("date", time.strftime("%Y-%m-%d %H:%M %Z")),
        ("machine", machine()),
        ("commit", commit()),
        ("command", f"`{command_line(bench)}`"),
    ]
    if record is not None:
        facts.append(("full record", f"`{record.relative_to(ROOT) if record.is_relative_to(ROOT) else record}` (not committed)"))
    parts = [
        f"# {title}",
        "",
        f"Written by `bench/{bench}.py` at the end of its last run; run it again to refresh this file.",
        "",
        row_line(["this run", ""]),
        row_line(["---", "---"]),
        *(row_line(fact) for fact in facts),
        "",
        *(f"{table.markdown()}\n" for table in tables),
        *(f"- {note}" for note in notes),
    ]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{bench}.md"
    path.write_text("\n".join(parts).rstrip() + "\n")
    print(f"summary written to {path}")
    return path
