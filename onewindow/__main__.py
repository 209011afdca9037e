"""Command line: `python -m onewindow migrate | seed | check-catalogue | export-nlu`."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from pathlib import Path
from typing import List, Optional

from onewindow import settings
from onewindow.backend import ServiceBackend
from onewindow.rasa_plugins.events_table import tracker_engine
from onewindow.service_catalogue import CatalogueError, load_catalogue
from onewindow.service_catalogue.nlu_export import write_lookups
from onewindow.service_catalogue.seed import seed_catalogue
from onewindow.settings.variables import TRACKER_DATABASE_URL
from onewindow.storage.db import make_engine, make_sessionmaker
from onewindow.storage.demo_data import load_sample_applications
from onewindow.storage.migrate import migrate, prepare_tracker_store

LOOKUPS_FILE = settings.PROJECT_ROOT / "nlu" / "catalogue_lookups.yml"


def seed(url: Optional[str] = None, folder: Optional[Path] = None, demo: bool = False) -> str:
    """Migrate, then load the catalogue (and the sample applications with `demo`)."""
    catalogue = load_catalogue(folder or settings.catalogue_dir())
    migrate(url)
    engine = make_engine(url)
    with make_sessionmaker(engine).begin() as session:
        seed_catalogue(session, catalogue)
    summary = (
        f"{len(catalogue.services)} services, {len(catalogue.offices)} offices, "
        f"{len(catalogue.life_events)} life events, {len(catalogue.districts)} districts"
    )
    if demo:
        count = load_sample_applications(ServiceBackend(engine), datetime.now())
        summary += f", {count} sample applications"
    return summary


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m onewindow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser(
        "migrate",
        help="apply database migrations (DATABASE_URL) and create the tracker store's table (TRACKER_DATABASE_URL, if "
        "set); several instances may run it at once",
    )
    seed_parser = sub.add_parser("seed", help="migrate and load the catalogue into the database")
    seed_parser.add_argument("--demo", action="store_true", help="also add sample applications")
    sub.add_parser("check-catalogue", help="validate the catalogue files only")
    sub.add_parser("export-nlu", help=f"write {LOOKUPS_FILE.relative_to(settings.PROJECT_ROOT)}")
    args = parser.parse_args(argv)
    try:
        if args.command == "migrate":
            migrate()
            tracker = TRACKER_DATABASE_URL.read()
            if tracker:
                prepare_tracker_store(tracker)
            print("database schema is up to date" + (" and the tracker store ready" if tracker else ""))
        elif args.command == "seed":
            print(f"seeded: {seed(demo=args.demo)}")
            tracker_engine().dispose()  # Rasa's tracker store (endpoints.yml), in WAL mode before Rasa opens it
        elif args.command == "check-catalogue":
            catalogue = load_catalogue(settings.catalogue_dir())
            print(f"catalogue OK: {len(catalogue.services)} services, {len(catalogue.offices)} offices")
        elif args.command == "export-nlu":
            changed = write_lookups(load_catalogue(settings.catalogue_dir()), LOOKUPS_FILE)
            print(f"{LOOKUPS_FILE.name}: {'rewritten' if changed else 'unchanged'}")
    except CatalogueError as error:
        print(error, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
