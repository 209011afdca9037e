"""Helpers for starting the servers on this machine: their endpoints.yml and a readiness probe."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Dict, Optional

from onewindow.settings import PROJECT_ROOT


def write_endpoints(path: Path, tracker_db: Path, actions_port: Optional[int] = None) -> Path:
    """The project's endpoints.yml with its SQLite tracker store at `tracker_db` (and the action server on `actions_port`)."""
    text = (PROJECT_ROOT / "endpoints.yml").read_text().replace("db: var/tracker.db", f"db: {tracker_db}")
    path.write_text(text.replace("localhost:5055", f"127.0.0.1:{actions_port}") if actions_port else text)
    return path


def http_get(url: str, timeout: float = 2.0, headers: Optional[Dict[str, str]] = None) -> Optional[bytes]:
    """The body at `url`, or None when nothing answers there (yet) or it answers with an error."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as answer:
            return answer.read()
    except (urllib.error.URLError, ConnectionError, OSError):
        return None
