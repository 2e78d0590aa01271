"""Workflow budgets from node-declared costs, checked before anything is queued.

`estimate` walks the nodes that will run in topological order, asks each for its
`Cost` (graph/cost.py) with the pixels its links carry, and sums the workflow;
`over_budget` turns what exceeds the limits into validation problems that name
the node and the input responsible."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from graph.cost import Cost, CostInputs
from graph.plan import needed_nodes
from graph.validate import Checked, Problem

CODE = "budget_exceeded"


@dataclass(frozen=True)
class CostLimits:
    max_pixels: int  # any one node's pixels (width x height x batch)
    max_steps: int  # any one node's steps
    max_total_steps: int  # steps summed over the workflow
    max_work: int  # pixel-steps summed over the workflow


@dataclass
class WorkflowCost:
    nodes: dict[str, Cost] = field(default_factory=dict)
    outputs: dict[str, dict[str, int]] = field(default_factory=dict)  # pixels per output
    received: dict[str, int] = field(default_factory=dict)  # largest linked input's pixels
    problems: list[Problem] = field(default_factory=list)  # costs that could not be known

    @property
    def total_steps(self) -> int:
        return sum(c.steps for c in self.nodes.values())

    @property
    def work(self) -> int:
        return sum(c.work for c in self.nodes.values())


def estimate(checked: Checked, workspace: Any = None) -> WorkflowCost:
    """Every node's cost, given the pixels its upstream outputs carry."""
    out = WorkflowCost()
    for nid in needed_nodes(checked):
        node = checked.nodes[nid]
        pixels = {name: out.outputs.get(src, {}).get(o, 0) for name, (src, o) in node.links.items()}
        inputs = CostInputs(node.cost_values(), pixels, workspace)
        try:
            cost = node.spec.cls.cost(inputs)
        except Exception as exc:  # e.g. an input file that vanished or is a FIFO
            out.problems.append(Problem(nid, None, "cost_unknown", f"cannot size this node: {exc}"))
            cost = Cost()
        out.nodes[nid] = cost
        out.received[nid] = largest = inputs.linked_pixels()
        carried = cost.outputs
        if carried is None:
            carried = dict.fromkeys(node.spec.outputs, largest)
        out.outputs[nid] = dict(carried)
    return out


def over_budget(cost: WorkflowCost, limits: CostLimits) -> list[Problem]:
    """Each node over a per-node limit, then the workflow totals (blaming the node
    that contributes most). Too many pixels are blamed where the size is made, not on
    every node downstream that receives it."""
    problems = list(cost.problems)
    for nid, c in cost.nodes.items():
        if c.pixels > limits.max_pixels and c.pixels > cost.received.get(nid, 0):
            problems.append(
                Problem(
                    nid,
                    c.pixels_field,
                    CODE,
                    f"{c.pixels:,} pixels (width x height x batch); the limit is "
                    f"{limits.max_pixels:,}",
                )
            )
        if c.steps > limits.max_steps:
            problems.append(
                Problem(
                    nid, c.steps_field, CODE, f"{c.steps} steps; the limit is {limits.max_steps}"
                )
            )
    samplers = {nid: c for nid, c in cost.nodes.items() if c.steps}
    if not samplers:
        return problems
    top_id = max(samplers, key=lambda n: (samplers[n].work, samplers[n].steps))
    top = samplers[top_id]
    where = f"{len(samplers)} sampling node(s); the largest is {top_id}"
    if cost.total_steps > limits.max_total_steps:
        problems.append(
            Problem(
                top_id,
                top.steps_field,
                CODE,
                f"the workflow runs {cost.total_steps:,} steps in total ({where}, "
                f"{top.steps} steps); the limit is {limits.max_total_steps:,}",
            )
        )
    if cost.work > limits.max_work:
        problems.append(
            Problem(
                top_id,
                top.steps_field,
                CODE,
                f"the workflow needs {cost.work:,} pixel-steps (steps x width x height x batch, "
                f"summed; {where}, {top.steps} steps x {top.pixels:,} pixels); the limit is "
                f"{limits.max_work:,}",
            )
        )
    return problems
