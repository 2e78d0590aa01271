"""CompileModel: the compiled U-Net gives the same image, is kept in the model store per
(U-Net, mode, backend), is not compiled again on a seed-only rerun, and never outlives
its U-Net's store entry.

The engine tests compile with the aot_eager backend (torch.compile's tracing, torch's
kernels): inductor's C++ build of even the tiny U-Net took 5-6 minutes on the shared
2-core machine, far over a test's budget; bench/gpu.sh measures inductor on a GPU."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from graph import Engine
from graph.models import ComponentRef, ModelStore
from nodes.sd import unet_compile
from nodes.sd.handles import ModelHandle
from nodes.sd.unet_compile import base_module, compile_count, compiled_model
from tests.sd_workflows import executed, output_pixels, run_ok, with_inputs, workflow_doc

FAST = {"sample": {"steps": 3, "seed": 7}}


def compiled_doc(mode: str = "default", backend: str = "aot_eager") -> dict:
    doc = with_inputs(workflow_doc("txt2img"), FAST)
    doc["nodes"]["compile"] = {
        "type": "CompileModel",
        "inputs": {"model": {"node": "checkpoint", "output": "model"}, "mode": mode},
    }
    doc["nodes"]["compile"]["inputs"]["backend"] = backend
    doc["nodes"]["sample"]["inputs"]["model"] = {"node": "compile", "output": "model"}
    return doc


def compiled_entries(engine: Engine) -> list[dict]:
    return [e for e in engine.resources.models.entries() if e.get("kind") == "compiled-unet"]


@pytest.mark.slow
def test_compiled_model_gives_the_same_image_and_a_seed_only_rerun_compiles_nothing(
    engine: Engine,
) -> None:
    plain = run_ok(engine, with_inputs(workflow_doc("txt2img"), FAST))
    first = run_ok(engine, compiled_doc())
    assert "compile" in executed(first) and compile_count() >= 1
    (a,), (b,) = output_pixels(engine, plain), output_pixels(engine, first)
    assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
    [entry] = compiled_entries(engine)
    assert (entry["mode"], entry["backend"], entry["bytes"]) == ("default", "aot_eager", 0)

    graphs = compile_count()
    rerun = run_ok(engine, with_inputs(compiled_doc(), {"sample": {"seed": 8}}))
    assert executed(rerun) == {"sample", "decode", "save"}
    assert compile_count() == graphs  # dynamo reused the compiled graph
    # the node itself running again (its cached output gone) finds the same wrapper
    engine.cache.clear()
    again = run_ok(engine, with_inputs(compiled_doc(), {"sample": {"seed": 9}}))
    assert "compile" in executed(again) and compile_count() == graphs
    assert len(compiled_entries(engine)) == 1


def test_another_mode_is_another_entry_and_another_cache_key(engine: Engine) -> None:
    from graph.plan import make_plan

    def key(mode: str) -> str:
        checked = engine.check(_parsed(compiled_doc(mode, "inductor")))
        return make_plan(checked, engine.cache, lambda node: None).keys["compile"]

    keys = {mode: key(mode) for mode in ("default", "reduce-overhead")}
    assert keys["default"] != keys["reduce-overhead"]
    store = ModelStore()
    base = tiny_ref(store)
    handle = model_handle(base)
    one = compiled_model(handle, "default", "inductor")  # compiling waits for a call
    two = compiled_model(handle, "reduce-overhead", "inductor")
    assert one.unet is not two.unet and base_module(one.unet) is base_module(two.unet)
    assert compiled_model(handle, "default", "inductor").unet is one.unet
    assert compiled_model(two, "default", "inductor").unet is one.unet  # not nested
    assert one.identity == handle.identity and one.unet.in_features == 4  # reads through


def tiny_ref(store: ModelStore) -> ComponentRef:
    key = ("unet", "test")

    def loader() -> None:
        store.put(key, torch.nn.Linear(4, 4), 80, "cpu", "unet")

    return ComponentRef(store, key, loader)


def model_handle(ref: ComponentRef) -> ModelHandle:
    cpu = torch.device("cpu")
    return ModelHandle(ref, {}, "epsilon", cpu, torch.float32, "test-model")


def test_a_wrapper_goes_with_its_unet_and_follows_a_reloaded_one() -> None:
    store = ModelStore()
    base = tiny_ref(store)
    handle = compiled_model(model_handle(base), "default", "inductor")
    old = base.get()
    assert base_module(handle.unet) is old
    store.drop(lambda key: key == base.key)  # evicted: its wrapper must not keep it alive
    assert not [e for e in store.entries() if e.get("kind") == "compiled-unet"]
    assert base_module(handle.unet) is base.get() is not old  # loaded and wrapped again
    # a wrapper left over from an older copy of the U-Net is replaced on use
    store.put(base.key, torch.nn.Linear(4, 4), 80, "cpu", "unet")
    assert base_module(handle.unet) is base.get()


def test_refusals_name_the_node_and_what_to_do(engine: Engine, monkeypatch) -> None:
    from graph.validate import InvalidWorkflow

    result = engine.run(_parsed(compiled_doc("default", "cudagraphs")))
    assert result.status == "error" and result.error["node_type"] == "CompileModel"
    assert result.error["message"].startswith("CompileModel: backend 'cudagraphs' needs")
    monkeypatch.setattr(unet_compile, "cpp_compiler", lambda: None)
    result = engine.run(_parsed(compiled_doc("default", "inductor")))
    assert "needs a C++ compiler" in result.error["message"] and result.error["node_id"]
    with pytest.raises(InvalidWorkflow) as info:
        engine.run(_parsed(compiled_doc("reduce-overhead", "aot_eager")))
    assert "inductor backend's" in str(info.value.problems)


@pytest.mark.skipif(shutil.which("g++") is None, reason="no g++ on this machine")
def test_the_cpp_compiler_inductor_uses_is_found() -> None:
    assert unet_compile.cpp_compiler()


def _parsed(doc: dict):
    from graph.workflow import parse_workflow

    return parse_workflow(doc)


@pytest.mark.slow
def test_a_lora_after_compile_model_gives_the_lora_image(engine: Engine, components) -> None:
    """LoadLoRA after CompileModel finds the U-Net's own layer names and patches the
    weights the compiled U-Net reads."""
    from tests.lora_fixtures import kohya_lora, write_lora

    write_lora(engine.workspace.models_dir, "k.safetensors", kohya_lora(components, seed=0))

    def lora_doc(doc: dict) -> dict:
        source = doc["nodes"]["sample"]["inputs"]["model"]
        doc["nodes"]["lora"] = {
            "type": "LoadLoRA",
            "inputs": {
                "model": source,
                "clip": {"node": "checkpoint", "output": "clip"},
                "name": "k.safetensors",
                "strength_model": 1.0,
                "strength_clip": 0.0,
            },
        }
        doc["nodes"]["sample"]["inputs"]["model"] = {"node": "lora", "output": "model"}
        return doc

    # first: the LoRA is parsed against the compiled handle's U-Net
    compiled = output_pixels(engine, run_ok(engine, lora_doc(compiled_doc())))[0]
    plain = output_pixels(engine, run_ok(engine, with_inputs(workflow_doc("txt2img"), FAST)))[0]
    lora = output_pixels(
        engine, run_ok(engine, lora_doc(with_inputs(workflow_doc("txt2img"), FAST)))
    )[0]
    assert np.abs(plain.astype(int) - lora.astype(int)).max() > 10  # the LoRA does something
    assert np.abs(lora.astype(int) - compiled.astype(int)).max() <= 1
