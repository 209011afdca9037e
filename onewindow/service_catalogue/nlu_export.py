"""Generate Rasa lookup tables and synonyms from the catalogue (nlu/catalogue_lookups.yml)."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

from onewindow.service_catalogue.loader import Catalogue

HEADER = (
    "# GENERATED from catalogue/*.yml by `python -m onewindow export-nlu` (make does this).\n"
    "# Do not edit: edit the catalogue's aliases instead.\n"
)


def _block_list(items: List[str], indent: str = "      ") -> str:
    return "".join(f"{indent}- {item}\n" for item in items)


def render_lookups(catalogue: Catalogue) -> str:
    """The YAML text: one lookup table per entity, one synonym per unambiguous alias.

    Phrases are listed longest first: the extractor's regular expression takes the first
    alternative that matches, and "passport renewal" must win over "passport".
    """
    out = [HEADER, 'version: "3.1"\n', "nlu:\n"]
    aliases = catalogue.aliases()
    for kind in sorted(aliases):
        phrases = sorted(aliases[kind], key=lambda phrase: (-len(phrase), phrase))
        out.append(f"  - lookup: {kind}\n    examples: |\n{_block_list(phrases)}")
    synonyms: Dict[str, List[str]] = {}
    for kind in sorted(aliases):
        for phrase, ids in sorted(aliases[kind].items()):
            if len(ids) == 1 and phrase != ids[0]:
                synonyms.setdefault(ids[0], []).append(phrase)
    for target in sorted(synonyms):
        out.append(f"  - synonym: {target}\n    examples: |\n{_block_list(synonyms[target])}")
    return "".join(out)


def write_lookups(catalogue: Catalogue, path: Path) -> bool:
    """Write the file if its content changed; return True when it was rewritten."""
    text = render_lookups(catalogue)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.write_text(text, encoding="utf-8")
    return True
