"""ComfyUI's SDXL text encoders, LoraLoaderModelOnly and the resize nodes, both ways.

`sdxl_hires.*.json` hold one graph in both ComfyUI formats, written by hand from ComfyUI's
node definitions (widget order = INPUT_TYPES order; see tests/fixtures/comfyui/README.md)."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest

from graph import Engine, Registry, Workspace
from graph.workflow import Workflow, as_link, parse_workflow
from importers import ImportRefused, export_comfyui_api, import_document, import_file
from tests.test_importers import _canonical, _defaults

FIX = Path(__file__).resolve().parent / "fixtures" / "comfyui"


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    tmp = tmp_path_factory.mktemp("map")
    return Engine(Registry.from_package("nodes"), Workspace.at(tmp, tmp / "models").ensure())


def _known(engine: Engine) -> set[str]:
    return set(engine.registry.nodes)


def _same(engine: Engine, a: Workflow, b: Workflow) -> bool:
    ga, gb = _canonical(engine, a), _canonical(engine, b)
    return nx.is_isomorphic(ga, gb, node_match=lambda x, y: x == y, edge_match=lambda x, y: x == y)


def test_sdxl_encoders_lora_model_only_and_resizes_import(engine: Engine) -> None:
    api = import_file(FIX / "sdxl_hires.api.json", _known(engine))
    ui = import_file(FIX / "sdxl_hires.ui.json", _known(engine))
    assert api.workflow.nodes == ui.workflow.nodes and api.warnings == []
    nodes = api.workflow.nodes
    # CLIPTextEncodeSDXL: text_l -> CLIP-L (our text), text_g -> bigG (our text_2)
    assert nodes["6_tokens"].inputs["text"] == "a castle on a hill"
    assert nodes["6_tokens"].inputs["text_2"] == "a castle on a hill, oil painting"
    assert nodes["7_tokens"].inputs["text_2"] == ""  # the same text for both encoders
    assert nodes["6"].type == "SizeConditioning"
    assert as_link(nodes["6"].inputs["conditioning"]) == ("6_encode", "conditioning")
    sizes = {k: v for k, v in nodes["6"].inputs.items() if k != "conditioning"}
    assert sizes == {
        "original_width": 2048,
        "original_height": 2048,
        "crop_left": 16,
        "crop_top": 8,
        "target_width": 1024,
        "target_height": 1024,
    }
    # the refiner's encoder: one prompt, the aesthetic score and the original size
    assert nodes["15_tokens"].inputs["text"] == "a castle"
    assert nodes["15"].inputs["aesthetic_score"] == 6.0
    assert (nodes["15"].inputs["original_width"], nodes["15"].inputs["original_height"]) == (
        1536,
        1024,
    )
    assert nodes["10"].type == "LoadLoRAModel" and nodes["10"].inputs["strength_model"] == 0.7
    assert as_link(nodes["3"].inputs["model"]) == ("10", "model")
    assert nodes["11"].inputs == {
        "latent": {"node": "3", "output": "latent"},
        "upscale_method": "bislerp",
        "scale_by": 1.5,
    }
    assert as_link(nodes["12"].inputs["latent"]) == ("11", "latent")
    assert nodes["12"].inputs["denoise"] == 0.5
    assert nodes["13"].type == "LatentUpscale" and nodes["13"].inputs["width"] == 1536
    assert nodes["14"].type == "ImageScale" and nodes["14"].inputs["upscale_method"] == "lanczos"
    assert as_link(nodes["9"].inputs["image"]) == ("14", "image")
    # each of the three nodes a CLIPTextEncodeSDXL became sits beside the previous one
    pos = ui.workflow.ui["positions"]
    assert pos["6_encode"]["x"] - pos["6_tokens"]["x"] == pos["6"]["x"] - pos["6_encode"]["x"]
    assert pos["6"]["x"] + 340 <= pos["3"]["x"]  # the layout stretched to make room for three
    # only the model files are missing here: every value fits our nodes
    problems = {(p.node_id, p.field, p.code) for p in engine.check(ui.workflow).problems}
    assert problems == {("4", "name", "not_in_choices"), ("10", "name", "not_in_choices")}


def test_round_trip_through_comfyui_api(engine: Engine) -> None:
    ours = import_file(FIX / "sdxl_hires.api.json", _known(engine)).workflow
    api = export_comfyui_api(ours, _defaults(engine), engine.registry)
    by_id = {k: (v["class_type"], v["inputs"]) for k, v in api.items()}
    kind, sdxl = by_id["6"]
    assert kind == "CLIPTextEncodeSDXL" and sdxl["clip"] == ["4", 1]
    assert (sdxl["text_l"], sdxl["text_g"], sdxl["crop_w"]) == (
        "a castle on a hill",
        "a castle on a hill, oil painting",
        16,
    )
    assert by_id["7"][1]["text_g"] == by_id["7"][1]["text_l"] == "blurry"
    assert by_id["15"][0] == "CLIPTextEncodeSDXLRefiner" and by_id["15"][1]["ascore"] == 6.0
    assert by_id["10"] == (
        "LoraLoaderModelOnly",
        {"model": ["4", 0], "lora_name": "detail.safetensors", "strength_model": 0.7},
    )
    assert by_id["11"][1]["samples"] == ["3", 0] and by_id["14"][1]["image"] == ["8", 0]
    assert "6_tokens" not in api and "6_encode" not in api  # folded into the encoder
    back = import_document(json.loads(json.dumps(api)), _known(engine)).workflow
    assert _same(engine, ours, back)


def test_our_sdxl_chain_with_defaults_exports_and_returns(engine: Engine) -> None:
    """Ours first: a Tokenize(text, text_2) -> EncodeText -> SizeConditioning chain with
    the upscale nodes left at their defaults comes back the same graph."""
    doc = json.loads((FIX.parents[2] / "workflows" / "txt2img.json").read_text())
    n = doc["nodes"]
    n["positive_tokens"]["inputs"]["text_2"] = "oil painting"
    n["sized"] = {
        "type": "SizeConditioning",
        "inputs": {
            "conditioning": {"node": "positive", "output": "conditioning"},
            "original_width": 128,
            "original_height": 96,
            "target_width": 64,
            "target_height": 64,
        },
    }
    n["sample"]["inputs"]["positive"] = {"node": "sized", "output": "conditioning"}
    n["up"] = {
        "type": "LatentUpscaleBy",
        "inputs": {"latent": {"node": "sample", "output": "latent"}},
    }
    n["decode"]["inputs"]["latent"] = {"node": "up", "output": "latent"}
    n["scale"] = {"type": "ImageScale", "inputs": {"image": {"node": "decode", "output": "image"}}}
    n["save"]["inputs"]["image"] = {"node": "scale", "output": "image"}
    ours = parse_workflow(doc)
    api = export_comfyui_api(ours, _defaults(engine), engine.registry)
    assert api["sized"]["inputs"]["text_g"] == "oil painting"
    assert api["up"]["inputs"] == {
        "samples": ["sample", 0],
        "upscale_method": "nearest-exact",
        "scale_by": 1.5,
    }
    back = import_document(json.loads(json.dumps(api)), _known(engine)).workflow
    assert _same(engine, ours, back)


def test_export_refuses_what_comfyui_cannot_say(engine: Engine) -> None:
    doc = json.loads((FIX.parents[2] / "workflows" / "txt2img.json").read_text())
    n = doc["nodes"]
    n["negative_tokens"]["inputs"]["text_2"] = "only for bigG"  # no SizeConditioning after
    n["sized"] = {
        "type": "SizeConditioning",
        "inputs": {"conditioning": {"node": "positive", "output": "conditioning"}},
    }
    n["sample"]["inputs"]["positive"] = {"node": "sized", "output": "conditioning"}
    with pytest.raises(ImportRefused) as err:
        export_comfyui_api(parse_workflow(doc), _defaults(engine), engine.registry)
    got = {(p.node_id, p.field) for p in err.value.problems}
    assert ("negative", "tokens") in got
    assert {("sized", f) for f in ("original_width", "target_height")} <= got
    assert "the latent's size" in str(err.value)
