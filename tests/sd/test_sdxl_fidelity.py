"""SDXL workflows give diffusers' SDXL pipelines' images (max difference <= 1/255).

A tiny random SDXL base and refiner (`tests/sdxl_fixtures.py`) are written as diffusers
folders and as SGM single files; the shipped SDXL workflows run on them (checkpoint names
swapped, 64x64, few steps) and the references are ``StableDiffusionXLPipeline`` and
``StableDiffusionXLImg2ImgPipeline`` over the same components.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from graph import Engine, Registry, Workspace
from graph.context import Resources
from nodes.sd.samplers import scheduler_kwargs
from tests.sd.test_fidelity import as_uint8, max_diff
from tests.sd_fixtures import checkpoints_dir
from tests.sd_workflows import executed, output_pixels, run_ok, with_inputs
from tests.sd_workflows import workflow_doc as shipped_doc
from tests.sdxl_fixtures import (
    sdxl_pipeline,
    tiny_sdxl_components,
    write_sdxl_folder,
    write_sdxl_single_file,
)

PROMPT = "a red fox in the snow"
NEGATIVE = "blurry, low quality"
STEPS = 6
CFG = 5.0
SOURCES = {"folder": "xl-base", "single file": "xl-base.safetensors"}


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return tiny_sdxl_components(refiner=False, seed=0)


@pytest.fixture(scope="module")
def refiner() -> dict[str, Any]:
    return tiny_sdxl_components(refiner=True, seed=10)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, base: Any, refiner: Any) -> Path:
    root = tmp_path_factory.mktemp("sdxl") / "models"
    ck = checkpoints_dir(root)
    write_sdxl_folder(ck / "xl-base", base)
    write_sdxl_single_file(ck / "xl-base.safetensors", base)
    write_sdxl_folder(ck / "xl-refiner", refiner)
    write_sdxl_single_file(ck / "xl-refiner.safetensors", refiner)
    return root


@pytest.fixture(scope="module")
def resources() -> Resources:
    return Resources()


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_package("nodes")


@pytest.fixture
def engine(models: Path, registry: Registry, resources: Resources, tmp_path: Path) -> Engine:
    """An engine over the module's checkpoints, sharing loaded models between tests."""
    return Engine(registry, Workspace.at(tmp_path / "data", models).ensure(), resources=resources)


def txt2img(name: str, sampler: str, seed: int, negative: str | None = NEGATIVE) -> dict:
    doc = with_inputs(
        shipped_doc("sdxl_txt2img", checkpoint=name),
        {
            "positive_tokens": {"text": PROMPT},
            "negative_tokens": {"text": negative or ""},
            "latent": {"width": 64, "height": 64},
            "sample": {"sampler": sampler, "seed": seed, "steps": STEPS, "cfg": CFG},
        },
    )
    if negative is None:  # unlinked: diffusers' negative_prompt=None
        for nid in ("negative_tokens", "negative"):
            del doc["nodes"][nid]
        del doc["nodes"]["sample"]["inputs"]["negative"]
    return doc


def scheduler_for(components: dict[str, Any], sampler: str) -> Any:
    cls, kwargs = scheduler_kwargs(sampler, "normal")
    return cls.from_config(components["scheduler"].config, **kwargs)


def reference(components: dict[str, Any], sampler: str, seed: int, **kw: Any) -> np.ndarray:
    pipe = sdxl_pipeline(components, scheduler_for(components, sampler))
    kwargs = {"negative_prompt": NEGATIVE, "height": 64, "width": 64, **kw}
    images = pipe(
        PROMPT,
        num_inference_steps=STEPS,
        guidance_scale=CFG,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="np",
        **kwargs,
    ).images
    return as_uint8(images[0])


@pytest.fixture(scope="module")
def references(base: dict[str, Any]) -> dict[str, np.ndarray]:
    return {}  # filled lazily: one pipeline run per sampler for both sources


@pytest.mark.parametrize("source", list(SOURCES))
@pytest.mark.parametrize("sampler", ["euler", "euler_ancestral", "ddim", "dpmpp_2m"])
def test_sdxl_txt2img_equals_sdxl_pipeline(
    sampler: str, source: str, engine: Engine, base: Any, references: dict
) -> None:
    [ours] = output_pixels(engine, run_ok(engine, txt2img(SOURCES[source], sampler, 1234)))
    if sampler not in references:
        references[sampler] = reference(base, sampler, 1234)
    diff = max_diff(ours, references[sampler])
    assert diff <= 1, f"{sampler} from the {source}: max pixel difference {diff}/255"
    assert ours.std() > 1  # not a blank image


def test_missing_negative_is_zeros_as_in_diffusers(engine: Engine, base: Any) -> None:
    """SDXL base without a negative = diffusers' negative_prompt=None
    (force_zeros_for_empty_prompt); an explicit "" is encoded like any prompt."""
    [none] = output_pixels(engine, run_ok(engine, txt2img("xl-base", "euler", 7, negative=None)))
    assert max_diff(none, reference(base, "euler", 7, negative_prompt=None)) <= 1
    [empty] = output_pixels(engine, run_ok(engine, txt2img("xl-base", "euler", 7, negative="")))
    assert max_diff(empty, reference(base, "euler", 7, negative_prompt="")) <= 1
    assert max_diff(none, empty) > 2


def test_second_prompt_and_size_conditioning_equal_pipeline(engine: Engine, base: Any) -> None:
    """text_2 = diffusers' prompt_2; SizeConditioning = original_size, crops_coords_top_left
    and target_size (the negative inherits them, as in the base pipeline)."""
    doc = with_inputs(txt2img("xl-base", "euler", 3), {"positive_tokens": {"text_2": "a cat"}})
    doc["nodes"]["sizes"] = {
        "type": "SizeConditioning",
        "inputs": {
            "conditioning": {"node": "positive", "output": "conditioning"},
            "original_width": 1024,
            "original_height": 768,
            "crop_left": 16,
            "crop_top": 32,
            "target_width": 512,
            "target_height": 640,
        },
    }
    doc["nodes"]["sample"]["inputs"]["positive"] = {"node": "sizes", "output": "conditioning"}
    [ours] = output_pixels(engine, run_ok(engine, doc))
    ref = reference(
        base,
        "euler",
        3,
        prompt_2="a cat",
        original_size=(768, 1024),
        crops_coords_top_left=(32, 16),
        target_size=(640, 512),
    )
    assert max_diff(ours, ref) <= 1
    assert max_diff(ours, reference(base, "euler", 3, prompt_2="a cat")) > 2


def base_refiner(base_name: str, refiner_name: str, sampler: str, f: float) -> dict:
    return with_inputs(
        shipped_doc("sdxl_base_refiner", checkpoint=base_name),
        {
            "refiner_checkpoint": {"name": refiner_name},
            "base_positive_tokens": {"text": PROMPT},
            "base_negative_tokens": {"text": NEGATIVE},
            "refiner_positive_tokens": {"text": PROMPT},
            "refiner_negative_tokens": {"text": NEGATIVE},
            "latent": {"width": 64, "height": 64},
            "base_sample": {
                "sampler": sampler,
                "seed": 5,
                "steps": 8,
                "cfg": CFG,
                "denoising_end": f,
            },
            "refiner_sample": {
                "sampler": sampler,
                "seed": 6,
                "steps": 8,
                "cfg": CFG,
                "denoising_start": f,
            },
        },
    )


@pytest.mark.parametrize("sampler", ["euler_ancestral", "dpmpp_2m"])
def test_base_refiner_hand_off_equals_the_two_pipelines(
    sampler: str, engine: Engine, base: Any, refiner: Any
) -> None:
    """StableDiffusionXLPipeline(denoising_end=f, output_type="latent") then
    StableDiffusionXLImg2ImgPipeline(image=latents, denoising_start=f) on the refiner."""
    f = 0.7
    doc = base_refiner("xl-base", "xl-refiner.safetensors", sampler, f)
    [ours] = output_pixels(engine, run_ok(engine, doc))
    common = {"negative_prompt": NEGATIVE, "num_inference_steps": 8, "guidance_scale": CFG}
    latents = sdxl_pipeline(base, scheduler_for(base, sampler))(
        PROMPT,
        height=64,
        width=64,
        denoising_end=f,
        output_type="latent",
        generator=torch.Generator("cpu").manual_seed(5),
        **common,
    ).images
    image = sdxl_pipeline(refiner, scheduler_for(refiner, sampler), img2img=True)(
        PROMPT,
        image=latents,
        denoising_start=f,
        output_type="np",
        generator=torch.Generator("cpu").manual_seed(6),
        **common,
    ).images[0]
    assert max_diff(ours, as_uint8(image)) <= 1
    # the hand-off matters: the base alone, decoded, is another picture
    alone = with_inputs(doc, {"base_sample": {"denoising_end": 1.0}})
    alone["nodes"]["decode"]["inputs"]["latent"] = {"node": "base_sample", "output": "latent"}
    [base_only] = output_pixels(engine, run_ok(engine, alone))
    assert max_diff(ours, base_only) > 2


def test_seed_only_rerun_of_base_refiner_runs_samplers_decode_save(engine: Engine) -> None:
    doc = base_refiner("xl-base.safetensors", "xl-refiner", "euler", 0.8)
    run_ok(engine, doc)
    again = run_ok(engine, with_inputs(doc, {"base_sample": {"seed": 99}}))
    assert executed(again) == {"base_sample", "refiner_sample", "decode", "save"}
    txt = txt2img("xl-base", "euler", 1)
    run_ok(engine, txt)
    again = run_ok(engine, with_inputs(txt, {"sample": {"seed": 2}}))
    assert executed(again) == {"sample", "decode", "save"}
