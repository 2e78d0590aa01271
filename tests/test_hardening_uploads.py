"""Uploads (issue 11, "Stalls" and "Smaller"): parsed off the event loop, PNG text read
without decoding frames and within bounds, every multipart part counted, our own large
workflows round-trip; the Origin check includes the scheme."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from aiohttp import FormData
from PIL import Image

import service.routes_files as routes_files
from graph.workflow import load_workflow_file
from tests.hardening_kit import (
    animated_png,
    assert_nothing_unhandled,
    png_chunk,
    png_with_workflow,
)
from tests.server_testkit import make_config, make_test_app, txt2img


async def _client(aiohttp_client, tmp_path, **overrides):
    return await aiohttp_client(make_test_app(make_config(tmp_path, **overrides)))


def _form(data: bytes, *before: tuple[str, bytes]) -> FormData:
    form = FormData()
    for name, value in before:
        form.add_field(name, value.decode())
    form.add_field("file", data, filename="a.png", content_type="image/png")
    return form


async def test_status_is_answered_while_an_upload_is_parsed(aiohttp_client, tmp_path, monkeypatch):
    client = await _client(aiohttp_client, tmp_path)
    parsing, answered = threading.Event(), threading.Event()
    seen: dict = {}
    real = routes_files.read_png_text

    def slow_read(*args, **kwargs):
        parsing.set()
        seen["thread"] = threading.current_thread()
        seen["answered_meanwhile"] = answered.wait(5)  # the loop must stay free meanwhile
        return real(*args, **kwargs)

    monkeypatch.setattr(routes_files, "read_png_text", slow_read)
    data = png_with_workflow(json.dumps(txt2img(seed=5)))
    task = asyncio.create_task(client.post("/api/files/input", data=_form(data)))
    while not parsing.is_set():
        await asyncio.sleep(0.01)
    status = await asyncio.wait_for(client.get("/api/status"), 10)
    assert status.status == 200
    answered.set()
    resp = await task
    assert resp.status == 200
    assert (await resp.json())["workflow"]["nodes"]["sample"]["inputs"]["seed"] == 5
    assert seen["thread"] is not threading.main_thread()
    assert seen["answered_meanwhile"]


def test_text_after_the_frames_is_read_without_decoding_them(monkeypatch):
    data = animated_png(40, trailing_text=json.dumps(txt2img(seed=3)))

    def no_decoding(self, *args, **kwargs):
        raise AssertionError("a frame was decoded")

    monkeypatch.setattr(Image.Image, "load", no_decoding)
    monkeypatch.setattr(Image.Image, "seek", no_decoding)
    text = routes_files.read_png_text(data, keys=("workflow",))
    assert json.loads(text["workflow"])["nodes"]["sample"]["inputs"]["seed"] == 3


async def test_animated_upload_gives_its_trailing_workflow(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    data = animated_png(30, trailing_text=json.dumps(txt2img(seed=8)))
    body = await (await client.post("/api/files/input", data=_form(data))).json()
    assert body["format"] == "png" and body["workflow"]["nodes"]["sample"]["inputs"]["seed"] == 8


def test_chunk_walk_and_text_are_bounded():
    from graph.pngmeta import MAX_CHUNKS, PngTextError, read_png_text

    head = png_with_workflow("{}")
    ihdr_end = 8 + 25
    many = head[:ihdr_end] + png_chunk(b"abCd", b"") * (MAX_CHUNKS + 1) + head[ihdr_end:]
    with pytest.raises(PngTextError, match="chunks"):
        read_png_text(many)
    bomb = png_with_workflow("x" * 2_000_000)  # compresses to a few KB
    with pytest.raises(PngTextError, match="more than"):
        read_png_text(bomb, max_bytes=1_000_000)
    assert len(read_png_text(bomb)["workflow"]) == 2_000_000


async def test_a_large_workflow_written_by_save_png_round_trips(aiohttp_client, tmp_path):
    """Over Pillow's 1 MB text-chunk limit: our own files must always load back."""
    from graph.workspace import Workspace
    from nodes.sd.images import save_png

    wf = txt2img(seed=11)
    wf["ui"] = {"notes": " ".join(f"note {i}" for i in range(200_000))}  # ~1.4 MB
    text = json.dumps(wf, separators=(",", ":"))
    assert len(text) > 1_200_000
    workspace = Workspace.at(tmp_path / "data", tmp_path / "models").ensure()
    path = save_png(workspace, "output", "big", Image.new("RGB", (8, 8)), {"workflow": text})
    assert load_workflow_file(path).nodes["sample"].inputs["seed"] == 11  # the CLI's reader
    client = await _client(aiohttp_client, tmp_path)
    resp = await client.post("/api/files/input", data=_form(path.read_bytes()))
    body = await resp.json()
    assert resp.status == 200, body
    assert body["workflow_error"] is None
    assert body["workflow"]["nodes"]["sample"]["inputs"]["seed"] == 11


async def test_every_multipart_part_counts_towards_the_limit(aiohttp_client, tmp_path, caplog):
    client = await _client(aiohttp_client, tmp_path, max_upload_bytes=1 << 20)
    png = png_with_workflow("{}")
    junk = ("junk", b"j" * (3 << 20))
    resp = await client.post("/api/files/input", data=_form(png, junk), chunked=True)
    assert resp.status == 413
    assert (await resp.json())["error"]["type"] == "body_too_large"
    small = ("note", b"hello")
    resp = await client.post("/api/files/input", data=_form(png, small), chunked=True)
    assert resp.status == 200
    assert_nothing_unhandled(caplog)


async def test_origin_with_another_scheme_is_another_site(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    for scheme, status in (("https", 403), ("http", 200)):
        origin = f"{scheme}://127.0.0.1:{client.port}"
        resp = await client.post(
            "/api/jobs", json={"workflow": txt2img()}, headers={"Origin": origin}
        )
        assert resp.status == status, origin
    resp = await client.post(
        "/api/jobs", json={"workflow": txt2img()}, headers={"Origin": "http://[::1"}
    )
    assert resp.status == 403
