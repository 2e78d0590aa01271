"""The model index (sha256 memo, background hashing, families) and model references in
workflow files (recorded on save, resolved by name or content, model_missing)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import struct
import threading
from pathlib import Path

import pytest

import run
from graph import Registry, Workspace
from graph.pngmeta import read_png_text
from graph.workflow import parse_workflow
from graph.workspace import NotARegularFile
from model_index import ModelIndex, index_for, model_inputs, record_models, resolve_models
from model_index.family import detect_family
from service import make_app
from tests.server_testkit import make_config, make_test_app, owned_client

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "nodes" / "sd" / "builtin_models" / "shapes-demo.safetensors"


def write_safetensors(path: Path, tensors: dict[str, list[int]]) -> Path:
    """A header-only safetensors file (zero-filled data): enough for family detection."""
    header, offset = {}, 0
    for name, shape in tensors.items():
        n = 2
        for d in shape:
            n *= d
        header[name] = {"dtype": "F16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(offset))
    return path


class CountingIndex(ModelIndex):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.hashed: list[Path] = []

    def _digest(self, path: Path) -> str:
        self.hashed.append(path)
        return super()._digest(path)


def test_hash_is_memoized_across_processes_and_invalidated_on_change(tmp_path: Path) -> None:
    models, data = tmp_path / "models", tmp_path / "data"
    f = models / "checkpoints" / "a.safetensors"
    f.parent.mkdir(parents=True)
    f.write_bytes(b"x" * 1000)
    first = CountingIndex(models, data)
    assert first.sha256(f) == hashlib.sha256(b"x" * 1000).hexdigest()
    assert first.sha256(f) and len(first.hashed) == 1
    again = CountingIndex(models, data)  # a new process reads the memo file
    assert again.sha256(f) == first.sha256(f) and again.hashed == []
    # a copy that keeps size and mtime but not content replaces the file: hashed again
    st = f.stat()
    other = tmp_path / "b.bin"
    other.write_bytes(b"y" * 1000)
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, f)
    assert again.sha256(f) == hashlib.sha256(b"y" * 1000).hexdigest()
    assert len(again.hashed) == 1
    # an edit in place (new mtime) too
    f.write_bytes(b"z" * 1000)
    assert again.sha256(f) == hashlib.sha256(b"z" * 1000).hexdigest()


def test_scan_lists_families_and_hashes_in_the_background(tmp_path: Path) -> None:
    models = tmp_path / "models"
    write_safetensors(
        models / "checkpoints" / "sd1.safetensors",
        {"cond_stage_model.transformer.text_model.final_layer_norm.weight": [4]},
    )
    write_safetensors(
        models / "checkpoints" / "xl" / "base.safetensors",
        {"conditioner.embedders.1.model.ln_final.weight": [4]},
    )
    write_safetensors(
        models / "loras" / "style.safetensors", {"lora_te1_x.lora_down.weight": [4, 4]}
    )
    write_safetensors(
        models / "loras" / "old.safetensors",
        {
            "lora_unet_mid_block_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight": [
                4,
                768,
            ]
        },
    )
    (models / "checkpoints" / "notes.txt").write_text("not a model")
    index = ModelIndex(models, tmp_path / "data")
    files = {f.name: f for f in index.scan()}
    assert {k: v.family for k, v in files.items()} == {
        "sd1.safetensors": "sd1",
        "xl/base.safetensors": "sdxl",
        "style.safetensors": "lora-sdxl",
        "old.safetensors": "lora-sd1",
    }
    index.wait_idle(30)
    done = {f.name: f for f in index.scan()}
    sha = hashlib.sha256((models / "checkpoints" / "sd1.safetensors").read_bytes()).hexdigest()
    assert done["sd1.safetensors"].sha256 == sha and done["sd1.safetensors"].autov2 == sha[:10]
    assert detect_family("vae", models / "checkpoints" / "sd1.safetensors") == "vae"


async def test_background_hashing_does_not_block_the_server(aiohttp_client, tmp_path, monkeypatch):
    release = threading.Event()
    real = ModelIndex._digest

    def slow(self, path):
        assert release.wait(30)
        return real(self, path)

    monkeypatch.setattr(ModelIndex, "_digest", slow)
    (tmp_path / "models" / "checkpoints").mkdir(parents=True)
    (tmp_path / "models" / "checkpoints" / "big.safetensors").write_bytes(b"w" * 4096)
    client = await owned_client(aiohttp_client, make_test_app(make_config(tmp_path)))
    try:
        body = await asyncio.wait_for((await client.get("/api/models")).json(), 5)
        (entry,) = body["files"]
        assert entry["name"] == "big.safetensors" and entry["hashing"] and entry["sha256"] is None
        assert (await client.get("/api/nodes")).status == 200  # the server answers meanwhile
    finally:
        release.set()
    for _ in range(200):
        (entry,) = (await (await client.get("/api/models")).json())["files"]
        if entry["sha256"]:
            break
        await asyncio.sleep(0.05)
    assert entry["sha256"] == hashlib.sha256(b"w" * 4096).hexdigest()
    assert entry["autov2"] == entry["sha256"][:10] and entry["size"] == 4096


@pytest.fixture(scope="module")
def sd_registry() -> Registry:
    pytest.importorskip("torch")
    return Registry.from_package("nodes")


def _workflow(name: str, models: dict | None = None):
    doc = json.loads((ROOT / "workflows" / "txt2img.json").read_text())
    doc["nodes"]["checkpoint"]["inputs"]["name"] = name
    doc["nodes"]["sample"]["inputs"]["steps"] = 2
    if models:
        doc["models"] = models
    return parse_workflow(doc)


def test_resolution_by_name_by_hash_or_missing(tmp_path: Path, sd_registry: Registry) -> None:
    models = tmp_path / "models"
    a = models / "checkpoints" / "a.safetensors"
    a.parent.mkdir(parents=True)
    a.write_bytes(b"model A")
    index, inputs = ModelIndex(models, tmp_path / "data"), model_inputs(sd_registry)
    assert inputs["LoadCheckpoint"] == {"name": "checkpoints"}
    recorded = record_models(_workflow("a.safetensors"), index, inputs)
    ref = recorded.models["checkpoint.name"]
    assert (ref.sha256, ref.size, ref.kind) == (
        hashlib.sha256(b"model A").hexdigest(),
        7,
        "checkpoints",
    )
    wf, problems, notes = resolve_models(recorded, index, inputs)  # by name
    assert (
        problems == [] and notes == [] and wf.nodes["checkpoint"].inputs["name"] == "a.safetensors"
    )
    (models / "checkpoints" / "sub").mkdir()
    a.rename(models / "checkpoints" / "sub" / "renamed.safetensors")
    a.write_bytes(b"model B")  # same name, other content
    wf, problems, notes = resolve_models(recorded, index, inputs)  # by hash
    assert problems == [] and wf.nodes["checkpoint"].inputs["name"] == "sub/renamed.safetensors"
    assert "other content" in notes[0]
    (models / "checkpoints" / "sub" / "renamed.safetensors").unlink()
    _, problems, _ = resolve_models(recorded, index, inputs)
    assert [(p.node_id, p.field, p.code) for p in problems] == [
        ("checkpoint", "name", "model_missing")
    ]
    assert ref.sha256 in problems[0].message and "a.safetensors" in problems[0].message
    # the family recorded on save tells a client what may stand in for it
    assert ref.family is None  # b"model A" is no safetensors file: nothing recorded
    with_family = recorded.model_copy(
        update={"models": {"checkpoint.name": ref.model_copy(update={"family": "sd1"})}}
    )
    _, problems, _ = resolve_models(with_family, index, inputs)
    assert problems[0].to_json()["detail"] == {"family": "sd1"}
    # A1111's short hash finds the file too
    (models / "checkpoints" / "x.safetensors").write_bytes(b"model A")
    short = {"checkpoint.name": {"kind": "checkpoints", "autov2": ref.sha256[:10]}}
    wf, problems, _ = resolve_models(_workflow("v1-5-pruned", short), index, inputs)
    assert problems == [] and wf.nodes["checkpoint"].inputs["name"] == "x.safetensors"


def test_saved_png_records_the_model_and_loads_after_a_rename(tmp_path: Path, capsys) -> None:
    models, data = tmp_path / "models", tmp_path / "data"
    ckpt = models / "checkpoints" / "demo.safetensors"
    ckpt.parent.mkdir(parents=True)
    shutil.copy(DEMO, ckpt)
    wf = tmp_path / "wf.json"
    wf.write_text(_workflow("demo.safetensors").model_dump_json(exclude_none=True))
    base = ["--data", str(data), "--models", str(models), "--json", "--threads", "1"]
    assert run.main([str(wf), *base]) == 0
    (png,) = json.loads(capsys.readouterr().out)["runs"][0]["files"]
    saved = json.loads(read_png_text(Path(png).read_bytes())["workflow"])
    ref = saved["models"]["checkpoint.name"]
    digest = hashlib.sha256(DEMO.read_bytes()).hexdigest()
    assert ref == {
        "kind": "checkpoints",
        "name": "demo.safetensors",
        "sha256": digest,
        "size": DEMO.stat().st_size,
        "family": "sd1",
    }
    fingerprint = sd_fingerprint(models, data, "demo.safetensors")
    assert fingerprint == "sha256:" + digest
    ckpt.rename(models / "checkpoints" / "moved.safetensors")
    assert run.main([png, *base]) == 0
    out, err = capsys.readouterr()
    assert "using 'moved.safetensors'" in err and json.loads(out)["runs"][0]["status"] == "ok"
    (models / "checkpoints" / "moved.safetensors").unlink()
    assert run.main([png, *base]) == 2
    (error,) = json.loads(capsys.readouterr().out)["errors"]
    assert error["code"] == "model_missing" and error["node_id"] == "checkpoint"


def sd_fingerprint(models: Path, data: Path, name: str) -> str | None:
    from nodes.load_checkpoint import LoadCheckpoint

    workspace = Workspace.at(data, models)
    assert index_for(workspace) is index_for(Workspace.at(data, models))
    return LoadCheckpoint.fingerprint(workspace, {"name": name})


async def test_api_reports_model_missing(aiohttp_client, tmp_path, sd_registry):
    app = make_app(make_config(tmp_path), registry=sd_registry)
    client = await owned_client(aiohttp_client, app)
    refs = {"checkpoint.name": {"kind": "checkpoints", "sha256": "ab" * 32, "size": 5}}
    doc = _workflow("gone.safetensors", refs).model_dump(exclude_none=True)
    resp = await client.post("/api/jobs", json={"workflow": doc})
    body = await resp.json()
    assert resp.status == 400
    (problem,) = body["error"]["details"]
    assert (problem["node_id"], problem["field"], problem["code"]) == (
        "checkpoint",
        "name",
        "model_missing",
    )
    assert "abab" in problem["message"]
    body = await (await client.post("/api/workflows/import", json=doc)).json()
    assert body["problems"][0]["code"] == "model_missing"  # the canvas still opens it


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_among_the_models_is_never_read(tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / "checkpoints").mkdir(parents=True)
    os.mkfifo(models / "checkpoints" / "stuck.safetensors")
    index = ModelIndex(models, tmp_path / "data")
    assert index.scan() == []  # not listed, so never hashed in the background
    assert index.path_of("checkpoints", "stuck.safetensors") is None
    with pytest.raises(NotARegularFile):  # refused at open, without blocking
        index.sha256(models / "checkpoints" / "stuck.safetensors")
