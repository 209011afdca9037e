"""Patch: `EndpointConfig.session` gives one shared HTTP session per endpoint settings, closed when the server stops.

Replaces `rasa.utils.endpoints.EndpointConfig.session`, which opens a new aiohttp ClientSession, and so
a new connection, for every call to the action server (and the NLG server) and closes it afterwards.
Calls now share one session per event loop, headers and basic auth, with the same headers,
authentication and timeout as the original, so connections stay open between calls; idle ones are
closed after 2 seconds, before the action server's own 5-second keep-alive limit, so a request never
meets a connection the other side is closing. Measured under the REST benchmark (bench/rest_load.py):
a connection set up and torn down per action call.

The sessions are closed by an `after_server_stop` listener, passed to `rasa.core.run.serve_application`
through its `server_listeners` parameter (the wrapper installed here), so a stopped server leaves no
"Unclosed client session" behind.
Checked by tests/test_rasa_patches.py (the same requests reach a server as with the original: URL,
headers, auth, timeout) and the shutdown listener.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, Dict, Tuple

import aiohttp
import rasa.core.run
from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT, EndpointConfig

ORIGINAL_SESSION = EndpointConfig.session
ORIGINAL_SERVE = getattr(rasa.core.run.serve_application, "__wrapped__", rasa.core.run.serve_application)
IDLE_CONNECTION_SECONDS = 2.0
AFTER_SERVER_STOP = "after_server_stop"

_SESSIONS: Dict[Tuple[Any, ...], aiohttp.ClientSession] = {}  # (event loop, headers, auth) -> session


class _SharedSession:
    """`async with` gives the shared session and leaves it open (Rasa enters one per request)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self.session

    async def __aexit__(self, *exc_info: Any) -> None:
        return None


def shared_session(endpoint: EndpointConfig) -> _SharedSession:
    """Replaces `EndpointConfig.session()`: the same headers, authentication and timeout, one open session."""
    loop = asyncio.get_running_loop()
    auth = (endpoint.basic_auth["username"], endpoint.basic_auth["password"]) if endpoint.basic_auth else None
    key = (loop, tuple(sorted(endpoint.headers.items())), auth)
    session = _SESSIONS.get(key)
    if session is None or session.closed:
        session = _SESSIONS[key] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(keepalive_timeout=IDLE_CONNECTION_SECONDS),
            headers=endpoint.headers,
            auth=aiohttp.BasicAuth(*auth) if auth else None,
            timeout=aiohttp.ClientTimeout(total=DEFAULT_REQUEST_TIMEOUT),
        )
    return _SharedSession(session)


async def close_shared_sessions(*_listener_arguments: Any) -> None:
    """Close the shared sessions of the running event loop (a Sanic `after_server_stop` listener)."""
    loop = asyncio.get_running_loop()
    for key in [key for key in _SESSIONS if key[0] is loop]:
        await _SESSIONS.pop(key).close()


@functools.wraps(ORIGINAL_SERVE)
def serve_application(*args: Any, **kwargs: Any) -> None:
    """`rasa.core.run.serve_application` with `close_shared_sessions` among its server listeners."""
    listeners = [*(kwargs.pop("server_listeners", None) or []), (close_shared_sessions, AFTER_SERVER_STOP)]
    ORIGINAL_SERVE(*args, server_listeners=listeners, **kwargs)


def install() -> None:
    EndpointConfig.session = shared_session
    rasa.core.run.serve_application = serve_application
