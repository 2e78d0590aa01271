"""Node versions in workflow files, and the migrations that bring old files up to date.

A node class declares ``VERSION`` and, when a change breaks old files (a renamed input, a
new required one), ``MIGRATIONS = {old_version: function(inputs) -> inputs}``, one step per
version. A file records each node's version (``"version"`` in the node entry, written when
a workflow is saved); loading applies the steps from that version to the code's, and a node
saved by newer code than this gives a clear error instead of a wrong graph.
"""

from __future__ import annotations

from typing import Any

from graph.validate import Problem
from graph.workflow import NodeEntry, Workflow


def migrate_inputs(
    node_id: str, entry: NodeEntry, spec: Any
) -> tuple[dict[str, Any] | None, Problem | None]:
    """The node's inputs at the code's version, or the problem that prevents it."""
    saved = entry.version
    if saved is None or saved == spec.version:
        return entry.inputs, None
    if saved > spec.version:
        return None, Problem(
            node_id,
            None,
            "newer_version",
            f"{spec.type} v{saved} was saved by a newer sdgraph than this one (it knows "
            f"v{spec.version}); update sdgraph to open this file",
        )
    inputs = dict(entry.inputs)
    for version in range(saved, spec.version):
        step = spec.cls.__dict__.get("MIGRATIONS", {}).get(version)
        if step is None:
            return None, Problem(
                node_id,
                None,
                "no_migration",
                f"{spec.type} v{saved} cannot be read: no migration from v{version} to "
                f"v{version + 1}",
            )
        inputs = step(inputs)
    return inputs, None


def migrate(workflow: Workflow, registry: Any) -> tuple[Workflow, list[Problem]]:
    """The workflow with every known node at the code's version (and stamped with it)."""
    specs = registry.nodes
    if all(e.type in specs and e.version == specs[e.type].version for e in workflow.nodes.values()):
        return workflow, []  # up to date and stamped: nothing to copy (every queued job)
    nodes: dict[str, NodeEntry] = {}
    problems: list[Problem] = []
    for node_id, entry in workflow.nodes.items():
        spec = registry.nodes.get(entry.type)
        if spec is None:
            nodes[node_id] = entry
            continue
        inputs, problem = migrate_inputs(node_id, entry, spec)
        if problem is not None:
            problems.append(problem)
            nodes[node_id] = entry
            continue
        nodes[node_id] = entry.model_copy(update={"inputs": inputs or {}, "version": spec.version})
    return workflow.model_copy(update={"nodes": nodes}), problems
