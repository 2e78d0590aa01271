"""Engine hardening: declared costs, declaration checks, one error record, regular files."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from graph import Engine, Node, Registry, SocketType, Widget, Workspace
from graph.budget import CostLimits, estimate, over_budget
from graph.cost import Cost, CostInputs
from graph.failure import KEYS, failure
from graph.node import NodeDeclarationError
from graph.workflow import parse_workflow
from graph.workspace import NotARegularFile, is_regular_file, open_regular
from service.budgets import check_budgets
from service.config import Budgets
from service.store import JobStore
from tests.blocking import outcome_within

ROOT = Path(__file__).resolve().parents[1]


class HLatent(SocketType):
    name = "HLATENT"


class HEmpty(Node):
    OUTPUTS = {"latent": HLatent}  # noqa: RUF012
    side: int = Widget(64, ge=8, le=8192)

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        px = inputs.values["side"] ** 2
        return Cost(pixels=px, outputs={"latent": px}, pixels_field="side")

    def run(self, ctx: Any, side: int) -> dict[str, Any]:
        return {"latent": side}


class HDenoise(Node):
    """A sampler whose steps input is not called ``steps``."""

    OUTPUTS = {"latent": HLatent}  # noqa: RUF012
    latent: HLatent
    num_steps: int = Widget(10, ge=1, le=100_000)

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        return Cost(
            inputs.linked_pixels("latent"), inputs.values["num_steps"], None, "latent", "num_steps"
        )

    def run(self, ctx: Any, latent: int, num_steps: int) -> dict[str, Any]:
        return {"latent": latent}


class HOut(Node):
    OUTPUT_NODE = True
    latent: HLatent

    def run(self, ctx: Any, latent: int) -> dict[str, Any]:
        return {}


def _doc(num_steps: int, side: int = 64) -> dict[str, Any]:
    return {
        "version": 1,
        "nodes": {
            "e": {"type": "HEmpty", "inputs": {"side": side}},
            "d": {
                "type": "HDenoise",
                "inputs": {"latent": {"node": "e", "output": "latent"}, "num_steps": num_steps},
            },
            "o": {"type": "HOut", "inputs": {"latent": {"node": "d", "output": "latent"}}},
        },
    }


@pytest.fixture
def h_engine(tmp_path: Path) -> Engine:
    ws = Workspace.at(tmp_path / "data", tmp_path / "models").ensure()
    return Engine(Registry.from_classes([HEmpty, HDenoise, HOut]), ws)


def test_a_renamed_steps_input_is_budgeted_through_the_declared_cost(h_engine: Engine) -> None:
    checked = h_engine.check(parse_workflow(_doc(num_steps=5000)))
    assert checked.ok
    found = {(p.node_id, p.field, p.code) for p in check_budgets(checked, Budgets())}
    assert ("d", "num_steps", "budget_exceeded") in found
    checked = h_engine.check(parse_workflow(_doc(num_steps=20, side=4096)))
    found = {(p.node_id, p.field) for p in check_budgets(checked, Budgets(max_pixels=1 << 20))}
    assert found == {("e", "side")}  # blamed where the size is made, not downstream


def test_workflow_totals_name_the_largest_sampler(h_engine: Engine) -> None:
    checked = h_engine.check(parse_workflow(_doc(num_steps=30, side=100)))
    cost = estimate(checked)
    assert cost.nodes["d"].pixels == 10_000 and cost.work == 300_000
    limits = CostLimits(max_pixels=10**9, max_steps=100, max_total_steps=29, max_work=10**9)
    [problem] = over_budget(cost, limits)
    assert (problem.node_id, problem.field) == ("d", "num_steps")
    assert "30 steps in total" in problem.message and "29" in problem.message
    limits = CostLimits(10**9, 100, 100, max_work=299_999)
    [problem] = over_budget(cost, limits)
    assert "300,000 pixel-steps" in problem.message


def test_registry_refuses_a_run_that_disagrees_with_the_declaration() -> None:
    class Typo(Node):
        OUTPUTS = {"latent": HLatent}  # noqa: RUF012
        steps: int = 5
        latent: HLatent | None = None

        def run(self, ctx: Any, step: int, latent: int) -> dict[str, Any]:
            return {"latent": step}

    with pytest.raises(NodeDeclarationError) as info:
        Registry.from_classes([Typo])
    text = str(info.value)
    assert "Typo" in text and "missing from run(): steps" in text
    assert (
        "not declared inputs: step" in text
        and "without a default in run() (not passed when unlinked): latent" in text
    )
    # the shipped nodes and the test nodes all agree
    Registry.from_package("tests.engine_nodes")


def test_one_error_record_everywhere(tmp_path: Path) -> None:
    try:
        raise ValueError("bad header")
    except ValueError as exc:
        record = failure(exc, node_id="n", node_type="T", inputs={"a": 1})
    assert tuple(record) == KEYS
    assert record["error_type"] == "ValueError" and "bad header" in record["traceback"]
    named = failure(error_type="timeout", message="too slow")
    assert named["traceback"] == "" and named["inputs"] == {} and tuple(named) == KEYS
    # the store's crash recovery builds the same record (a job lost on both attempts)
    store = JobStore(tmp_path / "jobs.sqlite3")
    job, _ = store.add({"version": 1, "nodes": {}}, "c")
    for _ in range(2):
        store.claim_next()
        store.close()
        store = JobStore(tmp_path / "jobs.sqlite3")
    error = store.get(job.id).error
    store.close()
    assert tuple(error) == KEYS and error["error_type"] == "worker_lost"
    # nobody else spells the record out
    for path in ("graph/executor.py", "service/worker.py", "service/dispatcher.py"):
        assert '"error_type":' not in (ROOT / path).read_text(), path
    assert "'error_type'" not in (ROOT / "service/store.py").read_text()
    assert '"error_type":' not in (ROOT / "service/store.py").read_text()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_fifos_and_devices_are_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "image.png"
    os.mkfifo(fifo)
    assert not is_regular_file(fifo) and not is_regular_file(tmp_path)
    err = outcome_within(lambda: open_regular(fifo))
    assert isinstance(err, NotARegularFile) and "FIFO" in str(err)
    if os.path.exists("/dev/zero"):
        assert isinstance(outcome_within(lambda: open_regular("/dev/zero")), NotARegularFile)
    regular = tmp_path / "ok.bin"
    regular.write_bytes(b"abc")
    with open_regular(regular) as fh:
        assert fh.read() == b"abc"
    assert is_regular_file(regular)


BAD_NODE = """
from typing import Any
from graph import Node


class Mismatched(Node):
    OUTPUT_NODE = True
    width: int = 8

    def run(self, ctx: Any, widht: int) -> dict[str, Any]:
        return {}
"""


def test_server_and_cli_refuse_to_start_with_a_mismatched_node(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import run
    import server

    package = tmp_path / "badnodes"
    package.mkdir()
    (package / "__init__.py").write_text(BAD_NODE)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = ["--data", str(tmp_path / "data"), "--models", str(tmp_path / "models")]
    assert server.main(["--nodes", "badnodes", *data, "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert "Mismatched" in err and "width" in err and "widht" in err
    assert run.main(["--node-package", "badnodes", "--nodes", *data]) == 2
    assert "Mismatched" in capsys.readouterr().err
