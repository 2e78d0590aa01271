"""LoadLoRAModel (ComfyUI's LoraLoaderModelOnly): the LoRA on the U-Net, the CLIP untouched."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from graph import Registry
from tests.lora_fixtures import kohya_lora, write_lora
from tests.sd.test_fidelity import max_diff, txt2img
from tests.sd.test_lora import with_loras
from tests.sd_fixtures import tiny_components
from tests.sd_workflows import make_engine, output_pixels, run_ok


def _model_only(doc: dict[str, Any], name: str, strength: float) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    doc["nodes"]["lora"] = {
        "type": "LoadLoRAModel",
        "inputs": {
            "model": {"node": "checkpoint", "output": "model"},
            "name": name,
            "strength_model": strength,
        },
    }
    doc["nodes"]["sample"]["inputs"]["model"] = {"node": "lora", "output": "model"}
    return doc


def test_model_only_equals_loadlora_with_clip_strength_zero(tmp_path) -> None:
    write_lora(tmp_path / "models", "k.safetensors", kohya_lora(tiny_components(0), seed=0))
    engine = make_engine(tmp_path, Registry.from_package("nodes"))
    base = txt2img("euler", "normal", 3)

    def image(doc: dict[str, Any]) -> np.ndarray:
        return output_pixels(engine, run_ok(engine, doc))[0]

    model_only = image(_model_only(base, "k.safetensors", 1.0))
    both_clip_zero = image(with_loras(base, [("k.safetensors", 1.0, 0.0)]))
    assert np.array_equal(model_only, both_clip_zero)
    assert max_diff(model_only, image(base)) > 20  # the LoRA did change the picture
