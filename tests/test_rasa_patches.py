"""Contract tests: each patch in onewindow/rasa_plugins/patches/ behaves as the Rasa code it replaces, the pinned
Rasa release is enforced, and a change in the source of a replaced Rasa function fails here (so an upgrade
is noticed). The graph runner is checked on the trained model in tests/test_graph_runner.py and the tracker
store against SQLTrackerStore in tests/test_tracker_store.py."""

from __future__ import annotations

import asyncio
import gc
import hashlib
import inspect
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import aiohttp
import jsonschema
import pytest
import rasa.api
import rasa.core.processor
import rasa.core.run
import rasa.core.test  # defines EndToEndUserUtterance, a second event class named "user"
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.core.nlg.callback import nlg_response_format_spec
from rasa.core.tracker_store import FailSafeTrackerStore, InMemoryTrackerStore, SQLTrackerStore, TrackerStore
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import (
    ActionExecuted,
    ActiveLoop,
    BotUttered,
    Event,
    FollowupAction,
    SessionStarted,
    SlotSet,
    UserUttered,
)
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.shared.utils.common import all_subclasses, arguments_of
from rasa.shared.utils.schemas.events import EVENTS_SCHEMA
from rasa.utils.endpoints import EndpointConfig

from harness.stack import free_port
from onewindow.rasa_plugins import patches, pinned
from onewindow.rasa_plugins.patches import compiled_schemas, event_types, probes, shared_sessions, tracker_errors
from onewindow.settings import PROJECT_ROOT

# sha256 (first 16 hex digits) of the source of each piece of Rasa (and jsonschema) a patch replaces or relies on,
# as in the pinned release. When one changes: re-read it, check the patch that names it against it, then record
# the new value.
RECORDED_SOURCES: Dict[str, Tuple[Callable[[], Any], str]] = {
    "jsonschema.validate (compiled_schemas)": (lambda: compiled_schemas.ORIGINAL, "dc1e7e6a0aee8a4e"),
    "Event.resolve_by_type (event_types)": (event_types.original, "b5cf570fa7f286c7"),
    "EndpointConfig.session (shared_sessions)": (lambda: shared_sessions.ORIGINAL_SESSION, "e55aa13d9d4fb4bc"),
    "EndpointConfig.request, which enters session() (shared_sessions)": (lambda: EndpointConfig.request, "ccdb778aed8208e2"),
    "rasa.core.run.serve_application (shared_sessions)": (lambda: shared_sessions.ORIGINAL_SERVE, "fa80588d9e008b67"),
    "rasa.api.run, which calls serve_application (shared_sessions)": (lambda: rasa.api.run, "03824a79eb4e4c72"),
    "rasa.core.run.configure_app (probes)": (lambda: probes.ORIGINAL_CONFIGURE_APP, "72da30416f74c648"),
    "DaskGraphRunner (graph_runner)": (lambda: DaskGraphRunner, "78a7d146c5c06d4c"),
    "MessageProcessor._load_model, which names DaskGraphRunner (graph_runner)": (
        lambda: rasa.core.processor.MessageProcessor._load_model,
        "17f24faf96817bdf",
    ),
    "SQLTrackerStore, whose _retrieve and save are overridden (tracker_store)": (lambda: SQLTrackerStore, "e9b81646501a716e"),
    "TrackerStore, which calls _retrieve (tracker_store)": (lambda: TrackerStore, "73fedcc90750abca"),
    "Agent._create_tracker_store (tracker_errors)": (lambda: tracker_errors.ORIGINAL_CREATE_TRACKER_STORE, "97499b594b45581b"),
    "FailSafeTrackerStore, whose error hook it sets (tracker_errors)": (lambda: FailSafeTrackerStore, "84833481b14c2271"),
}


def source_hash(code: Any) -> str:
    return hashlib.sha256(inspect.getsource(code).encode()).hexdigest()[:16]


@pytest.mark.parametrize("name", list(RECORDED_SOURCES))
def test_the_replaced_rasa_code_is_the_one_the_patches_were_written_against(name: str) -> None:
    original, recorded = RECORDED_SOURCES[name]
    assert source_hash(original()) == recorded, f"{name} changed: check the patch against it, then record the new hash"


# --- the pinned release ---------------------------------------------------------------------------


def test_another_rasa_release_is_refused_with_a_clear_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pinned, "installed_rasa_version", lambda: "3.6.20")
    with pytest.raises(SystemExit) as refused:
        pinned.require_pinned_rasa()
    assert str(refused.value) == (
        "OneWindow patches Rasa 3.6.21 internals; found 3.6.20: install the pinned version with make install"
    )


def test_no_patch_is_installed_on_another_release(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pinned, "installed_rasa_version", lambda: "3.7.0")
    before = (jsonschema.validate, EndpointConfig.session, rasa.core.processor.DaskGraphRunner, rasa.core.run.serve_application)
    with pytest.raises(SystemExit, match="found 3.7.0"):
        patches.install()
    after = (jsonschema.validate, EndpointConfig.session, rasa.core.processor.DaskGraphRunner, rasa.core.run.serve_application)
    assert after == before


def test_the_pinned_release_is_the_one_installed_and_locked() -> None:
    pinned.require_pinned_rasa()
    assert pinned.installed_rasa_version() == pinned.PINNED_RASA
    assert f"rasa=={pinned.PINNED_RASA}" in (PROJECT_ROOT / "constraints.txt").read_text().splitlines()


@pytest.mark.parametrize(
    "plugin",
    [
        "onewindow.rasa_plugins.tracker_store",
        "onewindow.rasa_plugins.nlu_components",
        "onewindow.rasa_plugins.patches.graph_runner",
    ],
)
def test_loading_a_plugin_into_another_release_stops_the_process(plugin: str) -> None:
    """Rasa imports a component or tracker store by its module path; that import refuses another release."""
    script = f"import rasa.version\nrasa.version.__version__ = '3.6.20'\nimport {plugin}\nprint('loaded')"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1 and "loaded" not in done.stdout
    assert "OneWindow patches Rasa 3.6.21 internals; found 3.6.20" in done.stderr


# --- compiled_schemas: jsonschema.validate ------------------------------------------------------------

RASA_SCHEMAS = {
    "action server response": RemoteAction.action_response_format_spec(),
    "NLG response": nlg_response_format_spec(),
    "events posted to the HTTP API": EVENTS_SCHEMA,
}
JSON_LEAVES = st.none() | st.booleans() | st.integers(-3, 3) | st.floats(allow_nan=False, width=32) | st.text(max_size=4)
ANY_JSON = st.recursive(
    JSON_LEAVES, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3), max_leaves=6
)
TYPE_VALUES = {
    "string": st.text(max_size=6),
    "number": st.floats(allow_nan=False, width=32) | st.integers(),
    "integer": st.integers(-5, 5),
    "boolean": st.booleans(),
    "null": st.none(),
    "array": st.lists(JSON_LEAVES, max_size=2),
    "object": st.dictionaries(st.text(max_size=3), JSON_LEAVES, max_size=2),
}


def instances(schema: Any, depth: int = 0) -> st.SearchStrategy:
    """Values that mostly follow `schema` (so both verdicts occur), sometimes anything at all."""
    if not isinstance(schema, dict) or depth > 6:
        return ANY_JSON
    options: List[st.SearchStrategy] = []
    for key in ("oneOf", "anyOf", "allOf"):
        options += [instances(part, depth + 1) for part in schema.get(key, [])]
    if "const" in schema:
        options.append(st.just(schema["const"]))
    if "enum" in schema:
        options.append(st.sampled_from(schema["enum"]))
    if "properties" in schema or "required" in schema:
        properties = schema.get("properties", {})
        required = {key: instances(properties.get(key), depth + 1) for key in schema.get("required", [])}
        optional = {key: instances(value, depth + 1) for key, value in properties.items() if key not in required}
        options.append(st.fixed_dictionaries(required, optional=optional))
    if "items" in schema:
        options.append(st.lists(instances(schema["items"], depth + 1), max_size=3))
    types = schema.get("type", [])
    options += [TYPE_VALUES[name] for name in ([types] if isinstance(types, str) else types) if name in TYPE_VALUES]
    return st.one_of(*options, ANY_JSON) if options else ANY_JSON


def verdict(validate: Callable[..., Any], instance: Any, schema: Any) -> Optional[Tuple[Any, ...]]:
    """None when `instance` is valid, else what the error says and where."""
    try:
        validate(instance, schema)
    except ValidationError as error:
        return error.message, list(error.path), error.validator, list(error.schema_path)
    return None


VALID_RESPONSE = {
    "events": [
        event.as_dict()
        for event in (
            UserUttered("hello", {"name": "greet", "confidence": 0.9}),
            BotUttered("hi", {"buttons": [{"title": "Yes", "payload": "/affirm"}]}),
            SlotSet("service", "passport_renewal"),
            ActionExecuted("action_listen"),
            SessionStarted(),
            FollowupAction("action_listen"),
            ActiveLoop("booking_form"),
        )
    ],
    "responses": [{"text": "hello"}],
}


def test_rasa_own_responses_are_valid_and_broken_ones_refused_alike() -> None:
    schema = RASA_SCHEMAS["action server response"]
    assert verdict(compiled_schemas.validate_with_compiled_schema, VALID_RESPONSE, schema) is None
    assert verdict(compiled_schemas.ORIGINAL, VALID_RESPONSE, schema) is None
    broken = {"events": [{"event": "slot", "name": 3}], "responses": "hello"}
    refused = verdict(compiled_schemas.validate_with_compiled_schema, broken, schema)
    assert refused is not None and refused == verdict(compiled_schemas.ORIGINAL, broken, schema)


@pytest.mark.parametrize("name", list(RASA_SCHEMAS))
@settings(max_examples=75, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_compiled_schema_accepts_and_refuses_what_jsonschema_validate_does(name: str, data: st.DataObject) -> None:
    schema = RASA_SCHEMAS[name]
    instance = data.draw(instances(schema))
    assert verdict(compiled_schemas.validate_with_compiled_schema, instance, schema) == verdict(
        compiled_schemas.ORIGINAL, instance, schema
    )


def test_a_schema_that_is_not_json_or_a_validator_class_goes_to_the_original() -> None:
    with pytest.raises(ValidationError) as refused:
        compiled_schemas.validate_with_compiled_schema(1, {"type": "string"}, jsonschema.Draft7Validator)
    assert refused.value.validator == "type"
    with pytest.raises(jsonschema.SchemaError):
        compiled_schemas.validate_with_compiled_schema(1, {"type": 12})


# --- event_types: Event.resolve_by_type ----------------------------------------------------------------


def resolved(resolve: Callable[..., Any], name: str, default: Any) -> Any:
    try:
        return resolve(name, default)
    except ValueError as error:
        return f"ValueError: {error}"


EVENT_NAMES = sorted({cls.type_name for cls in all_subclasses(Event)})


@pytest.mark.parametrize("default", [None, SlotSet])
def test_every_event_name_and_unknown_ones_resolve_to_the_same_class(default: Any) -> None:
    named_user = [cls for cls in all_subclasses(Event) if cls.type_name == "user"]
    assert len(named_user) > 1, "two classes are named user (UserUttered, EndToEndUserUtterance): the first one counts"
    table = event_types.EventTypes(event_types.original())
    for name in [*EVENT_NAMES, "topic", "no_such_event", "", "USER"]:
        assert resolved(table.resolve, name, default) == resolved(event_types.original(), name, default), name
    assert table.resolve("user") is UserUttered


def test_an_event_class_defined_after_the_table_was_built_is_found() -> None:
    table = event_types.EventTypes(event_types.original())
    assert table.resolve("slot") is SlotSet

    class Later(SlotSet):
        type_name = "onewindow_test_later"

    assert table.resolve("onewindow_test_later") is Later is event_types.original()("onewindow_test_later")


# --- shared_sessions: EndpointConfig.session -------------------------------------------------------------

ENDPOINTS: List[Dict[str, Any]] = [
    {"url": "http://127.0.0.1:{port}/webhook", "headers": {}, "basic_auth": None},
    {"url": "http://127.0.0.1:{port}/base/", "headers": {"X-Api-Key": "k1"}, "basic_auth": {"username": "u", "password": "p"}},
    {"url": "http://127.0.0.1:{port}", "headers": {"X-Api-Key": "k2"}, "basic_auth": None, "token": "t"},
]


def endpoint(settings_: Dict[str, Any], port: int) -> EndpointConfig:
    options = dict(settings_)
    url = options.pop("url").format(port=port)
    return EndpointConfig(url, **options)


async def requests_seen(port_settings: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """What a server receives from EndpointConfig.request for endpoints with `port_settings`."""
    seen: List[Dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        names = ("Authorization", "X-Api-Key", "Content-Type", "User-Agent", "Accept-Encoding")
        seen.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": {name: request.headers.get(name) for name in names},
                "body": await request.text(),
            }
        )
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        for settings_ in port_settings:
            config = endpoint(settings_, port)
            answer = await config.request("post", subpath="actions", json={"next_action": "action_hello"})
            assert answer == {"ok": True}
            await config.request("get", subpath=None, headers={"X-Extra": "1"})
    finally:
        await shared_sessions.close_shared_sessions()
        await runner.cleanup()
    return seen


def test_requests_through_the_shared_session_are_those_of_the_original(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EndpointConfig, "session", shared_sessions.ORIGINAL_SESSION)
    by_original = asyncio.run(requests_seen(ENDPOINTS))
    monkeypatch.setattr(EndpointConfig, "session", shared_sessions.shared_session)
    by_shared = asyncio.run(requests_seen(ENDPOINTS))
    assert by_shared == by_original
    assert {r["headers"]["Authorization"] for r in by_original} >= {None, "Basic dTpw"}, "auth was sent"
    assert {r["path"] for r in by_original} >= {"/webhook/actions", "/base/actions", "/actions?token=t", "/?token=t"}


@pytest.mark.parametrize("settings_", ENDPOINTS)
def test_the_shared_session_has_the_headers_auth_and_timeout_of_the_original(settings_: Dict[str, Any]) -> None:
    async def compare() -> None:
        config = endpoint(settings_, 9)
        async with shared_sessions.ORIGINAL_SESSION(config) as original, shared_sessions.shared_session(config) as shared:
            assert dict(shared.headers) == dict(original.headers)
            assert shared.auth == original.auth
            assert shared.timeout == original.timeout
        assert original.closed and not shared.closed, "the shared one stays open for the next call"
        await shared_sessions.close_shared_sessions()

    asyncio.run(compare())


def test_one_session_per_loop_headers_and_auth(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(EndpointConfig, "session", shared_sessions.shared_session)

    async def run() -> None:
        found: List[aiohttp.ClientSession] = []
        for config in [endpoint(s, 9) for s in (*ENDPOINTS, ENDPOINTS[1])]:
            async with config.session() as session:
                found.append(session)
        assert found[1] is found[3] and len({id(s) for s in found}) == 3
        await shared_sessions.close_shared_sessions()
        assert all(s.closed for s in found)

    asyncio.run(run())


def test_serve_application_gets_the_listener_that_closes_the_sessions(monkeypatch: pytest.MonkeyPatch) -> None:
    # rasa.api.run passes only the arguments serve_application declares: the wrapper declares the same
    assert arguments_of(shared_sessions.serve_application) == arguments_of(shared_sessions.ORIGINAL_SERVE)
    received: Dict[str, Any] = {}
    monkeypatch.setattr(shared_sessions, "ORIGINAL_SERVE", lambda *args, **kwargs: received.update(kwargs))
    own = (print, "before_server_start")
    shared_sessions.serve_application("models", port=5005, server_listeners=[own])
    assert received["server_listeners"] == [own, (shared_sessions.close_shared_sessions, "after_server_stop")]
    assert received["port"] == 5005


SERVE_SCRIPT = """
import sys
from onewindow.rasa_plugins.patches import install, shared_sessions
install()
import rasa.core.run
from rasa.utils.endpoints import EndpointConfig

async def call_then_stop(app, loop):
    async with EndpointConfig("http://127.0.0.1:9/").session() as session:
        assert not session.closed
    app.stop()

serve = rasa.core.run.serve_application if sys.argv[2] == "patched" else shared_sessions.ORIGINAL_SERVE
serve(model_path=sys.argv[1], port=int(sys.argv[3]), enable_api=False, channel="rest",
      server_listeners=[(call_then_stop, "after_server_start")])
print("stopped", flush=True)
"""


@pytest.mark.stack
@pytest.mark.parametrize("serve", ["patched", "unpatched"])
def test_a_stopped_rasa_server_leaves_no_unclosed_client_session(serve: str, tmp_path: Path) -> None:
    """A real Rasa server (no model) opens the shared session, stops, and says nothing of it on stderr;
    served without the listener it does (so the check can fail)."""
    script = tmp_path / "serve.py"
    script.write_text(SERVE_SCRIPT)
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "no-model"), serve, str(free_port())],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 0 and "stopped" in done.stdout, done.stderr[-2000:]
    assert ("Unclosed client session" in done.stderr) == (serve == "unpatched")


def test_closing_leaves_nothing_for_the_garbage_collector_to_warn_about() -> None:
    warnings: List[str] = []

    async def run() -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: warnings.append(context["message"]))
        async with shared_sessions.shared_session(endpoint(ENDPOINTS[1], 9)):
            pass
        await shared_sessions.close_shared_sessions()
        gc.collect()

    asyncio.run(run())
    assert warnings == [] and not shared_sessions._SESSIONS


# --- tracker_errors: Agent._create_tracker_store -------------------------------------------------------------------


class BrokenStore(InMemoryTrackerStore):
    async def retrieve(self, sender_id: str) -> Any:
        raise ConnectionError("the tracker database is down")

    async def save(self, tracker: Any) -> None:
        raise ConnectionError("the tracker database is down")


@pytest.mark.parametrize("create", ["patched", "original"])
def test_a_failing_tracker_store_fails_the_turn_instead_of_falling_back_to_memory(create: str) -> None:
    """Patched, retrieve and save raise the store's error; Rasa's original gives None and saves in memory."""
    maker = tracker_errors.create_tracker_store if create == "patched" else tracker_errors.ORIGINAL_CREATE_TRACKER_STORE
    store = maker(BrokenStore(Domain.empty()), Domain.empty())
    tracker = DialogueStateTracker("someone", [])
    if create == "patched":
        with pytest.raises(ConnectionError):
            asyncio.run(store.retrieve("someone"))
        with pytest.raises(ConnectionError):
            asyncio.run(store.save(tracker))
    else:
        assert asyncio.run(store.retrieve("someone")) is None
        asyncio.run(store.save(tracker))
        assert asyncio.run(store.fallback_tracker_store.retrieve("someone")) is not None
