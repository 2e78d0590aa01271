"""The server applies node modes and value links as the engine does: a bypassed node runs as
the graph without it, a muted output is refused, a value from a primitive node is budgeted."""

from __future__ import annotations

from graph import Engine, Workspace
from nodes import primitive_int, primitive_seed
from tests.server_testkit import (
    make_config,
    make_registry,
    make_test_app,
    owned_client,
    submit,
    txt2img,
    wait_status,
)


async def _client(aiohttp_client, tmp_path):
    config = make_config(tmp_path)
    registry = make_registry()
    registry.add_module(primitive_int)
    registry.add_module(primitive_seed)
    engine = Engine(registry, Workspace.at(config.data_dir, config.models_dir).ensure())
    return await owned_client(aiohttp_client, make_test_app(config, engine))


async def test_modes_and_value_links_through_the_api(aiohttp_client, tmp_path):
    client = await _client(aiohttp_client, tmp_path)
    wf = txt2img()
    wf["nodes"]["enc2"] = {
        "type": "TEncode",
        "mode": "bypass",  # passes its MODEL-typed input on: sample reads load directly
        "inputs": {"model": {"node": "load", "output": "model"}, "text": "ignored"},
    }
    wf["nodes"]["sample"]["inputs"]["model"] = {"node": "enc2", "output": "cond"}
    wf["nodes"]["seed"] = {"type": "Seed", "inputs": {"value": 2**64 - 1}}
    wf["nodes"]["sample"]["inputs"]["seed"] = {"node": "seed", "output": "value"}
    job = await wait_status(client, await submit(client, wf), ("ok",))
    assert "enc2" not in job["nodes"] and job["nodes"]["sample"]["status"] == "executed"
    detail = await (await client.get(f"/api/jobs/{job['id']}")).json()
    assert detail["workflow"]["nodes"]["enc2"]["mode"] == "bypass"  # kept as submitted

    muted = txt2img()
    muted["nodes"]["save"]["mode"] = "mute"
    resp = await client.post("/api/jobs", json={"workflow": muted})
    details = (await resp.json())["error"]["details"]
    assert resp.status == 400 and [d["code"] for d in details] == ["no_output"]

    steps = txt2img()
    steps["nodes"]["n"] = {"type": "Int", "inputs": {"value": 201}}
    steps["nodes"]["sample"]["inputs"]["steps"] = {"node": "n", "output": "value"}
    resp = await client.post("/api/jobs", json={"workflow": steps})
    err = (await resp.json())["error"]
    assert resp.status == 400 and err["type"] == "budget_exceeded"
    assert {(d["node_id"], d["field"]) for d in err["details"]} == {("sample", "steps")}
