"""The bad inputs of the security checklist (../shared/notes/security.md, section 2)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import struct
import zlib

import pytest
from aiohttp import FormData, WSMsgType, WSServerHandshakeError
from PIL import Image

import server
from service import ConfigError
from tests.server_testkit import (
    make_config,
    make_test_app,
    owned_client,
    submit,
    txt2img,
    wait_status,
)

SECRET = "TOP-SECRET-CONTENT"


async def _client(aiohttp_client, tmp_path, **overrides):
    return await owned_client(aiohttp_client, make_test_app(make_config(tmp_path, **overrides)))


async def raw_request(client, line: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    """Send a request line exactly as written (no client-side URL normalisation)."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    head = {"Host": f"127.0.0.1:{client.port}", "Connection": "close", **(headers or {})}
    writer.write(
        (line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n").encode(
            "latin-1"
        )
    )
    await writer.drain()
    data = await reader.read()
    writer.close()
    status = int(data.split(b" ", 2)[1])
    return status, data.decode("latin-1")


# -- A. transport and auth ----------------------------------------------------------


async def test_foreign_host_is_refused(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    for host in ("evil.example", "evil.example:8188", "127.0.0.1.evil.example"):
        resp = await client.get("/api/nodes", headers={"Host": host})
        assert resp.status == 403, host
        assert (await resp.json())["error"]["type"] == "bad_host"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"  # on errors too
    for host in ("localhost:8188", "127.0.0.1", "[::1]:8188"):
        assert (await client.get("/api/models", headers={"Host": host})).status == 200, host
    client2 = await _client(aiohttp_client, tmp_path / "b", allowed_hosts=("gpu-box.lan",))
    assert (await client2.get("/api/models", headers={"Host": "gpu-box.lan:80"})).status == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": "http://127.0.0.1:1"},  # another port is another origin
        {"Origin": "file://"},
        {"Sec-Fetch-Site": "cross-site"},
    ],
)
async def test_cross_origin_state_changes_are_refused(aiohttp_client, tmp_path, headers):
    client = await _client(aiohttp_client, tmp_path)
    resp = await client.post("/api/jobs", json={"workflow": txt2img()}, headers=headers)
    assert resp.status == 403
    assert (await resp.json())["error"]["type"] == "cross_origin"
    assert (await (await client.get("/api/jobs")).json())["jobs"] == []  # nothing queued
    job = await submit(client, txt2img(steps=100, delay=0.02))
    assert (await client.delete(f"/api/jobs/{job}", headers=headers)).status == 403
    form = FormData()
    form.add_field("file", b"x", filename="a.png")
    assert (await client.post("/api/files/input", data=form, headers=headers)).status == 403
    with pytest.raises(WSServerHandshakeError) as err:
        await client.ws_connect("/api/ws", headers=headers)
    assert err.value.status == 403
    await client.delete(f"/api/jobs/{job}")


async def test_same_origin_and_configured_origins_pass(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path, allowed_origins=("http://localhost:5173",))
    own = f"http://127.0.0.1:{client.port}"
    for origin in (own, "http://localhost:5173"):
        resp = await client.post(
            "/api/jobs", json={"workflow": txt2img()}, headers={"Origin": origin}
        )
        assert resp.status == 200, origin
    ws = await client.ws_connect("/api/ws", headers={"Origin": own})
    await ws.close()


async def test_token_required_when_configured(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path, auth_token="s3cret-token")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
        resp = await client.get("/api/nodes", headers=headers)
        assert resp.status == 401
        assert resp.headers["WWW-Authenticate"] == "Bearer"
    assert (await client.get("/")).status == 401
    ok = {"Authorization": "Bearer s3cret-token"}
    assert (await client.get("/api/nodes", headers=ok)).status == 200
    assert (await client.post("/api/jobs", json={"workflow": txt2img()}, headers=ok)).status == 200
    with pytest.raises(WSServerHandshakeError) as err:
        await client.ws_connect("/api/ws")
    assert err.value.status == 401
    ws = await client.ws_connect("/api/ws?token=s3cret-token")
    assert (await ws.receive_json())["type"] == "snapshot"
    await ws.close()
    # opening the page once with ?token= sets a strict cookie for the canvas
    first = await client.get("/?token=s3cret-token")
    assert first.status == 503  # the canvas is not built in this test
    cookie = first.cookies["sdgraph_token"]
    assert cookie["httponly"] and cookie["samesite"] == "Strict"
    assert (await client.get("/api/models")).status == 200  # the cookie jar sends it


def test_open_bind_needs_token_or_insecure(tmp_path, capsys):
    with pytest.raises(ConfigError, match="--auth-token"):
        make_config(tmp_path, host="0.0.0.0").check_bind()
    make_config(tmp_path, host="0.0.0.0", auth_token="t").check_bind()
    make_config(tmp_path, host="0.0.0.0", insecure=True).check_bind()
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        make_config(tmp_path, host=host).check_bind()
    assert server.main(["--host", "0.0.0.0", "--data", str(tmp_path / "d")]) == 2
    assert "--insecure" in capsys.readouterr().err


async def test_body_over_limit_is_413(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path, max_body_bytes=1000, max_upload_bytes=2000)
    resp = await client.post(
        "/api/jobs", data=b"{" + b" " * 5000 + b"}", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 413
    form = FormData()
    form.add_field("file", b"\x89PNG" + b"0" * 5000, filename="a.png")
    assert (await client.post("/api/files/input", data=form)).status == 413


async def test_websocket_oversized_frame_closes_1009(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    ws = await client.ws_connect("/api/ws")
    await ws.receive_json()
    await ws.send_str("x" * 200_000)
    msg = await ws.receive()
    while msg.type == WSMsgType.TEXT:
        msg = await ws.receive()
    assert msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
    assert ws.close_code == 1009
    assert (await client.get("/api/models")).status == 200  # the server is fine


# -- B. files and paths -----------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/files/output/../secret.txt",
        "/api/files/output/%2e%2e/secret.txt",
        "/api/files/output/%2E%2E%2Fsecret.txt",
        "/api/files/output/..%2fsecret.txt",
        "/api/files/output/..%5csecret.txt",
        "/api/files/output/%252e%252e%252fsecret.txt",
        "/api/files/output/%2Fetc%2Fpasswd",
        "/api/files/output//etc/passwd",
        "/api/files/output/C:%5Cwindows%5Cwin.ini",
        "/api/files/output/a.png%00.txt",
        "/api/files/output/escape.png",  # a symlink out of the folder
        "/api/files/output/linkdir/secret.txt",  # a symlinked folder
        "/api/files/secrets/secret.txt",  # an unknown kind
        "/api/files/output/sub/../../secret.txt",
    ],
)
async def test_file_traversal_is_refused(aiohttp_client, tmp_path, path):
    client = await _client(aiohttp_client, tmp_path)
    data = tmp_path / "data"
    (data / "secret.txt").write_text(SECRET)
    os.symlink(data / "secret.txt", data / "output" / "escape.png")
    os.symlink(data, data / "output" / "linkdir")
    status, text = await raw_request(client, f"GET {path} HTTP/1.1")
    assert status in (400, 403, 404), (path, status)
    assert SECRET not in text


async def test_legitimate_odd_names_are_served(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    out = tmp_path / "data" / "output"
    Image.new("RGB", (4, 4)).save(out / "test..png")
    (out / "sub").mkdir()
    Image.new("RGB", (4, 4)).save(out / "sub" / "a b.png")
    assert (await client.get("/api/files/output/test..png")).status == 200
    assert (await client.get("/api/files/output/sub/a%20b.png")).status == 200
    status, _ = await raw_request(client, "GET /api/files/output/test..png HTTP/1.1")
    assert status == 200  # the raw helper of the traversal test does reach files


async def test_non_images_are_served_as_attachments(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    out = tmp_path / "data" / "output"
    (out / "evil.html").write_text("<script>alert(1)</script>")
    (out / "evil.svg").write_text("<svg onload='alert(1)'/>")
    for name in ("evil.html", "evil.svg"):
        resp = await client.get(f"/api/files/output/{name}")
        assert resp.status == 200
        assert resp.content_type == "application/octet-stream"
        assert resp.headers["Content-Disposition"] == "attachment"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert "sandbox" in resp.headers["Content-Security-Policy"]


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body))
            + kind
            + body
            + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _encoded(fmt: str, size=(8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buf, format=fmt)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("payload", "status", "kind"),
    [
        (
            b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>",
            415,
            "unsupported_media_type",
        ),
        (b"<html><script>alert(1)</script></html>", 415, "unsupported_media_type"),
        (_encoded("GIF"), 415, "unsupported_media_type"),
        (_encoded("BMP"), 415, "unsupported_media_type"),
        (_png_header_only(20000, 20000), 400, "image_too_large"),  # decompression bomb
        (_png_header_only(5000, 5000), 400, "image_too_large"),
        (_encoded("PNG", (64, 64))[:60], 400, "invalid_image"),  # truncated
    ],
)
async def test_bad_uploads(aiohttp_client, tmp_path, payload, status, kind):
    client = await _client(aiohttp_client, tmp_path)
    form = FormData()
    form.add_field("file", payload, filename="innocent.png", content_type="image/png")
    resp = await client.post("/api/files/input", data=form)
    assert resp.status == status
    assert (await resp.json())["error"]["type"] == kind
    assert list((tmp_path / "data" / "input").iterdir()) == []


async def test_upload_pixel_cap_and_form_errors(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path, max_upload_pixels=100)
    form = FormData()
    form.add_field("file", _encoded("WEBP", (16, 16)), filename="a.webp")
    resp = await client.post("/api/files/input", data=form)
    assert resp.status == 400 and (await resp.json())["error"]["type"] == "image_too_large"
    form = FormData()
    form.add_field("other", b"abc", filename="a.png")
    resp = await client.post("/api/files/input", data=form)
    assert resp.status == 400 and (await resp.json())["error"]["type"] == "bad_upload"
    resp = await client.post("/api/files/input", data=b"raw", headers={"Content-Type": "image/png"})
    assert resp.status == 400


# -- C. the workflow graph: choice inputs are the server's own lists --------------


async def test_choice_inputs_cannot_name_paths(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    for name in ("../../etc/passwd", "/etc/passwd", "tiny.safetensors\x00.txt", ""):
        resp = await client.post("/api/jobs", json={"workflow": txt2img(ckpt=name)})
        assert resp.status == 400
        [problem] = (await resp.json())["error"]["details"]
        assert (problem["node_id"], problem["field"], problem["code"]) == (
            "load",
            "name",
            "not_in_choices",
        )


@pytest.mark.parametrize(
    ("node", "field", "value"),
    [
        ("sample", "seed", 2**70),  # beyond 64 bits
        ("sample", "steps", True),  # a bool for an int
        ("lat", "width", "64"),  # a string for an int
        ("sample", "delay", float("inf")),
    ],
)
async def test_huge_integers_and_wrong_types(aiohttp_client, tmp_path, node, field, value):
    client = await _client(aiohttp_client, tmp_path)
    wf = txt2img()
    wf["nodes"][node]["inputs"][field] = value
    resp = await client.post(
        "/api/jobs", data=json.dumps({"workflow": wf}), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    details = (await resp.json())["error"]["details"]
    assert {(d["node_id"], d["field"]) for d in details} == {(node, field)}


async def test_unknown_job_ids_are_404(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    job = await submit(client, txt2img())
    await wait_status(client, job, ("ok",))
    for path in ("/api/jobs/0", "/api/jobs/" + "f" * 32, "/api/jobs/..%2f"):
        assert (await client.get(path)).status == 404
        assert (await client.delete(path)).status == 404
