"""Patch: Rasa's model graph runs node after node, without dask.

Replaces `rasa.engine.runner.dask.DaskGraphRunner` as the runner `rasa.core.processor.MessageProcessor`
loads a model with (the name `DaskGraphRunner` in rasa.core.processor; training keeps dask).
Rasa 3.6 runs its prediction graph (NLU on each message, the policies on each prediction) through
`dask.get`, which on every run rebuilds the graph, walks the dependencies recursively, orders the
tasks and schedules them one by one on the calling thread. Profiled under the REST benchmark that
bookkeeping was 15 % of the Rasa server's time. This runner, a DaskGraphRunner subclass that uses its
private `_graph_schema` and `_instantiated_nodes`, works out the order of the nodes once per set of
targets and then calls the same nodes with the same inputs, in an order that respects every
dependency, as dask's synchronous scheduler does.
Checked by tests/test_graph_runner.py (the same parses and predictions as DaskGraphRunner on the trained model).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Text, Tuple

import rasa.core.processor
from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner

# (node name, names of the nodes or inputs that give each of its inputs), in running order
Plan = List[Tuple[Text, Tuple[Text, ...]]]


class SequentialGraphRunner(DaskGraphRunner):
    """A `DaskGraphRunner` that runs the nodes itself, in an order computed once per target set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._plans: Dict[Tuple[Text, ...], Plan] = {}

    def run(self, inputs: Optional[Dict[Text, Any]] = None, targets: Optional[List[Text]] = None) -> Dict[Text, Any]:
        run_targets = tuple(targets if targets else self._graph_schema.target_names)
        plan = self._plans.get(run_targets)
        if plan is None:
            plan = self._plans[run_targets] = self._plan(run_targets)
        results: Dict[Text, Any] = {}
        for name, value in (inputs or {}).items():
            if isinstance(value, str) and value in self._graph_schema.nodes:
                raise GraphRunError(
                    f"Input value '{value}' clashes with a node name. Make sure that none of the "
                    f"input names passed to the `run` method are the same as node names in the graph schema."
                )
            results[name] = (name, value)
        try:
            for node_name, needs in plan:
                # like dask: an input nobody provides is passed as its name (the node reports it)
                results[node_name] = self._instantiated_nodes[node_name](*(results.get(need, need) for need in needs))
        except RuntimeError as error:
            raise GraphRunError("Error running runner.") from error
        return dict(results[target] for target in run_targets)

    def _plan(self, targets: Tuple[Text, ...]) -> Plan:
        """The nodes the targets depend on, each after the nodes it needs (Rasa's graphs have no cycles)."""
        nodes = self._graph_schema.nodes
        plan: Plan = []
        placed: set = set()

        def place(name: Text) -> None:
            if name in placed or name not in nodes:  # done already, or an input
                return
            for need in nodes[name].needs.values():
                place(need)
            placed.add(name)
            plan.append((name, tuple(nodes[name].needs.values())))

        for target in targets:
            place(target)
        return plan


def install() -> None:
    rasa.core.processor.DaskGraphRunner = SequentialGraphRunner
