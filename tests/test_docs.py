"""The documents: every relative link and anchor resolves, the README starts with the two commands, and every
benchmark has the committed summary that docs/performance.md cites."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest

from bench.summary import Table, write_summary

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = sorted(
    [ROOT / name for name in ("README.md", "CONTRIBUTING.md", "CHANGELOG.md")]
    + list((ROOT / "docs").glob("**/*.md"))
    + [ROOT / folder / "README.md" for folder in ("bot", "voice", "catalogue")]
)
BENCHES = sorted(p.stem for p in (ROOT / "bench").glob("*.py") if p.stem not in ("__init__", "summary"))
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(([^()\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def prose_lines(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks, with inline code removed."""
    fenced = False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield re.sub(r"`[^`]*`", "", line)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> Set[str]:
    """Every anchor a Markdown file's headings make (a repeated heading gets -1, -2, ...)."""
    seen: Dict[str, int] = {}
    found = set()
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        match = None if fenced else HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
    return found


def relative_links(path: Path) -> List[str]:
    targets = [m.group(1) for line in prose_lines(path.read_text()) for m in LINK.finditer(line)]
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t)]


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


def broken_links(path: Path) -> List[Tuple[str, str]]:
    """(link, why) for each relative link of `path` whose file or anchor does not exist."""
    broken = []
    for target in relative_links(path):
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            broken.append((target, f"no file {shown(linked)}"))
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            broken.append((target, f"no heading with the anchor #{anchor} in {shown(linked)}"))
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=shown)
def test_every_relative_link_and_anchor_resolves(document: Path) -> None:
    assert document.exists(), f"{shown(document)} is missing"
    assert broken_links(document) == []


def test_the_link_check_finds_a_missing_file_and_a_missing_anchor(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    (tmp_path / "other.md").write_text("# Other\n\n## A `code` heading, with (punctuation)\n")
    page.write_text(
        "# Page\n\n[ok](other.md#a-code-heading-with-punctuation) [self](#page) [web](https://example.org)\n"
        "[gone](missing.md) [no anchor](other.md#nowhere)\n\n```\n[in code](ignored.md)\n```\n"
    )
    assert [link for link, _ in broken_links(page)] == ["missing.md", "other.md#nowhere"]


def test_the_readme_starts_with_make_run_then_make_test() -> None:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```[a-z]*\n(.*?)```", text, re.S)
    assert block is not None, "README.md has no code block"
    assert text.index(block.group(0)) < text.index("\n## "), "the commands come before the first section"
    commands = [line.split("#")[0].strip() for line in block.group(1).splitlines() if line.strip()]
    assert commands[:2] == ["make run", "make test"]


def test_the_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 100


@pytest.mark.parametrize("bench", BENCHES)
def test_every_bench_writes_a_summary_that_performance_cites(bench: str) -> None:
    source = (ROOT / "bench" / f"{bench}.py").read_text()
    assert f'write_summary("{bench}"' in source, f"bench/{bench}.py does not write docs/results/{bench}.md"
    assert (ROOT / "docs" / "results" / f"{bench}.md").exists()
    assert f"(results/{bench}.md)" in (ROOT / "docs" / "performance.md").read_text()


def test_a_summary_says_when_where_and_what_was_run(tmp_path: Path) -> None:
    table = Table("Figures", ["what", "ms"], [["a | b", 1.5], ["missing", None]])
    path = write_summary("example", "An example", [table], notes=["a note"], folder=tmp_path)
    text = path.read_text()
    assert path == tmp_path / "example.md"
    for fact in ("| date | 20", "| machine | ", "| commit | ", "| command | `python -m bench.example"):
        assert fact in text
    assert "## Figures\n\n| what | ms |\n| --- | --- |\n| a \\| b | 1.5 |\n| missing | - |" in text
    assert text.endswith("- a note\n")
