"""Per-output cache keys (`Node.OUTPUT_INPUTS`) and node value rules (`Node.check`)."""

from __future__ import annotations

from typing import Any

import pytest

from graph import Engine, Registry, Workspace
from graph.node import Node
from tests.engine_nodes.arithmetic import Add, Const
from tests.engine_nodes.text import Format, Save
from tests.engine_nodes.types import Number
from tests.wf import link, n, wf


class Split(Node):
    """Two outputs, each depending on its own factor."""

    OUTPUTS = {"a": Number, "b": Number}
    OUTPUT_INPUTS = {"a": ("x", "fa"), "b": ("x", "fb")}
    x: Number
    fa: float = 1.0
    fb: float = 1.0

    def run(self, ctx: Any, x: float, fa: float, fb: float) -> dict[str, Any]:
        return {"a": x * fa, "b": x * fb}

    @classmethod
    def check(cls, values: dict[str, Any], choices: Any) -> list[tuple[str, str, str]]:
        return [("fb", "negative", "fb must not be negative")] if values["fb"] < 0 else []


@pytest.fixture
def engine(tmp_path) -> Engine:
    registry = Registry.from_classes([Const, Add, Split, Format, Save])
    return Engine(registry, Workspace.at(tmp_path / "data", tmp_path / "models").ensure())


def doc(fa: float, fb: float) -> Any:
    return wf(
        c=n("Const", value=2),
        s=n("Split", x=link("c"), fa=fa, fb=fb),
        pa=n("Add", a=link("s", "a")),
        pb=n("Add", a=link("s", "b")),
        f=n("Format", x=link("pa")),
        g=n("Format", x=link("pb")),
        save_a=n("Save", text=link("f", "text")),
        save_b=n("Save", text=link("g", "text")),
    )


def ran(result: Any) -> set[str]:
    return {nid for nid, rec in result.nodes.items() if rec.status == "executed"}


def test_an_output_is_keyed_by_the_inputs_it_depends_on(engine) -> None:
    assert engine.run(doc(1.0, 1.0)).status == "ok"
    again = engine.run(doc(3.0, 1.0))
    assert again.status == "ok"
    assert {"s", "pa", "f", "save_a"} <= ran(again)
    assert not ran(again) & {"pb", "g", "save_b"}  # b's branch stays cached
    assert ran(engine.run(doc(3.0, 1.0))) == set()


def test_node_rules_are_validation_problems(engine) -> None:
    checked = engine.check(doc(1.0, -1.0))
    assert [(p.node_id, p.field, p.code) for p in checked.problems] == [("s", "fb", "negative")]


def test_output_inputs_must_name_outputs_and_inputs() -> None:
    with pytest.raises(TypeError, match="OUTPUT_INPUTS"):

        class Bad(Node):
            OUTPUTS = {"a": Number}
            OUTPUT_INPUTS = {"a": ("nope",)}

            def run(self, ctx: Any) -> dict[str, Any]:
                return {}
