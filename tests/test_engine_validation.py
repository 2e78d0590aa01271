"""Validation collects every problem, each located by node and input."""

from __future__ import annotations

import pytest

from graph import Engine, InvalidWorkflow, WorkflowFormatError, parse_workflow
from tests.wf import link, n, wf


def codes(engine: Engine, workflow) -> set[tuple[str | None, str | None, str]]:
    return {(p.node_id, p.field, p.code) for p in engine.check(workflow).problems}


def test_valid_workflow_has_no_problems(engine: Engine) -> None:
    w = wf(c=n("Const", value=2), s=n("Sink", value=link("c")))
    assert engine.check(w).ok


def test_unknown_node_type(engine: Engine) -> None:
    w = wf(x=n("Nope"), s=n("Sink", value=link("x")))
    assert ("x", None, "unknown_node_type") in codes(engine, w)


def test_missing_required_input(engine: Engine) -> None:
    w = wf(a=n("Add"), s=n("Sink", value=link("a")))
    assert ("a", "a", "missing_input") in codes(engine, w)


def test_missing_required_literal(engine: Engine, workspace) -> None:
    (workspace.input_dir / "x.txt").write_text("hi")
    w = wf(r=n("ReadNote"), s=n("Save", text=link("r", "text")))
    assert ("r", "name", "missing_input") in codes(engine, w)


def test_link_to_missing_node_and_output(engine: Engine) -> None:
    w = wf(
        c=n("Const"),
        a=n("Add", a=link("ghost"), b=link("c", "nothing")),
        s=n("Sink", value=link("a")),
    )
    found = codes(engine, w)
    assert ("a", "a", "link_missing_node") in found
    assert ("a", "b", "link_missing_output") in found


def test_type_mismatch_and_subtype_rule(engine: Engine) -> None:
    w = wf(
        c=n("Const"),
        f=n("Format", x=link("c")),
        a=n("Add", a=link("f", "text")),  # TEXT into NUMBER
        i=n("IntConst"),
        b=n("Add", a=link("i")),  # INTEGER into NUMBER is fine
        s=n("Sink", value=link("a")),
        t=n("Sink", value=link("b")),
    )
    found = codes(engine, w)
    assert ("a", "a", "type_mismatch") in found
    assert not any(p[0] == "b" for p in found)


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (1e13, "out_of_range"),
        (float("nan"), "wrong_type"),
        (float("inf"), "wrong_type"),
        ([1, 2], "wrong_type"),
        ("3", "wrong_type"),
        (True, "wrong_type"),
    ],
)
def test_bad_literal_values(engine: Engine, value, code) -> None:
    w = wf(c=n("Const", value=value), s=n("Sink", value=link("c")))
    assert ("c", "value", code) in codes(engine, w)


def test_huge_integer_is_reported_beside_other_problems(engine: Engine) -> None:
    w = wf(
        i=n("IntConst", value=10**30),
        x=n("Scale", x=link("i"), factor=2**70, mode="bogus"),
        s=n("Sink", value=link("x")),
    )
    found = codes(engine, w)
    assert ("i", "value", "out_of_range") in found
    assert ("x", "factor", "out_of_range") in found
    assert ("x", "mode", "not_in_choices") in found


def test_choice_not_in_list(engine: Engine, workspace) -> None:
    (workspace.input_dir / "a.txt").write_text("a")
    w = wf(
        c=n("Const"),
        x=n("Scale", x=link("c"), mode="round"),
        r=n("ReadNote", name="missing.txt"),
        s=n("Sink", value=link("x")),
        t=n("Save", text=link("r", "text")),
    )
    found = codes(engine, w)
    assert ("x", "mode", "not_in_choices") in found
    assert ("r", "name", "not_in_choices") in found


def test_literal_where_link_required_and_link_where_literal(engine: Engine) -> None:
    w = wf(
        c=n("Const", value=link("c2")),
        c2=n("Const"),
        a=n("Add", a=5),
        s=n("Sink", value=link("a")),
    )
    found = codes(engine, w)
    # a widget takes a link of its value kind only (FLOAT here), not any NUMBER output
    assert ("c", "value", "type_mismatch") in found
    assert ("a", "a", "link_required") in found


def test_unknown_input(engine: Engine) -> None:
    w = wf(c=n("Const", value=1, colour="red"), s=n("Sink", value=link("c")))
    assert ("c", "colour", "unknown_input") in codes(engine, w)


def test_cycle_names_its_nodes(engine: Engine) -> None:
    w = wf(
        a=n("Add", a=link("b")),
        b=n("Add", a=link("a")),
        s=n("Sink", value=link("b")),
    )
    problems = [p for p in engine.check(w).problems if p.code == "cycle"]
    assert len(problems) == 1
    assert "a -> b" in problems[0].message


def test_no_output_node(engine: Engine) -> None:
    assert (None, None, "no_output") in codes(engine, wf(c=n("Const")))


def test_all_problems_are_collected_at_once(engine: Engine) -> None:
    w = wf(x=n("Nope"), c=n("Const", value="a"), a=n("Add", a=link("zz")))
    found = {p[2] for p in codes(engine, w)}
    assert {"unknown_node_type", "wrong_type", "link_missing_node", "no_output"} <= found


def test_run_refuses_invalid_workflow_before_anything_runs(engine: Engine) -> None:
    w = wf(c=n("Const"), f=n("Fail", x=link("c")), s=n("Sink", value=link("f")), z=n("Nope"))
    with pytest.raises(InvalidWorkflow) as info:
        engine.run(w)
    assert info.value.problems[0].node_id == "z"
    assert len(engine.cache) == 0


def test_file_format_errors() -> None:
    with pytest.raises(WorkflowFormatError, match="unsupported workflow version 7"):
        parse_workflow({"version": 7, "nodes": {}})
    with pytest.raises(WorkflowFormatError, match="nodes"):
        parse_workflow({"version": 1})
    with pytest.raises(WorkflowFormatError):
        parse_workflow({"version": 1, "nodes": {"a": {"type": "Const", "bogus": 1}}})
    with pytest.raises(WorkflowFormatError):
        parse_workflow([1, 2])


def test_run_reuses_an_earlier_check_until_a_listing_changes(
    engine: Engine, workspace, monkeypatch
) -> None:
    """The server checks a job when it is queued and hands the result to the worker: run
    does not check again unless a Choice listing read by that check has changed since."""
    import graph.executor

    (workspace.input_dir / "a.txt").write_text("a")
    w = wf(r=n("ReadNote", name="a.txt"), t=n("Save", text=link("r", "text")))
    checked = engine.check(w)
    assert checked.ok and checked.listed == {"notes": ["a.txt"]}
    calls = []
    real = graph.executor.validate
    monkeypatch.setattr(
        graph.executor, "validate", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    assert engine.run(w, checked=checked).status == "ok"
    assert calls == []
    (workspace.input_dir / "a.txt").unlink()  # gone between queueing and running
    with pytest.raises(InvalidWorkflow) as err:
        engine.run(w, checked=checked)
    assert calls == [1]
    [problem] = err.value.problems
    assert (problem.node_id, problem.field, problem.code) == ("r", "name", "not_in_choices")
