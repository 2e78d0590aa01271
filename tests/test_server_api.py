"""Every endpoint's normal answers, validation errors, budgets, idempotency, limits."""

from __future__ import annotations

import io
import json

from aiohttp import FormData
from PIL import Image, PngImagePlugin

from tests.server_testkit import (
    CHECKPOINTS,
    NODES,
    make_config,
    make_test_app,
    owned_client,
    submit,
    txt2img,
    wait_status,
)


async def _client(aiohttp_client, tmp_path, **overrides):
    return await owned_client(aiohttp_client, make_test_app(make_config(tmp_path, **overrides)))


def _png(size=(16, 16), workflow: str | None = None) -> bytes:
    info = PngImagePlugin.PngInfo()
    if workflow is not None:
        info.add_text("workflow", workflow)
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


async def test_nodes_schema(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    body = await (await client.get("/api/nodes")).json()
    assert set(body["nodes"]) == {n.__name__ for n in NODES}
    load = body["nodes"]["TLoad"]
    [name] = load["inputs"]
    assert name["widget"] == {"kind": "select", "choices": CHECKPOINTS, "source": "checkpoints"}
    sample = {i["name"]: i for i in body["nodes"]["TSample"]["inputs"]}
    assert sample["model"]["link_only"] and "TVALUE" in sample["model"]["accepts"]
    assert sample["seed"]["widget"]["kind"] == "seed"
    assert sample["steps"]["widget"]["max"] == 10000
    assert body["nodes"]["TSave"]["output_node"] is True
    assert body["types"]["TVALUE"] == {"color": "#123456"}
    assert "TVALUE" in body["compatibility"]["TVALUE"]


async def test_models(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    body = await (await client.get("/api/models")).json()
    assert body == {"checkpoints": CHECKPOINTS, "files": [], "native_sizes": {}}


async def test_workflows_list_and_get(aiohttp_client, tmp_path):
    folder = tmp_path / "workflows"
    folder.mkdir()
    (folder / "txt2img.json").write_text(json.dumps(txt2img()))
    (folder / "notes.txt").write_text("not a workflow")
    client = await _client(aiohttp_client, tmp_path)
    assert await (await client.get("/api/workflows")).json() == {"workflows": ["txt2img"]}
    got = await client.get("/api/workflows/txt2img")
    assert got.status == 200 and (await got.json()) == txt2img()
    assert (await client.get("/api/workflows/txt2img.json")).status == 200
    missing = await client.get("/api/workflows/nope")
    assert missing.status == 404
    assert (await missing.json())["error"]["type"] == "not_found"
    for bad in ("..%2Fsecret", "%2e%2e", ".hidden"):
        assert (await client.get(f"/api/workflows/{bad}")).status in (400, 404)


async def test_status(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    body = await (await client.get("/api/status")).json()
    assert body["queue"] == [] and body["running"] == []
    assert body["workers"] == [{"name": "inprocess", "job": None}]
    assert body["worker"]["kind"] == "in-process"
    assert body["budgets"]["max_steps"] == 200
    assert body["canvas_built"] is False


async def test_submit_get_and_page_jobs(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    ids = [await submit(client, txt2img(seed=s, steps=1)) for s in range(5)]
    await wait_status(client, ids[-1], ("ok",))
    page1 = await (await client.get("/api/jobs?limit=2")).json()
    assert [j["id"] for j in page1["jobs"]] == ids[::-1][:2]
    assert set(page1["jobs"][0]) >= {
        "id",
        "status",
        "created",
        "started",
        "finished",
        "client_id",
        "files",
        "error",
    }
    assert "workflow" not in page1["jobs"][0]
    page2 = await (await client.get(f"/api/jobs?limit=2&before={page1['next']}")).json()
    assert [j["id"] for j in page2["jobs"]] == ids[::-1][2:4]
    page3 = await (await client.get(f"/api/jobs?limit=2&before={page2['next']}")).json()
    assert [j["id"] for j in page3["jobs"]] == [ids[0]] and page3["next"] is None
    other = (await (await client.post("/api/clients")).json())["client_id"]
    theirs = await (await client.get("/api/jobs", headers={"X-Client-Id": other})).json()
    assert theirs["jobs"] == []
    detail = await (await client.get(f"/api/jobs/{ids[0]}")).json()
    assert detail["workflow"]["nodes"]["sample"]["inputs"]["seed"] == 0
    assert (await client.get("/api/jobs/unknown")).status == 404
    assert (await client.get("/api/jobs?limit=x")).status == 400
    assert (await client.get("/api/jobs?status=done")).status == 400


async def test_invalid_workflow_lists_every_problem(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    wf = txt2img()
    wf["nodes"]["sample"]["inputs"]["steps"] = 0  # out of range
    wf["nodes"]["load"]["inputs"]["name"] = "../../etc/passwd"  # not a listed checkpoint
    wf["nodes"]["enc"]["inputs"]["model"] = {"node": "ghost", "output": "model"}
    wf["nodes"]["x"] = {"type": "NoSuchNode", "inputs": {}}
    wf["nodes"]["lat"]["inputs"]["width"] = float("nan")
    resp = await client.post(
        "/api/jobs", data=json.dumps({"workflow": wf}), headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    err = (await resp.json())["error"]
    assert err["type"] == "invalid_workflow"
    found = {(d["node_id"], d["field"], d["code"]) for d in err["details"]}
    assert ("sample", "steps", "out_of_range") in found
    assert ("load", "name", "not_in_choices") in found
    assert ("enc", "model", "link_missing_node") in found
    assert ("x", None, "unknown_node_type") in found
    assert any(d[0] == "lat" and d[1] == "width" for d in found)
    assert all(set(d) == {"node_id", "field", "code", "message"} for d in err["details"])
    assert (await (await client.get("/api/jobs")).json())["jobs"] == []  # nothing queued


async def test_cycle_type_mismatch_and_no_output(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    wf = txt2img()
    wf["nodes"]["enc"]["inputs"]["model"] = {"node": "sample", "output": "latent"}
    resp = await client.post("/api/jobs", json={"workflow": wf})
    codes = {d["code"] for d in (await resp.json())["error"]["details"]}
    assert "cycle" in codes
    wf = txt2img()
    del wf["nodes"]["save"]
    resp = await client.post("/api/jobs", json={"workflow": wf})
    assert {d["code"] for d in (await resp.json())["error"]["details"]} == {"no_output"}
    resp = await client.post("/api/jobs", json={"workflow": {"version": 2, "nodes": {}}})
    err = (await resp.json())["error"]
    assert resp.status == 400 and err["type"] == "invalid_workflow"
    assert err["details"][0]["code"] == "bad_format" and "version" in err["message"]


async def test_budgets(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)

    async def refused(wf):
        resp = await client.post("/api/jobs", json={"workflow": wf})
        assert resp.status == 400
        err = (await resp.json())["error"]
        assert err["type"] == "budget_exceeded"
        return {(d["node_id"], d["field"]) for d in err["details"]}

    # each field is within its own limit; together they are not
    assert await refused(txt2img(width=4096, height=4096, batch_size=2)) == {("lat", "width")}
    assert await refused(txt2img(steps=201)) == {("sample", "steps")}
    assert await refused(txt2img(text="x" * 8001)) == {("enc", "text")}
    wf = txt2img()
    for i in range(500):
        wf["nodes"][f"n{i}"] = {"type": "TLatent", "inputs": {}}
    assert await refused(wf) == {(None, None)}
    assert (await client.post("/api/jobs", json={"workflow": txt2img(steps=200)})).status == 200


async def test_body_limits_and_malformed_json(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path, max_body_bytes=10_000)
    big = json.dumps({"workflow": txt2img(text="x" * 20_000)})
    resp = await client.post("/api/jobs", data=big, headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert (await resp.json())["error"]["type"] == "body_too_large"
    for body, kind in (
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b'{"client_id": "x"}', "no_workflow"),
        (b"\xff\xfe", "invalid_json"),
    ):
        resp = await client.post(
            "/api/jobs", data=body, headers={"Content-Type": "application/json"}
        )
        assert resp.status == 400, body
        assert (await resp.json())["error"]["type"] == kind
    resp = await client.post("/api/jobs", json={"workflow": txt2img(), "client_id": "a b/c"})
    assert resp.status == 400


async def test_idempotency_key(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    first = await submit(client, txt2img(), idempotency_key="k-1")
    other = (await (await client.post("/api/clients")).json())["client_id"]
    again = await submit(client, txt2img(), idempotency_key="k-1")
    assert first == again
    resp = await client.post(
        "/api/jobs",
        json={"workflow": txt2img(), "client_id": other, "idempotency_key": "k-1"},
    )
    assert resp.status == 409  # another client may not take over the key
    via_header = await client.post(
        "/api/jobs", json={"workflow": txt2img(seed=7)}, headers={"Idempotency-Key": "k-2"}
    )
    again = await client.post(
        "/api/jobs", json={"workflow": txt2img(seed=7)}, headers={"Idempotency-Key": "k-2"}
    )
    assert (await via_header.json())["id"] == (await again.json())["id"]
    listed = (await (await client.get("/api/jobs")).json())["jobs"]
    assert len(listed) == 2


async def test_queue_full_answers_429(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path, max_queue=2)
    blocker = await submit(client, txt2img(steps=100, delay=0.02))
    await wait_status(client, blocker, ("running",))
    await submit(client, txt2img(seed=2))
    await submit(client, txt2img(seed=3))
    resp = await client.post("/api/jobs", json={"workflow": txt2img(seed=4)})
    assert resp.status == 429 and resp.headers["Retry-After"]
    assert (await resp.json())["error"]["type"] == "queue_full"
    await client.delete(f"/api/jobs/{blocker}")


async def test_upload_png_with_embedded_workflow(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    form = FormData()
    form.add_field(
        "file",
        _png(workflow=json.dumps(txt2img(seed=42))),
        filename="../../evil.png",
        content_type="image/png",
    )
    resp = await client.post("/api/files/input", data=form)
    assert resp.status == 200
    body = await resp.json()
    assert body["workflow"]["nodes"]["sample"]["inputs"]["seed"] == 42
    assert body["original_name"].endswith("evil.png")  # metadata only
    name = body["name"]
    assert "/" not in name and name.endswith(".png")
    assert (tmp_path / "data" / "input" / name).is_file()
    assert not (tmp_path / "evil.png").exists()
    got = await client.get(f"/api/files/input/{name}")
    assert got.status == 200 and got.headers["X-Content-Type-Options"] == "nosniff"
    # the same bytes again keep one file
    form = FormData()
    form.add_field("file", _png(workflow=json.dumps(txt2img(seed=42))), filename="b.png")
    assert (await (await client.post("/api/files/input", data=form)).json())["name"] == name


async def test_upload_jpeg_and_extract_only(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    buf = io.BytesIO()
    Image.new("RGB", (20, 10)).save(buf, format="JPEG")
    form = FormData()
    form.add_field("file", buf.getvalue(), filename="photo.png")  # the name lies
    body = await (await client.post("/api/files/input", data=form)).json()
    assert body["format"] == "jpeg" and body["name"].endswith(".jpg")
    assert (body["width"], body["height"]) == (20, 10) and body["workflow"] is None
    form = FormData()
    form.add_field("file", _png(workflow="{broken"), filename="x.png")
    body = await (await client.post("/api/files/input?store=false", data=form)).json()
    assert body["name"] is None and body["workflow"] is None
    assert "not valid" in body["workflow_error"]
    assert list((tmp_path / "data" / "input").iterdir()) == [
        tmp_path / "data" / "input" / (await _stored_jpeg(tmp_path))
    ]


async def _stored_jpeg(tmp_path):
    return next(p.name for p in (tmp_path / "data" / "input").iterdir())


async def test_canvas_missing_and_present(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    resp = await client.get("/")
    assert resp.status == 503
    assert "npm ci && npm run build" in await resp.text()
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>canvas</title>")
    (dist / "assets" / "app-1234.js").write_text("console.log(1)")
    resp = await client.get("/")  # built while the server runs: no restart needed
    assert resp.status == 200 and "canvas" in await resp.text()
    js = await client.get("/assets/app-1234.js")
    assert js.status == 200 and "immutable" in js.headers["Cache-Control"]
    assert (await client.get("/assets/missing.js")).status == 404
    assert (await client.get("/api/nothing")).status == 404
    assert (await (await client.get("/api/nothing")).json())["error"]["type"] == "not_found"
