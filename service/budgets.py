"""Resource budgets, checked after validation and before queueing.

Per-field limits (a node's own ``le=``) cannot stop 2048x2048 at batch 64 or
ten thousand steps on every node. Sizes and steps come from what each node
declares it costs (`Node.cost`, summed by `graph.budget`), so a renamed input or
a size arriving over a link (an uploaded image, a chain of samplers) counts; the
node count and string lengths are checked here."""

from __future__ import annotations

from typing import Any

from graph.budget import CODE, CostLimits, estimate, over_budget
from graph.validate import Checked, Problem
from graph.workflow import Workflow
from service.config import Budgets


def check_node_count(workflow: Workflow, budgets: Budgets) -> list[Problem]:
    n = len(workflow.nodes)
    if n > budgets.max_nodes:
        return [
            Problem(
                None,
                None,
                CODE,
                f"{n} nodes; this server runs at most {budgets.max_nodes} per workflow",
            )
        ]
    return []


def check_budgets(checked: Checked, budgets: Budgets, workspace: Any = None) -> list[Problem]:
    """Every budget problem of a valid workflow; ``workspace`` sizes input files."""
    limits = CostLimits(
        budgets.max_pixels, budgets.max_steps, budgets.max_total_steps, budgets.max_work
    )
    problems = over_budget(estimate(checked, workspace), limits)
    for nid, node in checked.nodes.items():
        for name, value in node.literals.items():
            if isinstance(value, str) and len(value) > budgets.max_prompt_chars:
                problems.append(
                    Problem(
                        nid,
                        name,
                        CODE,
                        f"{len(value)} characters; the limit is {budgets.max_prompt_chars}",
                    )
                )
    return problems
