"""Patch: `Event.resolve_by_type` looks event classes up in a table.

Replaces `rasa.shared.core.events.Event.resolve_by_type`, which Rasa calls for every stored event it
turns back into an object (every tracker read) and which walks the whole class tree of events for
each one: about 4 ms per message under the REST benchmark. The type-name-to-class table is built once
and rebuilt when a name is not in it (a subclass defined later); names still unknown go to the
original, which gives the same answer for "topic", a default or an unknown name (ValueError).
Checked by tests/test_rasa_patches.py (the same class for every event type name and for unknown names).
"""

from __future__ import annotations

from typing import Any, Callable, Dict

from rasa.shared.core.events import Event


class EventTypes:
    """type_name -> Event subclass, built from the class tree once."""

    def __init__(self, original: Callable[..., Any]) -> None:
        self.original = original
        self.table: Dict[str, Any] = {}

    def resolve(self, type_name: str, default: Any = None) -> Any:
        found = self.table.get(type_name)
        if found is None:
            from rasa.shared.utils.common import all_subclasses

            self.table = {}
            for cls in all_subclasses(Event):  # the first class of a name, as the original finds it
                self.table.setdefault(cls.type_name, cls)
            found = self.table.get(type_name)
        return found if found is not None else self.original(type_name, default)


def original() -> Callable[..., Any]:
    """Rasa's own `Event.resolve_by_type`, installed or not."""
    installed = getattr(Event.resolve_by_type, "__self__", None)
    return installed.original if isinstance(installed, EventTypes) else Event.resolve_by_type


def install() -> None:
    Event.resolve_by_type = staticmethod(EventTypes(original()).resolve)
