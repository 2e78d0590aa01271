"""JSON schema of node types, derived from their declarations.

Served by ``GET /api/nodes``, printed by ``run.py --nodes --json`` and read by
the canvas, which holds no type rules of its own: each link input carries the
precomputed list of source types it ``accepts``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from graph.node import InputSpec, NodeSpec
from graph.registry import Registry
from graph.types import can_connect


def widget_for(inp: InputSpec, choices: Callable[[str], list[str]] | None) -> dict[str, Any]:
    """How the canvas edits a literal input."""
    c = inp.constraints
    if inp.choice_source is not None:
        listed = choices(inp.choice_source) if choices else []
        return {"kind": "select", "choices": listed, "source": inp.choice_source}
    if inp.choices is not None:
        return {"kind": "select", "choices": list(inp.choices)}
    if inp.py_type == "BOOLEAN":
        return {"kind": "toggle"}
    if inp.py_type in ("INT", "FLOAT"):
        low = c.get("ge", c.get("gt"))
        high = c.get("le", c.get("lt"))
        step = c.get("step", c.get("multiple_of", 1 if inp.py_type == "INT" else None))
        return {
            "kind": "seed" if c.get("seed") else "number",
            "integer": inp.py_type == "INT",
            "min": low,
            "max": high,
            "step": step,
        }
    if c.get("multiline"):
        return {"kind": "textarea", "max_length": c.get("max_length")}
    return {"kind": "text", "max_length": c.get("max_length")}


def node_schema(
    spec: NodeSpec, registry: Registry, choices: Callable[[str], list[str]] | None = None
) -> dict[str, Any]:
    kinds = registry.socket_types()
    inputs = []
    for inp in spec.inputs.values():
        item: dict[str, Any] = {
            "name": inp.name,
            "required": inp.required,
            "link_only": inp.link_only,
        }
        if inp.socket is not None:
            item["type"] = inp.socket.name
            item["accepts"] = [k.name for k in kinds if can_connect(k, inp.socket)]
        else:
            item["type"] = inp.py_type
            item["default"] = inp.default
            item["widget"] = widget_for(inp, choices)
            if inp.link_type is not None:  # the widget can become an input fed by this type
                item["link_type"] = inp.link_type.name
        inputs.append(item)
    return {
        "type": spec.type,
        "version": spec.version,
        "category": spec.category,
        "description": spec.description,
        "output_node": spec.output_node,
        "cacheable": spec.cacheable,
        "inputs": inputs,
        "outputs": [{"name": n, "type": t.name} for n, t in spec.outputs.items()],
    }


def registry_schema(
    registry: Registry, choices: Callable[[str], list[str]] | None = None
) -> dict[str, Any]:
    """Every node's schema, the socket types with their colours, and compatibility."""
    return {
        "nodes": {
            name: node_schema(spec, registry, choices)
            for name, spec in sorted(registry.nodes.items())
        },
        "types": {t.name: {"color": t.color} for t in registry.socket_types()},
        "compatibility": registry.compatibility(),
    }


def describe_node(spec: NodeSpec) -> str:
    """One readable block for ``run.py --nodes``."""
    lines = [f"{spec.type} (v{spec.version}, {spec.category}){' [output]' * spec.output_node}"]
    if spec.description:
        lines.append(f"    {spec.description}")
    for inp in spec.inputs.values():
        if inp.socket is not None:
            kind = inp.socket.name + ("" if inp.required else ", optional")
        else:
            parts = [inp.py_type]
            if inp.choices:
                parts.append("one of " + "|".join(map(str, inp.choices)))
            if inp.choice_source:
                parts.append(f"one of the {inp.choice_source}")
            for k in ("ge", "le", "multiple_of"):
                if k in inp.constraints:
                    parts.append(f"{k} {inp.constraints[k]}")
            if not inp.required:
                parts.append(f"default {inp.default!r}")
            kind = ", ".join(parts)
        lines.append(f"    in  {inp.name}: {kind}")
    for name, t in spec.outputs.items():
        lines.append(f"    out {name}: {t.name}")
    return "\n".join(lines)
