"""Textual inversion: embedding:NAME in a prompt equals diffusers' load_textual_inversion."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

from graph import Registry
from graph.context import Resources
from graph.workflow import parse_workflow
from tests.sd.test_clip_skip import pipeline_image
from tests.sd.test_fidelity import NEGATIVE, max_diff, pipeline_for, txt2img
from tests.sd_fixtures import tiny_components
from tests.sd_workflows import executed, make_engine, output_pixels, run_ok, with_inputs

SEED = 11


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> Any:
    tmp = tmp_path_factory.mktemp("emb")
    folder = tmp / "models" / "embeddings"
    folder.mkdir(parents=True)
    gen = torch.Generator().manual_seed(0)
    save_file({"emb_params": torch.randn(2, 32, generator=gen)}, str(folder / "two.safetensors"))
    save_file({"<one>": torch.randn(32, generator=gen)}, str(folder / "one.safetensors"))
    torch.save({"string_to_param": {"*": torch.randn(1, 32)}}, folder / "old.pt")
    engine = make_engine(tmp, Registry.from_package("nodes"), Resources())
    return engine, folder


def diffusers_image(folder: Any, file: str, token: str, prompt: str) -> Any:
    pipe = pipeline_for(copy.deepcopy(tiny_components(0)), "euler", "normal")
    pipe.load_textual_inversion(str(folder / file), token=token)
    return pipeline_image(pipe, SEED, prompt=prompt, negative_prompt=NEGATIVE)


def prompt_doc(prompt: str) -> dict[str, Any]:
    return with_inputs(txt2img("euler", "normal", SEED), {"positive_tokens": {"text": prompt}})


@pytest.mark.parametrize(("file", "name"), [("two.safetensors", "two"), ("one.safetensors", "one")])
def test_embedding_equals_diffusers_load_textual_inversion(setup, file, name) -> None:
    engine, folder = setup
    ref = diffusers_image(folder, file, "<ti>", "a red <ti> circle on a blue background")
    doc = prompt_doc(f"a red embedding:{name} circle on a blue background")
    ours = output_pixels(engine, run_ok(engine, doc))[0]
    assert max_diff(ours, ref) == 0
    plain = output_pixels(engine, run_ok(engine, prompt_doc("a red circle on a blue background")))
    assert max_diff(plain[0], ref) > 0


def test_unknown_embedding_is_a_validation_error_naming_node_and_name(setup) -> None:
    engine, _ = setup
    checked = engine.check(parse_workflow(prompt_doc("a embedding:nope circle")))
    found = [p for p in checked.problems if p.code == "unknown_embedding"]
    assert len(found) == 1 and found[0].node_id == "positive_tokens"
    assert found[0].field == "text" and "'nope'" in found[0].message


def test_weight_and_file_identity_are_in_the_cache_key(setup) -> None:
    engine, folder = setup
    run_ok(engine, prompt_doc("embedding:two:1.2 circle"))
    again = executed(run_ok(engine, prompt_doc("embedding:two:1.2 circle")))
    assert "positive_tokens" not in again
    gen = torch.Generator().manual_seed(5)
    save_file({"emb_params": torch.randn(3, 32, generator=gen)}, str(folder / "two.safetensors"))
    ran = executed(run_ok(engine, prompt_doc("embedding:two:1.2 circle")))
    assert {"positive_tokens", "positive", "sample"} <= ran


def test_pickled_embeddings_need_allow_pickle(setup) -> None:
    engine, _ = setup
    result = engine.run(parse_workflow(prompt_doc("embedding:old circle")))
    assert result.status == "error" and result.error["node_id"] == "positive_tokens"
    assert "old.pt" in result.error["message"] and "pickle" in result.error["message"]
