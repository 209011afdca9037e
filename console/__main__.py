"""Command line of the staff console.

python -m console serve [--host 127.0.0.1] [--port 5080]
python -m console create-user --username NAME --role agent|supervisor|admin [--password-stdin]
python -m console list-users
python -m console purge [--older-than-days N]     (default ONEWINDOW_RETENTION_DAYS, else 90; also failed look-ups)
"""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import replace
from typing import List, Optional

from console.settings import ConsoleSettings
from console.users import ROLES, AccountError, create_user, list_users
from onewindow.settings.variables import ONEWINDOW_RETENTION_DAYS
from onewindow.storage.db import make_engine


def read_password(from_stdin: bool) -> str:
    """The new password: one line from stdin, or typed twice at a prompt that does not echo it."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise AccountError("no terminal to type the password in: pass it on stdin with --password-stdin")
    password = getpass.getpass("Password (at least 10 characters): ")
    if getpass.getpass("Password again: ") != password:
        raise AccountError("the two passwords differ")
    return password


def serve(settings: ConsoleSettings) -> None:
    from console.app import create_app  # imported here: the other commands do not need Sanic
    from onewindow.infra.logs import configure

    configure()
    create_app(settings).run(host=settings.host, port=settings.port, access_log=False)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m console", description="OneWindow staff console")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_parser = sub.add_parser("serve", help="run the console web application")
    serve_parser.add_argument("--host", help="address to listen on (CONSOLE_HOST, default 127.0.0.1)")
    serve_parser.add_argument("--port", type=int, help="port (CONSOLE_PORT, default 5080)")
    user_parser = sub.add_parser("create-user", help="add a staff account (DATABASE_URL)")
    user_parser.add_argument("--username", required=True)
    user_parser.add_argument("--role", required=True, help=" | ".join(ROLES))
    user_parser.add_argument("--password-stdin", action="store_true", help="read the password from one line of stdin")
    sub.add_parser("list-users", help="print every staff account: username, role, active or deactivated")
    purge_parser = sub.add_parser(
        "purge", help="forget conversations idle for longer than the retention period and failed record look-ups older than it"
    )
    purge_parser.add_argument("--older-than-days", type=int, default=ONEWINDOW_RETENTION_DAYS.read())
    args = parser.parse_args(argv)
    settings = ConsoleSettings.from_env()
    if args.command == "serve":
        settings = replace(settings, host=args.host or settings.host, port=args.port or settings.port)
        serve(settings)
        return 0
    if args.command == "list-users":
        engine = make_engine(settings.database_url)
        for member in list_users(engine):
            print(f"{member.username}\t{member.role}\t{'active' if member.active else 'deactivated'}")
        engine.dispose()
        return 0
    if args.command == "create-user":
        engine = make_engine(settings.database_url)
        try:
            member = create_user(engine, args.username.strip().lower(), args.role, read_password(args.password_stdin))
        except AccountError as error:
            print(f"create-user: {error}", file=sys.stderr)
            return 1
        finally:
            engine.dispose()
        print(f"created {member.role} {member.username}")
        return 0
    return purge(settings, args.older_than_days)


def purge(settings: ConsoleSettings, days: int) -> int:
    from onewindow.backend import ServiceBackend
    from onewindow.rasa_plugins.events_table import tracker_engine
    from onewindow.storage.retention import purge_older_than

    backend, tracker = ServiceBackend.from_url(settings.database_url), tracker_engine(settings.endpoints)
    try:
        purged = purge_older_than(backend, tracker, days)
    except ValueError as error:
        print(f"purge: {error}", file=sys.stderr)
        return 1
    finally:
        backend.engine.dispose()
        tracker.dispose()
    print(
        f"forgot {len(purged.senders)} conversation(s) idle for more than {days} days, "
        f"deleted {purged.lookups} failed record look-up(s) older than that"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
