"""VAE encode/decode and image files in and out."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from graph import Engine, InvalidWorkflow, Registry
from graph.pngmeta import read_png_text
from graph.workflow import load_workflow_file, parse_workflow
from graph.workspace import PathOutsideFolder
from nodes.load_image import LoadImage
from nodes.sd import images as images_mod
from nodes.sd.handles import LatentBatch, VaeHandle
from nodes.sd.images import save_png
from nodes.vae_decode import decode
from nodes.vae_encode import encode
from tests.sd_workflows import make_engine, run_ok, with_inputs, workflow_doc

# -- VAE --------------------------------------------------------------------------------


def test_vae_round_trip_shapes_and_crop(vae: VaeHandle) -> None:
    image = torch.rand(2, 70, 43, 3)
    latents = encode(vae, image)
    assert latents.shape == (2, 4, 8, 5)
    out = decode(vae, LatentBatch(latents))
    assert out.shape == (2, 64, 40, 3) and out.min() >= 0 and out.max() <= 1


# -- image files ------------------------------------------------------------------------


def test_save_image_numbers_files_and_embeds_workflow_and_parameters(engine: Engine) -> None:
    out = engine.workspace.output_dir
    for n in range(3, 8):  # a run of earlier files (1 and 2 deleted): numbering continues
        (out / f"txt2img_{n:05d}_.png").write_bytes(b"taken")
    doc = with_inputs(
        workflow_doc("txt2img"),
        {"sample": {"steps": 3, "seed": 9}, "negative_tokens": {"text": "blurry, low quality"}},
    )
    result = run_ok(engine, doc)
    assert result.files == [{"kind": "output", "name": "txt2img_00008_.png"}]
    assert (out / "txt2img_00007_.png").read_bytes() == b"taken"
    text = read_png_text((out / "txt2img_00008_.png").read_bytes())
    assert parse_workflow(json.loads(text["workflow"])).nodes["sample"].inputs["seed"] == 9
    params = text["parameters"].splitlines()
    inputs = {nid: node["inputs"] for nid, node in doc["nodes"].items()}
    assert params[0] == inputs["positive_tokens"]["text"]
    assert params[1] == "Negative prompt: " + inputs["negative_tokens"]["text"]
    sample = inputs["sample"]
    for part in (
        "Steps: 3",
        f"Sampler: {sample['sampler']}",
        f"Schedule type: {sample['schedule']}",
        f"CFG scale: {sample['cfg']}",
        "Seed: 9",
        "Size: 64x64",
        "Model: builtin/tiny-random",
    ):
        assert part in params[2]


def test_the_png_reruns_to_the_same_image(
    engine: Engine, registry: Registry, tmp_path: Path
) -> None:
    """The embedded workflow reproduces the image bit for bit in a fresh engine."""
    doc = with_inputs(
        workflow_doc("txt2img"), {"sample": {"steps": 3, "seed": 77, "sampler": "euler_ancestral"}}
    )
    [f] = run_ok(engine, doc).files
    png = engine.workspace.output_dir / f["name"]
    fresh = make_engine(tmp_path / "fresh", registry)
    [g] = run_ok(fresh, load_workflow_file(png).model_dump()).files
    again = fresh.workspace.output_dir / g["name"]
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(again)))


def test_save_image_subfolders_and_confinement(engine: Engine) -> None:
    doc = with_inputs(
        workflow_doc("txt2img"), {"sample": {"steps": 2}, "save": {"filename_prefix": "runs/a/cat"}}
    )
    result = run_ok(engine, doc)
    assert result.files[0]["name"] == "runs/a/cat_00001_.png"
    for bad in ("../escape", "/abs/x", "a/../../x"):
        doc = with_inputs(doc, {"save": {"filename_prefix": bad}})
        res = engine.run(parse_workflow(doc))
        assert res.status == "error" and res.error["error_type"] == "PathOutsideFolder"
    assert not (engine.workspace.output_dir.parent / "escape_00001_.png").exists()


def test_concurrent_saves_never_share_a_name(engine: Engine) -> None:
    img = Image.new("RGB", (8, 8))
    paths: list[Path] = []
    lock = threading.Lock()

    def save() -> None:
        for _ in range(5):
            p = save_png(engine.workspace, "output", "race", img, {"k": "v"})
            with lock:
                paths.append(p)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({p.name for p in paths}) == 20
    with pytest.raises(PathOutsideFolder):
        save_png(engine.workspace, "output", "../x", img, {})


def test_preview_image_writes_temp_files(engine: Engine) -> None:
    doc = with_inputs(workflow_doc("txt2img"), {"sample": {"steps": 2}})
    doc["nodes"]["save"] = {
        "type": "PreviewImage",
        "inputs": {"image": {"node": "decode", "output": "image"}},
    }
    result = run_ok(engine, doc)
    [f] = result.files
    assert f["kind"] == "temp"
    assert (engine.workspace.temp_dir / f["name"]).is_file()
    assert list(engine.workspace.output_dir.iterdir()) == []


def test_load_image_lists_loads_and_fingerprints(engine: Engine, tmp_path: Path) -> None:
    ws = engine.workspace
    (ws.input_dir / "sub").mkdir()
    pixels = np.random.default_rng(1).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(ws.input_dir / "sub" / "pic.png")
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(ws.input_dir / "clear.png")
    (ws.input_dir / "notes.txt").write_text("no image")
    assert engine.choices("input_images") == ["clear.png", "sub/pic.png"]
    node = LoadImage()
    ctx = type("Ctx", (), {"workspace": ws})()
    image = node.run(ctx, file="sub/pic.png")["image"]
    assert image.shape == (1, 12, 20, 3)
    assert np.array_equal((image[0].numpy() * 255).round().astype(np.uint8), pixels)
    white = node.run(ctx, file="clear.png")["image"]
    assert bool(torch.all(white == 1.0))  # transparency composited on white
    digest = hashlib.sha256((ws.input_dir / "sub" / "pic.png").read_bytes()).hexdigest()
    assert LoadImage.fingerprint(ws, {"file": "sub/pic.png"}) == digest


def test_load_image_refuses_oversized_and_unlisted_files(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.new("RGB", (40, 30)).save(engine.workspace.input_dir / "big.png")
    monkeypatch.setattr(images_mod, "MAX_INPUT_PIXELS", 1000)
    doc = {
        "version": 1,
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"file": "big.png"}},
            "show": {
                "type": "PreviewImage",
                "inputs": {"image": {"node": "load", "output": "image"}},
            },
        },
    }
    result = engine.run(parse_workflow(doc))
    assert result.status == "error" and result.error["error_type"] == "ImageTooLarge"
    assert "40x30 = 1200 pixels; the limit is 1000" in result.error["message"]
    doc["nodes"]["load"]["inputs"]["file"] = "../secret.png"
    with pytest.raises(InvalidWorkflow, match="not one of the available input_images"):
        engine.run(parse_workflow(doc))
