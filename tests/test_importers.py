"""Importing ComfyUI (API, UI, PNG) and A1111 workflows, and exporting ours to ComfyUI."""

from __future__ import annotations

import io
import json
from pathlib import Path

import networkx as nx
import pytest
from PIL import Image, PngImagePlugin

from graph import Engine, Registry, Workspace
from graph.workflow import Workflow, as_link
from importers import ImportRefused, export_comfyui_api, import_bytes, import_document, import_file

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "comfyui"


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> Engine:
    tmp = tmp_path_factory.mktemp("imp")
    return Engine(Registry.from_package("nodes"), Workspace.at(tmp, tmp / "models").ensure())


def known(engine: Engine) -> set[str]:
    return set(engine.registry.nodes)


def problems_of(engine: Engine, wf: Workflow) -> list[tuple[str | None, str | None, str]]:
    return [(p.node_id, p.field, p.code) for p in engine.check(wf).problems]


def test_case01_api_ui_and_png_give_the_same_graph(engine: Engine) -> None:
    api = import_file(FIX / "case01_euler_normal.api.json", known(engine))
    ui = import_file(FIX / "case01_euler_normal.ui.json", known(engine))
    png = import_file(FIX / "case01_euler_normal.png", known(engine))
    assert (api.source, ui.source, png.source) == ("comfyui-api", "comfyui-ui", "comfyui-png")
    assert api.workflow.nodes == ui.workflow.nodes == png.workflow.nodes
    nodes = api.workflow.nodes
    assert {k: v.type for k, v in nodes.items()} == {
        "3": "Sample",
        "4": "LoadCheckpoint",
        "5": "EmptyLatent",
        "6_tokens": "Tokenize",
        "6": "EncodeText",
        "7_tokens": "Tokenize",
        "7": "EncodeText",
        "8": "VAEDecode",
        "9": "SaveImage",
    }
    s = nodes["3"].inputs
    assert (s["seed"], s["steps"], s["cfg"], s["sampler"], s["schedule"], s["denoise"]) == (
        1,
        12,
        7,
        "euler",
        "normal",
        1,
    )
    assert s["latent"] == {"node": "5", "output": "latent"}
    assert s["positive"] == {"node": "6", "output": "conditioning"}
    assert nodes["6_tokens"].inputs["text"].startswith("a photograph of an astronaut")
    assert nodes["8"].inputs == {
        "vae": {"node": "4", "output": "vae"},
        "latent": {"node": "3", "output": "latent"},
    }
    # the layout carries over (ComfyUI's pos, stretched sideways 1.6x to make room for the
    # EncodeText beside each Tokenize); the only validation problem is the model
    positions = ui.workflow.ui["positions"]
    assert positions["3"] == {"x": round(863 * 1.6), "y": 186}
    assert positions["6_tokens"] == {"x": round(415 * 1.6), "y": 186}
    assert positions["6"] == {"x": round(415 * 1.6) + 360, "y": 186}
    assert png.workflow.ui == ui.workflow.ui
    assert problems_of(engine, ui.workflow) == [("4", "name", "not_in_choices")]
    assert s["convention"] == "comfyui" and api.warnings == []  # ComfyUI's sigmas and noise


def test_case13_img2img(engine: Engine) -> None:
    ui = import_file(FIX / "case13_img2img_euler_normal.ui.json", known(engine)).workflow
    api = import_file(FIX / "case13_img2img_euler_normal.api.json", known(engine)).workflow
    assert ui.nodes == api.nodes
    assert ui.nodes["10"].inputs == {"file": "case13_img2img_source.png"}
    assert ui.nodes["12"].inputs["image"] == {"node": "10", "output": "image"}
    assert ui.nodes["3"].inputs["denoise"] == 0.6
    assert ui.nodes["3"].inputs["latent"] == {"node": "12", "output": "latent"}


def test_ui_primitive_reroute_bypass_mute_note(engine: Engine) -> None:
    result = import_file(FIX / "features.ui.json", known(engine))
    wf = result.workflow
    kept = {"3", "4", "5", "6", "6_tokens", "7", "7_tokens", "8", "9", "22", "23"}
    assert set(wf.nodes) == kept
    sample = wf.nodes["3"].inputs
    assert sample["seed"] == 777  # from the PrimitiveNode's link, not the stale widget
    assert wf.nodes["8"].inputs["vae"] == {"node": "4", "output": "vae"}  # through the Reroute
    # the muted PreviewImage and the bypassed LatentUpscaleBy stay, with their modes (they
    # can be switched back on); the engine passes the bypassed node's latent through
    assert wf.nodes["23"].mode == "mute" and wf.nodes["23"].type == "PreviewImage"
    assert wf.nodes["22"].mode == "bypass" and sample["latent"] == {
        "node": "22",
        "output": "latent",
    }
    assert engine.check(wf).bypassed == ["22"]
    assert wf.ui["viewport"] == {"x": 50.0, "y": -20.0, "zoom": 0.5}


def test_ui_bypass_maps_onto_our_mode_and_export_rewires_it(engine: Engine) -> None:
    data = json.loads((FIX / "features.ui.json").read_text())
    for node in data["nodes"]:
        if node["id"] == 3:
            node["mode"] = 4  # the KSampler bypassed: its LATENT input passes through
    wf = import_document(data, known(engine)).workflow
    assert wf.nodes["3"].mode == "bypass" and wf.nodes["23"].mode == "mute"
    assert engine.check(wf).bypassed == ["22", "3"]
    api = export_comfyui_api(wf, _defaults(engine), engine.registry)
    assert not {"3", "22", "23"} & set(api)  # rewired out / left out, not dropped silently
    assert api["8"]["inputs"]["samples"] == ["5", 0]


def test_export_inlines_primitive_nodes(engine: Engine) -> None:
    ours = json.loads((ROOT / "workflows" / "txt2img.json").read_text())
    ours["nodes"]["seed"] = {"type": "Seed", "inputs": {"value": 2**64 - 1}}
    ours["nodes"]["sample"]["inputs"]["seed"] = {"node": "seed", "output": "value"}
    api = export_comfyui_api(import_document(ours).workflow, _defaults(engine), engine.registry)
    assert "seed" not in api and api["sample"]["inputs"]["seed"] == 2**64 - 1


def test_unmappable_nodes_are_all_listed(engine: Engine) -> None:
    with pytest.raises(ImportRefused) as err:
        import_file(FIX / "refused.api.json", known(engine))
    got = {(p.node_id, p.code) for p in err.value.problems}
    assert {("11", "no_equivalent"), ("12", "no_equivalent")} <= got
    assert "10" not in {p.node_id for p in err.value.problems}  # LoraLoaderModelOnly maps
    text = str(err.value)
    for expected in (
        "CLIPSetLastLayer",
        "stop_at_clip_layer 0",
        "IPAdapterAdvanced",
        "sampler 'dpmpp_3m_sde'",
    ):
        assert expected in text
    sampler = [p for p in err.value.problems if p.node_id == "3"]
    assert sampler and sampler[0].field == "sampler"


def test_lora_clip_skip_vae_and_embeddings_map_onto_our_nodes(engine: Engine) -> None:
    doc = json.loads((FIX / "case01_euler_normal.api.json").read_text())
    doc["10"] = {
        "class_type": "LoraLoader",
        "inputs": {
            "lora_name": "detail.safetensors",
            "strength_model": 0.8,
            "strength_clip": 0.6,
            "model": ["4", 0],
            "clip": ["4", 1],
        },
    }
    doc["11"] = {
        "class_type": "CLIPSetLastLayer",
        "inputs": {"stop_at_clip_layer": -2, "clip": ["10", 1]},
    }
    doc["12"] = {"class_type": "VAELoader", "inputs": {"vae_name": "ft-mse.safetensors"}}
    doc["3"]["inputs"]["model"] = ["10", 0]
    doc["6"]["inputs"].update(clip=["11", 0], text="a horse, embedding:detailed:1.2")
    doc["7"]["inputs"]["clip"] = ["11", 0]
    doc["8"]["inputs"]["vae"] = ["12", 0]
    wf = import_document(doc, known(engine)).workflow
    nodes = wf.nodes
    assert nodes["10"].type == "LoadLoRA" and nodes["10"].inputs["name"] == "detail.safetensors"
    assert (nodes["10"].inputs["strength_model"], nodes["10"].inputs["strength_clip"]) == (0.8, 0.6)
    assert as_link(nodes["10"].inputs["clip"]) == ("4", "clip")
    assert nodes["11"].type == "ClipSkip" and nodes["11"].inputs["skip"] == 2
    assert as_link(nodes["11"].inputs["clip"]) == ("10", "clip")
    assert nodes["12"].type == "LoadVAE" and as_link(nodes["8"].inputs["vae"]) == ("12", "vae")
    assert as_link(nodes["3"].inputs["model"]) == ("10", "model")
    tokens = [
        n for n in nodes.values() if n.type == "Tokenize" and "embedding:" in n.inputs["text"]
    ]
    assert len(tokens) == 1 and as_link(tokens[0].inputs["clip"]) == ("11", "clip")
    # the files are not here: validation names each one, nothing else is wrong
    got = {(nid, field, code) for nid, field, code in problems_of(engine, wf)}
    assert ("10", "name", "not_in_choices") in got and ("12", "name", "not_in_choices") in got


def test_samplers_without_a_comfyui_loop_run_on_diffusers_schedules(engine: Engine) -> None:
    doc = json.loads((FIX / "case01_euler_normal.api.json").read_text())
    doc["3"]["inputs"].update(sampler_name="heun", scheduler="karras")
    result = import_document(doc, known(engine))
    assert result.workflow.nodes["3"].inputs["convention"] == "diffusers"
    assert "picture will differ" in result.warnings[0]
    doc["3"]["inputs"]["scheduler"] = "beta"
    with pytest.raises(ImportRefused, match="scheduler 'beta' with sampler 'heun'"):
        import_document(doc, known(engine))


def test_a_node_type_missing_from_this_engine_is_refused() -> None:
    doc = json.loads((FIX / "case01_euler_normal.api.json").read_text())
    without_sample = {
        "LoadCheckpoint",
        "Tokenize",
        "EncodeText",
        "EmptyLatent",
        "VAEDecode",
        "SaveImage",
    }
    with pytest.raises(ImportRefused, match="needs node type Sample"):
        import_document(doc, without_sample)


def test_ui_format_details() -> None:
    base = {
        "nodes": [
            {
                "id": 1,
                "type": "EmptyLatentImage",
                "pos": {"0": 5, "1": 6},
                "mode": 0,
                "widgets_values": [64, 64, 1],
            },
            {
                "id": 2,
                "type": "KSamplerAdvanced",
                "pos": [0, 0],
                "mode": 0,
                "inputs": [{"name": "latent_image", "link": 1}],
                "widgets_values": [
                    "enable",
                    9,
                    "randomize",
                    4,
                    2.5,
                    "uni_pc",
                    "karras",
                    0,
                    10000,
                    "disable",
                ],
            },
        ],
        "links": [
            {
                "id": 1,
                "origin_id": 1,
                "origin_slot": 0,
                "target_id": 2,
                "target_slot": 3,
                "type": "LATENT",
            }
        ],
    }
    with pytest.raises(ImportRefused) as err:  # model and conditioning are not connected
        import_document(base)
    assert {p.field for p in err.value.problems} == {"model", "positive", "negative"}
    base["nodes"][1]["widgets_values"][7] = 2  # start_at_step 2: a partial schedule
    with pytest.raises(ImportRefused, match="starting at a later step"):
        import_document(base)
    with pytest.raises(ImportRefused, match="subgraphs"):
        import_document({"nodes": [], "links": [], "definitions": {"subgraphs": [{}]}})


def test_a1111_parameters(engine: Engine) -> None:
    text = (FIX / "a1111_txt2img.txt").read_text()
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    buf = io.BytesIO()
    Image.new("RGB", (96, 64)).save(buf, format="PNG", pnginfo=info)
    result = import_bytes(buf.getvalue(), known(engine))
    assert result.source == "a1111"
    nodes = result.workflow.nodes
    assert nodes["positive_tokens"].inputs["text"] == (
        "a large red circle on a blue background,\ntop left"
    )
    assert nodes["negative_tokens"].inputs["text"] == "blurry, (low quality:1.2)"
    s = nodes["sample"].inputs
    assert (s["steps"], s["sampler"], s["schedule"], s["cfg"], s["seed"]) == (
        24,
        "dpmpp_2m",
        "karras",
        6.5,
        3456789012,
    )
    assert nodes["latent"].inputs == {"width": 96, "height": 64, "batch_size": 1}
    assert nodes["checkpoint"].inputs["name"] == "v1-5-pruned-emaonly"
    assert result.workflow.models["checkpoint.name"].autov2 == "6ce0161689"
    assert problems_of(engine, result.workflow) == [("checkpoint", "name", "not_in_choices")]


def test_a1111_refusals_name_every_setting() -> None:
    with pytest.raises(ImportRefused) as err:
        import_bytes((FIX / "a1111_refused.txt").read_bytes())
    fields = {p.field for p in err.value.problems}
    assert fields == {"Sampler", "Schedule type", "Hires upscaler", "prompt"}
    text = str(err.value)
    assert "R-ESRGAN 4x+" in text and "image-space upscalers" in text
    assert "hypernetwork 'old_style'" in text


def test_a1111_old_style_img2img(engine: Engine) -> None:
    result = import_bytes((FIX / "a1111_img2img_old.txt").read_bytes(), known(engine))
    nodes = result.workflow.nodes
    assert nodes["sample"].inputs["sampler"] == "dpmpp_2m"
    assert nodes["sample"].inputs["schedule"] == "karras"
    assert nodes["sample"].inputs["denoise"] == 0.5
    assert nodes["latent"].type == "VAEEncode" and nodes["source"].type == "LoadImage"
    assert any("Mask blur" in w for w in result.warnings)
    assert any("source picture" in w for w in result.warnings)


def _canonical(engine: Engine, wf: Workflow) -> nx.DiGraph:
    """The validated graph (defaults filled in), node ids forgotten."""
    checked = engine.check(wf)
    g = nx.DiGraph()
    for nid, node in checked.nodes.items():
        g.add_node(nid, label=(node.spec.type, json.dumps(node.literals, sort_keys=True)))
    for nid, entry in wf.nodes.items():
        for name, v in entry.inputs.items():
            link = as_link(v)
            if link:
                g.add_edge(link[0], nid, label=(link[1], name))
    return g


def _defaults(engine: Engine) -> dict:
    return {
        t: {n: i.default for n, i in s.inputs.items() if i.socket is None}
        for t, s in engine.registry.nodes.items()
    }


@pytest.mark.parametrize("name", ["txt2img", "img2img"])
def test_round_trip_ours_comfyui_ours(engine: Engine, name: str) -> None:
    ours = import_file(ROOT / "workflows" / f"{name}.json").workflow
    api = export_comfyui_api(ours, _defaults(engine), engine.registry)
    assert {v["class_type"] for v in api.values()} >= {
        "CheckpointLoaderSimple",
        "KSampler",
        "CLIPTextEncode",
    }
    back = import_document(json.loads(json.dumps(api)), known(engine))
    assert back.source == "comfyui-api"
    a, b = _canonical(engine, ours), _canonical(engine, back.workflow)
    same = nx.is_isomorphic(a, b, node_match=lambda x, y: x == y, edge_match=lambda x, y: x == y)
    assert same and len(a) == len(b) > 5
    assert set(back.workflow.nodes) == set(ours.nodes)  # ids survive too


def test_round_trip_with_lora_clip_skip_and_vae(engine: Engine) -> None:
    ours = json.loads((ROOT / "workflows" / "txt2img.json").read_text())
    nodes = ours["nodes"]
    nodes["lora"] = {
        "type": "LoadLoRA",
        "inputs": {
            "model": {"node": "checkpoint", "output": "model"},
            "clip": {"node": "checkpoint", "output": "clip"},
            "name": "detail.safetensors",
            "strength_model": 0.7,
            "strength_clip": 0.5,
        },
    }
    nodes["skip"] = {"type": "ClipSkip", "inputs": {"clip": {"node": "lora", "output": "clip"}}}
    nodes["vae"] = {"type": "LoadVAE", "inputs": {"name": "ft-mse.safetensors"}}
    for nid, entry in nodes.items():
        for name, value in entry["inputs"].items():
            if nid != "lora" and value == {"node": "checkpoint", "output": "clip"}:
                entry["inputs"][name] = {"node": "skip", "output": "clip"}
            if value == {"node": "checkpoint", "output": "vae"}:
                entry["inputs"][name] = {"node": "vae", "output": "vae"}
            if nid != "lora" and value == {"node": "checkpoint", "output": "model"}:
                entry["inputs"][name] = {"node": "lora", "output": "model"}
    wf = import_document(ours).workflow
    api = export_comfyui_api(wf, _defaults(engine), engine.registry)
    by_type = {v["class_type"]: v["inputs"] for v in api.values()}
    assert by_type["CLIPSetLastLayer"]["stop_at_clip_layer"] == -2
    assert by_type["LoraLoader"]["lora_name"] == "detail.safetensors"
    assert by_type["VAELoader"]["vae_name"] == "ft-mse.safetensors"
    back = import_document(json.loads(json.dumps(api)), known(engine)).workflow
    a, b = _canonical(engine, wf), _canonical(engine, back)
    assert nx.is_isomorphic(a, b, node_match=lambda x, y: x == y, edge_match=lambda x, y: x == y)


def test_export_refuses_what_comfyui_lacks(engine: Engine) -> None:
    ours = import_file(ROOT / "workflows" / "ddim_inversion.json").workflow
    with pytest.raises(ImportRefused) as err:
        export_comfyui_api(ours, _defaults(engine), engine.registry)
    assert [p.node_id for p in err.value.problems] == ["invert"]
    assert "InvertLatent" in str(err.value)


def test_our_own_files_pass_through() -> None:
    r = import_file(ROOT / "workflows" / "txt2img.json")
    assert r.source == "sdgraph" and r.warnings == []
    with pytest.raises(Exception, match="unsupported workflow version"):
        import_document({"version": 7, "nodes": {}})
    with pytest.raises(Exception, match="not a workflow in a format"):
        import_document([1, 2])
