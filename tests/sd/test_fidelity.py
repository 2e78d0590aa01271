"""The workflow's images equal diffusers' pipelines' images; DDIM inversion round trip.

The engine runs the shipped txt2img workflow (built-in tiny model, 64x64) and the
reference is ``StableDiffusionPipeline`` over the same components (the built-in model's
weights come from a fixed seed), the same scheduler class and settings, prompt, negative
prompt, seed, steps, cfg and size. Schedule names: our ``normal`` is the checkpoint's
own spacing (SD-1.5: "leading", steps_offset 1), i.e. what the pipeline uses with
``Cls.from_config(config)``; ``karras`` is ``use_karras_sigmas=True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from graph import Registry
from graph.context import Resources
from nodes.encode_text import encode_windows
from nodes.sd.handles import ClipHandle, Conditioning, LatentBatch, ModelHandle, VaeHandle
from nodes.sd.images import load_image
from nodes.sd.prompt_weights import tokenize_prompt
from nodes.sd.samplers import scheduler_kwargs
from nodes.sd.sampling import SampleSettings, invert, sample
from nodes.vae_encode import encode
from tests.sd_fixtures import checkpoints_dir, tiny_components, write_tiny_diffusers_folder
from tests.sd_workflows import make_engine, output_pixels, run_ok, with_inputs, workflow_doc

PROMPT = "a red circle on a blue background"
NEGATIVE = "blurry, low quality"
STEPS = 8


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_package("nodes")


@pytest.fixture(scope="module")
def resources() -> Resources:
    return Resources()  # one loaded built-in model for the whole module


@pytest.fixture(scope="module")
def components() -> dict[str, Any]:
    return tiny_components(0)


def pipeline_for(
    components: dict[str, Any],
    sampler: str,
    schedule: str,
    prediction: str | None = None,
    img2img: bool = False,
) -> Any:
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionPipeline

    cls, kwargs = scheduler_kwargs(sampler, schedule)
    if prediction:
        kwargs = {**kwargs, "prediction_type": prediction}
    sched = cls.from_config(components["scheduler"].config, **kwargs)
    pipe_cls = StableDiffusionImg2ImgPipeline if img2img else StableDiffusionPipeline
    pipe = pipe_cls(
        **{**components, "scheduler": sched},
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    return pipe


def as_uint8(images: np.ndarray) -> np.ndarray:
    """diffusers' numpy_to_pil rounding."""
    return (images * 255).round().astype(np.uint8)


def reference(pipe: Any, seed: int, **overrides: Any) -> list[np.ndarray]:
    """The pipeline's images (uint8) for our prompts and the usual settings."""
    kwargs: dict[str, Any] = {
        "negative_prompt": NEGATIVE,
        "num_inference_steps": STEPS,
        "guidance_scale": 7.5,
        "height": 64,
        "width": 64,
        **overrides,
    }
    kwargs = {k: v for k, v in kwargs.items() if v is not None}  # None: not for this pipeline
    gen = torch.Generator("cpu").manual_seed(seed)
    images = pipe(PROMPT, generator=gen, output_type="np", **kwargs).images
    return [as_uint8(im) for im in images]


def max_diff(a: np.ndarray, b: np.ndarray) -> int:
    return int(np.abs(a.astype(int) - b.astype(int)).max())


def txt2img(
    sampler: str, schedule: str, seed: int, cfg: float = 7.5, batch: int = 1, size: int = 64
) -> dict[str, Any]:
    return with_inputs(
        workflow_doc("txt2img"),
        {
            "positive_tokens": {"text": PROMPT},
            "negative_tokens": {"text": NEGATIVE},
            "latent": {"width": size, "height": size, "batch_size": batch},
            "sample": {
                "sampler": sampler,
                "schedule": schedule,
                "seed": seed,
                "steps": STEPS,
                "cfg": cfg,
                "denoise": 1.0,
            },
        },
    )


@pytest.mark.parametrize(
    ("sampler", "schedule"),
    [
        ("euler", "normal"),
        ("euler_ancestral", "normal"),
        ("ddim", "normal"),
        ("dpmpp_2m", "normal"),
        ("dpmpp_2m", "karras"),
    ],
)
def test_txt2img_equals_stable_diffusion_pipeline(
    sampler: str,
    schedule: str,
    registry: Registry,
    resources: Resources,
    components: dict[str, Any],
    tmp_path: Path,
) -> None:
    engine = make_engine(tmp_path, registry, resources)
    result = run_ok(engine, txt2img(sampler, schedule, seed=1234))
    [ours] = output_pixels(engine, result)
    pipe = pipeline_for(components, sampler, schedule)
    diff = max_diff(ours, reference(pipe, 1234)[0])
    assert diff <= 1, f"{sampler}/{schedule}: max pixel difference {diff}/255"
    # the images are not trivially equal (e.g. all black): the seed matters
    assert max_diff(ours, reference(pipe, 1235)[0]) > 10


def test_batch_and_non_square_size_equal_pipeline(
    registry: Registry, resources: Resources, components: dict[str, Any], tmp_path: Path
) -> None:
    engine = make_engine(tmp_path, registry, resources)
    doc = txt2img("euler_ancestral", "normal", seed=7, batch=2)
    doc["nodes"]["latent"]["inputs"].update({"width": 48, "height": 32})
    result = run_ok(engine, doc)
    ours = output_pixels(engine, result)
    assert len(ours) == 2 and ours[0].shape == (32, 48, 3)
    pipe = pipeline_for(components, "euler_ancestral", "normal")
    ref = reference(pipe, 7, height=32, width=48, num_images_per_prompt=2)
    for mine, theirs in zip(ours, ref, strict=True):
        assert max_diff(mine, theirs) <= 1


def test_img2img_equals_img2img_pipeline(
    registry: Registry, resources: Resources, components: dict[str, Any], tmp_path: Path
) -> None:
    """denoise < 1 follows StableDiffusionImg2ImgPipeline's strength: int(steps*denoise)
    steps from the matching timestep, the input latent noised with add_noise. The
    img2img workflow's generated source is swapped for LoadImage of a PNG."""
    engine = make_engine(tmp_path, registry, resources)
    rng = np.random.default_rng(0)
    picture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    Image.fromarray(picture).save(engine.workspace.input_dir / "source.png")
    doc = with_inputs(
        workflow_doc("img2img"),
        {
            "positive_tokens": {"text": PROMPT},
            "negative_tokens": {"text": NEGATIVE},
            "sample": {
                "sampler": "euler",
                "schedule": "normal",
                "seed": 99,
                "steps": 10,
                "cfg": 6.0,
                "denoise": 0.6,
            },
        },
    )
    doc["nodes"] = {k: v for k, v in doc["nodes"].items() if not k.startswith("source_")}
    doc["nodes"]["load"] = {"type": "LoadImage", "inputs": {"file": "source.png"}}
    doc["nodes"]["encode"]["inputs"]["image"] = {"node": "load", "output": "image"}
    result = run_ok(engine, doc)
    [ours] = output_pixels(engine, result)

    vae = VaeHandle(components["vae"], torch.device("cpu"), torch.float32, "ref")
    latents = encode(vae, load_image(engine.workspace.input_dir / "source.png"))
    pipe = pipeline_for(components, "euler", "normal", img2img=True)
    ref = reference(
        pipe,
        99,
        image=latents,
        strength=0.6,
        num_inference_steps=10,
        guidance_scale=6.0,
        height=None,
        width=None,
    )
    assert max_diff(ours, ref[0]) <= 1


def test_v_prediction_model_equals_pipeline(
    registry: Registry, components: dict[str, Any], tmp_path: Path
) -> None:
    """A diffusers folder whose scheduler says v_prediction is sampled as v_prediction."""
    from diffusers import PNDMScheduler

    vpred = dict(components)
    vpred["scheduler"] = PNDMScheduler.from_config(
        components["scheduler"].config, prediction_type="v_prediction"
    )
    engine = make_engine(tmp_path, registry)
    write_tiny_diffusers_folder(
        checkpoints_dir(engine.workspace.models_dir) / "vpred", components=vpred
    )
    doc = with_inputs(txt2img("euler", "normal", seed=5), {"checkpoint": {"name": "vpred"}})
    [ours] = output_pixels(engine, run_ok(engine, doc))
    pipe = pipeline_for(vpred, "euler", "normal", prediction="v_prediction")
    assert max_diff(ours, reference(pipe, 5)[0]) <= 1
    # and it is not what the same weights give as an epsilon model
    assert max_diff(ours, reference(pipeline_for(components, "euler", "normal"), 5)[0]) > 10


# -- DDIM inversion ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def handles(components: dict[str, Any]) -> tuple[ModelHandle, Conditioning, Conditioning]:
    cpu = torch.device("cpu")
    model = ModelHandle(
        components["unet"],
        dict(components["scheduler"].config),
        "epsilon",
        cpu,
        torch.float32,
        "ref",
    )
    clip = ClipHandle(
        components["tokenizer"], components["text_encoder"], cpu, torch.float32, "ref"
    )
    pos = Conditioning(encode_windows(clip, tokenize_prompt(clip.tokenizer, PROMPT)))
    neg = Conditioning(encode_windows(clip, tokenize_prompt(clip.tokenizer, "")))
    return model, pos, neg


def round_trip(
    model: ModelHandle, pos: Conditioning, neg: Conditioning, x0: torch.Tensor, steps: int
) -> float:
    """Relative L2 error of latent -> invert -> ddim sample, at cfg 1."""
    noise = invert(model, pos, None, LatentBatch(x0), steps, 1.0)
    back = sample(model, pos, neg, noise, SampleSettings(0, steps, 1.0, "ddim", "normal"))
    return float((back - x0).norm() / x0.norm())


def test_ddim_inversion_is_exact_when_the_noise_prediction_is_locally_constant(
    handles: tuple[ModelHandle, Conditioning, Conditioning],
) -> None:
    """With a U-Net whose output does not depend on its input latent (conv_out weights
    zeroed, bias kept), each DDIM step is an affine map and DDIMInverseScheduler's step
    is its exact inverse, provided the inverse visits the same timesteps in reverse and
    ends where sampling starts. So the round trip must be exact up to float32 rounding
    (bound 1e-4 relative, about 100x the rounding of 30 affine steps). A timestep
    off-by-one or a wrong starting alpha between InvertLatent and Sample breaks this."""
    model, pos, neg = handles
    import copy

    unet = copy.deepcopy(model.unet)
    with torch.no_grad():
        unet.conv_out.weight.zero_()
        unet.conv_out.bias.copy_(torch.tensor([0.3, -0.2, 0.1, 0.05]))
    flat = ModelHandle(unet, model.scheduler_config, "epsilon", model.device, model.dtype, "f")
    x0 = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert round_trip(flat, pos, neg, x0, 30) < 1e-4


def test_ddim_inversion_round_trip_error_is_small_and_shrinks_with_steps(
    handles: tuple[ModelHandle, Conditioning, Conditioning],
) -> None:
    """latent -> InvertLatent -> Sample(ddim) -> latent with the real (tiny, random) U-Net.

    Inversion evaluates the noise at x_{t-1} where sampling evaluates it at x_t, so the
    round trip carries a first-order discretisation error: measured relative L2 error
    0.038 at 20 steps, 0.019 at 50, 0.010 at 100 (max abs 0.9 at 50 steps on latents of
    std about 12). Asserted: below 5% at 50 steps (2.5x headroom over the measurement),
    far below the 130% distance between two samples of different seeds, and error at 100
    steps below 0.75x the error at 20 steps (first-order convergence predicts 0.2x)."""
    model, pos, neg = handles
    settings = SampleSettings(1, 20, 1.0, "ddim", "normal")
    x0 = sample(model, pos, neg, LatentBatch(torch.zeros(1, 4, 8, 8)), settings)
    other = sample(
        model,
        pos,
        neg,
        LatentBatch(torch.zeros(1, 4, 8, 8)),
        SampleSettings(2, 20, 1.0, "ddim", "normal"),
    )
    unrelated = float((other - x0).norm() / x0.norm())
    e20, e50, e100 = (round_trip(model, pos, neg, x0, n) for n in (20, 50, 100))
    print(
        f"DDIM round trip relative error: 20 steps {e20:.4f}, 50 steps {e50:.4f}, "
        f"100 steps {e100:.4f}; unrelated sample {unrelated:.3f}"
    )
    assert e50 < 0.05
    assert e50 < unrelated / 20
    assert e100 < 0.75 * e20


def test_ddim_inversion_workflow_starts_from_the_inverted_noise(
    registry: Registry, resources: Resources, tmp_path: Path
) -> None:
    """The shipped ddim_inversion workflow runs; its Sample starts from InvertLatent's
    noise, not from seeded noise: with ddim (eta 0) another seed gives the same image."""
    engine = make_engine(tmp_path, registry, resources)
    doc = with_inputs(
        workflow_doc("ddim_inversion"), {"invert": {"steps": 10}, "sample": {"steps": 10}}
    )
    first = run_ok(engine, doc)
    assert [f["kind"] for f in first.files].count("output") == 1
    again = run_ok(engine, with_inputs(doc, {"sample": {"seed": 12345}}))
    assert "sample" in {k for k, v in again.nodes.items() if v.status == "executed"}
    [a] = [
        p
        for f, p in zip(first.files, output_pixels(engine, first), strict=True)
        if f["kind"] == "output"
    ]
    [b] = [
        p
        for f, p in zip(again.files, output_pixels(engine, again), strict=True)
        if f["kind"] == "output"
    ]
    assert np.array_equal(a, b)
