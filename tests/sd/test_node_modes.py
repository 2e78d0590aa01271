"""Bypass, mute and primitive nodes on the real SD nodes: a bypassed LoRA is the plain
model (same pixels, same cache keys), a muted save branch does not run, and one Seed node
drives two samplers exactly as the typed-in seed does."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from graph import Registry
from graph.budget import estimate
from graph.context import Resources
from graph.workflow import parse_workflow
from tests.lora_fixtures import kohya_lora, write_lora
from tests.sd.test_fidelity import txt2img
from tests.sd.test_lora import side_by_side, with_loras
from tests.sd_workflows import executed, make_engine, output_pixels, run_ok

SEED = 3


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_package("nodes")


@pytest.fixture(scope="module")
def engine(tmp_path_factory, registry, components) -> Any:
    tmp = tmp_path_factory.mktemp("modes")
    write_lora(tmp / "models", "kohya.safetensors", kohya_lora(components, seed=0))
    return make_engine(tmp, registry, Resources())


def test_bypassing_a_lora_gives_the_plain_image_and_keys(engine) -> None:
    plain = run_ok(engine, txt2img("euler", "normal", SEED))
    doc = with_loras(txt2img("euler", "normal", SEED), [("kohya.safetensors", 1.0, 1.0)])
    doc["nodes"]["lora0"]["mode"] = "bypass"
    bypassed = run_ok(engine, doc)
    assert executed(bypassed) == set()  # every node keyed as in the plain graph: cached
    assert np.array_equal(output_pixels(engine, bypassed)[0], output_pixels(engine, plain)[0])
    doc["nodes"]["lora0"]["mode"] = "normal"
    with_lora = run_ok(engine, doc)
    assert "lora0" in executed(with_lora)
    assert not np.array_equal(output_pixels(engine, with_lora)[0], output_pixels(engine, plain)[0])


def test_muting_a_save_branch_runs_only_the_other_branch(engine) -> None:
    doc = side_by_side("kohya.safetensors")
    doc["nodes"]["save_lora"]["mode"] = "mute"
    doc["nodes"]["sample"]["inputs"]["seed"] = SEED + 1  # not cached by the test above
    result = run_ok(engine, doc)
    ran = executed(result)
    assert "sample" in ran and "save" in ran
    assert not ran & {"lora0", "sample_lora", "decode_lora", "save_lora"}
    assert len(result.files) == 1


def test_one_seed_node_drives_two_samplers(engine) -> None:
    doc = side_by_side("kohya.safetensors")
    doc["nodes"]["lora0"]["mode"] = "bypass"  # both branches then make the same image
    doc["nodes"]["shared_seed"] = {"type": "Seed", "inputs": {"value": SEED + 2}}
    for nid in ("sample", "sample_lora"):
        doc["nodes"][nid]["inputs"]["seed"] = {"node": "shared_seed", "output": "value"}
    result = run_ok(engine, doc)
    first, second = output_pixels(engine, result)
    typed = copy.deepcopy(txt2img("euler", "normal", SEED + 2))
    assert np.array_equal(first, second)
    assert np.array_equal(first, output_pixels(engine, run_ok(engine, typed))[0])
    doc["nodes"]["shared_seed"]["inputs"]["value"] = SEED + 3
    assert {"sample", "sample_lora"} <= executed(run_ok(engine, doc))


def test_budgets_see_values_that_come_from_primitive_nodes(engine) -> None:
    doc = txt2img("euler", "normal", SEED)
    doc["nodes"]["width"] = {"type": "Int", "inputs": {"value": 512}}
    doc["nodes"]["latent"]["inputs"]["width"] = {"node": "width", "output": "value"}
    cost = estimate(engine.check(parse_workflow(doc)), engine.workspace)
    assert cost.nodes["latent"].pixels == 512 * 64
