"""Bypass and mute (graph/modes.py): what runs, what is passed through, cache keys, errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from graph import Engine, InvalidWorkflow
from graph.workflow import parse_workflow
from tests.wf import executed, link, n, wf

ROOT = Path(__file__).resolve().parents[1]


def mode(node: dict[str, Any], value: str) -> dict[str, Any]:
    return {**node, "mode": value}


def saved(engine: Engine, result: Any) -> list[dict[str, Any]]:
    return [json.loads((engine.workspace.output_dir / f["name"]).read_text()) for f in result.files]


def problems(engine: Engine, workflow: Any) -> list[tuple[str | None, str | None, str]]:
    return [(p.node_id, p.field, p.code) for p in engine.check(workflow).problems]


def test_bypass_passes_the_same_type_input_and_keys_as_without_the_node(engine: Engine) -> None:
    plain = wf(c=n("Const", value=3), s=n("Save", value=link("c")))
    first = engine.run(plain)
    assert saved(engine, first) == [{"value": 3.0, "text": None}]
    events: list = []
    bypassed = wf(
        c=n("Const", value=3),
        x=mode(n("Scale", x=link("c"), factor=2), "bypass"),
        s=n("Save", value=link("x")),
    )
    result = engine.run(bypassed, on_event=events.append)
    # the Save reads c directly: the same key as the graph without x, so it is cached
    assert result.nodes["s"].status == "cached" and executed(events) == []
    assert engine.check(bypassed).bypassed == ["x"]
    normal = wf(**{k: v for k, v in bypassed.model_dump()["nodes"].items()})
    normal.nodes["x"].mode = "normal"
    assert saved(engine, engine.run(normal)) == [{"value": 6.0, "text": None}]


def test_bypass_chains_and_picks_the_first_input_of_the_output_type(engine: Engine) -> None:
    result = engine.run(
        wf(
            a=n("Const", value=1),
            b=n("Const", value=20),
            add=mode(n("Add", a=link("a"), b=link("b")), "bypass"),
            x=mode(n("Scale", x=link("add"), factor=5), "bypass"),
            s=n("Save", value=link("x")),
        )
    )
    assert saved(engine, result)[0]["value"] == 1.0


def test_a_bypassed_output_with_no_input_of_its_type_is_an_error(engine: Engine) -> None:
    doc = wf(
        c=n("Const", value=3),
        f=mode(n("Format", x=link("c")), "bypass"),  # NUMBER in, TEXT out: nothing to pass
        s=n("Save", text=link("f", "text")),
    )
    with pytest.raises(InvalidWorkflow) as err:
        engine.run(doc)
    (p,) = err.value.problems
    assert (p.node_id, p.field, p.code) == ("s", "text", "bypass_passes_nothing")
    assert "f is bypassed" in p.message and "TEXT" in p.message


def test_mute_skips_the_node_and_what_only_it_feeds(engine: Engine) -> None:
    events: list = []
    result = engine.run(
        wf(
            c=n("Const", value=2),
            x=mode(n("Scale", x=link("c"), factor=3), "mute"),
            f=n("Format", x=link("x")),
            s1=n("Save", text=link("f", "text"), prefix="a"),
            c2=n("Const", value=7),
            s2=n("Save", value=link("c2"), prefix="b"),
        ),
        on_event=events.append,
    )
    assert sorted(executed(events)) == ["c2", "s2"]  # x, f, s1 skipped; c feeds only them
    assert saved(engine, result) == [{"value": 7.0, "text": None}]


def test_an_optional_input_fed_by_a_muted_node_is_unlinked(engine: Engine) -> None:
    result = engine.run(
        wf(
            c=n("Const", value=2),
            f=mode(n("Format", x=link("c")), "mute"),
            s=n("Save", value=link("c"), text=link("f", "text")),
        )
    )
    assert saved(engine, result) == [{"value": 2.0, "text": None}]


def test_a_required_input_fed_only_by_a_muted_node_is_an_error(engine: Engine) -> None:
    doc = wf(
        c=n("Const", value=2),
        f=mode(n("Format", x=link("c")), "mute"),
        g=n("Format", x=link("c")),
        j=n("Join", a=link("f", "text"), b=link("g", "text")),
        s=n("Save", text=link("j", "text")),
    )
    assert problems(engine, doc) == [("j", "a", "fed_by_muted")]
    assert "node f, which is muted" in str(engine.check(doc).problems[0])
    doc.nodes["f"].mode, doc.nodes["c"].mode = "normal", "mute"  # f is skipped with c
    doc.nodes["g"].inputs["x"] = {"node": "c2", "output": "value"}
    doc.nodes["c2"] = doc.nodes["g"].model_copy(update={"type": "Const", "inputs": {}})
    assert problems(engine, doc) == [("j", "a", "fed_by_muted")]
    assert "node f, which is skipped" in str(engine.check(doc).problems[0])


def test_muting_every_output_says_so(engine: Engine) -> None:
    doc = wf(c=n("Const", value=2), s=mode(n("Save", value=link("c")), "mute"))
    (p,) = engine.check(doc).problems
    assert p.code == "no_output" and "muted or bypassed" in p.message


def test_mode_is_optional_written_only_when_set_and_checked() -> None:
    doc = {"version": 1, "nodes": {"c": n("Const"), "s": mode(n("Save"), "mute")}}
    dumped = parse_workflow(doc).model_dump(mode="json", exclude_none=True)
    assert "mode" not in dumped["nodes"]["c"] and dumped["nodes"]["s"]["mode"] == "mute"
    with pytest.raises(ValueError, match="nodes.c.mode"):
        parse_workflow({"version": 1, "nodes": {"c": mode(n("Const"), "off")}})


def test_the_cli_honours_bypass(tmp_path: Path) -> None:
    path = tmp_path / "wf.json"
    nodes = {
        "c": n("Const", value=2),
        "x": mode(n("Scale", x=link("c"), factor=3), "bypass"),
        "s": n("Save", value=link("x")),
    }
    path.write_text(json.dumps({"version": 1, "nodes": nodes}))
    data = tmp_path / "data"
    proc = subprocess.run(
        [sys.executable, "run.py", "--node-package", "tests.engine_nodes", "--data", str(data)]
        + ["--models", str(tmp_path / "models"), str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    (out,) = (data / "output").glob("*.json")
    assert json.loads(out.read_text())["value"] == 2.0
