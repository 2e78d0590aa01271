"""Output caching on the shipped SD workflows: what re-runs after which change."""

from __future__ import annotations

import os

from PIL import Image

from graph import Engine
from graph.events import NodeCached, RunStarted
from tests.sd_workflows import executed, run_ok, with_inputs, workflow_doc

FAST = {"sample": {"steps": 4}}


def outputs(engine: Engine) -> list[str]:
    return sorted(p.name for p in engine.workspace.output_dir.rglob("*.png"))


def test_seed_change_reruns_exactly_sample_decode_save(engine: Engine) -> None:
    doc = with_inputs(workflow_doc("txt2img"), FAST)
    first = run_ok(engine, doc)
    assert executed(first) == set(doc["nodes"])
    events: list = []
    second = run_ok(engine, with_inputs(doc, {"sample": {"seed": 43}}), events)
    assert executed(second) == {"sample", "decode", "save"}
    started = next(e for e in events if isinstance(e, RunStarted))
    assert set(started.to_run) == {"sample", "decode", "save"}
    assert set(started.cached) == set(doc["nodes"]) - {"sample", "decode", "save"}
    # the cached values the re-run reads: the loader, both encodings and the latent
    hits = {e.node_id for e in events if isinstance(e, NodeCached)}
    assert hits == {"checkpoint", "positive", "negative", "latent"}
    assert len(outputs(engine)) == 2


def test_prompt_change_reruns_its_branch_only(engine: Engine) -> None:
    doc = with_inputs(workflow_doc("txt2img"), FAST)
    run_ok(engine, doc)
    second = run_ok(engine, with_inputs(doc, {"positive_tokens": {"text": "a blue square"}}))
    assert executed(second) == {"positive_tokens", "positive", "sample", "decode", "save"}
    third = run_ok(engine, with_inputs(doc, {"negative_tokens": {"text": "noisy"}}))
    assert executed(third) == {"negative_tokens", "negative", "sample", "decode", "save"}


def test_identical_rerun_executes_nothing_and_reports_the_same_files(engine: Engine) -> None:
    doc = with_inputs(workflow_doc("txt2img"), FAST)
    first = run_ok(engine, doc)
    before = outputs(engine)
    assert len(before) == 1 and len(first.files) == 1
    again = run_ok(engine, doc)
    assert executed(again) == set()
    assert {r.status for r in again.nodes.values()} == {"cached"}
    assert outputs(engine) == before  # no new file
    assert again.files == first.files


def test_a_new_sample_after_a_cached_one_writes_a_new_file(engine: Engine) -> None:
    """Going back to an earlier seed after another one: the cache still holds the first
    SaveImage entry, so it is reported, not rewritten; a third seed adds a file."""
    doc = with_inputs(workflow_doc("txt2img"), FAST)
    a = run_ok(engine, doc)
    run_ok(engine, with_inputs(doc, {"sample": {"seed": 1}}))
    back = run_ok(engine, doc)
    assert executed(back) == set() and back.files == a.files
    run_ok(engine, with_inputs(doc, {"sample": {"seed": 2}}))
    assert len(outputs(engine)) == 3


def test_replacing_an_input_image_reruns_load_image(engine: Engine) -> None:
    """LoadImage's fingerprint is the file's sha256: same name, new bytes -> re-run;
    rewriting identical bytes (new mtime) -> still cached."""
    path = engine.workspace.input_dir / "in.png"
    Image.new("RGB", (32, 32), (200, 10, 10)).save(path)
    doc = {
        "version": 1,
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"file": "in.png"}},
            "show": {
                "type": "PreviewImage",
                "inputs": {"image": {"node": "load", "output": "image"}},
            },
        },
    }
    assert executed(run_ok(engine, doc)) == {"load", "show"}
    data = path.read_bytes()
    path.write_bytes(data)
    os.utime(path, (1, 1))
    assert executed(run_ok(engine, doc)) == set()
    Image.new("RGB", (32, 32), (10, 200, 10)).save(path)
    assert executed(run_ok(engine, doc)) == {"load", "show"}
