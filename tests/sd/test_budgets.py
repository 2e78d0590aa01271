"""Budgets come from what the SD nodes declare they cost, carried along the links."""

from __future__ import annotations

import copy
from typing import Any

from PIL import Image

from graph import Engine
from graph.budget import estimate
from graph.workflow import parse_workflow
from service.budgets import check_budgets
from service.config import Budgets
from tests.sd_workflows import workflow_doc


def _checked(engine: Engine, doc: dict[str, Any]) -> Any:
    checked = engine.check(parse_workflow(doc))
    assert checked.ok, checked.problems
    return checked


def _over(engine: Engine, doc: dict[str, Any], **limits: int) -> set[tuple[Any, Any]]:
    problems = check_budgets(_checked(engine, doc), Budgets(**limits), engine.workspace)
    assert all(p.code == "budget_exceeded" for p in problems), problems
    return {(p.node_id, p.field) for p in problems}


def _chain(samplers: int, steps: int, size: int = 64) -> dict[str, Any]:
    """txt2img with ``samplers`` Sample nodes in a row, each refining the last."""
    doc = workflow_doc("txt2img")
    doc["nodes"]["latent"]["inputs"].update(width=size, height=size)
    first = doc["nodes"].pop("sample")
    previous = "latent"
    for i in range(samplers):
        node = copy.deepcopy(first)
        node["inputs"].update(steps=steps, latent={"node": previous, "output": "latent"})
        doc["nodes"][f"s{i:03d}"] = node
        previous = f"s{i:03d}"
    doc["nodes"]["decode"]["inputs"]["latent"] = {"node": previous, "output": "latent"}
    return doc


def test_400_chained_samplers_at_200_steps_are_refused_by_default(engine: Engine) -> None:
    doc = _chain(400, 200)
    problems = check_budgets(_checked(engine, doc), Budgets(), engine.workspace)
    assert problems, "80,000 sampling steps were accepted"
    total = [p for p in problems if "80,000 steps in total" in p.message]
    assert total and total[0].node_id.startswith("s") and total[0].field == "steps"
    assert _over(engine, _chain(400, 200, size=512)) >= {(total[0].node_id, "steps")}
    # one sampler at the per-node limits is fine
    assert _over(engine, _chain(1, 200)) == set()


def test_sampler_pixels_come_over_links(engine: Engine) -> None:
    doc = _chain(3, 10, size=128)
    cost = estimate(_checked(engine, doc), engine.workspace)
    assert [cost.nodes[f"s{i:03d}"].pixels for i in range(3)] == [128 * 128] * 3
    assert cost.nodes["decode"].pixels == 128 * 128
    assert cost.work == 3 * 10 * 128 * 128 and cost.total_steps == 30
    # the work total counts every sampler: each alone fits, together they do not
    assert _over(engine, doc, max_work=2 * 10 * 128 * 128) == {("s000", "steps")}


def test_uploaded_images_count_and_size_the_sampler(engine: Engine) -> None:
    Image.new("RGB", (256, 256), (10, 20, 30)).save(engine.workspace.input_dir / "big.png")
    doc = workflow_doc("img2img")
    doc["nodes"]["source_image"] = {"type": "LoadImage", "inputs": {"file": "big.png"}}
    for nid in ("source_sample", "source_latent", "source_preview"):
        del doc["nodes"][nid]
    cost = estimate(_checked(engine, doc), engine.workspace)
    assert cost.nodes["source_image"].pixels == 256 * 256
    assert cost.nodes["sample"].pixels == 256 * 256  # LoadImage -> VAEEncode -> Sample
    assert _over(engine, doc, max_pixels=4096) == {("source_image", "file")}
