"""Layout-only canvas features, driven with the mouse and keyboard in real chromium (issue 16):
reroute points on links, groups, the A/B compare of two history images, and new latents at
the selected checkpoint's native size. What is layout lives in the workflow's ``ui`` section
and never changes what runs; the test hook only reads state. One server and browser serve
the module (a fresh browser context per test)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import run
from tests.browser_support import (  # noqa: F401 - fixtures
    Canvas,
    default_workflow,
    shared_browser_fixture,
    shared_canvas_fixture,
    shared_live_url_fixture,
    shared_models_dir_fixture,
    type_into,
)
from tests.test_model_native_size import SD1, SDXL, write

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="module")]
EDGE = "checkpoint.vae->decode.vae"


async def free_spots_on_link(canvas: Canvas, edge_id: str) -> list[dict[str, float]]:
    """Screen points along a link where nothing covers it (so a click lands on the link)."""
    return await canvas.page.evaluate(
        """(id) => {
            const path = document.querySelector(`.react-flow__edge[data-id="${id}"] .reroute-hit`);
            const m = path.getScreenCTM(), len = path.getTotalLength(), out = [];
            for (let f = 0.05; f < 0.96; f += 0.05) {
              const p = path.getPointAtLength(len * f);
              const x = m.a * p.x + m.c * p.y + m.e, y = m.b * p.x + m.d * p.y + m.f;
              if (document.elementFromPoint(x, y) === path) out.push({ x, y });
            }
            return out;
        }""",
        edge_id,
    )


async def empty_canvas_spot(canvas: Canvas) -> dict[str, float]:
    return await canvas.page.evaluate(
        """() => {
            const r = document.querySelector('.react-flow__pane').getBoundingClientRect();
            for (let y = r.bottom - 30; y > r.top; y -= 20)
              for (let x = r.left + 30; x < r.right - 30; x += 20) {
                const el = document.elementFromPoint(x, y);
                if (el && el.classList.contains('react-flow__pane')) return { x, y };
              }
            return null;
        }"""
    )


async def link_passes(canvas: Canvas, edge_id: str, x: float, y: float) -> bool:
    """Whether the drawn link goes through the screen point (within 3 px)."""
    return await canvas.page.evaluate(
        """([id, x, y]) => {
            const path = document.querySelector(`.react-flow__edge[data-id="${id}"] .reroute-hit`);
            const m = path.getScreenCTM(), len = path.getTotalLength();
            for (let l = 0; l <= len; l += 1) {
              const p = path.getPointAtLength(l);
              const sx = m.a * p.x + m.c * p.y + m.e, sy = m.b * p.x + m.d * p.y + m.f;
              if (Math.hypot(sx - x, sy - y) < 3) return true;
            }
            return false;
        }""",
        [edge_id, x, y],
    )


def strip_versions(nodes: dict) -> dict:
    """The nodes without the node versions Save records."""
    return {k: {f: v for f, v in n.items() if f != "version"} for k, n in nodes.items()}


def centre(box: dict[str, float] | None) -> tuple[float, float]:
    assert box
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def run_headless(path: Path, models: Path, out: Path) -> np.ndarray:
    """Run a workflow file with the CLI (in this process) and return the image's pixels."""
    code = run.main(
        [str(path), "--data", str(out / "data"), "--models", str(models), "--out", str(out)]
        + ["--set", "sample.steps=2"]
    )
    assert code == 0
    (png,) = out.glob("*.png")
    return np.asarray(Image.open(png).convert("RGB"))


async def test_reroute_points_bend_links_and_stay_layout_only(
    canvas: Canvas, tmp_path: Path, models_dir: Path
) -> None:
    page = canvas.page
    points = page.locator(f'.reroute[data-edge="{EDGE}"]')
    # Alt+click on the link puts a point there.
    spots = await free_spots_on_link(canvas, EDGE)
    assert len(spots) >= 2, spots
    await page.keyboard.down("Alt")
    await page.mouse.click(spots[0]["x"], spots[0]["y"])
    await page.keyboard.up("Alt")
    await points.first.wait_for()
    assert await points.count() == 1
    # Dragged to empty canvas, the link follows it.
    spot = await empty_canvas_spot(canvas)
    x, y = centre(await points.first.bounding_box())
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(spot["x"], spot["y"], steps=6)
    await page.mouse.up()
    px, py = centre(await points.first.bounding_box())
    assert abs(px - spot["x"]) < 3 and abs(py - spot["y"]) < 3
    assert await link_passes(canvas, EDGE, px, py)
    await canvas.shot("reroute-point")
    # A double-click elsewhere on the link adds a second; a double-click on a point removes it.
    spots = await free_spots_on_link(canvas, EDGE)
    await page.mouse.dblclick(spots[-1]["x"], spots[-1]["y"])
    await canvas.wait_app("app.workflow().ui.reroutes?.[arg]?.length === 2", EDGE)
    assert await page.locator(".node-search").count() == 0  # not the canvas's node search
    await points.nth(1).dblclick()
    await canvas.wait_app("app.workflow().ui.reroutes?.[arg]?.length === 1", EDGE)
    # Saved in `ui` only; opening the file draws the point again.
    async with page.expect_download() as info:
        await page.keyboard.press("Control+s")
    saved_path = tmp_path / "rerouted.json"
    saved_path.write_bytes(Path(await (await info.value).path()).read_bytes())
    saved = json.loads(saved_path.read_text())
    assert list(saved["ui"]["reroutes"]) == [EDGE] and len(saved["ui"]["reroutes"][EDGE]) == 1
    assert strip_versions(saved["nodes"]) == default_workflow()["nodes"]
    await page.select_option("select.examples", "img2img")
    await page.locator(".wf-title", has_text="img2img").wait_for()
    await page.locator("input[type=file]").set_input_files(str(saved_path))
    await points.first.wait_for()
    assert await link_passes(canvas, EDGE, *centre(await points.first.bounding_box()))
    assert canvas.unexpected_errors() == []
    # Headless, the file makes the same image as without the layout.
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps({**saved, "ui": None}))
    with_points = await asyncio.to_thread(run_headless, saved_path, models_dir, tmp_path / "a")
    without = await asyncio.to_thread(run_headless, bare, models_dir, tmp_path / "b")
    assert np.array_equal(with_points, without)


async def test_groups_frame_move_rename_recolour_and_delete_keeping_nodes(canvas: Canvas) -> None:
    page = canvas.page
    await canvas.node("positive_tokens").locator(".gnode-head").click()
    await canvas.node("negative_tokens").locator(".gnode-head").click(modifiers=["Control"])
    await page.keyboard.press("Control+g")
    frame = page.locator('.group-frame[data-group="group1"]')
    await frame.wait_for()
    fbox = await frame.bounding_box()
    assert fbox
    for nid in ("positive_tokens", "negative_tokens"):
        b = await canvas.node(nid).bounding_box()
        assert b and fbox["x"] < b["x"] and b["x"] + b["width"] < fbox["x"] + fbox["width"]
        assert fbox["y"] < b["y"] and b["y"] + b["height"] < fbox["y"] + fbox["height"]
    # Rename and recolour from the header's right-click menu.
    head = frame.locator(".group-head")
    menu = page.locator(".group-menu")
    await head.click(button="right")
    await menu.get_by_role("menuitem", name="Rename…").click()
    await page.keyboard.press("Control+a")
    await page.keyboard.type("Prompts")
    await page.keyboard.press("Enter")
    await head.filter(has_text="Prompts").wait_for()
    await head.click(button="right")
    await menu.get_by_label("colour #14532d").click()
    await menu.wait_for(state="detached")
    # Dragging the header moves the group and the nodes in it, and nothing else.
    before = (await canvas.workflow())["ui"]["positions"]
    zoom = await canvas.app("app.workflow().ui.viewport.zoom")
    x, y = centre(await head.bounding_box())
    await page.mouse.move(x, y)
    await page.mouse.down()
    await page.mouse.move(x + 60, y + 80, steps=6)
    await page.mouse.up()
    doc = await canvas.workflow()
    after = doc["ui"]["positions"]
    for nid, pos in before.items():
        moved = (after[nid]["x"] - pos["x"], after[nid]["y"] - pos["y"])
        if nid in ("positive_tokens", "negative_tokens"):
            assert abs(moved[0] - 60 / zoom) <= 1 and abs(moved[1] - 80 / zoom) <= 1, nid
        else:
            assert moved == (0, 0), nid
    (group,) = doc["ui"]["groups"]
    assert group["title"] == "Prompts" and group["color"] == "#14532d"
    assert doc["nodes"] == default_workflow()["nodes"]  # layout only
    # A node's right-click menu groups that node; deleting a group keeps its nodes.
    await canvas.node("sample").locator(".gnode-head").click(button="right")
    await page.locator(".node-menu").get_by_role("menuitem", name="Group selected nodes").click()
    await canvas.wait_app("app.workflow().ui.groups?.length === 2")
    await head.click(button="right")
    await menu.get_by_role("menuitem", name="Delete group (keep nodes)").click()
    await canvas.wait_app("app.workflow().ui.groups?.length === 1")
    assert await page.locator(".react-flow__node").count() == len(doc["nodes"])
    await page.locator(".react-flow__pane").click(position={"x": 4, "y": 4})
    await page.keyboard.press("Control+z")  # undo brings the group back
    await canvas.wait_app("app.workflow().ui.groups?.length === 2")
    await head.filter(has_text="Prompts").wait_for()
    assert canvas.unexpected_errors() == []


async def test_ab_compare_of_two_history_images(canvas: Canvas) -> None:
    page = canvas.page
    await type_into(canvas, canvas.node("sample").locator('input[name="steps"]'), "1")
    await type_into(canvas, page.locator(".toolbar .batch"), "2")
    await page.click("button:has-text('Run')")
    images = page.locator(".gallery .job.j-ok img")
    await canvas.wait_app(
        "document.querySelectorAll('.gallery .job.j-ok img').length === 2", timeout=60_000
    )
    urls = [await images.nth(i).get_attribute("src") for i in range(2)]
    await images.first.click()
    await page.get_by_role("button", name="Compare A/B…").click()
    dialog = page.get_by_role("dialog", name="Compare images A and B")
    a, b = dialog.locator("img.compare-a"), dialog.locator("img.compare-b")
    assert [await a.get_attribute("src"), await b.get_attribute("src")] == urls
    # The split slider has the focus: the keyboard moves it (B covers all at Home).
    slider = dialog.get_by_role("slider")
    assert await slider.evaluate("el => el === document.activeElement")
    await page.keyboard.press("Home")
    assert "inset(0px 0px 0px 0%)" in await b.evaluate("el => getComputedStyle(el).clipPath")
    await page.keyboard.press("ArrowRight")
    assert await slider.input_value() == "1"
    # T toggles between A whole and B whole.
    await page.keyboard.press("t")
    assert await slider.input_value() == "100"
    await page.keyboard.press("t")
    assert await slider.input_value() == "0"
    # Picking other images: A and B from the history (here swapped), by keyboard.
    await dialog.get_by_label("Image A").focus()
    await page.keyboard.press("ArrowDown")
    await dialog.get_by_label("Image B").focus()
    await page.keyboard.press("ArrowUp")
    assert [await a.get_attribute("src"), await b.get_attribute("src")] == urls[::-1]
    # The mouse drags the split across the image.
    box = await dialog.locator(".compare-stage").bounding_box()
    assert box
    y = box["y"] + box["height"] / 2
    await page.mouse.move(box["x"] + box["width"] * 0.8, y)
    await page.mouse.down()
    await page.mouse.move(box["x"] + box["width"] * 0.25, y, steps=4)
    await page.mouse.up()
    assert abs(int(await slider.input_value()) - 25) <= 2
    await canvas.shot("ab-compare")
    await page.keyboard.press("Escape")
    await dialog.wait_for(state="detached")
    assert canvas.unexpected_errors() == []


@pytest.fixture(name="user_checkpoints")
def user_checkpoints_fixture(models_dir: Path) -> list[str]:
    """Header-only SD 1.x and SDXL files in the server's models folder (before the page
    loads, so its checkpoint list has them)."""
    write(models_dir / "checkpoints" / "mine-sd15.safetensors", SD1)
    write(models_dir / "checkpoints" / "mine-xl.safetensors", SDXL)
    return ["mine-sd15.safetensors", "mine-xl.safetensors"]


async def test_new_latents_take_the_selected_checkpoints_native_size(
    user_checkpoints: list[str], canvas: Canvas
) -> None:
    page = canvas.page
    name = canvas.node("checkpoint").locator('select[name="name"]')
    expected = {"mine-xl.safetensors": 1024, "mine-sd15.safetensors": 512}
    expected["builtin/shapes-demo"] = 64
    for i, (checkpoint, size) in enumerate(expected.items()):
        await name.select_option(checkpoint)
        await page.click(".palette-search")
        await page.keyboard.press("Control+a")
        await page.keyboard.type("emptylatent")
        await page.keyboard.press("Enter")
        new = f"emptylatent{i + 1}" if i else "emptylatent"
        await canvas.wait_app("arg in app.workflow().nodes", new)
        for field in ("width", "height"):
            widget = canvas.node(new).locator(f'input[name="{field}"]')
            assert await widget.input_value() == str(size), (checkpoint, field)
    assert canvas.unexpected_errors() == []
