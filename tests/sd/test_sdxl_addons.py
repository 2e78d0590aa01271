"""LoRA, textual inversion and CLIP skip on SDXL give diffusers' SDXL pictures.

The tiny random SDXL base (`tests/sdxl_fixtures.py`) is written as a diffusers folder; the
shipped ``sdxl_txt2img`` workflow runs on it (64x64, few steps) with LoadLoRA / ClipSkip /
``embedding:NAME`` added, and the reference is ``StableDiffusionXLPipeline`` over the same
components with diffusers' own loaders (``load_lora_weights`` through PEFT,
``load_textual_inversion`` on both tokenizers and encoders, ``clip_skip``). The LoRA files
reach both text encoders (``lora_te1_``/``lora_te2_``, ``text_encoder_2.``) and name the
U-Net in the LDM layout as kohya's SDXL files do.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from graph import Engine, Registry, Workspace
from graph.context import Resources
from graph.workflow import parse_workflow
from tests.lora_fixtures import kohya_lora, peft_lora, write_lora
from tests.sd.test_clip_skip import with_clip_skip
from tests.sd.test_fidelity import as_uint8, max_diff
from tests.sd.test_lora import with_loras
from tests.sd.test_sdxl_fidelity import CFG, NEGATIVE, PROMPT, STEPS, scheduler_for, txt2img
from tests.sd_fixtures import checkpoints_dir
from tests.sd_workflows import output_pixels, run_ok, with_inputs
from tests.sdxl_fixtures import sdxl_pipeline, tiny_sdxl_components, write_sdxl_folder

SEED = 21
CHECKPOINT = "xl-base"


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return tiny_sdxl_components(refiner=False, seed=0)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, base: Any) -> Path:
    root = tmp_path_factory.mktemp("sdxl_addons") / "models"
    write_sdxl_folder(checkpoints_dir(root) / CHECKPOINT, base)
    write_lora(root, "kohya.safetensors", kohya_lora(base, seed=0))
    write_lora(root, "peft.safetensors", peft_lora(base, seed=1))
    write_lora(root, "small.safetensors", kohya_lora(base, seed=2, conv=False, alpha=4))
    # an SDXL textual-inversion file: two vectors per encoder (both 32 wide here)
    gen = torch.Generator().manual_seed(7)
    vectors = {part: torch.randn(2, 32, generator=gen) for part in ("clip_l", "clip_g")}
    (root / "embeddings").mkdir()
    save_file(vectors, str(root / "embeddings" / "xlemb.safetensors"))
    return root


@pytest.fixture(scope="module")
def resources() -> Resources:
    return Resources()


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_package("nodes")


@pytest.fixture
def engine(models: Path, registry: Registry, resources: Resources, tmp_path: Path) -> Engine:
    return Engine(registry, Workspace.at(tmp_path / "data", models).ensure(), resources=resources)


def doc(**inputs: Any) -> dict[str, Any]:
    return with_inputs(txt2img(CHECKPOINT, "euler", SEED), inputs)


def ours(engine: Engine, workflow: dict[str, Any]) -> np.ndarray:
    return output_pixels(engine, run_ok(engine, workflow))[0]


def pipeline(base: dict[str, Any]) -> Any:
    """A pipeline over a copy of the components (diffusers' loaders change them)."""
    return sdxl_pipeline(copy.deepcopy(base), scheduler_for(base, "euler"))


def pipeline_image(pipe: Any, **kwargs: Any) -> np.ndarray:
    prompts = {} if "prompt_embeds" in kwargs else {"prompt": PROMPT, "negative_prompt": NEGATIVE}
    images = pipe(
        **{**prompts, **kwargs},
        num_inference_steps=STEPS,
        guidance_scale=CFG,
        height=64,
        width=64,
        generator=torch.Generator("cpu").manual_seed(SEED),
        output_type="np",
    ).images
    return as_uint8(images[0])


@pytest.fixture(scope="module")
def plain(base: dict[str, Any]) -> np.ndarray:
    return pipeline_image(pipeline(base))


# --- LoRA -------------------------------------------------------------------------------


def lora_reference(base: Any, models: Path, names: list[str], scales: list[float]) -> np.ndarray:
    pipe = pipeline(base)
    adapters = [f"a{i}" for i in range(len(names))]
    for name, adapter in zip(names, adapters, strict=True):
        pipe.load_lora_weights(str(models / "loras"), weight_name=name, adapter_name=adapter)
    if len(names) == 1:
        pipe.fuse_lora(lora_scale=scales[0])
    else:
        pipe.set_adapters(adapters, adapter_weights=scales)
    for part in ("unet", "text_encoder", "text_encoder_2"):  # diffusers dropped nothing
        assert set(getattr(pipe, part).peft_config) == set(adapters), part
    return pipeline_image(pipe)


@pytest.mark.parametrize(
    ("fmt", "strength"), [("kohya", 1.0), ("kohya", 0.5), ("peft", 1.0), ("peft", 0.5)]
)
def test_sdxl_lora_equals_diffusers_fuse_lora(
    engine: Engine, base: Any, models: Path, plain: np.ndarray, fmt: str, strength: float
) -> None:
    name = f"{fmt}.safetensors"
    events: list[Any] = []
    image = output_pixels(
        engine, run_ok(engine, with_loras(doc(), [(name, strength, strength)]), events)
    )[0]
    [done] = [
        e for e in events if getattr(e, "node_id", None) == "lora0" and e.kind == "node_finished"
    ]
    assert not done.warnings  # every key matched a layer (LDM U-Net names, both encoders)
    ref = lora_reference(base, models, [name], [strength])
    assert max_diff(ref, plain) > 20  # the LoRA (U-Net and both text encoders) matters
    assert max_diff(image, ref) <= 1, f"{fmt} at {strength}: {max_diff(image, ref)}/255"


def test_two_stacked_sdxl_loras_equal_diffusers_adapters(
    engine: Engine, base: Any, models: Path
) -> None:
    loras = [("kohya.safetensors", 0.7, 0.7), ("small.safetensors", 0.4, 0.4)]
    image = ours(engine, with_loras(doc(), loras))
    ref = lora_reference(base, models, ["kohya.safetensors", "small.safetensors"], [0.7, 0.4])
    assert max_diff(image, ref) <= 1
    # the shared modules (the same objects every job gets) hold the base weights, bit for
    # bit, after the LoRA runs: both text encoders and the U-Net
    from nodes.sd.checkpoints import load_checkpoint

    loaded = len(engine.resources.models.entries())
    model, clip, _ = load_checkpoint(engine.workspace, engine.resources, CHECKPOINT, "fp32", "cpu")
    assert len(engine.resources.models.entries()) == loaded  # the ones the runs used
    shared = {"unet": model.unet, "text_encoder": clip.text_encoder}
    shared["text_encoder_2"] = clip.text_encoder_2
    for part, module in shared.items():
        original = base[part].state_dict()
        assert all(torch.equal(v, original[k]) for k, v in module.state_dict().items()), part


# --- textual inversion -----------------------------------------------------------------


def ti_pipeline(base: Any, models: Path) -> Any:
    """diffusers' recipe for SDXL embeddings: ``clip_l`` into the first tokenizer/encoder,
    ``clip_g`` into the second."""
    from safetensors.torch import load_file

    pipe = pipeline(base)
    state = load_file(str(models / "embeddings" / "xlemb.safetensors"))
    pipe.load_textual_inversion(
        state["clip_l"], token="<ti>", text_encoder=pipe.text_encoder, tokenizer=pipe.tokenizer
    )
    pipe.load_textual_inversion(
        state["clip_g"], token="<ti>", text_encoder=pipe.text_encoder_2, tokenizer=pipe.tokenizer_2
    )
    return pipe


def emphasized(pipe: Any, prompt: str, weight: float) -> dict[str, torch.Tensor]:
    """diffusers' prompt embeddings with A1111 emphasis ``weight`` on the embedding's
    tokens (the added ones), applied per encoder as for any weighted word."""
    from nodes.sd.prompt_weights import apply_weights

    pe, ne, pooled, npooled = pipe.encode_prompt(
        prompt, device="cpu", do_classifier_free_guidance=True, negative_prompt=NEGATIVE
    )
    parts, start = [], 0
    for tokenizer, encoder in (
        (pipe.tokenizer, pipe.text_encoder),
        (pipe.tokenizer_2, pipe.text_encoder_2),
    ):
        ids = tokenizer(
            pipe.maybe_convert_prompt(prompt, tokenizer), padding="max_length", max_length=77
        ).input_ids
        added = torch.tensor(ids) >= tokenizer.vocab_size
        assert int(added.sum()) == 2  # the two vectors
        weights = torch.where(added, weight, 1.0).reshape(1, 77)
        width = encoder.config.hidden_size
        parts.append(apply_weights(pe[:, :, start : start + width], weights))
        start += width
    return {
        "prompt_embeds": torch.cat(parts, dim=-1),
        "negative_prompt_embeds": ne,
        "pooled_prompt_embeds": pooled,
        "negative_pooled_prompt_embeds": npooled,
    }


def test_sdxl_embedding_equals_diffusers_load_textual_inversion(
    engine: Engine, base: Any, models: Path, plain: np.ndarray
) -> None:
    pipe = ti_pipeline(base, models)
    ref = pipeline_image(pipe, prompt="a red <ti> fox in the snow")
    image = ours(engine, doc(positive_tokens={"text": "a red embedding:xlemb fox in the snow"}))
    assert max_diff(image, ref) <= 1
    assert max_diff(ref, pipeline_image(pipeline(base), prompt="a red fox in the snow")) > 2
    # weighted: the weight lands on the embedding's vectors in both encoders
    weighted = ours(
        engine, doc(positive_tokens={"text": "a red embedding:xlemb:2.5 fox in the snow"})
    )
    ref_weighted = pipeline_image(pipe, **emphasized(pipe, "a red <ti> fox in the snow", 2.5))
    assert max_diff(weighted, ref_weighted) <= 1
    assert max_diff(weighted, image) > 2


def test_each_encoder_takes_its_part_of_an_sdxl_embedding(base: Any) -> None:
    """By encoder, not by width (both are 32 wide here): the base's CLIP-L takes clip_l
    and its bigG clip_g; the refiner's only encoder is bigG: clip_g."""
    from nodes.sd.handles import ClipHandle
    from nodes.sd.sdxl_text import tokenize_for

    cpu, f32 = torch.device("cpu"), torch.float32
    big_g = {"text_encoder_ref": base["text_encoder_2"], "family": "sdxl"}
    base_clip = ClipHandle(
        base["tokenizer"],
        base["text_encoder"],
        cpu,
        f32,
        "b",
        tokenizer_2=base["tokenizer_2"],
        text_encoder_2_ref=base["text_encoder_2"],
        family="sdxl",
    )
    refiner_clip = ClipHandle(base["tokenizer_2"], device=cpu, dtype=f32, identity="r", **big_g)
    for clip, parts in ((base_clip, ["clip_l", "clip_g"]), (refiner_clip, ["clip_g"])):
        asked: list[tuple[Any, str | None]] = []

        def vectors_for(encoder: Any, part: str | None, asked: list = asked) -> Any:
            asked.append((encoder, part))
            return lambda name: torch.zeros(1, 32)

        tokenize_for(clip, "an embedding:x fox", vectors_for=vectors_for)
        assert [p for _, p in asked] == parts
        assert asked[-1][0] is base["text_encoder_2"]


# --- CLIP skip ---------------------------------------------------------------------------


def test_sdxl_clip_skip_2_equals_diffusers_clip_skip_1(
    engine: Engine, base: Any, plain: np.ndarray
) -> None:
    """SDXL already reads the penultimate layer; skip 2 goes one further back on both
    encoders (diffusers' clip_skip=1: hidden_states[-3]). diffusers skips for the prompt
    only; A1111 and ComfyUI (and we) skip for both: encode both with clip_skip=1."""
    pipe = pipeline(base)
    kw = {"device": "cpu", "do_classifier_free_guidance": False, "clip_skip": 1}
    pe, _, pooled, _ = pipe.encode_prompt(PROMPT, **kw)
    ne, _, npooled, _ = pipe.encode_prompt(NEGATIVE, **kw)
    ref = pipeline_image(
        pipe,
        prompt_embeds=pe,
        negative_prompt_embeds=ne,
        pooled_prompt_embeds=pooled,
        negative_pooled_prompt_embeds=npooled,
    )
    assert max_diff(ours(engine, with_clip_skip(doc(), 2)), ref) <= 1
    assert max_diff(ref, plain) > 2
    assert max_diff(ours(engine, with_clip_skip(doc(), 1)), plain) <= 1  # 1: SDXL as shipped
    result = engine.run(parse_workflow(with_clip_skip(doc(), 3)))
    assert result.status == "error" and "2 layers" in result.error["message"]


# --- Sample with convention=comfyui ------------------------------------------------------


@torch.no_grad()
def comfy_reference(base: Any, steps: int, cfg: float) -> np.ndarray:
    """ComfyUI's KSampler (euler, normal) on SDXL written out: k-diffusion's Euler on the
    eps denoiser ``x - eps(x / sqrt(s^2 + 1), t) * s`` with t the nearest table index,
    CFG on the denoised pair, noise ``torch.randn`` of ``manual_seed(seed)`` times
    sqrt(1 + sigma_max^2), and SDXL's ``encode_adm``: pooled bigG embedding plus
    [height, width, crop_h, crop_w, target_height, target_width] = the latent's size."""
    from nodes.sd.comfy_schedules import SigmaTable, comfy_sigmas

    pipe = pipeline(base)
    pe, ne, pooled, npooled = pipe.encode_prompt(
        PROMPT, device="cpu", do_classifier_free_guidance=True, negative_prompt=NEGATIVE
    )
    context = torch.cat([ne, pe])
    sizes = torch.tensor([[64.0, 64.0, 0.0, 0.0, 64.0, 64.0]]).repeat(2, 1)
    added = {"text_embeds": torch.cat([npooled, pooled]), "time_ids": sizes}
    acp = pipe.scheduler.alphas_cumprod.double()
    log_table = (((1 - acp) / acp) ** 0.5).log().float()
    sigmas = comfy_sigmas(SigmaTable.from_config(base["scheduler"].config), "normal", steps)
    noise = torch.randn((1, 4, 8, 8), generator=torch.Generator("cpu").manual_seed(SEED))
    x = noise * (1 + float(sigmas[0]) ** 2) ** 0.5
    for s, s_next in zip(sigmas[:-1], sigmas[1:], strict=True):
        t = (s.log() - log_table).abs().argmin().float().reshape(1)
        x_in = torch.cat([x, x]) / (s**2 + 1) ** 0.5
        eps = pipe.unet(x_in, t, encoder_hidden_states=context, added_cond_kwargs=added)[0]
        uncond, cond = (torch.cat([x, x]) - eps * s).chunk(2)
        d = uncond + (cond - uncond) * cfg
        x = x + (x - d) / s * (s_next - s)
    image = pipe.vae.decode(x / pipe.vae.config.scaling_factor, return_dict=False)[0]
    return as_uint8(pipe.image_processor.postprocess(image, output_type="np")[0])


def test_comfyui_convention_on_sdxl_follows_comfyui_ksampler(engine: Engine, base: Any) -> None:
    image = ours(engine, doc(sample={"convention": "comfyui"}))
    ref = comfy_reference(base, STEPS, CFG)
    assert max_diff(image, ref) <= 1
    # it is ComfyUI's picture, not diffusers' (other noise scaling, sigmas and timesteps)
    assert max_diff(image, ours(engine, doc())) > 2


def test_comfyui_negative_keeps_its_own_size_defaults(base: Any) -> None:
    """ComfyUI encodes each conditioning's sizes on their own (defaults: the latent's
    size); diffusers' base pipeline gives a negative without sizes the positive's."""
    from nodes.sd.handles import Conditioning, ModelHandle
    from nodes.sd.sdxl_conditioning import SizeConditioning, added_conditioning

    cpu = torch.device("cpu")
    model = ModelHandle(base["unet"], {}, "epsilon", cpu, torch.float32, "t")
    pooled = torch.zeros(1, 32)
    pos = Conditioning(torch.zeros(1, 77, 64), pooled=pooled, sizes=SizeConditioning((768, 1024)))
    neg = Conditioning(torch.zeros(1, 77, 64), pooled=pooled)
    for inherits, negative_ids in (
        (True, [768, 1024, 0, 0, 64, 64]),
        (False, [64, 64, 0, 0, 64, 64]),
    ):
        added = added_conditioning(model, pos, neg, 1, True, (64, 64), inherits)
        assert added is not None
        assert added["time_ids"].tolist() == [negative_ids, [768, 1024, 0, 0, 64, 64]]
