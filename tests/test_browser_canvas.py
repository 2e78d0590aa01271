"""The canvas in a real browser (chromium) against the real server and nodes.

Skips only where chromium is missing; fails clearly when web/dist-test is not built."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, PngImagePlugin

from tests.browser_support import (  # noqa: F401 - fixtures
    ROOT,
    Canvas,
    canvas_fixture,
    default_workflow,
    live_url_fixture,
    models_dir_fixture,
)

pytestmark = pytest.mark.browser


def links_of(doc: dict[str, Any]) -> set[tuple[str, str, str, str]]:
    out = set()
    for nid, node in doc["nodes"].items():
        for name, v in node["inputs"].items():
            if isinstance(v, dict) and set(v) == {"node", "output"}:
                out.add((v["node"], v["output"], nid, name))
    return out


async def test_default_graph_renders(canvas: Canvas) -> None:
    expected = default_workflow()
    doc = await canvas.workflow()
    assert doc["nodes"] == expected["nodes"]  # same file format, nothing added or lost
    assert set(doc["ui"]["positions"]) == set(expected["nodes"])
    page = canvas.page
    assert await page.locator(".react-flow__node").count() == len(expected["nodes"])
    assert await page.locator(".react-flow__edge").count() == len(links_of(expected))
    # Handles are typed and coloured from the schema.
    schema = await canvas.app("app.schema")
    clip = canvas.handle("checkpoint", "clip")
    assert await clip.get_attribute("title") == "clip: CLIP"
    color = await clip.evaluate("el => getComputedStyle(el).backgroundColor")
    r, g, b = (int(schema["types"]["CLIP"]["color"][i : i + 2], 16) for i in (1, 3, 5))
    assert color == f"rgb({r}, {g}, {b})"
    # The whole graph is on screen at 1280x800, and the palette lists every node type.
    for nid in expected["nodes"]:
        box = await canvas.node(nid).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 1280
        assert box["y"] >= 0 and box["y"] + box["height"] <= 800
    assert await page.locator(".palette-item").count() == len(schema["nodes"])
    await canvas.shot("default-graph")
    # The examples come from GET /api/workflows and open in the same format.
    await page.select_option("select.examples", "img2img")
    img2img = json.loads((ROOT / "workflows" / "img2img.json").read_text())
    await canvas.wait_app("'source_sample' in app.workflow().nodes")
    assert (await canvas.workflow())["nodes"] == img2img["nodes"]
    assert await page.locator(".react-flow__node").count() == len(img2img["nodes"])
    await canvas.shot("example-img2img")
    assert canvas.unexpected_errors() == []
    assert canvas.console == []  # no React or React Flow warnings (e.g. a missing handle)


async def test_palette_search_and_wiring_with_type_check(canvas: Canvas) -> None:
    await canvas.load(
        {
            "version": 1,
            "nodes": {
                "checkpoint": {"type": "LoadCheckpoint", "inputs": {}},
                "latent": {"type": "EmptyLatent", "inputs": {}},
                "latent_b": {"type": "EmptyLatent", "inputs": {}},
            },
            "ui": {
                "positions": {
                    "checkpoint": {"x": 0, "y": 0},
                    "latent": {"x": 0, "y": 220},
                    "latent_b": {"x": 0, "y": 400},
                },
                "viewport": {"x": 20, "y": 20, "zoom": 1},
            },
        }
    )
    page = canvas.page
    # Drag a node type from the palette onto an empty part of the canvas.
    await page.fill(".palette-search", "decode")
    item = page.locator('.palette-item[data-type="VAEDecode"]')
    assert await page.locator(".palette-item").count() == 1
    await item.drag_to(page.locator(".react-flow__pane"), target_position={"x": 450, "y": 200})
    await canvas.wait_app("'vaedecode' in app.workflow().nodes")
    # Search + Enter adds the first match.
    await page.fill(".palette-search", "save image")
    await page.press(".palette-search", "Enter")
    await canvas.wait_app("'saveimage' in app.workflow().nodes")
    await canvas.app("app.load(app.workflow())")  # nothing moves: positions kept as saved
    box = await canvas.node("vaedecode").bounding_box()
    assert box is not None and box["x"] > 500  # dropped where the mouse was, right of the others

    await canvas.connect("checkpoint", "vae", "vaedecode", "vae")
    await canvas.connect("latent", "latent", "vaedecode", "latent")
    await canvas.wait_app("Object.keys(app.workflow().nodes.vaedecode.inputs).length === 3")
    inputs = (await canvas.workflow())["nodes"]["vaedecode"]["inputs"]
    assert inputs == {
        "vae": {"node": "checkpoint", "output": "vae"},
        "latent": {"node": "latent", "output": "latent"},
        "tiling": "auto",  # the literal's default
    }
    # Refused: a MODEL into the IMAGE input of SaveImage, and a second link into an input.
    await canvas.connect("checkpoint", "model", "saveimage", "image")
    await canvas.connect("latent_b", "latent", "vaedecode", "latent")
    await page.wait_for_timeout(300)
    doc = await canvas.workflow()
    assert "image" not in doc["nodes"]["saveimage"]["inputs"]
    assert doc["nodes"]["vaedecode"]["inputs"]["latent"] == {"node": "latent", "output": "latent"}
    assert await page.locator(".react-flow__edge").count() == 2
    # The right type is accepted there.
    await canvas.connect("vaedecode", "image", "saveimage", "image")
    await canvas.wait_app("'image' in app.workflow().nodes.saveimage.inputs")
    await canvas.shot("wiring")
    assert canvas.unexpected_errors() == []


async def test_editing_widgets_changes_the_workflow(canvas: Canvas) -> None:
    sample = canvas.node("sample")
    await sample.locator('input[name="steps"]').fill("7")
    await sample.locator('input[name="cfg"]').fill("4.5")
    await sample.locator('select[name="sampler"]').select_option(label="ddim")
    await canvas.node("positive_tokens").locator("textarea").fill("a green square")
    await sample.locator('input[name="seed__randomize"]').uncheck()
    doc = await canvas.workflow()
    s = doc["nodes"]["sample"]["inputs"]
    assert (s["steps"], s["cfg"], s["sampler"]) == (7, 4.5, "ddim")
    assert doc["nodes"]["positive_tokens"]["inputs"]["text"] == "a green square"
    assert doc["ui"]["seed_control"] == {"sample": {"seed": False}}
    # Not a number for an integer input: the workflow keeps the last valid value.
    await sample.locator('input[name="steps"]').fill("2.5")
    assert (await canvas.workflow())["nodes"]["sample"]["inputs"]["steps"] == 7
    # Save downloads exactly the workflow, in the file format (never React Flow's JSON).
    async with canvas.page.expect_download() as info:
        await canvas.page.click("button:has-text('Save')")
    download = await info.value
    saved = json.loads(Path(await download.path()).read_text())
    assert download.suggested_filename == "txt2img.json"
    # the server stamps each node's version (and would add model hashes; none for built-ins)
    assert all(n.pop("version") >= 1 for n in saved["nodes"].values())
    assert saved == await canvas.workflow()
    assert set(saved) == {"version", "nodes", "ui"}
    assert set(saved["ui"]) == {"positions", "viewport", "seed_control"}
    assert canvas.unexpected_errors() == []


async def test_a_failing_node_shows_its_error(canvas: Canvas, models_dir: Path) -> None:
    (models_dir / "checkpoints" / "broken.safetensors").write_bytes(b"not a checkpoint" * 64)
    await canvas.page.reload()
    await canvas.wait_app("app.ready && app.connected() && 'sample' in app.workflow().nodes")
    name = canvas.node("checkpoint").locator('select[name="name"]')
    await name.select_option("broken.safetensors")
    await canvas.page.click("button:has-text('Run')")
    done = await canvas.wait_app(
        "app.lastEvents(300).find(e => e.type === 'run_finished') || false", timeout=60_000
    )
    assert done["status"] == "error"
    box = canvas.node("checkpoint").locator(".gnode-error")
    await box.wait_for()
    assert "broken.safetensors" in await box.inner_text()
    state = await canvas.app("app.runState()")
    assert state["checkpoint"]["status"] == "error"
    assert "sample" not in state  # never reached
    await canvas.shot("node-error")
    assert canvas.unexpected_errors() == []


async def test_keyboard_delete_copy_paste_undo_redo(canvas: Canvas) -> None:
    page = canvas.page
    before = await canvas.workflow()
    await canvas.node("latent").locator(".gnode-head").click()
    await page.keyboard.press("Delete")
    await canvas.wait_app("!('latent' in app.workflow().nodes)")
    assert "latent" not in (await canvas.workflow())["nodes"]["sample"]["inputs"]
    await page.keyboard.press("Control+z")
    await canvas.wait_app("'latent' in app.workflow().nodes")
    assert (await canvas.workflow())["nodes"] == before["nodes"]

    await canvas.node("positive_tokens").locator(".gnode-head").click()
    await page.keyboard.press("Control+c")
    await page.keyboard.press("Control+v")
    await canvas.wait_app("'tokenize' in app.workflow().nodes")
    doc = await canvas.workflow()
    assert doc["nodes"]["tokenize"]["inputs"] == {
        "text": before["nodes"]["positive_tokens"]["inputs"]["text"]
    }  # its link came from outside the copied selection, so it is not pasted
    await page.keyboard.press("Control+z")
    await canvas.wait_app("!('tokenize' in app.workflow().nodes)")
    await page.keyboard.press("Control+Shift+z")
    await canvas.wait_app("'tokenize' in app.workflow().nodes")
    await canvas.node("tokenize").locator(".gnode-head").click()
    await page.keyboard.press("Backspace")
    await canvas.wait_app("!('tokenize' in app.workflow().nodes)")
    assert (await canvas.workflow())["nodes"] == before["nodes"]
    assert canvas.unexpected_errors() == []


@pytest.mark.slow
async def test_running_the_default_workflow_shows_its_image(canvas: Canvas) -> None:
    seed = (await canvas.workflow())["nodes"]["sample"]["inputs"]["seed"]
    await canvas.page.click("button:has-text('Run')")
    await canvas.wait_app("app.activeJobs().length === 1")
    # While sampling: a progress bar and a live preview on the Sample node.
    sample = canvas.node("sample")
    await sample.locator(".gnode-progress").wait_for(timeout=60_000)
    await sample.locator("img.gnode-preview").wait_for(timeout=60_000)
    assert await sample.locator(".gnode-status").inner_text() == "running"
    await canvas.shot("run-progress")
    done = await canvas.wait_app(
        "app.lastEvents(300).find(e => e.type === 'run_finished') || false", timeout=120_000
    )
    assert done["status"] == "ok", await canvas.app("app.lastEvents(300)")
    events = await canvas.app("app.lastEvents(300)")
    steps = [e for e in events if e["type"] == "progress" and e["node_id"] == "sample"]
    assert steps and steps[-1]["step"] == steps[-1]["total"] == 20
    state = await canvas.app("app.runState()")
    assert state["sample"]["status"] == "done" and state["save"]["status"] == "done"
    img = canvas.node("save").locator("img.gnode-result")
    await img.wait_for()
    size = await img.evaluate(
        "el => el.complete ? [el.naturalWidth, el.naturalHeight] : new Promise(ok =>"
        " el.addEventListener('load', () => ok([el.naturalWidth, el.naturalHeight])))"
    )
    assert size == [64, 64]
    assert (await img.get_attribute("src")).startswith("/api/files/output/")
    # The history panel lists the run with its image; the seed was randomized for the next run.
    await canvas.page.locator(".gallery .job.j-ok img").first.wait_for()
    assert (await canvas.workflow())["nodes"]["sample"]["inputs"]["seed"] != seed
    await canvas.shot("run-result")
    # Opening the run from the history restores the workflow it ran (with its seed).
    await canvas.page.locator(".gallery .job.j-ok img").first.click()
    await canvas.page.click(".lightbox button:has-text('Load this workflow')")
    await canvas.wait_app("app.workflow().nodes.sample.inputs.seed === arg", seed)
    assert (await canvas.workflow())["nodes"] == default_workflow()["nodes"]
    assert canvas.unexpected_errors() == []


@pytest.mark.slow
async def test_stop_interrupts_the_running_job(canvas: Canvas) -> None:
    await canvas.node("sample").locator('input[name="steps"]').fill("150")
    await canvas.page.click("button:has-text('Run')")
    await canvas.node("sample").locator(".gnode-progress").wait_for(timeout=60_000)
    await canvas.page.click("button:has-text('Stop')")
    done = await canvas.wait_app(
        "app.lastEvents(300).find(e => e.type === 'run_finished') || false", timeout=60_000
    )
    assert done["status"] == "interrupted"
    state = await canvas.app("app.runState()")
    assert state["sample"]["status"] == "interrupted"
    assert "save" not in state  # never ran
    steps = [e for e in await canvas.app("app.lastEvents(300)") if e["type"] == "progress"]
    assert steps and steps[-1]["step"] < 150
    assert await canvas.app("app.activeJobs()") == []
    # The job's messages replace each other in order: "stopping..." never follows the end.
    await canvas.page.wait_for_timeout(500)
    assert await canvas.app("app.toasts()") == ["run interrupted"]
    assert canvas.unexpected_errors() == []


def png_with_workflow(doc: dict[str, Any]) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", json.dumps(doc))
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (30, 120, 200)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


async def drop_file(canvas: Canvas, name: str, mime: str, data: bytes) -> None:
    """Drop a file onto the canvas as the OS would (a DataTransfer on a drop event)."""
    await canvas.page.evaluate(
        """([name, mime, bytes]) => {
            const dt = new DataTransfer();
            dt.items.add(new File([new Uint8Array(bytes)], name, { type: mime }));
            const target = document.querySelector('.react-flow__pane');
            for (const type of ['dragenter', 'dragover', 'drop']) {
              target.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true,
                cancelable: true, clientX: 600, clientY: 400 }));
            }
        }""",
        [name, mime, list(data)],
    )


async def test_dropping_a_png_with_an_embedded_workflow_loads_it(canvas: Canvas) -> None:
    doc = default_workflow()
    doc["nodes"]["positive_tokens"]["inputs"]["text"] = "dropped from a png"
    doc["nodes"]["mystery"] = {
        "type": "NoSuchNode",
        "inputs": {"image": {"node": "decode", "output": "image"}, "strength": 0.5},
    }
    doc["ui"]["positions"]["mystery"] = {"x": 1740, "y": 300}
    await drop_file(canvas, "shared.png", "image/png", png_with_workflow(doc))
    await canvas.wait_app("'mystery' in app.workflow().nodes")
    loaded = await canvas.workflow()
    assert loaded["nodes"] == doc["nodes"]  # the unknown node is kept as it was
    assert loaded["ui"]["positions"]["mystery"] == {"x": 1740, "y": 300}
    placeholder = canvas.node("mystery").locator(".gnode")
    await placeholder.wait_for()
    assert "unknown" in (await placeholder.get_attribute("class")).split()
    assert "NoSuchNode" in await placeholder.inner_text()
    await canvas.shot("dropped-png")
    # A PNG without a workflow becomes an input image, offered by LoadImage at once.
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(buf, "PNG")
    await drop_file(canvas, "plain.png", "image/png", buf.getvalue())
    await canvas.page.locator(".toast", has_text="plain.png").wait_for()
    files = await canvas.wait_app(
        "(app.schema.nodes.LoadImage.inputs.find(i => i.name === 'file').widget.choices || [])"
        ".length > 0 && app.schema.nodes.LoadImage.inputs.find(i => i.name === 'file')"
        ".widget.choices"
    )
    assert len(files) == 1 and files[0].endswith(".png")
    assert (await canvas.workflow())["nodes"] == doc["nodes"]
    # A PNG whose embedded workflow is broken says so and changes nothing.
    await drop_file(canvas, "bad.png", "image/png", png_with_workflow({"nodes": 3}))
    await canvas.page.locator(".toast.error", has_text="bad.png").wait_for()
    assert (await canvas.workflow())["nodes"] == doc["nodes"]
    # A file that is not a workflow is refused with a message; the graph stays as it was.
    await drop_file(canvas, "notes.json", "application/json", b'{"nodes": [1, 2]')
    await canvas.page.locator(".toast.error", has_text="notes.json").wait_for()
    assert (await canvas.workflow())["nodes"] == doc["nodes"]
    # A dropped workflow JSON loads the same way.
    await drop_file(canvas, "wf.json", "application/json", json.dumps(default_workflow()).encode())
    await canvas.wait_app("!('mystery' in app.workflow().nodes)")
    assert (await canvas.workflow())["nodes"] == default_workflow()["nodes"]
    assert canvas.unexpected_errors() == []


async def test_every_example_round_trips(canvas: Canvas) -> None:
    """Each file of workflows/ opens from the menu and reads back unchanged, positions too;
    a link to a missing node is kept as written (the server reports it)."""
    names = await canvas.page.eval_on_selector_all(
        "select.examples option", "els => els.map(e => e.value).filter(Boolean)"
    )
    assert sorted(names) == sorted(p.stem for p in (ROOT / "workflows").glob("*.json"))
    for name in names:
        expected = json.loads((ROOT / "workflows" / f"{name}.json").read_text())
        await canvas.page.select_option("select.examples", name)
        # the whole title: "txt2img" must not match while "sdxl_txt2img" is still open
        title = re.compile(rf"(^|\s){re.escape(name)}$")
        await canvas.page.locator(".wf-title", has_text=title).wait_for()
        doc = await canvas.workflow()
        assert doc["nodes"] == expected["nodes"], name
        for nid, pos in (expected.get("ui") or {}).get("positions", {}).items():
            assert doc["ui"]["positions"][nid] == pos, (name, nid)
    broken = default_workflow()
    broken["nodes"]["decode"]["inputs"]["latent"] = {"node": "gone", "output": "latent"}
    await canvas.load(broken)
    assert (await canvas.workflow())["nodes"] == broken["nodes"]
    await canvas.node("decode").get_by_text("broken link").wait_for()  # rendered after load
    assert canvas.unexpected_errors() == []
    assert canvas.console == []


async def test_validation_error_is_shown_on_its_node_and_input(canvas: Canvas) -> None:
    canvas.allow(r"^400 POST .*/api/jobs$")
    # Out of range for the server (the canvas checks only whole numbers and seeds itself).
    await canvas.node("sample").locator('input[name="cfg"]').fill("150")
    await canvas.page.click("button:has-text('Run')")
    node = canvas.node("sample").locator(".gnode")
    await canvas.page.locator('.react-flow__node[data-id="sample"] .gnode.invalid').wait_for()
    row = canvas.node("sample").locator('[data-field="cfg"]')
    assert "invalid" in (await row.get_attribute("class")).split()
    message = await row.locator(".gnode-issue").inner_text()
    assert message.strip()
    outline = await node.evaluate("el => getComputedStyle(el).borderColor")
    assert outline == "rgb(239, 68, 68)"
    issues = await canvas.app("app.issues()")
    assert [i["field"] for i in issues["sample"]] == ["cfg"]
    assert await canvas.app("app.activeJobs()") == []
    assert await canvas.page.locator(".toast.error").count() == 1
    await canvas.shot("validation-error")
    # Fixing the value clears the mark on that input.
    await canvas.node("sample").locator('input[name="cfg"]').fill("5")
    await canvas.page.locator('.react-flow__node[data-id="sample"] .gnode.invalid').wait_for(
        state="detached"
    )
    assert canvas.unexpected_errors() == []
