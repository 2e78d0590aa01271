"""Editing habits ComfyUI users bring, driven with the mouse and keyboard in real chromium
(issue 16): the node search at the cursor and from a dropped link, the right-click menu
(rename, collapse, colour), batch runs in a named queue, and dragging a link's end to move
or detach it. The test hook only reads state. One server and browser serve the module."""

from __future__ import annotations

import pytest

from tests.browser_support import (  # noqa: F401 - fixtures
    Canvas,
    default_workflow,
    shared_browser_fixture,
    shared_canvas_fixture,
    shared_live_url_fixture,
    shared_models_dir_fixture,
    type_into,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]


async def test_node_search_at_the_cursor_and_from_a_dropped_link(canvas: Canvas) -> None:
    page = canvas.page
    pane = page.locator(".react-flow__pane")
    box = await pane.bounding_box()
    assert box
    # Double-click on empty canvas: the search opens at the cursor; Enter adds the best match.
    x, y = box["x"] + box["width"] * 0.4, box["y"] + box["height"] - 110
    await page.mouse.dblclick(x, y)
    popup = page.locator(".node-search")
    await popup.wait_for()
    pbox = await popup.bounding_box()
    assert pbox and abs(pbox["x"] - x) < 300 and abs(pbox["y"] - y) < 340
    await page.keyboard.type("decode")
    await page.keyboard.press("Enter")
    await canvas.wait_app("'vaedecode' in app.workflow().nodes")
    await popup.wait_for(state="detached")
    # A link dropped in empty space offers only node types that take it, and connects it.
    handle = await canvas.handle("checkpoint", "vae").bounding_box()
    assert handle
    await page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(x - 150, y + 60, steps=8)  # empty: left of the new node
    await page.mouse.up()
    await popup.wait_for()
    offered = await popup.locator(".palette-item").evaluate_all(
        "els => els.map(e => e.dataset.type)"
    )
    assert sorted(offered) == ["VAEDecode", "VAEEncode"]
    await popup.locator('.palette-item[data-type="VAEEncode"]').click()
    await canvas.wait_app("app.workflow().nodes.vaeencode?.inputs.vae?.node === 'checkpoint'")
    await page.keyboard.press("Escape")
    assert canvas.unexpected_errors() == []


async def test_right_click_menu_renames_collapses_and_colours_in_ui_only(canvas: Canvas) -> None:
    page = canvas.page
    head = canvas.node("sample").locator(".gnode-head")
    tall = (await canvas.node("sample").bounding_box() or {})["height"]
    await head.click(button="right")
    menu = page.locator(".node-menu")
    await menu.get_by_role("menuitem", name="Rename…").click()
    await page.keyboard.press("Control+a")
    await page.keyboard.type("Main sampler")
    await page.keyboard.press("Enter")
    await canvas.node("sample").locator(".gnode-title", has_text="Main sampler").wait_for()
    await head.click(button="right")
    await menu.get_by_role("menuitem", name="Collapse").click()
    await head.click(button="right")
    await menu.get_by_label("colour #1e3a8a").click()
    await menu.wait_for(state="detached")
    box = await canvas.node("sample").bounding_box()
    assert box and box["height"] < tall / 3
    doc = await canvas.workflow()
    assert doc["ui"]["nodes"] == {
        "sample": {"title": "Main sampler", "color": "#1e3a8a", "collapsed": True}
    }
    assert doc["nodes"] == default_workflow()["nodes"]  # layout only: the run is the same
    assert await page.locator(".react-flow__edge").count() == len(
        [1 for n in doc["nodes"].values() for v in n["inputs"].values() if isinstance(v, dict)]
    )
    assert canvas.unexpected_errors() == []


async def test_batch_runs_fill_a_named_queue_that_can_be_cleared(canvas: Canvas) -> None:
    page = canvas.page
    await type_into(canvas, canvas.node("sample").locator('input[name="steps"]'), "200")
    await type_into(canvas, page.locator(".toolbar .batch"), "3")
    await page.click("button:has-text('Run')")
    items = page.locator(".queue-item")
    await canvas.wait_app("document.querySelectorAll('.queue-item').length === 3")
    await page.wait_for_function(  # each named as it is drawn (a frame later under load)
        "() => [...document.querySelectorAll('.queue-item .queue-name')]"
        ".filter(e => e.textContent.includes('txt2img')).length === 3"
    )
    assert await items.locator(".queue-name", has_text="txt2img").count() == 3
    jobs = await canvas.app("app.activeJobs()")
    seeds = set()
    for job in jobs:
        doc = await (await canvas.request("GET", f"api/jobs/{job}")).json()
        seeds.add(doc["workflow"]["nodes"]["sample"]["inputs"]["seed"])
    assert len(seeds) == 3  # randomised for each run of the batch
    await page.locator(".queue-item .queue-state", has_text="%").wait_for(timeout=60_000)
    await page.click(".queue-clear")
    await canvas.wait_app("document.querySelectorAll('.queue-item').length === 1")
    await page.click("button:has-text('Stop')")
    await canvas.wait_app("app.activeJobs().length === 0", timeout=60_000)
    assert canvas.unexpected_errors() == []


async def test_dragging_a_link_end_moves_or_detaches_it(canvas: Canvas) -> None:
    page = canvas.page
    edge_id = "checkpoint.vae->decode.vae"
    end = page.locator(f'.react-flow__edge[data-id="{edge_id}"] .react-flow__edgeupdater-target')

    async def drag_end_to(x: float, y: float) -> None:
        box = await end.bounding_box()
        assert box
        await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        await page.mouse.down()
        await page.mouse.move(x, y, steps=8)
        await page.mouse.up()

    # Dropped back on the input it came from: still linked there.
    target = await canvas.handle("decode", "vae").bounding_box()
    assert target
    await drag_end_to(target["x"] + target["width"] / 2, target["y"] + target["height"] / 2)
    await page.wait_for_timeout(300)
    doc = await canvas.workflow()
    assert doc["nodes"]["decode"]["inputs"]["vae"] == {"node": "checkpoint", "output": "vae"}
    # Dropped on empty canvas: the link is taken off.
    pane = await page.locator(".react-flow__pane").bounding_box()
    assert pane
    await drag_end_to(pane["x"] + pane["width"] * 0.5, pane["y"] + pane["height"] - 40)
    await canvas.wait_app("!('vae' in app.workflow().nodes.decode.inputs)")
    await page.keyboard.press("Escape")  # the node search offered for the dropped link
    assert await page.locator(f'.react-flow__edge[data-id="{edge_id}"]').count() == 0
    assert canvas.unexpected_errors() == []
