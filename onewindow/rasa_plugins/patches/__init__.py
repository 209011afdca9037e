"""Where OneWindow patches Rasa: every monkeypatch and every override of a Rasa private method.

Everything here is written against Rasa 3.6.21 (onewindow/rasa_plugins/pinned.py refuses any other
release) and was found by profiling the Rasa server under the REST benchmark (bench/rest_load.py);
none changes what Rasa computes. Each module says what it replaces, why and what it measured:

- compiled_schemas: `jsonschema.validate` compiles each schema once (process-wide).
- event_types: `Event.resolve_by_type` reads a table instead of walking the class tree.
- graph_runner: `rasa.core.processor.DaskGraphRunner` becomes SequentialGraphRunner (no dask per run).
- shared_sessions: `EndpointConfig.session` shares one HTTP session, closed when the server stops
  (`rasa.core.run.serve_application` gets the `after_server_stop` listener).
- probes: `rasa.core.run.configure_app` adds /health/live, /health/ready, /metrics and SIGTERM draining.
- tracker_errors: `Agent._create_tracker_store` gives FailSafeTrackerStore a hook that raises a tracker store's
  error (the turn fails with the channel's apology) instead of falling back to memory.
- tracker_store: LeanSQLTrackerStore overrides `SQLTrackerStore._retrieve` and `save`
  (configured in endpoints.yml, not installed by `install()`).

`install()` is called by `python -m onewindow.rasa_plugins.server`, before Rasa starts.
tests/test_rasa_patches.py holds a contract test for each patch against the code it replaces, and
fails when the source of a replaced Rasa function changes.
"""

from __future__ import annotations

from onewindow.rasa_plugins.pinned import require_pinned_rasa


def install() -> None:
    """Install the patches into this process (after checking that Rasa is the pinned release)."""
    require_pinned_rasa()
    from onewindow.rasa_plugins.patches import (
        compiled_schemas,
        event_types,
        graph_runner,
        probes,
        shared_sessions,
        tracker_errors,
    )

    for patch in (compiled_schemas, event_types, graph_runner, shared_sessions, probes, tracker_errors):
        patch.install()
