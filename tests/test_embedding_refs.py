"""Embeddings named inside prompts (embedding:NAME) travel by content hash like models."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import run
from graph import Registry
from graph.workflow import parse_workflow
from importers import import_bytes
from model_index import ModelIndex, model_inputs, record_models, resolve_models

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_package("nodes")


def _embedding(path: Path, seed: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(
        {"emb_params": torch.randn(2, 32, generator=torch.Generator().manual_seed(seed))}, str(path)
    )
    return path.read_bytes()


def _workflow(text: str):
    doc = json.loads((ROOT / "workflows" / "txt2img.json").read_text())
    doc["nodes"]["positive_tokens"]["inputs"]["text"] = text
    return parse_workflow(doc)


def test_recorded_by_hash_found_under_another_name_or_missing(
    tmp_path: Path, registry, capsys
) -> None:
    models = tmp_path / "models"
    raw = _embedding(models / "embeddings" / "style.safetensors", 0)
    index, inputs = ModelIndex(models, tmp_path / "data"), model_inputs(registry)
    wf = record_models(_workflow("a circle, (embedding:style:1.2), blue"), index, inputs)
    ref = wf.models["positive_tokens.text:style"]
    assert (ref.kind, ref.name, ref.sha256) == (
        "embeddings",
        "style.safetensors",
        hashlib.sha256(raw).hexdigest(),
    )
    same, problems, notes = resolve_models(wf, index, inputs)
    assert problems == [] and notes == [] and same.nodes == wf.nodes
    # another machine: the file is there under another name in a sub-folder
    (models / "embeddings" / "style.safetensors").rename(tmp_path / "away")
    moved = models / "embeddings" / "ti" / "renamed.safetensors"
    moved.parent.mkdir()
    (tmp_path / "away").rename(moved)
    _embedding(models / "embeddings" / "style.safetensors", 1)  # same name, other content
    found, problems, notes = resolve_models(wf, index, inputs)
    text = found.nodes["positive_tokens"].inputs["text"]
    assert problems == [] and text == "a circle, (embedding:ti/renamed:1.2), blue"
    assert "embedding 'style'" in notes[0] and "ti/renamed.safetensors" in notes[0]
    assert found.models["positive_tokens.text:ti/renamed"].name == "ti/renamed.safetensors"
    assert found.nodes["negative_tokens"] == wf.nodes["negative_tokens"]
    # nowhere: model_missing names the node, the field and the embedding, before any run
    moved.unlink()
    _, problems, _ = resolve_models(wf, index, inputs)
    assert [(p.node_id, p.field, p.code) for p in problems] == [
        ("positive_tokens", "text", "model_missing")
    ]
    assert "embedding 'style'" in problems[0].message and ref.sha256 in problems[0].message
    wf_file = tmp_path / "wf.json"
    wf_file.write_text(wf.model_dump_json(exclude_none=True))
    base = ["--data", str(tmp_path / "data"), "--models", str(models), "--json"]
    assert run.main([str(wf_file), *base]) == 2
    errors = json.loads(capsys.readouterr().out)["errors"]
    assert ("positive_tokens", "text", "model_missing") in {
        (e["node_id"], e["field"], e["code"]) for e in errors
    }


def test_a1111_ti_hashes_become_embedding_names_found_by_hash(tmp_path: Path, registry) -> None:
    models = tmp_path / "models"
    raw = _embedding(models / "embeddings" / "bad-hands-v5.safetensors", 2)
    short = hashlib.sha256(raw).hexdigest()[:12]
    text = (
        "a circle\nNegative prompt: badhands, blurry\n"
        "Steps: 4, Sampler: Euler, CFG scale: 5, Seed: 1, Size: 64x64, "
        f'TI hashes: "badhands: {short}"'
    )
    result = import_bytes(text.encode(), set(registry.nodes))
    assert result.workflow.nodes["negative_tokens"].inputs["text"] == "embedding:badhands, blurry"
    assert result.workflow.models["negative_tokens.text:badhands"].autov2 == short[:10]
    index = ModelIndex(models, tmp_path / "data")
    wf, problems, _ = resolve_models(result.workflow, index, model_inputs(registry))
    assert problems == []
    assert wf.nodes["negative_tokens"].inputs["text"] == "embedding:bad-hands-v5, blurry"
