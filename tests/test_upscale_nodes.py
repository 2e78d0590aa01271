"""LatentUpscale, LatentUpscaleBy and ImageScale: sizes, methods, ComfyUI's numbers, costs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.nn import functional

from graph import Registry
from graph.workflow import parse_workflow
from nodes.image_scale import ImageScale
from nodes.latent_upscale import LatentUpscale
from nodes.latent_upscale_by import LatentUpscaleBy
from nodes.sd.handles import LatentBatch
from nodes.sd.resize import resize
from nodes.sd.sampling import EMPTY
from service.budgets import check_budgets
from service.config import Budgets
from tests.sd_workflows import make_engine, output_pixels, run_ok, workflow_doc


def _latent(b: int = 2, h: int = 8, w: int = 12) -> LatentBatch:
    return LatentBatch(torch.randn(b, 4, h, w, generator=torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("method", ["nearest-exact", "bilinear", "area", "bicubic"])
def test_latent_upscale_sizes_and_comfyui_numbers(method: str) -> None:
    latent = _latent()
    out = LatentUpscale().run(None, latent, method, 160, 0, "disabled")["latent"]
    # 0 keeps the aspect: 160 px wide -> 20 cells; 8x12 cells -> 13.33 -> round(106.7 px) // 8
    assert out.samples.shape == (2, 4, 13, 20)
    # ComfyUI's methods are torch's interpolate with its defaults: the same numbers
    expected = functional.interpolate(latent.samples, size=(13, 20), mode=method)
    assert torch.equal(out.samples, expected)
    by = LatentUpscaleBy().run(None, latent, method, 1.5)["latent"]
    assert by.samples.shape == (2, 4, 12, 18)
    # both sides 0 pass the latent through; sides below 64 px become 64 (ComfyUI's floor)
    assert LatentUpscale().run(None, latent, method, 0, 0, "disabled")["latent"] is latent
    small = LatentUpscale().run(None, latent, method, 8, 8, "disabled")["latent"]
    assert small.samples.shape[-2:] == (8, 8)


def test_center_crop_trims_the_longer_side_first() -> None:
    ramp = torch.arange(16.0).repeat(1, 1, 8, 1)  # 8 rows of 0..15
    out = resize(ramp, 8, 8, "nearest-exact", "center")
    assert torch.equal(out, ramp[..., 4:12])  # 16 wide -> the middle 8 columns
    node = LatentUpscale().run(None, LatentBatch(ramp), "bilinear", 64, 64, "center")
    assert torch.equal(node["latent"].samples, ramp[..., 4:12])


def test_bislerp_keeps_vector_lengths_where_bilinear_shrinks_them() -> None:
    g = torch.Generator().manual_seed(1)
    v = torch.randn(1, 4, 5, 7, generator=g)
    v = v / v.norm(dim=1, keepdim=True)  # unit vectors everywhere
    slerped = resize(v, 16, 11, "bislerp", "disabled")
    linear = resize(v, 16, 11, "bilinear", "disabled")
    assert slerped.shape == (1, 4, 11, 16)
    assert torch.allclose(slerped.norm(dim=1), torch.ones(1, 11, 16), atol=1e-4)
    assert linear.norm(dim=1).min() < 0.9  # what slerp avoids
    # the corners are the source's corners
    assert torch.allclose(slerped[..., 0, 0], v[..., 0, 0], atol=1e-5)


def test_an_empty_latent_stays_empty_at_its_new_size() -> None:
    blank = LatentBatch(torch.zeros(1, 4, 8, 8), extra={EMPTY: (64, 64), "inverted": {}})
    out = LatentUpscaleBy().run(None, blank, "bislerp", 2.0)["latent"]
    assert out.extra == {EMPTY: (128, 128)} and out.samples.shape == (1, 4, 16, 16)


def test_image_scale_methods_and_lanczos_through_pil() -> None:
    g = torch.Generator().manual_seed(2)
    image = torch.rand(1, 20, 30, 3, generator=g)
    out = ImageScale().run(None, image, "lanczos", 45, 0, "disabled")["image"]
    assert out.shape == (1, 30, 45, 3)
    pil = Image.fromarray((image[0].numpy() * 255).clip(0, 255).astype(np.uint8))
    expected = np.asarray(pil.resize((45, 30), Image.Resampling.LANCZOS), np.float32) / 255
    assert np.array_equal(out[0].numpy(), expected)
    bicubic = ImageScale().run(None, image, "bicubic", 10, 10, "center")["image"]
    nchw = image.movedim(-1, 1)[..., 5:25]  # 30 wide -> the middle 20 columns for a square
    want = functional.interpolate(nchw, size=(10, 10), mode="bicubic").movedim(1, -1)
    assert torch.equal(bicubic, want)


def _hires_doc(scale_by: float) -> dict:
    doc = workflow_doc("txt2img")
    doc["nodes"]["sample"]["inputs"]["steps"] = 3
    doc["nodes"]["upscale"] = {
        "type": "LatentUpscaleBy",
        "inputs": {
            "latent": {"node": "sample", "output": "latent"},
            "upscale_method": "bilinear",
            "scale_by": scale_by,
        },
    }
    second = dict(doc["nodes"]["sample"]["inputs"], denoise=0.5)
    second["latent"] = {"node": "upscale", "output": "latent"}
    doc["nodes"]["hires"] = {"type": "Sample", "inputs": second}
    doc["nodes"]["decode"]["inputs"]["latent"] = {"node": "hires", "output": "latent"}
    return doc


def test_a_hires_pass_runs_and_a_huge_upscale_is_refused_at_validation(tmp_path: Path) -> None:
    engine = make_engine(tmp_path, Registry.from_package("nodes"))
    [picture] = output_pixels(engine, run_ok(engine, _hires_doc(1.5)))
    assert picture.shape == (96, 96, 3)
    checked = engine.check(parse_workflow(_hires_doc(8.0)))
    assert checked.ok
    problems = check_budgets(checked, Budgets(max_pixels=256 * 256))
    # 64x64 x 8^2 = 262,144 pixels: blamed on the upscale and its factor, not on the
    # sampler and decoder downstream that receive that size
    assert [(p.node_id, p.field, p.code) for p in problems] == [
        ("upscale", "scale_by", "budget_exceeded")
    ]
    sized = parse_workflow(
        {
            "version": 1,
            "nodes": {
                **_hires_doc(1.0)["nodes"],
                "upscale": {
                    "type": "LatentUpscale",
                    "inputs": {
                        "latent": {"node": "sample", "output": "latent"},
                        "width": 0,
                        "height": 4096,
                    },
                },
            },
        }
    )
    problems = check_budgets(engine.check(sized), Budgets(max_pixels=2048 * 2048))
    assert [(p.node_id, p.field) for p in problems] == [("upscale", "height")]
