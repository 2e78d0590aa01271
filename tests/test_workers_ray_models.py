"""A Ray worker machine finds a model by content hash under its own name for it: the
server resolved the workflow's names against its own models folder, the worker machine
holds the same file elsewhere. The actor class runs in-process here (no Ray needed)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from model_index import index_for, model_inputs, record_models
from service.app import make_engine
from service.workers.ray_actor import EngineActor
from tests.server_testkit import make_config
from tests.test_model_index import DEMO, _workflow


def test_the_worker_machine_resolves_models_by_hash(tmp_path: Path, monkeypatch) -> None:
    server = make_config(tmp_path / "server")
    (server.models_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(DEMO, server.models_dir / "checkpoints" / "mine.safetensors")
    engine = make_engine(server)
    index, inputs = index_for(engine.workspace), model_inputs(engine.registry)
    recorded = record_models(_workflow("mine.safetensors"), index, inputs)
    doc = json.loads(recorded.model_dump_json(exclude_none=True))

    elsewhere = tmp_path / "worker-models"
    (elsewhere / "checkpoints" / "sd").mkdir(parents=True)
    shutil.copy(DEMO, elsewhere / "checkpoints" / "sd" / "demo-copy.safetensors")
    monkeypatch.setenv("SDGRAPH_MODELS", str(elsewhere))
    actor = EngineActor(server, "ray-test")

    local = actor.local_models(doc)
    assert local["nodes"]["checkpoint"]["inputs"]["name"] == "sd/demo-copy.safetensors"
    events = list(actor.run("job-1", doc, {}, {}))
    kind, outcome, files, _state = events[-1]
    assert kind == "done" and outcome["status"] == "ok", outcome.get("error")
    assert [(k, name) for k, name, _ in files] == [("output", "txt2img_00001_.png")]
