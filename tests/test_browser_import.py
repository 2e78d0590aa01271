"""Dropping a ComfyUI PNG on the canvas: its graph appears with ComfyUI's layout and runs."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from graph.pngmeta import read_png_text
from tests.browser_support import (  # noqa: F401 - fixtures
    Canvas,
    canvas_fixture,
    default_workflow,
    live_url_fixture,
    models_dir_fixture,
)
from tests.test_browser_canvas import drop_file

pytestmark = pytest.mark.browser
FIX = Path(__file__).resolve().parent / "fixtures" / "comfyui"


def cheap_comfyui_png() -> bytes:
    """Case 01's PNG as ComfyUI wrote it, both chunks pointed at the built-in tiny model at
    64x64 and 2 steps (the reference checkpoint is 2 GB)."""
    chunks = read_png_text((FIX / "case01_euler_normal.png").read_bytes())
    prompt, ui = json.loads(chunks["prompt"]), json.loads(chunks["workflow"])
    prompt["4"]["inputs"]["ckpt_name"] = "builtin/tiny-random"
    prompt["5"]["inputs"].update(width=64, height=64)
    prompt["3"]["inputs"]["steps"] = 2
    for node in ui["nodes"]:
        if node["id"] == 4:
            node["widgets_values"][0] = "builtin/tiny-random"
    info = PngImagePlugin.PngInfo()
    info.add_text("prompt", json.dumps(prompt))
    info.add_text("workflow", json.dumps(ui))
    buf = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


@pytest.mark.slow
async def test_dropped_comfyui_png_shows_its_layout_and_runs(canvas: Canvas) -> None:
    await drop_file(canvas, "comfy.png", "image/png", cheap_comfyui_png())
    await canvas.wait_app("'6_tokens' in app.workflow().nodes")
    doc = await canvas.workflow()
    assert doc["nodes"]["3"]["type"] == "Sample"
    assert doc["nodes"]["3"]["inputs"]["convention"] == "comfyui"
    positions = doc["ui"]["positions"]
    assert positions["3"] == {"x": round(863 * 1.6), "y": 186}  # ComfyUI's, stretched sideways
    assert positions["9"] == {"x": round(1451 * 1.6), "y": 189}
    assert await canvas.page.locator(".react-flow__node").count() == len(doc["nodes"])
    # the layout on screen follows ComfyUI's: the sampler right of the loader, save rightmost
    boxes = {nid: await canvas.node(nid).bounding_box() for nid in doc["nodes"]}
    assert boxes["4"]["x"] < boxes["3"]["x"] < boxes["9"]["x"]
    for a in boxes:  # and no node hides another
        for b in boxes:
            if a < b:
                p, q = boxes[a], boxes[b]
                apart = (
                    p["x"] + p["width"] <= q["x"]
                    or q["x"] + q["width"] <= p["x"]
                    or p["y"] + p["height"] <= q["y"]
                    or q["y"] + q["height"] <= p["y"]
                )
                assert apart, (a, b, p, q)
    await canvas.shot("dropped-comfyui-png")
    await canvas.page.click("button:has-text('Run')")
    done = await canvas.wait_app(
        "app.lastEvents(300).find(e => e.type === 'run_finished') || false", timeout=120_000
    )
    assert done["status"] == "ok", await canvas.app("app.lastEvents(300)")
    await canvas.node("9").locator("img.gnode-result").wait_for()
    assert canvas.unexpected_errors() == []


async def test_opened_file_with_a_missing_model_marks_the_loader(canvas: Canvas) -> None:
    doc = default_workflow()
    doc["nodes"]["checkpoint"]["inputs"]["name"] = "gone.safetensors"
    doc["models"] = {"checkpoint.name": {"kind": "checkpoints", "sha256": "ab" * 32, "size": 9}}
    await drop_file(canvas, "shared.json", "application/json", json.dumps(doc).encode())
    issue = canvas.node("checkpoint").locator(".gnode-issue")
    await issue.wait_for()
    assert "abab" in await issue.inner_text()
    assert [i["code"] for i in (await canvas.app("app.issues()"))["checkpoint"]] == [
        "model_missing"
    ]
    # ComfyUI's API format opens too, converted by the server
    api = json.loads((FIX / "case01_euler_normal.api.json").read_text())
    await drop_file(canvas, "comfy.api.json", "application/json", json.dumps(api).encode())
    await canvas.wait_app("'6_tokens' in app.workflow().nodes")
    await canvas.page.locator(".toast", has_text="imported (comfyui-api)").wait_for()
