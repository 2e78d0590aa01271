"""LoadLoRA equals diffusers' load_lora_weights + fuse_lora; LoRAs never leak.

The engine runs txt2img on the built-in tiny model with LoRA nodes between the
checkpoint and the prompts/sampler; the reference is StableDiffusionPipeline over the
same (seeded) components with the same LoRA file loaded by diffusers (PEFT backend)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from graph import Registry
from graph.context import Resources
from tests.lora_fixtures import kohya_lora, peft_lora, write_lora
from tests.sd.test_fidelity import max_diff, pipeline_for, reference, txt2img
from tests.sd_fixtures import tiny_components
from tests.sd_workflows import executed, make_engine, output_pixels, run_ok

SEED = 3


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_package("nodes")


@pytest.fixture(scope="module")
def components() -> dict[str, Any]:
    return tiny_components(0)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, registry, components) -> Any:
    """One engine (shared resources) and a models folder with three LoRAs."""
    tmp = tmp_path_factory.mktemp("lora")
    models = tmp / "models"
    write_lora(models, "kohya.safetensors", kohya_lora(components, seed=0))
    write_lora(models, "peft.safetensors", peft_lora(components, seed=1))
    write_lora(models, "small.safetensors", kohya_lora(components, seed=2, conv=False, alpha=4))
    engine = make_engine(tmp, registry, Resources())
    return engine, models


def with_loras(doc: dict[str, Any], loras: list[tuple[str, float, float]]) -> dict[str, Any]:
    """txt2img with a chain of LoadLoRA nodes feeding both prompts and the sampler."""
    doc = copy.deepcopy(doc)
    src = "checkpoint"
    model = {"node": src, "output": "model"}
    clip = {"node": src, "output": "clip"}
    for i, (name, sm, sc) in enumerate(loras):
        nid = f"lora{i}"
        doc["nodes"][nid] = {
            "type": "LoadLoRA",
            "inputs": {
                "model": model,
                "clip": clip,
                "name": name,
                "strength_model": sm,
                "strength_clip": sc,
            },
        }
        model, clip = {"node": nid, "output": "model"}, {"node": nid, "output": "clip"}
    for nid in ("positive_tokens", "negative_tokens", "positive", "negative"):
        doc["nodes"][nid]["inputs"]["clip"] = clip
    doc["nodes"]["sample"]["inputs"]["model"] = model
    return doc


def diffusers_images(
    components: dict[str, Any], files: list[Path], scales: list[float], fuse: bool = True
) -> np.ndarray:
    pipe = pipeline_for(copy.deepcopy(components), "euler", "normal")
    names = [f"a{i}" for i in range(len(files))]
    for path, name in zip(files, names, strict=True):
        pipe.load_lora_weights(str(path.parent), weight_name=path.name, adapter_name=name)
    if len(files) == 1 and fuse:
        pipe.fuse_lora(lora_scale=scales[0])
    else:
        pipe.set_adapters(names, adapter_weights=scales)
    return reference(pipe, SEED)[0]


def engine_image(engine: Any, loras: list[tuple[str, float, float]]) -> np.ndarray:
    result = run_ok(engine, with_loras(txt2img("euler", "normal", SEED), loras))
    return output_pixels(engine, result)[0]


@pytest.mark.parametrize("fmt", ["kohya", "peft"])
@pytest.mark.parametrize("strength", [0.5, 1.0])
def test_lora_equals_diffusers_fuse_lora(setup, components, fmt, strength) -> None:
    engine, models = setup
    name = f"{fmt}.safetensors"
    ours = engine_image(engine, [(name, strength, strength)])
    ref = diffusers_images(components, [models / "loras" / name], [strength])
    plain = engine_image(engine, [])
    assert max_diff(ours, plain) > 20  # the LoRA changes the picture a lot
    assert max_diff(ours, ref) == 0  # merged as PEFT merges: the same weights


def test_two_stacked_loras_equal_diffusers_adapters(setup, components) -> None:
    engine, models = setup
    ours = engine_image(engine, [("kohya.safetensors", 0.7, 0.7), ("small.safetensors", 0.4, 0.4)])
    files = [models / "loras" / "kohya.safetensors", models / "loras" / "small.safetensors"]
    ref = diffusers_images(components, files, [0.7, 0.4])
    # diffusers runs unfused adapters (W x + s B A x per layer); merged weights round
    # differently in float32: measured 1/255 at most
    assert max_diff(ours, ref) <= 1


def test_comfyui_convention_sampling_applies_the_lora_too(setup) -> None:
    """Imported ComfyUI workflows sample through comfy_sample: the LoRA must reach it."""
    engine, _ = setup

    def image(loras: list[tuple[str, float, float]]) -> np.ndarray:
        doc = with_loras(txt2img("euler", "normal", SEED), loras)
        doc["nodes"]["sample"]["inputs"]["convention"] = "comfyui"
        return output_pixels(engine, run_ok(engine, doc))[0]

    assert max_diff(image([("kohya.safetensors", 1.0, 0.0)]), image([])) > 20


def test_strength_zero_is_the_base_model(setup) -> None:
    engine, _ = setup
    assert np.array_equal(
        engine_image(engine, [("kohya.safetensors", 0.0, 0.0)]), engine_image(engine, [])
    )


def side_by_side(lora: str) -> dict[str, Any]:
    """A LoRA branch (sample_lora -> save_lora) next to the plain txt2img branch."""
    doc = txt2img("euler", "normal", SEED)
    branch = with_loras(doc, [(lora, 1.0, 1.0)])
    for nid in ("positive_tokens", "negative_tokens", "positive", "negative", "sample"):
        node = copy.deepcopy(branch["nodes"][nid])
        for value in node["inputs"].values():
            if (
                isinstance(value, dict)
                and value.get("node") in doc["nodes"]
                and value["node"] not in ("checkpoint", "latent")
            ):
                value["node"] += "_lora"
        doc["nodes"][nid + "_lora"] = node
    doc["nodes"]["lora0"] = branch["nodes"]["lora0"]
    decode = copy.deepcopy(doc["nodes"]["decode"])
    decode["inputs"]["latent"]["node"] = "sample_lora"
    doc["nodes"]["decode_lora"] = decode
    save = copy.deepcopy(doc["nodes"]["save"])
    save["inputs"]["image"]["node"] = "decode_lora"
    save["inputs"]["filename_prefix"] = "with_lora"
    doc["nodes"]["save_lora"] = save
    return doc


def test_a_lora_branch_never_changes_the_plain_branch(tmp_path, setup, registry, components):
    engine, models = setup
    fresh = make_engine(tmp_path, registry, Resources())  # never saw a LoRA
    alone = output_pixels(fresh, run_ok(fresh, txt2img("euler", "normal", SEED)))[0]
    engine.cache.clear()
    before = output_pixels(engine, run_ok(engine, txt2img("euler", "normal", SEED)))[0]
    both = run_ok(engine, side_by_side("kohya.safetensors"))
    images = dict(zip([f["name"] for f in both.files], output_pixels(engine, both), strict=True))
    plain = next(im for n, im in images.items() if n.startswith("txt2img"))
    lora = next(im for n, im in images.items() if n.startswith("with_lora"))
    engine.cache.clear()
    after = output_pixels(engine, run_ok(engine, txt2img("euler", "normal", SEED)))[0]
    assert np.array_equal(plain, alone) and np.array_equal(before, alone)
    assert np.array_equal(after, alone)
    assert max_diff(lora, alone) > 20
    # the shared modules hold the base weights, bit for bit
    shared = fresh.resources.models
    from nodes.sd.checkpoints import load_checkpoint

    ws, res = engine.workspace, engine.resources
    model, clip, _ = load_checkpoint(ws, res, "builtin/tiny-random", "fp32", "cpu")
    base = components["unet"].state_dict()
    assert all(torch.equal(v, base[k]) for k, v in model.unet.state_dict().items())
    assert shared is not engine.resources.models


def test_strength_model_re_runs_sampling_only(setup) -> None:
    engine, _ = setup
    run_ok(engine, with_loras(txt2img("euler", "normal", SEED), [("kohya.safetensors", 1.0, 1.0)]))
    doc = with_loras(txt2img("euler", "normal", SEED), [("kohya.safetensors", 0.5, 1.0)])
    ran = executed(run_ok(engine, doc))
    assert "sample" in ran and not ran & {"positive", "negative", "positive_tokens"}
    doc = with_loras(txt2img("euler", "normal", SEED), [("kohya.safetensors", 0.5, 0.8)])
    ran = executed(run_ok(engine, doc))
    assert {"positive", "negative", "sample"} <= ran
    # merged layers are kept per (component, LoRA, strength) in the model store, budgeted
    entries = engine.resources.models.entries()
    merged = [e["name"] for e in entries if e.get("kind") == "lora-merged"]
    assert "unet+kohya.safetensors:0.5" in merged and "text_encoder+kohya.safetensors:0.8" in merged


def test_unmatched_keys_warn_and_a_file_matching_nothing_fails(setup, components) -> None:
    engine, models = setup
    sd = kohya_lora(components, seed=4, conv=False)
    sd["lora_unet_no_such_block.lora_down.weight"] = torch.zeros(4, 8)
    sd["lora_unet_no_such_block.lora_up.weight"] = torch.zeros(8, 4)
    sd["something_else"] = torch.zeros(1)
    write_lora(models, "extra.safetensors", sd)
    events: list[Any] = []
    run_ok(
        engine, with_loras(txt2img("euler", "normal", SEED), [("extra.safetensors", 1, 1)]), events
    )
    done = next(
        e for e in events if getattr(e, "node_id", None) == "lora0" and e.kind == "node_finished"
    )
    assert len(done.warnings) == 1 and "3 keys" in done.warnings[0]
    assert "lora_unet_no_such_block" in done.warnings[0] and "something_else" in done.warnings[0]

    write_lora(models, "foreign.safetensors", {"lora_unet_x.lora_down.weight": torch.zeros(2, 2)})
    from graph.workflow import parse_workflow

    doc = with_loras(txt2img("euler", "normal", SEED), [("foreign.safetensors", 1, 1)])
    result = engine.run(parse_workflow(doc))
    assert result.status == "error" and result.error["node_id"] == "lora0"
    assert "foreign.safetensors" in result.error["message"]
    assert "none of its 1 keys match" in result.error["message"]


def test_pickled_loras_need_allow_pickle(setup, components) -> None:
    engine, models = setup
    torch.save(kohya_lora(components, seed=5, conv=False), models / "loras" / "old.pt")
    from graph.workflow import parse_workflow

    doc = with_loras(txt2img("euler", "normal", SEED), [("old.pt", 1, 1)])
    result = engine.run(parse_workflow(doc))
    assert result.status == "error" and "old.pt" in result.error["message"]
    assert "pickle" in result.error["message"]
    assert "old.pt" in engine.choices("loras") and "kohya.safetensors" in engine.choices("loras")


def test_patches_are_undone_when_the_call_fails(components) -> None:
    from nodes.sd.lora_keys import module_aliases, parse_lora
    from nodes.sd.lora_patch import LoraPatch, patched

    unet = copy.deepcopy(components["unet"])
    parsed = parse_lora(kohya_lora(components), {}, {"unet": module_aliases("unet", unet)})
    before = {k: v.clone() for k, v in unet.state_dict().items()}
    with pytest.raises(KeyboardInterrupt), patched(unet, (LoraPatch(parsed, 1.0, "unet"),)):
        changed = [k for k, v in unet.state_dict().items() if not torch.equal(v, before[k])]
        assert len(changed) == parsed.count
        raise KeyboardInterrupt
    assert all(torch.equal(v, before[k]) for k, v in unet.state_dict().items())


def test_ldm_layout_names_match_the_same_layers(components) -> None:
    """kohya names SDXL U-Nets in the LDM layout (input_blocks_...): same layers, same pairs."""
    from nodes.sd.ldm_export import UNET_PREFIX, unet_to_ldm
    from nodes.sd.lora_keys import module_aliases, parse_lora

    unet = components["unet"]
    sd = {k: v for k, v in kohya_lora(components, conv=True).items() if "lora_unet_" in k}
    by_ptr = {t.data_ptr(): k for k, t in unet_to_ldm(unet).items()}
    diffusers_to_ldm = {
        k[: -len(".weight")]: by_ptr[t.data_ptr()][len(UNET_PREFIX) : -len(".weight")]
        for k, t in unet.state_dict().items()
        if k.endswith(".weight")
    }
    renamed = {}
    for key, value in sd.items():
        stem, _, rest = key.partition(".")
        module = next(m for m in diffusers_to_ldm if "lora_unet_" + m.replace(".", "_") == stem)
        renamed["lora_unet_" + diffusers_to_ldm[module].replace(".", "_") + "." + rest] = value
    assert set(renamed) != set(sd)
    aliases = {"unet": module_aliases("unet", unet)}
    a, b = parse_lora(sd, {}, aliases), parse_lora(renamed, {}, aliases)
    assert not a.unmatched and not b.unmatched and a.layers.keys() == b.layers.keys()
    assert a.layers["unet"].keys() == b.layers["unet"].keys()
