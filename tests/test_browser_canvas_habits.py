"""The canvas as people use it: driven with the mouse and keyboard in real chromium.

Each test covers rough edges a first user met (issue 16): the palette's Enter, where new
nodes land and what they start with, Ctrl+A, text undo, autosave and the unsaved mark,
exact seeds and the seed a result was made with, the image viewer, the history strip,
toasts, and a reconnect after the job ended unseen; and the page's layout. The test hook
only reads state. One server and browser serve the module (a fresh context per test)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.browser_support import (  # noqa: F401 - fixtures
    Canvas,
    default_workflow,
    layout_problems,
    shared_browser_fixture,
    shared_canvas_fixture,
    shared_live_url_fixture,
    shared_models_dir_fixture,
    type_into,
)
from tests.test_browser_canvas import drop_file, png_with_workflow

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]

BIG_SEED = 2**64 - 2  # beyond 2^53: a JS number would round it


async def boxes(canvas: Canvas) -> dict[str, dict[str, float]]:
    out = {}
    for nid in (await canvas.workflow())["nodes"]:
        box = await canvas.node(nid).bounding_box()
        assert box, nid
        out[nid] = box
    return out


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


async def test_palette_enter_adds_the_name_match_in_free_space(canvas: Canvas) -> None:
    page = canvas.page
    preset = default_workflow()["nodes"]
    await page.click(".palette-search")
    await page.keyboard.type("checkpoint")
    hit = page.locator(".palette-item.hit")
    assert await hit.get_attribute("data-type") == "LoadCheckpoint"  # not VAEDecode
    assert (await hit.locator("mark").inner_text()).lower() == "checkpoint"
    await page.keyboard.press("Enter")
    await canvas.wait_app("'loadcheckpoint' in app.workflow().nodes")
    await page.keyboard.type("empty")
    await page.keyboard.press("Enter")
    await canvas.wait_app("'emptylatent' in app.workflow().nodes")
    await page.keyboard.type("sample")
    await page.keyboard.press("Enter")
    await canvas.wait_app("'sample2' in app.workflow().nodes")
    doc = await canvas.workflow()
    # The first real model (the default workflow's, not the random test model) at its size.
    assert (
        doc["nodes"]["loadcheckpoint"]["inputs"]["name"] == preset["checkpoint"]["inputs"]["name"]
    )
    latent = doc["nodes"]["emptylatent"]["inputs"]
    assert (latent["width"], latent["height"]) == (
        preset["latent"]["inputs"]["width"],
        preset["latent"]["inputs"]["height"],
    )
    assert doc["nodes"]["sample2"]["inputs"]["cfg"] == preset["sample"]["inputs"]["cfg"]
    # Added nodes sit in free space, near the middle of the view, on top of nothing.
    await page.wait_for_timeout(200)
    placed = await boxes(canvas)
    for new in ("loadcheckpoint", "emptylatent", "sample2"):
        for other, box in placed.items():
            assert other == new or not overlap(placed[new], box), (new, other)
    # Ctrl+A on the canvas selects every node (not the page's text).
    await page.locator(".react-flow__pane").click(position={"x": 4, "y": 4})
    await page.keyboard.press("Control+a")
    selected = page.locator(".react-flow__node.selected")
    await canvas.wait_app(
        "document.querySelectorAll('.react-flow__node.selected').length === arg", len(placed)
    )
    assert await selected.count() == len(placed)
    assert await page.evaluate("String(window.getSelection())") == ""
    assert canvas.unexpected_errors() == []


async def test_edits_survive_a_reload_and_the_name_follows_undo(canvas: Canvas) -> None:
    page = canvas.page
    original = default_workflow()["nodes"]["positive_tokens"]["inputs"]["text"]
    prompt = canvas.node("positive_tokens").locator("textarea")
    await prompt.click()
    await page.keyboard.press("End")
    await page.keyboard.type(" with stars")
    # Ctrl+Z in a prompt is the browser's text undo: the typed run at once, not per character.
    await page.keyboard.press("Control+z")
    assert await prompt.input_value() == original
    await canvas.wait_app("app.workflow().nodes.positive_tokens.inputs.text === arg", original)
    await page.keyboard.press("Control+Shift+z")
    edited = original + " with stars"
    await canvas.wait_app("app.workflow().nodes.positive_tokens.inputs.text === arg", edited)
    # Unsaved changes are marked, in the bar and the tab title.
    await page.locator(".wf-title .dirty").wait_for()
    assert (await page.title()).startswith("●")
    # A reload warns first, then brings the edit back (autosaved), still marked unsaved.
    await page.reload()
    assert "beforeunload" in canvas.dialogs
    await canvas.wait_app("app.ready && 'positive_tokens' in app.workflow().nodes")
    await canvas.wait_app("app.workflow().nodes.positive_tokens.inputs.text === arg", edited)
    await page.locator(".wf-title .dirty").wait_for()
    assert "txt2img" in await page.locator(".wf-title").inner_text()
    # Opening an example, then Ctrl+Z: the edited graph comes back with its own name.
    await page.select_option("select.examples", "img2img")
    await page.locator(".wf-title", has_text="img2img").wait_for()
    assert await page.locator(".wf-title .dirty").count() == 0
    await page.locator(".react-flow__pane").click(position={"x": 4, "y": 4})
    await page.keyboard.press("Control+z")
    await canvas.wait_app("app.workflow().nodes.positive_tokens?.inputs.text === arg", edited)
    await page.locator(".wf-title", has_text="txt2img").wait_for()
    async with page.expect_download() as info:
        await page.keyboard.press("Control+s")
    download = await info.value
    assert download.suggested_filename == "txt2img.json"
    saved = json.loads(Path(await download.path()).read_text())
    assert saved["nodes"]["positive_tokens"]["inputs"]["text"] == edited
    await page.locator(".wf-title .dirty").wait_for(state="detached")
    assert canvas.unexpected_errors() == []


async def test_seeds_are_exact_and_results_show_the_seed_used(canvas: Canvas) -> None:
    page = canvas.page
    sample = canvas.node("sample")
    seed = sample.locator('input[name="seed"]')
    # Not a whole number: refused where it was typed (the "1" typed first is what is kept).
    await type_into(canvas, seed, "1.5")
    await sample.locator(".w-error", has_text="whole numbers").wait_for()
    assert "seed stays 1" in await sample.locator(".w-error").inner_text()
    assert "bad" in (await seed.get_attribute("class")).split()
    assert (await canvas.workflow())["nodes"]["sample"]["inputs"]["seed"] == 1
    # A seed past 2^53 is kept to the last digit, in the widget and in what is submitted.
    await type_into(canvas, seed, str(BIG_SEED))
    await canvas.wait_app("String(app.workflow().nodes.sample.inputs.seed) === arg", str(BIG_SEED))
    assert (await canvas.workflow())["nodes"]["sample"]["inputs"]["seed"] == BIG_SEED
    await type_into(canvas, sample.locator('input[name="steps"]'), "2")
    await page.click("button:has-text('Run')")
    done = await canvas.wait_app(
        "app.lastEvents(300).find(e => e.type === 'run_finished') || false", timeout=60_000
    )
    assert done["status"] == "ok"
    job_id = done["job"] if isinstance(done["job"], str) else done["job"]["id"]
    job = await (await canvas.request("GET", f"api/jobs/{job_id}")).json()
    assert job["workflow"]["nodes"]["sample"]["inputs"]["seed"] == BIG_SEED
    # "Randomize after each run" changed the widget; the result says which seed made it.
    await canvas.wait_app("String(app.workflow().nodes.sample.inputs.seed) !== arg", str(BIG_SEED))
    await sample.locator(".w-seed-used", has_text=str(BIG_SEED)).wait_for()
    await canvas.node("save").locator(".gnode-result-seed", has_text=str(BIG_SEED)).wait_for()
    card = page.locator(f'.gallery .job[data-job="{job_id}"]')
    await card.locator(".job-seed", has_text=str(BIG_SEED)).wait_for()
    # The viewer shows it too, and closes with Esc or its close button.
    await card.locator("img").click()
    viewer = page.locator(".lightbox")
    await viewer.locator(".lightbox-info", has_text=str(BIG_SEED)).wait_for()
    await page.keyboard.press("Escape")
    await viewer.wait_for(state="detached")
    await card.locator("img").click()
    await page.locator(".lightbox-close").click()
    await viewer.wait_for(state="detached")
    # A PNG whose workflow has a large seed opens with that exact seed.
    doc = default_workflow()
    doc["nodes"]["sample"]["inputs"]["seed"] = BIG_SEED - 1
    await drop_file(canvas, "big.png", "image/png", png_with_workflow(doc))
    await canvas.wait_app(
        "String(app.workflow().nodes.sample.inputs.seed) === arg", str(BIG_SEED - 1)
    )
    await page.wait_for_function(  # the widget is drawn a frame after the graph changes
        'v => document.querySelector(\'.react-flow__node[data-id="sample"] input[name="seed"]\')'
        ".value === v",
        arg=str(BIG_SEED - 1),
    )
    async with page.expect_download() as info:
        await page.click("button:has-text('Save')")
    text = Path(await (await info.value).path()).read_text()
    assert f'"seed": {BIG_SEED - 1}' in text  # written as a JSON integer, exactly
    assert canvas.unexpected_errors() == []


async def test_toasts_do_not_pile_up_and_go_once_fixed(canvas: Canvas) -> None:
    canvas.allow(r"^400 POST .*/api/jobs$")
    page = canvas.page
    await type_into(canvas, canvas.node("sample").locator('input[name="cfg"]'), "150")
    for _ in range(3):
        await page.click("button:has-text('Run')")
    await page.locator(".react-flow__node[data-id='sample'] .gnode.invalid").wait_for()
    await page.wait_for_timeout(300)
    assert await page.locator(".toast").count() == 1  # the same refusal, said once
    await type_into(canvas, canvas.node("sample").locator('input[name="cfg"]'), "2")
    await page.locator(".toast").wait_for(state="detached")  # fixed: the message goes
    assert canvas.unexpected_errors() == []


async def test_the_history_strip_scrolls_and_the_viewer_steps_through_it(canvas: Canvas) -> None:
    page = canvas.page
    doc = default_workflow()
    doc["nodes"]["sample"]["inputs"]["steps"] = 1
    for _ in range(4):
        client = await canvas.app("app.clientId")
        r = await canvas.request("POST", "api/jobs", {"workflow": doc, "client_id": client})
        assert r.ok, await r.text()
    await page.set_viewport_size({"width": 390, "height": 844})
    await page.locator(".react-flow__pane").click(position={"x": 4, "y": 4})
    gallery = page.locator(".gallery")
    await canvas.wait_app(
        "(() => { const g = document.querySelector('.gallery');"
        " return g.querySelectorAll('.job.j-ok').length === 4"
        " && g.scrollWidth > g.clientWidth })()",
        timeout=60_000,
    )
    box = await gallery.bounding_box()
    assert box
    await page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    await page.mouse.wheel(0, 200)
    await canvas.wait_app("document.querySelector('.gallery').scrollLeft > 0")
    # The viewer steps through the history with the arrow keys and lists the parameters.
    await page.set_viewport_size({"width": 1280, "height": 800})
    images = page.locator(".gallery .job img")
    urls = [await images.nth(i).get_attribute("src") for i in range(4)]
    await images.first.click()
    shown = page.locator(".lightbox > img")
    assert await shown.get_attribute("src") == urls[0]
    params = page.locator(".lightbox-params")
    await params.locator("div", has_text="sample.steps").wait_for()
    assert "sample.steps1" in (await params.inner_text()).replace("\n", "")
    await page.keyboard.press("ArrowRight")
    await page.wait_for_function(
        "s => document.querySelector('.lightbox > img').src.endsWith(s)", arg=urls[1]
    )
    await page.keyboard.press("ArrowLeft")
    await page.wait_for_function(
        "s => document.querySelector('.lightbox > img').src.endsWith(s)", arg=urls[0]
    )
    assert await page.locator(".lightbox-step.prev").is_disabled()
    await page.keyboard.press("Escape")
    assert canvas.unexpected_errors() == []


async def test_reconnecting_resets_run_state_from_the_server(canvas: Canvas) -> None:
    """The job ends while the page hears nothing (a restart, a dropped link): on reconnect
    the node is no longer shown running, Stop is off and history lists the job."""
    page = canvas.page
    hearing = {"on": True}
    sockets: list[Any] = []

    def route(ws: Any) -> None:
        server = ws.connect_to_server()
        sockets.append(ws)
        server.on_message(lambda m: hearing["on"] and ws.send(m))

    await page.route_web_socket(re.compile(r"/api/ws"), route)
    await page.reload()
    await canvas.wait_app("app.ready && app.connected() && 'sample' in app.workflow().nodes")
    await type_into(canvas, canvas.node("sample").locator('input[name="steps"]'), "200")
    await page.click("button:has-text('Run')")
    sample = canvas.node("sample")
    await sample.locator(".gnode-progress").wait_for(timeout=60_000)
    job = (await canvas.app("app.activeJobs()"))[0]
    hearing["on"] = False
    r = await canvas.request("DELETE", f"api/jobs/{job}")
    assert r.ok
    for _ in range(100):
        status = (await (await canvas.request("GET", f"api/jobs/{job}")).json())["status"]
        if status != "running":
            break
        await page.wait_for_timeout(100)
    assert status == "interrupted"
    assert await sample.locator(".gnode-status").inner_text() == "running"  # nothing heard
    hearing["on"] = True
    await sockets[-1].close()
    for _ in range(100):
        if len(sockets) > 1:
            break
        await page.wait_for_timeout(100)
    await canvas.wait_app("app.connected()")
    await sample.locator(".gnode-status", has_text="interrupted").wait_for()
    assert await sample.locator(".gnode-progress").count() == 0
    assert await sample.locator(".gnode-preview").count() == 0
    assert await page.locator("button:has-text('Stop')").is_disabled()
    await page.locator(f'.gallery .job.j-interrupted[data-job="{job}"]').wait_for()
    assert canvas.unexpected_errors() == []


@pytest.mark.parametrize("size", [(1440, 900), (390, 844)], ids=["desktop", "phone"])
async def test_default_page_layout_has_no_overlap_or_cut_off_text(
    canvas: Canvas, size: tuple[int, int]
) -> None:
    page = canvas.page
    await page.set_viewport_size({"width": size[0], "height": size[1]})
    await page.locator(".react-flow__controls-fitview").click()  # what a person would do
    await page.wait_for_timeout(400)
    await canvas.shot(f"layout-{size[0]}x{size[1]}")
    assert await layout_problems(page) == []
    assert canvas.unexpected_errors() == []


async def test_production_build_has_no_test_hook_and_assets_go_gzipped(live_url: str) -> None:
    """The hook exists only in the test build; the server sends the prebuilt .gz bundles."""
    import aiohttp

    from tests.browser_support import DIST, ROOT

    prod = ROOT / "web" / "dist" / "assets"
    for js in prod.glob("*.js") if prod.is_dir() else []:
        assert "__app" not in js.read_text(), js
    assert any("__app" in p.read_text() for p in (DIST / "assets").glob("*.js"))
    name = next(p.name for p in (DIST / "assets").glob("*.js"))
    gzip = {"Accept-Encoding": "gzip"}
    async with (
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.get(f"{live_url}assets/{name}", headers=gzip) as r,
    ):
        assert r.status == 200 and r.headers.get("Content-Encoding") == "gzip"
