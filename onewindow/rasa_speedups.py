"""Speed-ups for the Rasa 3.6 server process, installed by `python -m onewindow.rasa_server`.

Both were found by profiling the Rasa server under the REST benchmark (bench/rest_load.py);
neither changes what Rasa computes.

1. Rasa validates every action-server response with `jsonschema.validate()`, which checks
   the schema itself against the JSON Schema meta-schema on every call. That re-check took
   two thirds of the server's CPU. `jsonschema.validate` now compiles each schema once and
   reuses the validator: responses are validated as before, against the same schema.
2. Rasa turns every stored event back into an object through `Event.resolve_by_type`,
   which walks the whole class tree of events for each one (about 4 ms per message).
   The type-name-to-class table is now built once, and rebuilt if a name is not found.
"""
from __future__ import annotations

import functools
import json
from typing import Any, Callable, Dict

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


def install() -> None:
    from rasa.shared.core.events import Event

    jsonschema.validate = validate_with_compiled_schema
    if not isinstance(getattr(Event.resolve_by_type, "__self__", None), _EventTypes):
        Event.resolve_by_type = staticmethod(_EventTypes(Event.resolve_by_type).resolve)
