"""The model store under real checkpoints: byte budgets, eviction order, the bytes it
reports, reloading through cached handles (same pixels), and out-of-memory errors of
every kind through the engine and the worker."""

from __future__ import annotations

import gc
import weakref
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from graph import Engine, Node, Registry, Resources, Workspace
from graph.models import ModelStore
from nodes.sd.handles import LatentBatch
from nodes.types import Latent
from service.worker import InProcessWorker, JobRequest
from tests.sd_fixtures import checkpoints_dir, tiny_components, write_tiny_single_file
from tests.sd_workflows import output_pixels, run_ok, with_inputs, workflow_doc

COMPONENTS = ("unet", "text_encoder", "vae")
NAMES = ("a.safetensors", "b.safetensors", "c.safetensors")


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three tiny checkpoints with different weights (seeds 0, 1, 2)."""
    root = tmp_path_factory.mktemp("models")
    for seed, name in enumerate(NAMES):
        write_tiny_single_file(checkpoints_dir(root) / name, seed=seed)
    return root


@pytest.fixture(scope="module")
def sizes() -> dict[str, int]:
    """Parameter + buffer bytes of each fp32 component, counted here independently."""
    parts = tiny_components(0)
    return {
        c: sum(t.numel() * t.element_size() for t in [*m.parameters(), *m.buffers()])
        for c, m in ((c, parts[c]) for c in COMPONENTS)
    }


def engine_at(tmp: Path, models_dir: Path, registry: Registry, budget: int | None) -> Engine:
    ws = Workspace.at(tmp / "data", models_dir).ensure()
    store = ModelStore({"cpu": budget} if budget is not None else None)
    return Engine(registry, ws, resources=Resources(store))


def txt2img(name: str, seed: int) -> dict[str, Any]:
    doc = workflow_doc("txt2img", checkpoint=name)
    return with_inputs(doc, {"sample": {"seed": seed, "steps": 3}, "checkpoint": {"device": "cpu"}})


def names(entries: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in entries]


def labels(checkpoint: str, *components: str) -> list[str]:
    return [f"{checkpoint}:{c}:float32" for c in components]


def test_budget_for_two_of_three_checkpoints(
    registry: Registry, models_dir: Path, sizes: dict[str, int], tmp_path: Path
) -> None:
    total = sum(sizes.values())
    budget = 2 * total + min(sizes.values()) // 2  # fits two checkpoints, not three
    engine = engine_at(tmp_path / "small", models_dir, registry, budget)
    store = engine.resources.models
    reference = engine_at(tmp_path / "ref", models_dir, registry, None)
    a, b, c = NAMES

    first = {n: run_ok(engine, txt2img(n, 1)) for n in NAMES}
    # loading: every component, its real bytes, on the CPU
    for n in NAMES:
        loaded = first[n].models["loaded"]
        assert names(loaded) == labels(n, *COMPONENTS)
        assert {e["component"]: e["bytes"] for e in loaded} == sizes
        assert all(e["device"] == "cpu" and e["checkpoint"] == n for e in loaded)
    assert first[a].models["evicted"] == first[b].models["evicted"] == []
    # the third evicts the first, least recently used component first: its text encoder
    # (used by EncodeText), then its U-Net (Sample), then its VAE (VAEDecode)
    assert names(first[c].models["evicted"]) == labels(a, "text_encoder", "unet", "vae")
    snap = store.snapshot()
    assert snap["used"] == {"cpu": 2 * total} and snap["budgets"]["cpu"] == budget
    assert [e["checkpoint"] for e in snap["loaded"]] == [b] * 3 + [c] * 3
    assert all(not e["pinned"] for e in snap["loaded"])
    # the small shared handles (tokenizer, configs) of a fully evicted checkpoint go too
    handles = [Path(k[1]).name for k in engine.resources.keys()]  # noqa: SIM118 (not a dict)
    assert sorted(handles) == [b, c]

    # A's LoadCheckpoint output is still cached, but holds no module: A's U-Net is freed
    handles = next(
        e.outputs for e in engine.cache._entries.values() if "model" in e.outputs
    )  # the first cached LoadCheckpoint output is A's
    assert handles["model"].identity.startswith(a) and handles["model"].unet_ref.key not in store

    # a new seed on A: the cached handle loads the U-Net and VAE again (the conditioning
    # is cached, so the text encoder stays out), evicting B's oldest components, just
    # as many as make room
    again = run_ok(engine, txt2img(a, 2))
    assert names(again.models["loaded"]) == labels(a, "unet", "vae")
    need, freed, oldest = sizes["unet"] + sizes["vae"] - (budget - 2 * total), 0, []
    for part in ("text_encoder", "unet", "vae"):
        if freed < need:
            oldest, freed = [*oldest, part], freed + sizes[part]
    assert names(again.models["evicted"]) == labels(b, *oldest)
    assert store.snapshot()["used"]["cpu"] <= budget

    # results are unchanged by eviction and reloading
    for n in NAMES:
        want = output_pixels(reference, run_ok(reference, txt2img(n, 1)))
        assert np.array_equal(output_pixels(engine, first[n])[0], want[0])
    want = output_pixels(reference, run_ok(reference, txt2img(a, 2)))
    assert np.array_equal(output_pixels(engine, again)[0], want[0])


def test_cached_handles_do_not_keep_an_evicted_model_alive(
    registry: Registry, models_dir: Path, sizes: dict[str, int], tmp_path: Path
) -> None:
    engine = engine_at(tmp_path, models_dir, registry, sum(sizes.values()))  # one checkpoint
    store = engine.resources.models
    run_ok(engine, txt2img(NAMES[0], 1))
    held = [weakref.ref(store.peek(k)) for k in _keys(store)]  # U-Net, text encoder, VAE
    run_ok(engine, txt2img(NAMES[1], 1))
    gc.collect()
    assert len(held) == 3 and all(module() is None for module in held)
    assert len(engine.cache) > 0
    assert store.free_memory() and store.entries() == []  # explicit release of the rest
    assert run_ok(engine, txt2img(NAMES[0], 3)).models["loaded"]


def _keys(store: ModelStore) -> list[Any]:
    return [k for k in store._entries]  # noqa: SLF001 (inspecting the store in a test)


class RunOutOfMemory(Node):
    """Fails the way each device reports running out of memory (CUDA's error is raised
    as torch raises it: no GPU here)."""

    OUTPUTS = {"latent": Latent}
    latent: Latent
    kind: str = "cuda"

    def run(self, ctx: Any, latent: LatentBatch, kind: str) -> dict[str, Any]:
        if kind == "python":
            raise MemoryError()
        if kind == "cpu":  # a real allocation failure: torch's CPU allocator, 2 EiB
            torch.empty(2**61, dtype=torch.uint8)
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 64.00 GiB")


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [("cuda", "OutOfMemoryError"), ("cpu", "RuntimeError"), ("python", "MemoryError")],
)
def test_out_of_memory_fails_the_job_and_frees_what_it_did_not_use(
    registry: Registry, models_dir: Path, tmp_path: Path, kind: str, error_type: str
) -> None:
    with_oom = Registry()
    with_oom.merge(registry)
    with_oom.add(RunOutOfMemory)
    engine = engine_at(tmp_path, models_dir, with_oom, None)
    worker = InProcessWorker(engine)
    a, b = NAMES[:2]
    first = run_ok(engine, txt2img(a, 1))
    doc = txt2img(b, 1)
    doc["nodes"]["oom"] = {
        "type": "RunOutOfMemory",
        "inputs": {"latent": {"node": "sample", "output": "latent"}, "kind": kind},
    }
    doc["nodes"]["decode"]["inputs"]["latent"] = {"node": "oom", "output": "latent"}
    messages: list[dict[str, Any]] = []
    outcome = worker.run(JobRequest("job-oom", doc), messages.append)
    assert outcome.status == "error" and messages[-1]["status"] == "error"
    assert outcome.error is not None and outcome.error["error_type"] == error_type
    assert outcome.error["code"] == "out_of_memory" and "out of memory" in outcome.error["hint"]
    assert outcome.nodes["oom"]["status"] == "error"
    (event,) = [m for m in messages if m["type"] == "error"]  # what websocket clients get
    assert event["code"] == "out_of_memory" and event["hint"] == outcome.error["hint"]
    # A (unused by the failed job) and the output cache are released; B stays loaded
    assert {e["checkpoint"] for e in engine.resources.models.entries()} == {b}
    assert len(engine.cache) == 0
    # the next job runs, loads A again and draws the same picture
    again = worker.run(JobRequest("job-next", txt2img(a, 1)), messages.append)
    assert again.status == "ok" and again.files
    loaded = worker.stats()["loaded_models"]
    assert sorted(loaded) == sorted(labels(a, *COMPONENTS) + labels(b, *COMPONENTS))
    path = engine.workspace.folder("output") / again.files[0]["name"]
    assert np.array_equal(output_pixels(engine, first)[0], _pixels(path))


def _pixels(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))
