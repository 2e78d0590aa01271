"""Tiny helpers to write test workflows compactly."""

from __future__ import annotations

from typing import Any

from graph.workflow import Workflow, parse_workflow


def link(node: str, output: str = "value") -> dict[str, str]:
    return {"node": node, "output": output}


def n(type_: str, **inputs: Any) -> dict[str, Any]:
    return {"type": type_, "inputs": inputs}


def wf(**nodes: dict[str, Any]) -> Workflow:
    return parse_workflow({"version": 1, "nodes": nodes})


def executed(events: list[Any]) -> list[str]:
    return [e.node_id for e in events if e.kind == "node_finished"]
