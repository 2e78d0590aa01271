"""Cross-field resource budgets, checked after validation and before queueing.

Per-field limits (a node's own ``le=``) cannot stop 2048x2048 at batch 64 or
ten thousand steps on every node; these budgets look at the validated values
(defaults included) of every node."""

from __future__ import annotations

from typing import Any

from graph.validate import Checked, Problem
from graph.workflow import Workflow
from service.config import Budgets

CODE = "budget_exceeded"


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


def check_budgets(checked: Checked, budgets: Budgets) -> list[Problem]:
    problems: list[Problem] = []
    for nid, node in checked.nodes.items():
        values = node.literals
        pixels = _pixels(values)
        if pixels is not None and pixels > budgets.max_pixels:
            problems.append(
                Problem(
                    nid,
                    "width",
                    CODE,
                    f"width x height x batch = {pixels} pixels; the limit is {budgets.max_pixels}",
                )
            )
        steps = values.get("steps")
        if _is_int(steps) and steps > budgets.max_steps:
            problems.append(
                Problem(nid, "steps", CODE, f"{steps} steps; the limit is {budgets.max_steps}")
            )
        for name, value in values.items():
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


def _is_int(value: Any) -> bool:
    return type(value) is int


def _pixels(values: dict[str, Any]) -> int | None:
    w, h = values.get("width"), values.get("height")
    if not (_is_int(w) and _is_int(h)):
        return None
    batch = values.get("batch_size", 1)
    return int(w) * int(h) * (int(batch) if _is_int(batch) else 1)
