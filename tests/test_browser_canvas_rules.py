"""Bypass, mute and widgets converted to inputs, used as a person would: keyboard shortcuts,
the right-click menu, dragging links with the mouse, saving and opening the file.
The test hook only reads state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import (  # noqa: F401 - fixtures
    Canvas,
    canvas_fixture,
    live_url_fixture,
    models_dir_fixture,
)
from tests.test_browser_canvas import drop_file

pytestmark = pytest.mark.browser

BIG = 2**64 - 1


async def type_into(canvas: Canvas, locator: Any, text: str) -> None:
    await locator.click()
    await canvas.page.keyboard.press("Control+a")
    await canvas.page.keyboard.type(text)


async def menu_item(canvas: Canvas, node_id: str, name: str) -> None:
    """Right-click a node's header and pick an entry of its menu."""
    await canvas.node(node_id).locator(".gnode-head").click(button="right")
    await canvas.page.locator(".node-menu").get_by_role("menuitem", name=name).click()
    await canvas.page.locator(".node-menu").wait_for(state="detached")


async def save_file(canvas: Canvas) -> dict[str, Any]:
    """Ctrl+S on the canvas (in a text field it would be the field's key)."""
    await canvas.page.locator(".react-flow__pane").click(position={"x": 4, "y": 4})
    async with canvas.page.expect_download() as info:
        await canvas.page.keyboard.press("Control+s")
    return json.loads(Path(await (await info.value).path()).read_text())


async def test_ctrl_b_ctrl_m_and_the_menu_set_modes_that_save_and_run(canvas: Canvas) -> None:
    page = canvas.page
    sample, save = canvas.node("sample"), canvas.node("save")
    await sample.locator(".gnode-head").click()
    await page.keyboard.press("Control+b")
    await canvas.wait_app("app.workflow().nodes.sample.mode === 'bypass'")
    await sample.locator(".gnode.mode-bypass").wait_for()  # dimmed purple
    assert await sample.locator(".gnode-mode").inner_text() == "bypassed"
    await page.keyboard.press("Control+b")  # again: back to normal
    await canvas.wait_app("app.workflow().nodes.sample.mode === undefined")
    await save.locator(".gnode-head").click()
    await page.keyboard.press("Control+m")
    await canvas.wait_app("app.workflow().nodes.save.mode === 'mute'")
    await save.locator(".gnode.mode-mute").wait_for()  # greyed
    await page.wait_for_timeout(600)  # a pause: undo steps back one edit at a time
    await menu_item(canvas, "decode", "Bypass Ctrl+B")
    await canvas.wait_app("app.workflow().nodes.decode.mode === 'bypass'")
    # Undo takes a mode change back like any edit.
    await page.locator(".react-flow__pane").click(position={"x": 4, "y": 4})
    await page.keyboard.press("Control+z")
    await canvas.wait_app("app.workflow().nodes.decode.mode === undefined")
    await menu_item(canvas, "decode", "Bypass Ctrl+B")
    saved = await save_file(canvas)
    assert saved["nodes"]["save"]["mode"] == "mute"
    assert saved["nodes"]["decode"]["mode"] == "bypass"
    assert "mode" not in saved["nodes"]["sample"]
    # The server applies the modes: with the only output muted there is nothing to run.
    await page.keyboard.press("Control+Enter")
    await page.locator(".toast", has_text="muted or bypassed").wait_for()
    # Opening the saved file brings the modes back, drawn.
    await menu_item(canvas, "save", "Unmute Ctrl+M")
    await canvas.wait_app("app.workflow().nodes.save.mode === undefined")
    await drop_file(canvas, "modes.json", "application/json", json.dumps(saved).encode())
    await canvas.wait_app("app.workflow().nodes.save.mode === 'mute'")
    await save.locator(".gnode.mode-mute").wait_for()
    await canvas.node("decode").locator(".gnode.mode-bypass").wait_for()
    canvas.allow(r"400 POST .*/api/(prompt|jobs)")
    assert canvas.unexpected_errors() == []


async def test_a_seed_node_feeds_a_widget_converted_to_an_input(canvas: Canvas) -> None:
    page = canvas.page
    await page.click(".palette-search")
    await page.keyboard.type("seed")
    assert await page.locator(".palette-item.hit").get_attribute("data-type") == "Seed"
    await page.keyboard.press("Enter")
    await canvas.wait_app("'seed' in app.workflow().nodes")
    assert await canvas.handle("sample", "seed").count() == 0  # a widget, no socket yet
    await menu_item(canvas, "sample", "Convert seed to input")
    await canvas.handle("sample", "seed").wait_for()
    # A MODEL output is refused by the INT input; the Seed's INT is taken.
    await canvas.connect("checkpoint", "model", "sample", "seed")
    await canvas.connect("seed", "value", "sample", "seed")
    await canvas.wait_app("app.workflow().nodes.sample.inputs.seed?.node === 'seed'")
    doc = await canvas.workflow()
    assert doc["nodes"]["sample"]["inputs"]["seed"] == {"node": "seed", "output": "value"}
    assert doc["ui"]["nodes"]["sample"]["inputs"] == ["seed"]
    # The shared seed is exact to 2^64-1 (tests/sd/test_node_modes.py runs such a graph).
    await type_into(canvas, canvas.node("seed").locator('input[name="value"]'), str(BIG))
    await canvas.wait_app("String(app.workflow().nodes.seed.inputs.value) === arg", str(BIG))
    saved = await save_file(canvas)
    assert saved["nodes"]["sample"]["inputs"]["seed"] == {"node": "seed", "output": "value"}
    assert saved["nodes"]["seed"]["inputs"]["value"] == BIG
    # Converting back drops the link and shows the widget again.
    await menu_item(canvas, "sample", "Convert seed to widget")
    await canvas.wait_app("typeof app.workflow().nodes.sample.inputs.seed !== 'object'")
    await canvas.handle("sample", "seed").wait_for(state="detached")
    # Opening the saved file brings the converted input and its link back.
    await drop_file(canvas, "shared-seed.json", "application/json", json.dumps(saved).encode())
    await canvas.wait_app("app.workflow().nodes.sample.inputs.seed?.node === 'seed'")
    await canvas.handle("sample", "seed").wait_for()
    edge = page.locator('.react-flow__edge[data-id="seed.value->sample.seed"]')
    assert await edge.count() == 1
    assert canvas.unexpected_errors() == []
