"""The server on the real Stable Diffusion nodes and the built-in tiny model."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from aiohttp import FormData

from graph import Registry
from service import make_app
from tests.server_testkit import (
    make_config,
    messages_until_finished,
    next_message,
    owned_client,
    submit,
)

REPO = Path(__file__).resolve().parent.parent
if (
    not (REPO / "workflows" / "txt2img.json").is_file()
    or not (REPO / "nodes" / "load_checkpoint.py").is_file()
):
    pytest.skip("the SD nodes or workflows/txt2img.json are missing", allow_module_level=True)

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def sd_registry() -> Registry:
    return Registry.from_package("nodes")


async def _client(aiohttp_client, tmp_path, registry):
    config = make_config(tmp_path, workflows_dir=REPO / "workflows")
    return await owned_client(aiohttp_client, make_app(config, registry=registry))


async def _workflow(client, steps: int, seed: int) -> dict:
    wf = await (await client.get("/api/workflows/txt2img")).json()
    wf["nodes"]["sample"]["inputs"].update(steps=steps, seed=seed)
    return wf


@pytest.mark.slow
async def test_real_job_events_cache_and_png_roundtrip(aiohttp_client, tmp_path, sd_registry):
    client = await _client(aiohttp_client, tmp_path, sd_registry)
    schema = await (await client.get("/api/nodes")).json()
    models = await (await client.get("/api/models")).json()
    assert "builtin/tiny-random" in models["checkpoints"]
    assert {"LoadCheckpoint", "Sample", "SaveImage"} <= set(schema["nodes"])
    ws = await client.ws_connect("/api/ws")
    await next_message(ws)

    job = await submit(client, await _workflow(client, steps=3, seed=1))
    got = await messages_until_finished(ws, job, timeout=120)
    kinds = [m["type"] for m in got if m.get("job") == job]
    assert kinds[:2] == ["queued", "run_started"] and kinds[-1] == "run_finished"
    assert got[-1]["status"] == "ok", [m for m in got if m["type"] == "error"]
    progress = [m for m in got if m["type"] == "progress"]
    steps = [p["step"] for p in progress]  # unsent progress may be coalesced
    assert steps == sorted(set(steps)) and steps[-1] == 3
    assert any((p["preview"] or "").startswith("data:image/jpeg;base64,") for p in progress)
    detail = await (await client.get(f"/api/jobs/{job}")).json()
    [image] = detail["files"]
    png = await (await client.get(image["url"])).read()
    assert png.startswith(b"\x89PNG")

    # a seed-only change runs sampling, decoding and saving; the rest comes from the cache
    again = await submit(client, await _workflow(client, steps=3, seed=2))
    got = await messages_until_finished(ws, again, timeout=120)
    started = next(m for m in got if m["type"] == "run_started")
    assert started["to_run"] == ["sample", "decode", "save"]
    assert got[-1]["status"] == "ok"

    # the saved PNG carries its workflow: dropping it back gives the workflow
    form = FormData()
    form.add_field("file", png, filename="result.png", content_type="image/png")
    body = await (await client.post("/api/files/input?store=false", data=form)).json()
    assert body["workflow"]["nodes"]["sample"]["inputs"]["seed"] == 1
    assert json.dumps(body["workflow"]["nodes"]) == json.dumps(detail["workflow"]["nodes"])
    await ws.close()


@pytest.mark.slow
async def test_real_job_interrupted_mid_sampling(aiohttp_client, tmp_path, sd_registry):
    client = await _client(aiohttp_client, tmp_path, sd_registry)
    ws = await client.ws_connect("/api/ws")
    await next_message(ws)
    job = await submit(client, await _workflow(client, steps=150, seed=3))
    while True:
        m = await next_message(ws, 120)
        if m["type"] == "progress" and m["step"] >= 2:
            break
    await client.delete(f"/api/jobs/{job}")
    got = await messages_until_finished(ws, job, timeout=60)
    assert got[-1]["status"] == "interrupted"
    assert max([m["step"] for m in got if m["type"] == "progress"], default=2) < 150
    detail = await (await client.get(f"/api/jobs/{job}")).json()
    assert detail["status"] == "interrupted" and detail["files"] == []
    assert detail["nodes"]["sample"]["status"] == "interrupted"
    await ws.close()


@pytest.mark.slow
async def test_uploaded_image_feeds_load_image(aiohttp_client, tmp_path, sd_registry):
    import io

    from PIL import Image

    client = await _client(aiohttp_client, tmp_path, sd_registry)
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 30, 30)).save(buf, format="JPEG")
    form = FormData()
    form.add_field("file", buf.getvalue(), filename="photo.jpg")
    name = (await (await client.post("/api/files/input", data=form)).json())["name"]
    assert name in (await (await client.get("/api/models")).json())["input_images"]

    wf = await _workflow(client, steps=2, seed=5)
    nodes = wf["nodes"]
    nodes["image"] = {"type": "LoadImage", "inputs": {"file": name}}
    nodes["encode"] = {
        "type": "VAEEncode",
        "inputs": {
            "vae": {"node": "checkpoint", "output": "vae"},
            "image": {"node": "image", "output": "image"},
        },
    }
    nodes["sample"]["inputs"].update(latent={"node": "encode", "output": "latent"}, denoise=0.5)
    del nodes["latent"]
    job = await submit(client, wf)
    detail = None
    for _ in range(600):
        detail = await (await client.get(f"/api/jobs/{job}")).json()
        if detail["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.1)
    assert detail["status"] == "ok", detail["error"]
    assert detail["nodes"]["image"]["status"] == "executed"
    # a name that is not in the input folder is refused before queueing
    nodes["image"]["inputs"]["file"] = "../outside.png"
    resp = await client.post("/api/jobs", json={"workflow": wf})
    [problem] = (await resp.json())["error"]["details"]
    assert (problem["node_id"], problem["code"]) == ("image", "not_in_choices")


@pytest.mark.slow
async def test_cli_and_server_write_the_same_png_bytes(aiohttp_client, tmp_path, sd_registry):
    """Determinism: one workflow and seed give byte-identical PNGs from run.py and the
    server (pixels and the embedded workflow alike)."""
    client = await _client(aiohttp_client, tmp_path / "srv", sd_registry)
    workflow = await _workflow(client, steps=3, seed=7)
    job = await submit(client, workflow)
    for _ in range(600):
        detail = await (await client.get(f"/api/jobs/{job}")).json()
        if detail["status"] not in ("queued", "running"):
            break
        await asyncio.sleep(0.2)
    assert detail["status"] == "ok", detail["error"]
    server_png = await (await client.get(detail["files"][0]["url"])).read()

    wf_file = tmp_path / "wf.json"
    wf_file.write_text(json.dumps(workflow))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(REPO / "run.py"),
        str(wf_file),
        "--json",
        "--threads",
        "1",
        "--data",
        str(tmp_path / "cli"),
        "--models",
        str(REPO / "models"),
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=300)
    assert proc.returncode == 0
    cli_png = Path(json.loads(out)["runs"][0]["files"][0]).read_bytes()
    assert cli_png == server_png
