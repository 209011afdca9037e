"""A readiness probe for the servers started on this machine (their commands: onewindow/processes.py)."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Dict, Optional


def http_get(url: str, timeout: float = 2.0, headers: Optional[Dict[str, str]] = None) -> Optional[bytes]:
    """The body at `url`, or None when nothing answers there (yet) or it answers with an error."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as answer:
            return answer.read()
    except (urllib.error.URLError, ConnectionError, OSError):
        return None
