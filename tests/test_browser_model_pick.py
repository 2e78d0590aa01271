"""A model reported missing is pointed at a local file from the node itself, with the mouse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from tests.browser_support import (  # noqa: F401 - fixtures
    Canvas,
    canvas_fixture,
    default_workflow,
    live_url_fixture,
)
from tests.test_browser_canvas import drop_file

pytestmark = pytest.mark.browser
DEMO = (
    Path(__file__).resolve().parents[1]
    / "nodes"
    / "sd"
    / "builtin_models"
    / "shapes-demo.safetensors"
)


@pytest.fixture(name="models_dir")
def models_dir_fixture(tmp_path: Path) -> Path:
    """The server's models folder with one local checkpoint (a copy of the demo model)."""
    folder = tmp_path / "models" / "checkpoints"
    folder.mkdir(parents=True)
    shutil.copy(DEMO, folder / "local-demo.safetensors")
    # an SD 2 file (its header says so): not offered for a model saved as sd1
    save_file({"cond_stage_model.model.ln_final.weight": torch.ones(2)}, folder / "sd2.safetensors")
    return tmp_path / "models"


async def test_missing_checkpoint_is_pointed_at_a_local_file_and_runs(canvas: Canvas) -> None:
    doc = default_workflow()
    doc["nodes"]["checkpoint"]["inputs"]["name"] = "gone.safetensors"
    doc["nodes"]["sample"]["inputs"]["steps"] = 2
    doc["models"] = {
        "checkpoint.name": {"kind": "checkpoints", "sha256": "ab" * 32, "size": 9, "family": "sd1"}
    }
    await drop_file(canvas, "shared.json", "application/json", json.dumps(doc).encode())
    node = canvas.node("checkpoint")
    pick = node.locator(".gnode-pick")
    await pick.wait_for()
    # the local checkpoints of the family the file recorded (sd1), read from their headers
    group = pick.get_by_role("group", name="sd1")
    button = group.locator("button", has_text="local-demo.safetensors")
    await button.wait_for()
    assert await pick.locator("button", has_text="sd2.safetensors").count() == 0
    await canvas.shot("missing-model-picker")
    box = await button.bounding_box()
    assert box, "the file's button is not on screen"
    await canvas.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await canvas.wait_app(
        "app.workflow().nodes.checkpoint.inputs.name === 'local-demo.safetensors'"
    )
    assert await pick.count() == 0 and await node.locator(".gnode-issue").count() == 0
    # the select shows the chosen file, and the workflow runs on it
    select = node.locator("select[name='name']")
    assert await select.evaluate("s => s.options[s.selectedIndex].text") == "local-demo.safetensors"
    await canvas.page.click("button:has-text('Run')")
    done = await canvas.wait_app(
        "app.lastEvents(300).find(e => e.type === 'run_finished') || false", timeout=120_000
    )
    assert done["status"] == "ok", await canvas.app("app.lastEvents(300)")
    assert canvas.unexpected_errors() == []
