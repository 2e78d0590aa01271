"""Node versions in workflow files: old files are migrated, newer ones refused clearly."""

from __future__ import annotations

from typing import Any

import pytest

from graph import Engine, Node, Registry, Widget, Workspace
from graph.versions import migrate
from graph.workflow import parse_workflow
from tests.engine_nodes.types import Number


class Blur(Node):
    """v1 had ``radius``; v2 renamed it ``sigma`` (half the value) and added ``mode``."""

    VERSION = 3
    OUTPUT_NODE = True
    OUTPUTS = {"value": Number}
    sigma: float = Widget(1.0)
    mode: str = "gauss"
    MIGRATIONS = {
        1: lambda inputs: {"sigma": inputs.get("radius", 2.0) / 2},
        2: lambda inputs: {**inputs, "mode": "box"},  # v2 files meant a box blur
    }

    def run(self, ctx: Any, sigma: float, mode: str) -> dict[str, Any]:
        return {"value": sigma if mode == "box" else -sigma}


class Sharpen(Node):
    VERSION = 2  # no migration declared from v1
    OUTPUT_NODE = True
    OUTPUTS = {}
    amount: float = 1.0

    def run(self, ctx: Any, amount: float) -> dict[str, Any]:
        return {}


@pytest.fixture
def engine(tmp_path) -> Engine:
    return Engine(Registry.from_classes([Blur, Sharpen]), Workspace.at(tmp_path, tmp_path))


def wf(**nodes: Any):
    return parse_workflow({"version": 1, "nodes": nodes})


def test_old_nodes_are_migrated_step_by_step(engine: Engine) -> None:
    old = wf(b={"type": "Blur", "inputs": {"radius": 6}, "version": 1})
    new, problems = migrate(old, engine.registry)
    assert problems == [] and new.nodes["b"].version == 3
    assert new.nodes["b"].inputs == {"sigma": 3.0, "mode": "box"}
    checked = engine.check(old)  # the engine migrates on its own too
    assert checked.ok and checked.nodes["b"].literals == {"sigma": 3.0, "mode": "box"}
    # unversioned entries are taken as current; current ones are stamped
    same, _ = migrate(wf(b={"type": "Blur", "inputs": {"sigma": 1.5}}), engine.registry)
    assert same.nodes["b"].version == 3 and same.nodes["b"].inputs == {"sigma": 1.5}


def test_newer_or_unmigratable_files_say_so(engine: Engine) -> None:
    doc = wf(
        b={"type": "Blur", "inputs": {"sigma": 1}, "version": 9},
        s={"type": "Sharpen", "inputs": {}, "version": 1},
    )
    problems = {p.node_id: p for p in engine.check(doc).problems}
    assert problems["b"].code == "newer_version"
    assert "saved by a newer sdgraph" in problems["b"].message and "v9" in problems["b"].message
    assert problems["s"].code == "no_migration" and "v1 to v2" in problems["s"].message
    with pytest.raises(Exception, match="greater than or equal to 1"):
        wf(b={"type": "Blur", "inputs": {}, "version": 0})
