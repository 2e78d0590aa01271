"""Validation: collect every problem of a workflow before anything runs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
from pydantic import ValidationError

from graph.node import NodeSpec
from graph.registry import Registry
from graph.types import can_connect
from graph.workflow import Workflow, as_link

INT_LIMIT = 2**64  # no integer input accepts more, constrained or not

_PYDANTIC_CODES = {
    "missing": "missing_input",
    "extra_forbidden": "unknown_input",
    "literal_error": "not_in_choices",
    "greater_than_equal": "out_of_range",
    "less_than_equal": "out_of_range",
    "greater_than": "out_of_range",
    "less_than": "out_of_range",
    "multiple_of": "not_multiple",
    "string_too_long": "too_long",
    "finite_number": "wrong_type",
}


@dataclass(frozen=True)
class Problem:
    """One reason a workflow cannot run, located as precisely as possible."""

    node_id: str | None
    field: str | None
    code: str
    message: str
    # machine-readable facts a client can act on (model_missing: the model's family)
    detail: dict[str, Any] | None = None

    def __str__(self) -> str:
        where = ".".join(p for p in (self.node_id, self.field) if p) or "workflow"
        return f"{where}: {self.message} [{self.code}]"

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id,
            "field": self.field,
            "code": self.code,
            "message": self.message,
            **({"detail": self.detail} if self.detail else {}),
        }


@dataclass
class CheckedNode:
    """A node whose inputs passed validation: literal values with defaults, and links."""

    id: str
    spec: NodeSpec
    literals: dict[str, Any]
    links: dict[str, tuple[str, str]]


@dataclass
class Checked:
    """The outcome of validation; when ok, what planning needs."""

    problems: list[Problem] = field(default_factory=list)
    nodes: dict[str, CheckedNode] = field(default_factory=dict)
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)
    order: list[str] = field(default_factory=list)  # deterministic topological order

    @property
    def ok(self) -> bool:
        return not self.problems


class InvalidWorkflow(Exception):
    """Raised with every problem found; nothing has run."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


def validate(workflow: Workflow, registry: Registry, choices: Any = None) -> Checked:
    """Check node types, inputs, links, types, values, cycles and outputs.

    ``choices(source) -> list[str]`` supplies the allowed values of Choice inputs."""
    from graph.versions import migrate  # versions imports Problem from here

    out = Checked()
    problems = out.problems
    lookup = _lister(choices, {})
    workflow, version_problems = migrate(workflow, registry)  # old files: node migrations
    problems.extend(version_problems)
    outdated = {p.node_id for p in version_problems}
    for node_id, entry in workflow.nodes.items():
        spec = registry.nodes.get(entry.type)
        if spec is None:
            problems.append(
                Problem(node_id, None, "unknown_node_type", f"unknown node type {entry.type!r}")
            )
            continue
        if node_id in outdated:
            continue
        literals: dict[str, Any] = {}
        links: dict[str, tuple[str, str]] = {}
        for name, value in entry.inputs.items():
            link = as_link(value)
            inp = spec.inputs.get(name)
            if inp is None:
                problems.append(
                    Problem(node_id, name, "unknown_input", f"{spec.type} has no input {name!r}")
                )
            elif link is not None:
                if inp.socket is None:
                    problems.append(
                        Problem(
                            node_id,
                            name,
                            "not_linkable",
                            f"{name} takes a value ({inp.py_type}), not a link",
                        )
                    )
                else:
                    links[name] = link
            elif inp.socket is not None:
                problems.append(
                    Problem(
                        node_id,
                        name,
                        "link_required",
                        f"{name} must be linked to a {inp.socket.name} output",
                    )
                )
            else:
                literals[name] = value
        for name in spec.link_names:
            if spec.inputs[name].required and name not in links and name not in entry.inputs:
                problems.append(
                    Problem(node_id, name, "missing_input", f"required input {name} is not linked")
                )
        values = _check_literals(node_id, spec, literals, problems)
        if values is not None:
            _check_values(node_id, spec, values, lookup, problems)
            out.nodes[node_id] = CheckedNode(node_id, spec, values, links)
    _check_links(workflow, registry, problems)
    out.graph = dependency_graph(workflow)
    out.order = _order_or_cycles(out.graph, problems)
    if not any(
        registry.nodes.get(e.type, None) and registry.nodes[e.type].output_node
        for e in workflow.nodes.values()
    ):
        problems.append(
            Problem(None, None, "no_output", "the workflow has no output node (e.g. SaveImage)")
        )
    return out


def _check_literals(
    node_id: str, spec: NodeSpec, literals: dict[str, Any], problems: list[Problem]
) -> dict[str, Any] | None:
    """Validated literal values with defaults, or None after adding every problem."""
    huge = {
        name for name, value in literals.items() if type(value) is int and abs(value) > INT_LIMIT
    }
    for name in huge:
        problems.append(Problem(node_id, name, "out_of_range", "integer too large"))
    try:
        values = spec.model.model_validate(literals).model_dump()
    except ValidationError as exc:
        for err in exc.errors():
            name = str(err["loc"][0]) if err["loc"] else None
            if name in huge:
                continue
            code = _PYDANTIC_CODES.get(
                err["type"], "wrong_type" if "type" in err["type"] else "invalid_value"
            )
            msg = err["msg"]
            if code != "missing_input":
                msg = f"{msg} (got {_short(err.get('input'))})"
            problems.append(Problem(node_id, name, code, msg))
        return None
    return None if huge else values


def _lister(choices: Any, listed: dict[str, list[str]]) -> Callable[[str], list[str]] | None:
    """``choices`` with each source listed once per validation (None stays None)."""
    if choices is None:
        return None

    def lookup(source: str) -> list[str]:
        if source not in listed:
            listed[source] = choices(source)
        return listed[source]

    return lookup


def _check_values(
    node_id: str,
    spec: NodeSpec,
    values: dict[str, Any],
    lookup: Callable[[str], list[str]] | None,
    problems: list[Problem],
) -> None:
    """Choice inputs against their listings, then the node's own rules on its values
    (`Node.check`: rules across inputs, names inside a prompt)."""
    for name, inp in spec.inputs.items():
        if inp.choice_source is None or lookup is None:
            continue
        allowed = lookup(inp.choice_source)
        if values.get(name) not in allowed:
            shown = ", ".join(allowed[:20]) + (" ..." if len(allowed) > 20 else "")
            problems.append(
                Problem(
                    node_id,
                    name,
                    "not_in_choices",
                    f"{_short(values.get(name))} is not one of the available "
                    f"{inp.choice_source}: {shown or '(none)'}",
                )
            )
    try:
        broken = list(spec.cls.check(dict(values), lookup))
    except Exception as exc:  # noqa: BLE001 - a faulty rule must not crash validation
        problems.append(Problem(node_id, None, "check_failed", f"{spec.type}.check raised {exc!r}"))
        return
    for name, code, message in broken:
        problems.append(Problem(node_id, name, code, message))


def _check_links(workflow: Workflow, registry: Registry, problems: list[Problem]) -> None:
    for node_id, entry in workflow.nodes.items():
        spec = registry.nodes.get(entry.type)
        if spec is None:
            continue
        for name, value in entry.inputs.items():
            link = as_link(value)
            inp = spec.inputs.get(name)
            if link is None or inp is None or inp.socket is None:
                continue
            src_id, out_name = link
            src = workflow.nodes.get(src_id)
            if src is None:
                problems.append(
                    Problem(node_id, name, "link_missing_node", f"links to missing node {src_id!r}")
                )
                continue
            src_spec = registry.nodes.get(src.type)
            if src_spec is None:
                continue
            out_type = src_spec.outputs.get(out_name)
            if out_type is None:
                problems.append(
                    Problem(
                        node_id,
                        name,
                        "link_missing_output",
                        f"node {src_id!r} ({src.type}) has no output {out_name!r}; "
                        f"it has {', '.join(src_spec.outputs) or 'none'}",
                    )
                )
            elif not can_connect(out_type, inp.socket):
                problems.append(
                    Problem(
                        node_id,
                        name,
                        "type_mismatch",
                        f"{name} takes {inp.socket.name}, but {src_id}.{out_name} "
                        f"is {out_type.name}",
                    )
                )


def _order_or_cycles(g: nx.DiGraph, problems: list[Problem]) -> list[str]:
    """A deterministic topological order, or a problem naming each cycle's nodes."""
    try:
        return list(nx.lexicographical_topological_sort(g))
    except nx.NetworkXUnfeasible:
        pass
    for component in nx.strongly_connected_components(g):
        if len(component) > 1 or any(g.has_edge(n, n) for n in component):
            names = sorted(component)
            problems.append(
                Problem(
                    names[0],
                    None,
                    "cycle",
                    "these nodes form a cycle: " + " -> ".join(names),
                )
            )
    return []


def dependency_graph(workflow: Workflow) -> nx.DiGraph:
    """Edges from each upstream node to the nodes that read its outputs."""
    g = nx.DiGraph()
    g.add_nodes_from(workflow.nodes)
    for node_id, entry in workflow.nodes.items():
        for value in entry.inputs.values():
            link = as_link(value)
            if link is not None and link[0] in workflow.nodes:
                g.add_edge(link[0], node_id)
    return g


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
