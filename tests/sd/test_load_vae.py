"""LoadVAE: a VAE from models/vae/ (original single file, diffusers folder) decodes as
diffusers does with that VAE in the pipeline."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from safetensors.torch import save_file

from graph import Registry
from graph.context import Resources
from nodes.sd.ldm_export import VAE_PREFIX, vae_to_ldm
from tests.sd.test_fidelity import max_diff, pipeline_for, reference, txt2img
from tests.sd_fixtures import tiny_components
from tests.sd_workflows import make_engine, output_pixels, run_ok

SEED = 7


def with_vae(doc: dict[str, Any], name: str) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["nodes"]["vae"] = {"type": "LoadVAE", "inputs": {"name": name, "dtype": "fp32"}}
    doc["nodes"]["decode"]["inputs"]["vae"] = {"node": "vae", "output": "vae"}
    return doc


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Any:
    tmp = tmp_path_factory.mktemp("vae")
    other = tiny_components(1)["vae"]
    folder = tmp / "models" / "vae"
    folder.mkdir(parents=True)
    # vae-ft-mse style: bare encoder.*/decoder.* keys
    bare = {k[len(VAE_PREFIX) :]: v.contiguous() for k, v in vae_to_ldm(other).items()}
    save_file(bare, str(folder / "other-vae.safetensors"))
    other.save_pretrained(folder / "other-diffusers")
    engine = make_engine(tmp, Registry.from_package("nodes"), Resources())
    pipe = pipeline_for({**tiny_components(0), "vae": other}, "euler", "normal")
    return engine, reference(pipe, SEED)[0]


@pytest.mark.parametrize("name", ["other-vae.safetensors", "other-diffusers"])
def test_load_vae_decodes_like_diffusers_with_that_vae(setup, name) -> None:
    engine, ref = setup
    assert name in engine.choices("vae")
    result = run_ok(engine, with_vae(txt2img("euler", "normal", SEED), name))
    assert max_diff(output_pixels(engine, result)[0], ref) == 0
    plain = run_ok(engine, txt2img("euler", "normal", SEED))
    assert max_diff(output_pixels(engine, plain)[0], ref) > 0  # a different VAE


def test_unknown_vae_is_a_validation_error(setup) -> None:
    from graph.workflow import parse_workflow

    engine, _ = setup
    checked = engine.check(parse_workflow(with_vae(txt2img("euler", "normal", SEED), "nope")))
    assert any(p.node_id == "vae" and p.field == "name" for p in checked.problems)
