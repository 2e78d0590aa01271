"""Widgets fed by links (primitive nodes): constraints, run-time checks, cache keys, big ints."""

from __future__ import annotations

import json
from typing import Any

import pytest

from graph import Engine, Registry, Workspace
from graph.schema import node_schema
from nodes import (
    primitive_boolean,
    primitive_float,
    primitive_int,
    primitive_seed,
    primitive_string,
)
from tests.wf import executed, link, n, wf

PRIMITIVES = (primitive_int, primitive_float, primitive_string, primitive_boolean, primitive_seed)


@pytest.fixture(scope="module")
def registry() -> Registry:
    reg = Registry.from_package("tests.engine_nodes")
    for module in PRIMITIVES:
        reg.add_module(module)
    return reg


@pytest.fixture
def engine(registry: Registry, workspace: Workspace) -> Engine:
    return Engine(registry, workspace)


def texts(engine: Engine, result: Any) -> list[str]:
    return [
        json.loads((engine.workspace.output_dir / f["name"]).read_text())["text"]
        for f in result.files
    ]


def codes(engine: Engine, workflow: Any) -> list[tuple[str | None, str | None, str]]:
    return [(p.node_id, p.field, p.code) for p in engine.check(workflow).problems]


def shared_seed(seed: int) -> Any:
    """One Seed node feeding two consumers' integer widgets."""
    return wf(
        seed=n("Seed", value=seed),
        a=n("Digits", n=link("seed")),
        b=n("Digits", n=link("seed")),
        j=n("Join", a=link("a", "text"), b=link("b", "text"), sep="|"),
        s=n("Save", text=link("j", "text")),
    )


def test_one_seed_feeds_two_widgets_and_keys_both(engine: Engine) -> None:
    big = 2**64 - 1
    events: list = []
    result = engine.run(shared_seed(big), on_event=events.append)
    assert texts(engine, result) == [f"{big}|{big}"]  # lossless up to 2^64-1
    assert {"seed", "a", "b"} <= set(executed(events))
    events.clear()
    engine.run(shared_seed(big), on_event=events.append)
    assert executed(events) == []  # unchanged: everything cached
    events.clear()
    engine.run(shared_seed(5), on_event=events.append)
    assert {"seed", "a", "b", "j", "s"} == set(executed(events))  # both consumers re-run


def test_a_known_value_is_checked_against_the_consumers_constraints(engine: Engine) -> None:
    doc = wf(
        i=n("Int", value=2**40),
        c=n("IntConst", value=link("i")),  # le 2^31
        f=n("String", value="sideways"),
        x=n("Scale", x=link("c"), mode=link("f")),  # Literal["exact", "floor"]
        s=n("Save", value=link("x")),
    )
    assert codes(engine, doc) == [("c", "value", "out_of_range"), ("x", "mode", "not_in_choices")]


def test_a_choice_source_widget_fed_by_a_string_is_checked(engine: Engine) -> None:
    (engine.workspace.input_dir / "hello.txt").write_text("hi")
    doc = wf(name=n("String", value="missing.txt"), r=n("ReadNote", name=link("name")))
    doc.nodes["s"] = wf(s=n("Save", text=link("r", "text"))).nodes["s"]
    assert codes(engine, doc) == [("r", "name", "not_in_choices")]
    doc.nodes["name"].inputs["value"] = "hello.txt"
    assert texts(engine, engine.run(doc)) == ["hi"]


def test_a_value_known_only_at_run_time_is_checked_when_it_arrives(engine: Engine) -> None:
    def doc(value: float) -> Any:
        return wf(
            c=n("Const", value=value),
            f=n("Format", x=link("c")),
            len=n("Length", text=link("f", "text")),
            r=n("Repeat", text=link("f", "text"), times=link("len", "length")),
            s=n("Save", text=link("r", "text")),
        )

    assert texts(engine, engine.run(doc(1))) == ["1.01.01.0"]  # "1.0": length 3
    result = engine.run(doc(12345))  # "12345.0": length 7, above le=3
    assert result.status == "error"
    assert result.error["node_id"] == "r" and result.error["error_type"] == "InvalidWorkflow"
    message = result.error["message"]
    assert "r.times:" in message and "arrived over a link" in message


def test_links_into_widgets_must_carry_the_value_type(engine: Engine) -> None:
    doc = wf(
        f=n("Float", value=1.5),
        c=n("IntConst", value=link("f")),
        s=n("Save", value=link("c")),
        note=n("ReadNote", name=link("c")),  # INTEGER (a test socket) into a STRING widget
    )
    found = {(p.node_id, p.field, p.code): p.message for p in engine.check(doc).problems}
    assert "takes INT, but f.value is FLOAT" in found[("c", "value", "type_mismatch")]
    assert ("note", "name", "type_mismatch") in found


def test_the_schema_tells_the_canvas_which_link_a_widget_takes(registry: Registry) -> None:
    inputs = {i["name"]: i for i in node_schema(registry.nodes["Scale"], registry)["inputs"]}
    assert inputs["factor"]["link_type"] == "FLOAT" and inputs["mode"]["link_type"] == "STRING"
    assert "link_type" not in inputs["x"]  # a link input says "type" / "accepts"
    seed = node_schema(registry.nodes["Seed"], registry)
    assert seed["category"] == "primitive" and seed["outputs"] == [{"name": "value", "type": "INT"}]
