"""Per-node states of a job, as the dispatcher stores them while the job runs
(`service.store.settle_nodes` closes them when the job ends)."""

from __future__ import annotations

import time
from typing import Any


def track_node(nodes: dict[str, dict[str, Any]], message: dict[str, Any]) -> bool:
    """Update per-node states from one message; True when something changed."""
    kind = message.get("type")
    nid = message.get("node_id")
    if kind == "run_started":
        for n in message.get("to_run", []):
            nodes[n] = {"status": "pending", "seconds": None}
        for n in message.get("cached", []):
            nodes[n] = {"status": "cached", "seconds": 0.0}
    elif kind == "node_started" and nid:
        nodes[nid] = {"status": "running", "seconds": None, "started": time.time()}
    elif kind == "node_finished" and nid:
        nodes[nid] = {"status": "executed", "seconds": message.get("seconds")}
    elif kind == "node_cached" and nid:
        nodes[nid] = {"status": "cached", "seconds": 0.0}
    elif kind == "error" and nid:
        nodes[nid] = {"status": "error", "seconds": None}
    else:
        return False
    return True
