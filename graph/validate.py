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
from graph.value_links import UNKNOWN, constant_value, worst_case
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
    # literal inputs fed by a link whose value is known only when it arrives (checked then
    # by `check_arrived_values`), each with the value budgets size it at (its upper bound)
    pending: dict[str, Any] = field(default_factory=dict)

    def cost_values(self) -> dict[str, Any]:
        """The literal values a cost estimate reads, pending ones at their worst case."""
        return {**self.literals, **self.pending} if self.pending else self.literals


@dataclass
class Checked:
    """The outcome of validation; when ok, what planning needs."""

    problems: list[Problem] = field(default_factory=list)
    nodes: dict[str, CheckedNode] = field(default_factory=dict)
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)
    order: list[str] = field(default_factory=list)  # deterministic topological order
    bypassed: list[str] = field(default_factory=list)  # left out by their mode (graph/modes.py)
    skipped: list[str] = field(default_factory=list)
    # the Choice listings consulted ({source: values}): the same listings later mean
    # the same verdict (validation reads nothing else outside the workflow)
    listed: dict[str, list[str]] = field(default_factory=dict)
    # what planning derives from this (never changed) outcome, kept for the next run of
    # the same checked workflow (graph/plan.py)
    derived: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

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
    from graph.modes import apply_modes  # both import Problem from here
    from graph.versions import migrate

    out = Checked()
    problems = out.problems
    lookup = _lister(choices, out.listed)
    workflow, version_problems = migrate(workflow, registry)  # old files: node migrations
    problems.extend(version_problems)
    modes = apply_modes(workflow, registry)  # bypassed and muted nodes left out
    workflow = modes.workflow
    problems.extend(modes.problems)
    out.bypassed, out.skipped = modes.bypassed, modes.skipped
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
        pending: set[str] = set()
        for name, value in entry.inputs.items():
            link = as_link(value)
            inp = spec.inputs.get(name)
            if inp is None:
                problems.append(
                    Problem(node_id, name, "unknown_input", f"{spec.type} has no input {name!r}")
                )
            elif link is not None:
                if inp.link_type is None:
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
                    if inp.socket is None:  # a widget fed by a link (a primitive node)
                        known = constant_value(workflow, registry, link, inp)
                        if known is UNKNOWN:
                            pending.add(name)
                        else:
                            literals[name] = known
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
        values = _check_literals(node_id, spec, literals, problems, frozenset(pending))
        if values is not None:
            # the node's own rules wait for linked values (run then: check_arrived_values)
            _check_values(node_id, spec, values, lookup, problems, rules=not pending)
            bounds = {name: worst_case(spec.inputs[name]) for name in sorted(pending)}
            out.nodes[node_id] = CheckedNode(node_id, spec, values, links, bounds)
    _check_links(workflow, registry, problems)
    out.graph = dependency_graph(workflow)
    out.order = _order_or_cycles(out.graph, problems)
    if not any(
        registry.nodes.get(e.type, None) and registry.nodes[e.type].output_node
        for e in workflow.nodes.values()
    ):
        left_out = "; every output node is muted or bypassed" if out.skipped or out.bypassed else ""
        problems.append(
            Problem(
                None,
                None,
                "no_output",
                f"the workflow has no output node (e.g. SaveImage){left_out}",
            )
        )
    if modes.problems:  # an input that lost its link to a mode is reported once, as such
        blamed = {(p.node_id, p.field) for p in modes.problems}
        problems[:] = [
            p for p in problems if p in modes.problems or (p.node_id, p.field) not in blamed
        ]
    return out


def _check_literals(
    node_id: str,
    spec: NodeSpec,
    literals: dict[str, Any],
    problems: list[Problem],
    pending: frozenset[str] = frozenset(),
) -> dict[str, Any] | None:
    """Validated literal values with defaults (``pending``: linked, left out), or None
    after adding every problem."""
    huge = {
        name for name, value in literals.items() if type(value) is int and abs(value) > INT_LIMIT
    }
    for name in huge:
        problems.append(Problem(node_id, name, "out_of_range", "integer too large"))
    try:
        values = spec.literal_model(pending).model_validate(literals).model_dump()
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
    for name in pending:
        values.pop(name, None)
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
    rules: bool = True,
) -> None:
    """Choice inputs against their listings, then the node's own rules on its values
    (`Node.check`: rules across inputs, names inside a prompt)."""
    for name, inp in spec.inputs.items():
        if inp.choice_source is None or lookup is None or name not in values:
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
    if not rules:
        return
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
            if link is None or inp is None or inp.link_type is None:
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
            elif not can_connect(out_type, inp.link_type):
                problems.append(
                    Problem(
                        node_id,
                        name,
                        "type_mismatch",
                        f"{name} takes {inp.link_type.name}, but {src_id}.{out_name} "
                        f"is {out_type.name}",
                    )
                )


def check_arrived_values(
    node: CheckedNode, values: dict[str, Any], choices: Callable[[str], list[str]] | None
) -> list[Problem]:
    """Every problem of a node's literal values once its linked ones have arrived: the
    same constraints, choices and rules validation applies to a typed-in value."""
    problems: list[Problem] = []
    literal = {name: values[name] for name in node.spec.literal_names if name in values}
    checked = _check_literals(node.id, node.spec, literal, problems)
    if checked is not None:
        _check_values(node.id, node.spec, checked, _lister(choices, {}), problems)
    return [
        Problem(p.node_id, p.field, p.code, f"{p.message} (the value arrived over a link)")
        for p in problems
    ]


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
