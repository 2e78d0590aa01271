"""A1111 parameters with LoRA tags, clip skip and the hires fix: import, resolve, run."""

from __future__ import annotations

import hashlib
from pathlib import Path

from graph import Registry
from graph.workflow import as_link, parse_workflow
from importers import import_bytes
from model_index import ModelIndex, model_inputs, resolve_models
from tests.lora_fixtures import kohya_lora, write_lora
from tests.sd_fixtures import tiny_components
from tests.sd_workflows import make_engine, output_pixels

FIX = Path(__file__).resolve().parent / "fixtures" / "comfyui"


def _kohya_hash(path: Path) -> str:
    """What A1111 writes in "Lora hashes": sha256 of the tensor data after the header."""
    raw = path.read_bytes()
    return hashlib.sha256(raw[8 + int.from_bytes(raw[:8], "little") :]).hexdigest()[:12]


def test_loras_clip_skip_and_hires_fix_import_resolve_and_run(tmp_path: Path) -> None:
    registry = Registry.from_package("nodes")
    # the file is here under another name; the hash in the parameters finds it
    write_lora(tmp_path / "models", "more/plain.safetensors", kohya_lora(tiny_components(0), 1))
    lora = write_lora(
        tmp_path / "models", "sub/renamed.safetensors", kohya_lora(tiny_components(0))
    )
    text = (FIX / "a1111_hires_lora.txt").read_text().replace("HASH_DETAIL", _kohya_hash(lora))
    result = import_bytes(text.encode(), set(registry.nodes))
    nodes = result.workflow.nodes
    # the tags leave the prompt; each becomes a LoadLoRA, chained in prompt order
    assert (
        nodes["positive_tokens"].inputs["text"]
        == "a large red circle, on a blue background,\ntop left"
    )
    one, two = nodes["lora1"].inputs, nodes["lora2"].inputs
    assert (one["name"], one["strength_model"], one["strength_clip"]) == (
        "detail_v2.safetensors",
        0.8,
        0.8,
    )
    assert (two["name"], two["strength_model"], two["strength_clip"]) == (
        "style.safetensors",
        0.9,
        0.5,
    )
    assert as_link(two["model"]) == ("lora1", "model") and as_link(two["clip"]) == ("lora1", "clip")
    assert nodes["lora3"].inputs["strength_model"] == 0.4
    assert nodes["clip_skip"].inputs["skip"] == 2
    assert as_link(nodes["clip_skip"].inputs["clip"]) == ("lora3", "clip")
    assert as_link(nodes["positive_tokens"].inputs["clip"]) == ("clip_skip", "clip")
    assert as_link(nodes["sample"].inputs["model"]) == ("lora3", "model")
    # hires fix: the first pass scaled 1.5x in latent space, a second pass at the strength
    assert nodes["upscale"].type == "LatentUpscaleBy"
    assert (nodes["upscale"].inputs["upscale_method"], nodes["upscale"].inputs["scale_by"]) == (
        "bilinear",
        1.5,
    )
    hires = nodes["hires"].inputs
    assert (hires["denoise"], hires["steps"], hires["seed"]) == (0.55, 4, 11)
    assert as_link(hires["latent"]) == ("upscale", "latent")
    assert as_link(nodes["decode"].inputs["latent"]) == ("hires", "latent")
    assert nodes["sample"].inputs["denoise"] == 1.0  # not an img2img
    # resolution: lora1 by its hash (another name, a sub-folder), lora3 (no hash) by its
    # name in any folder; lora2 is not here
    index = ModelIndex(tmp_path / "models", tmp_path / "data")
    wf, missing, notes = resolve_models(result.workflow, index, model_inputs(registry))
    assert wf.nodes["lora1"].inputs["name"] == "sub/renamed.safetensors"
    assert wf.nodes["lora3"].inputs["name"] == "more/plain.safetensors" and len(notes) == 2
    assert [(p.node_id, p.field, p.code) for p in missing] == [("lora2", "name", "model_missing")]
    assert "0123456789ab" in missing[0].message
    # without the missing LoRA the workflow runs: 64 px -> 96 px through the hires pass
    doc = wf.model_dump(exclude_none=True)
    doc["nodes"]["lora2"]["inputs"]["name"] = "sub/renamed.safetensors"
    doc["nodes"]["checkpoint"]["inputs"]["dtype"] = "fp32"
    del doc["models"]
    engine = make_engine(tmp_path, registry)
    run = engine.run(parse_workflow(doc))
    assert run.status == "ok", run.error
    [picture] = output_pixels(engine, run)
    assert picture.shape == (96, 96, 3)
