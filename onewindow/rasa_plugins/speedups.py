"""Speed-ups for the Rasa 3.6 server process, installed by `python -m onewindow.rasa_plugins.server`.

All were found by profiling the Rasa server under the REST benchmark (bench/rest_load.py);
none changes what Rasa computes.

1. Rasa validates every action-server response with `jsonschema.validate()`, which checks
   the schema itself against the JSON Schema meta-schema on every call. That re-check took
   two thirds of the server's CPU. `jsonschema.validate` now compiles each schema once and
   reuses the validator: responses are validated as before, against the same schema.
2. Rasa turns every stored event back into an object through `Event.resolve_by_type`,
   which walks the whole class tree of events for each one (about 4 ms per message).
   The type-name-to-class table is now built once, and rebuilt if a name is not found.
3. Rasa runs its model graph through dask, whose per-run bookkeeping was 15 % of the server's
   time; onewindow/rasa_plugins/graph_runner.py runs the same nodes in dependency order without it.
4. Rasa opens a new HTTP client session, and so a new connection, for every call to the action
   server and closes it afterwards. Calls now share one session per endpoint settings and event
   loop, which keeps connections open (idle ones are closed after 2 seconds, before the
   action server's own 5-second keep-alive limit, so a request never meets a closing connection).
"""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any, Callable, Dict, Tuple

import aiohttp
import jsonschema
from jsonschema import exceptions, validators

_original_validate = jsonschema.validate


@functools.lru_cache(maxsize=128)
def _compiled(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate_with_compiled_schema(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    """Same contract as `jsonschema.validate`: raise the best-matching ValidationError."""
    if cls is not None or args or kwargs:
        return _original_validate(instance, schema, cls, *args, **kwargs)
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):
        return _original_validate(instance, schema)
    error = exceptions.best_match(_compiled(key).iter_errors(instance))
    if error is not None:
        raise error
    return None


class _EventTypes:
    """type_name -> Event subclass, built from the class tree once."""

    def __init__(self, original: Callable[..., Any]) -> None:
        self.original = original
        self.table: Dict[str, Any] = {}

    def resolve(self, type_name: str, default: Any = None) -> Any:
        found = self.table.get(type_name)
        if found is None:
            from rasa.shared.core.events import Event
            from rasa.shared.utils.common import all_subclasses

            self.table = {cls.type_name: cls for cls in all_subclasses(Event)}
            found = self.table.get(type_name)
        return found if found is not None else self.original(type_name, default)


class _SharedSession:
    """`async with` gives the shared session and leaves it open (Rasa enters one per request)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self.session

    async def __aexit__(self, *exc_info: Any) -> None:
        return None


_SESSIONS: Dict[Tuple[Any, ...], aiohttp.ClientSession] = {}  # (event loop, headers, auth) -> session
IDLE_CONNECTION_SECONDS = 2.0


def shared_session(endpoint: Any) -> _SharedSession:
    """Replaces `EndpointConfig.session()`: the same headers, authentication and timeout, one open session."""
    from rasa.utils.endpoints import DEFAULT_REQUEST_TIMEOUT

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


def install() -> None:
    import rasa.core.processor
    from rasa.shared.core.events import Event
    from rasa.utils.endpoints import EndpointConfig

    from onewindow.rasa_plugins.graph_runner import SequentialGraphRunner

    rasa.core.processor.DaskGraphRunner = SequentialGraphRunner  # the runner Rasa loads a model with
    EndpointConfig.session = shared_session  # type: ignore[method-assign,assignment]

    jsonschema.validate = validate_with_compiled_schema
    if not isinstance(getattr(Event.resolve_by_type, "__self__", None), _EventTypes):
        Event.resolve_by_type = staticmethod(_EventTypes(Event.resolve_by_type).resolve)
