"""`python -m onewindow.settings --markdown | --update-docs | --check`: the settings table, or every value as read now."""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from onewindow.settings.kinds import InvalidSetting
from onewindow.settings.registry import REGISTRY
from onewindow.settings.table import DOCUMENT, markdown_table, update_document


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m onewindow.settings", description=__doc__)
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--markdown", action="store_true", help="print the settings table (Markdown)")
    action.add_argument("--update-docs", action="store_true", help=f"rewrite the table in {DOCUMENT}")
    action.add_argument("--check", action="store_true", help="read every setting from this environment; exit 1 on a bad one")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table(), end="")
    elif args.update_docs:
        print(f"{DOCUMENT}: {'updated' if update_document() else 'already up to date'}")
    else:
        bad = []
        for setting in REGISTRY:
            try:
                setting.read()
            except InvalidSetting as error:
                bad.append(str(error))
        print("\n".join(bad) or "every setting can be read")
        return 1 if bad else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
