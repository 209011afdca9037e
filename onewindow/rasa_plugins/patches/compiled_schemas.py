"""Patch: `jsonschema.validate` compiles each schema once (for the whole process).

Replaces `jsonschema.validate` (jsonschema 4.17), which Rasa calls on every action-server response
(rasa.core.actions.action.RemoteAction._validate_action_result), every NLG response and every event
list posted to its HTTP API. The original checks the schema itself against the JSON Schema
meta-schema on every call: under the REST benchmark (bench/rest_load.py, py-spy) that re-check took
two thirds of the Rasa server's CPU. The replacement checks and compiles each schema once (keyed by
its JSON, in its own key order) and raises the same best-matching ValidationError for the same
instances; a call with arguments beyond (instance, schema) goes to the original.
Checked by tests/test_rasa_patches.py (same verdicts and errors on Rasa's schemas, generated instances).
"""

from __future__ import annotations

import functools
import json
from typing import Any

import jsonschema
from jsonschema import exceptions, validators

ORIGINAL = validators.validate  # what `jsonschema.validate` is until install()


@functools.lru_cache(maxsize=128)
def _compiled(schema_json: str) -> Any:
    schema = json.loads(schema_json)
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate_with_compiled_schema(instance: Any, schema: Any, cls: Any = None, *args: Any, **kwargs: Any) -> None:
    """Same contract as `jsonschema.validate`: raise the best-matching ValidationError."""
    if cls is not None or args or kwargs:
        return ORIGINAL(instance, schema, cls, *args, **kwargs)
    try:
        key = json.dumps(schema)  # not sorted: the validator reports the first of equally bad errors in schema order
    except (TypeError, ValueError):
        return ORIGINAL(instance, schema)
    error = exceptions.best_match(_compiled(key).iter_errors(instance))
    if error is not None:
        raise error
    return None


def install() -> None:
    jsonschema.validate = validate_with_compiled_schema
