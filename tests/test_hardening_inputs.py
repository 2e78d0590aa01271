"""Inputs that once ended in a 500 (issue 11, "Unhandled errors"): each is now a 4xx
with the usual error body, nothing is logged as unhandled, and the server answers after."""

from __future__ import annotations

import json

import pytest
from aiohttp import FormData, WSMsgType

from graph.workflow import WorkflowFormatError, parse_workflow
from tests.hardening_kit import HUGE, assert_nothing_unhandled, nested, png_with_workflow
from tests.server_testkit import make_config, make_test_app, owned_client, txt2img


async def _client(aiohttp_client, tmp_path, **overrides):
    return await owned_client(aiohttp_client, make_test_app(make_config(tmp_path, **overrides)))


async def assert_error(resp, status: int) -> dict:
    assert resp.status == status, await resp.text()
    body = await resp.json()
    assert set(body["error"]) == {"type", "message", "details"}
    return body["error"]


async def post_raw(client, text: str):
    return await client.post("/api/jobs", data=text, headers={"Content-Type": "application/json"})


async def upload(client, data: bytes):
    form = FormData()
    form.add_field("file", data, filename="a.png", content_type="image/png")
    return await client.post("/api/files/input?store=false", data=form)


@pytest.mark.parametrize(
    "body",
    [
        # as the seed, somewhere else in the workflow, and outside it
        json.dumps({"workflow": txt2img()}).replace('"seed": 1', f'"seed": {HUGE}'),
        json.dumps({"workflow": txt2img()}).replace('"x": 0', f'"x": -{HUGE}'),
        '{"workflow": {"version": 1, "nodes": {}}, "extra": ' + HUGE + "}",
    ],
)
async def test_huge_integers_in_a_job_are_400(aiohttp_client, tmp_path, caplog, body):
    client = await _client(aiohttp_client, tmp_path)
    assert HUGE in body
    error = await assert_error(await post_raw(client, body), 400)
    assert error["type"] == "invalid_json" and "digits" in error["message"]
    assert (await client.get("/api/status")).status == 200
    assert_nothing_unhandled(caplog)


async def test_deeply_nested_ui_in_a_job_is_400(aiohttp_client, tmp_path, caplog):
    client = await _client(aiohttp_client, tmp_path)
    wf = txt2img()
    wf["ui"] = nested(300)
    error = await assert_error(await post_raw(client, json.dumps({"workflow": wf})), 400)
    assert "nested deeper" in error["message"]
    # a body that fails Python's own recursion limit while decoding
    error = await assert_error(await post_raw(client, "[" * 100_000), 400)
    assert "nested deeper" in error["message"]
    assert (await client.get("/api/status")).status == 200
    assert_nothing_unhandled(caplog)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps(txt2img()).replace('"seed": 1', f'"seed": {HUGE}'),
        json.dumps({**txt2img(), "ui": nested(300)}),
    ],
)
async def test_bad_embedded_workflow_is_reported_not_500(aiohttp_client, tmp_path, caplog, text):
    client = await _client(aiohttp_client, tmp_path)
    resp = await upload(client, png_with_workflow(text))
    assert resp.status == 200  # the image is fine; its workflow is not
    body = await resp.json()
    assert body["workflow"] is None and "not valid" in body["workflow_error"]
    assert_nothing_unhandled(caplog)


@pytest.mark.parametrize("before", ["99999999999999999999", "-99999999999999999999", "1e3", HUGE])
async def test_out_of_range_cursor_is_400(aiohttp_client, tmp_path, caplog, before):
    client = await _client(aiohttp_client, tmp_path)
    error = await assert_error(await client.get("/api/jobs", params={"before": before}), 400)
    assert error["type"] == "bad_query"
    assert (await client.get("/api/jobs", params={"before": "9" * 18})).status == 200
    assert_nothing_unhandled(caplog)


@pytest.mark.parametrize("kind", ["output", "input", "temp"])
async def test_overlong_file_names_are_400(aiohttp_client, tmp_path, caplog, kind):
    client = await _client(aiohttp_client, tmp_path)
    for name in ("a" * 300 + ".png", "sub/" + "b" * 300, "é" * 200):
        error = await assert_error(await client.get(f"/api/files/{kind}/{name}"), 400)
        assert error["type"] == "bad_path"
    assert (await client.get(f"/api/files/{kind}/{'a' * 200}.png")).status == 404
    assert_nothing_unhandled(caplog)


async def test_websocket_nesting_bomb_closes_the_socket_cleanly(aiohttp_client, tmp_path, caplog):
    client = await _client(aiohttp_client, tmp_path)
    ws = await client.ws_connect("/api/ws")
    assert (await ws.receive_json())["type"] == "snapshot"
    await ws.send_str("[" * 60_000)
    msg = await ws.receive(timeout=5)
    assert msg.type == WSMsgType.CLOSE and msg.data == 1007
    await ws.close()
    # a ping on a fresh socket is still answered, and so is HTTP
    ws = await client.ws_connect("/api/ws")
    assert (await ws.receive_json())["type"] == "snapshot"
    await ws.send_str('{"type": "ping"}')
    assert (await ws.receive_json(timeout=5))["type"] == "pong"
    await ws.close()
    assert (await client.get("/api/status")).status == 200
    assert_nothing_unhandled(caplog)


def test_parse_workflow_refuses_what_cannot_be_serialized():
    """The parser itself refuses a decoded document the server could not store."""
    for doc in (
        {**txt2img(), "ui": nested(300)},
        {"version": 1, "nodes": {"a": {"type": "T", "inputs": {"seed": 10**5000}}}},
    ):
        with pytest.raises(WorkflowFormatError):
            parse_workflow(doc)
    wf = parse_workflow({**txt2img(), "ui": nested(50)})
    assert json.dumps(wf.model_dump(mode="json"))  # what is accepted serializes
