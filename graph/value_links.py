"""Widgets fed by links: the value a primitive node gives them, known before the run.

A literal input may be linked from an output of its value type (graph.types.VALUE_SOCKETS).
When the source is a primitive node (`Node.CONSTANT_OUTPUTS`), validation knows the value
and checks it, and budgets size it, as if it were typed in; otherwise the value is checked
when it arrives (graph.validate.check_arrived_values) and budgets assume its upper bound.
"""

from __future__ import annotations

from typing import Any

from graph.node import InputSpec
from graph.registry import Registry
from graph.types import can_connect
from graph.workflow import Workflow, as_link

UNKNOWN: Any = object()


def constant_value(
    workflow: Workflow, registry: Registry, link: tuple[str, str], inp: InputSpec
) -> Any:
    """The value a widget fed by ``link`` will get, when the source is a primitive node
    (`Node.CONSTANT_OUTPUTS`) holding a literal of the right type; else ``UNKNOWN``."""
    src = workflow.nodes.get(link[0])
    spec = registry.nodes.get(src.type) if src is not None else None
    name = spec.constant_outputs.get(link[1]) if spec is not None else None
    if src is None or spec is None or name is None or inp.link_type is None:
        return UNKNOWN
    if not can_connect(spec.outputs[link[1]], inp.link_type):
        return UNKNOWN
    if name in src.inputs:
        value = src.inputs[name]
        return UNKNOWN if as_link(value) is not None else value
    source_input = spec.inputs[name]
    return UNKNOWN if source_input.required else source_input.default


def worst_case(inp: InputSpec) -> Any:
    """What a budget sizes a value known only at run time at: its upper bound."""
    c = inp.constraints
    return c.get("le", c.get("lt", inp.default))
