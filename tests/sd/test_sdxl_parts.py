"""SDXL pieces: detection errors, two-encoder prompts, validation rules, VAE dtype."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from graph import Registry, Workspace
from graph.context import Resources
from graph.validate import validate
from graph.workflow import parse_workflow
from nodes.sd.checkpoint_files import CheckpointError
from nodes.sd.checkpoints import load_checkpoint
from nodes.sd.handles import ClipHandle, LatentBatch
from nodes.sd.sampling import EMPTY, _blank_shape
from nodes.sd.sdxl_arch import CLIP_L_PREFIX, detect_sdxl, shipped_sdxl
from nodes.sd.sdxl_text import encode_sdxl, tokenize_for
from nodes.sd.sgm_export import to_sgm_state_dict
from nodes.sd.vae_latents import vae_dtype
from tests.sd_fixtures import checkpoints_dir
from tests.sd_workflows import with_inputs, workflow_doc
from tests.sdxl_fixtures import tiny_sdxl_components, write_sdxl_single_file


@pytest.fixture(scope="module")
def base() -> dict[str, Any]:
    return tiny_sdxl_components(refiner=False, seed=0)


@pytest.fixture(scope="module")
def clip(base: dict[str, Any]) -> ClipHandle:
    cpu = torch.device("cpu")
    return ClipHandle(
        base["tokenizer"],
        base["text_encoder"],
        cpu,
        torch.float32,
        "t",
        tokenizer_2=base["tokenizer_2"],
        text_encoder_2_ref=base["text_encoder_2"],
        family="sdxl",
    )


# -- detection --------------------------------------------------------------------------


def test_full_size_configs_are_recognised_from_shapes() -> None:
    """Meta-device SDXL base and refiner (real sizes, no memory) map to the shipped configs."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    for name in ("sdxl-base", "sdxl-refiner"):
        arch = shipped_sdxl(name)
        with torch.device("meta"):
            unet = UNet2DConditionModel.from_config(arch.unet)
            vae = AutoencoderKL.from_config(arch.vae)
            bigg = CLIPTextModelWithProjection(CLIPTextConfig(**arch.text_encoder_2))
            te1 = arch.text_encoder
            clip_l = CLIPTextModel(CLIPTextConfig(**te1)) if te1 else None
        sd = to_sgm_state_dict(unet, vae, clip_l, bigg)
        found = detect_sdxl(sd, {}, "x.safetensors")
        assert found.name == name and found.refiner == (name == "sdxl-refiner")


def test_broken_sgm_files_are_named_clearly(base: dict[str, Any]) -> None:
    sd = to_sgm_state_dict(base["unet"], base["vae"], base["text_encoder"], base["text_encoder_2"])
    no_clip_l = {k: v for k, v in sd.items() if not k.startswith(CLIP_L_PREFIX)}
    with pytest.raises(CheckpointError, match="bad.safetensors: SDXL base without its CLIP-L"):
        detect_sdxl(no_clip_l, {}, "bad.safetensors")
    no_bigg = {k: v for k, v in sd.items() if "embedders.1." not in k}
    with pytest.raises(CheckpointError, match="no OpenCLIP bigG"):
        detect_sdxl(no_bigg, {}, "bad.safetensors")


def test_fp16_sdxl_keeps_its_vae_in_fp32(base: dict[str, Any], tmp_path: Path) -> None:
    """SDXL's VAE overflows in fp16: with force_upcast it is held in fp32 (the fp16-fix
    VAE says force_upcast false and stays fp16); bf16 and SD 1.x VAEs keep the dtype."""
    upcast, fixed = SimpleNamespace(force_upcast=True), SimpleNamespace(force_upcast=False)
    assert vae_dtype("sdxl", torch.float16, upcast) == torch.float32
    assert vae_dtype("sdxl", torch.float16, fixed) == torch.float16
    assert vae_dtype("sdxl", torch.bfloat16, upcast) == torch.bfloat16
    assert vae_dtype("sdxl", torch.float32, upcast) == torch.float32
    assert vae_dtype("sd", torch.float16, upcast) == torch.float16
    write_sdxl_single_file(checkpoints_dir(tmp_path / "models") / "xl.safetensors", base)
    ws = Workspace.at(tmp_path / "data", tmp_path / "models")
    model, clip, vae = load_checkpoint(ws, Resources(), "xl.safetensors", "fp16", "cpu")
    assert model.unet.dtype == torch.float16 and clip.text_encoder_2.dtype == torch.float16
    assert vae.dtype == torch.float32 and vae.vae.dtype == torch.float32


# -- prompts on both encoders -----------------------------------------------------------


def test_long_prompts_break_and_weights_reach_both_encoders(clip: ClipHandle) -> None:
    plain = encode_sdxl(clip, tokenize_for(clip, "a fox in the snow"))
    assert plain.embeddings.shape == (1, 77, 64) and plain.pooled.shape == (1, 32)
    weighted = encode_sdxl(clip, tokenize_for(clip, "a (fox:1.5) in the snow"))
    for half in (slice(0, 32), slice(32, 64)):  # CLIP-L, then bigG
        assert not torch.equal(weighted.embeddings[..., half], plain.embeddings[..., half])
    assert torch.equal(weighted.pooled, plain.pooled)  # the pooled embedding is unweighted
    long = encode_sdxl(clip, tokenize_for(clip, " ".join(["fox"] * 100)))
    assert long.embeddings.shape == (1, 154, 64)
    brk = encode_sdxl(clip, tokenize_for(clip, "a fox BREAK in the snow"))
    assert brk.embeddings.shape == (1, 154, 64)


def test_second_prompt_windows_are_padded_to_match(clip: ClipHandle) -> None:
    tokens = tokenize_for(clip, "a fox", " ".join(["snow"] * 100))
    assert tokens.ids.shape == tokens.second.ids.shape == (2, 77)
    assert tokens.ids[1, :2].tolist() == [49406, 49407]  # an empty-prompt window
    assert tokens.second.ids[1, -1].item() == 0  # bigG pads with "!" (id 0)
    assert tokens.ids[0, -1].item() == 49407  # CLIP-L pads with <|endoftext|>
    assert encode_sdxl(clip, tokens).embeddings.shape == (1, 154, 64)


def test_tokens_must_come_from_the_same_kind_of_clip(clip: ClipHandle, base: Any) -> None:
    one = replace(clip, tokenizer_2=None, text_encoder_2_ref=None)
    with pytest.raises(ValueError, match="tokenize with the same CLIP"):
        encode_sdxl(clip, tokenize_for(one, "a fox"))
    with pytest.raises(ValueError, match="text_2 is for the second text encoder"):
        tokenize_for(one, "a fox", "a cat")


def test_empty_latent_takes_the_models_channels() -> None:
    model = SimpleNamespace(latent_channels=16, vae_scale_factor=8)
    blank = LatentBatch(torch.zeros(2, 4, 8, 12), extra={EMPTY: (64, 96)})
    assert _blank_shape(model, blank) == (2, 16, 8, 12)  # type: ignore[arg-type]
    other = LatentBatch(torch.zeros(1, 4, 8, 8))
    assert _blank_shape(model, other) == (1, 4, 8, 8)  # type: ignore[arg-type]


# -- validation rules -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"sampler": "euler_ancestral", "schedule": "karras"}, "schedule", "no karras"),
        ({"sampler": "ddim", "schedule": "exponential"}, "schedule", "no exponential"),
        ({"denoising_start": 0.8, "denoising_end": 0.5}, "denoising_start", "below"),
        ({"denoising_start": 0.5, "denoise": 0.6}, "denoise", "replaces denoise"),
    ],
)
def test_sample_rejects_impossible_combinations_at_validation(
    changes: dict[str, Any], field: str, words: str
) -> None:
    """Rejected by validation (the node's cross-field rule), before anything loads: the
    checkpoint named here does not even exist."""
    doc = workflow_doc("txt2img", checkpoint="nowhere.safetensors")
    doc = with_inputs(doc, {"sample": changes})
    problems = validate(parse_workflow(doc), Registry.from_package("nodes")).problems
    [p] = problems
    assert (p.node_id, p.field, p.code) == ("sample", field, "invalid_combination")
    assert words in p.message


def test_every_supported_pair_validates() -> None:
    from nodes.sd.samplers import SAMPLERS, SCHEDULE_FLAGS, UnsupportedSchedule, scheduler_kwargs

    registry = Registry.from_package("nodes")
    for sampler in SAMPLERS:
        for schedule in SCHEDULE_FLAGS:
            try:
                scheduler_kwargs(sampler, schedule)
                runs = True
            except UnsupportedSchedule:
                runs = False
            doc = with_inputs(
                workflow_doc("txt2img"), {"sample": {"sampler": sampler, "schedule": schedule}}
            )
            ok = validate(parse_workflow(doc), registry).ok
            assert ok == runs, (sampler, schedule)


def test_size_conditioning_wants_both_sides_of_a_size() -> None:
    doc = workflow_doc("txt2img")
    doc["nodes"]["sizes"] = {
        "type": "SizeConditioning",
        "inputs": {
            "conditioning": {"node": "positive", "output": "conditioning"},
            "original_width": 512,
        },
    }
    doc["nodes"]["sample"]["inputs"]["positive"] = {"node": "sizes", "output": "conditioning"}
    [p] = validate(parse_workflow(doc), Registry.from_package("nodes")).problems
    assert (p.node_id, p.field, p.code) == ("sizes", "original_width", "invalid_combination")
