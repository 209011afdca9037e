"""A PostgreSQL cluster of a test's own (initdb in a temporary folder, run as the postgres user) that it may stop and
restart without touching the machine's server. Needs root and initdb/pg_ctl on PATH."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import List

from onewindow.storage.db import create_missing_databases

AS_POSTGRES = ("runuser", "-u", "postgres", "--")


def available() -> bool:
    return all(shutil.which(tool) for tool in ("initdb", "pg_ctl", "runuser")) and os.geteuid() == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PgCluster:
    """`start()` initialises and starts the cluster on a free loopback port; `stop()`, `resume()` (start again),
    `restart()`; `remove()` stops it and deletes its folder."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="ow-pg-"))
        self.folder.chmod(0o755)
        self.data = self.folder / "data"
        self.port = free_port()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create database `name` in the cluster; its URL."""
        create_missing_databases(self.url(name))
        return self.url(name)

    def pg_ctl(self, *action: str) -> None:
        log = self.folder / "postgresql.log"
        command = [*AS_POSTGRES, "pg_ctl", "-D", str(self.data), "-l", str(log), "-w", "-t", "60", *action]
        subprocess.run(command, check=True, capture_output=True)

    def start(self) -> "PgCluster":
        shutil.chown(self.folder, "postgres", "postgres")
        initdb: List[str] = [*AS_POSTGRES, "initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync"]
        subprocess.run(initdb, check=True, capture_output=True)
        self.resume()
        return self

    def resume(self) -> None:
        self.pg_ctl("-o", f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off", "start")

    def stop(self) -> None:
        self.pg_ctl("-m", "fast", "stop")

    def restart(self) -> None:
        self.pg_ctl("-m", "fast", "restart")

    def remove(self) -> None:
        if (self.data / "postmaster.pid").exists():
            self.pg_ctl("-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
