"""Jobs are private to the client id the server issued; the operator token sees all."""

from __future__ import annotations

from service.clients import ClientIds
from tests.server_testkit import (
    make_config,
    make_test_app,
    next_message,
    owned_client,
    submit,
    txt2img,
    wait_status,
)


async def _new_id(client) -> str:
    resp = await client.post("/api/clients")
    assert resp.status == 200
    return (await resp.json())["client_id"]


async def test_jobs_are_private_to_their_client(aiohttp_client, tmp_path):
    client = await owned_client(aiohttp_client, make_test_app(make_config(tmp_path)))
    a = client.client_id
    b = await _new_id(client)
    as_b = {"X-Client-Id": b}
    job = await submit(client, txt2img(steps=200, delay=0.02))
    await wait_status(client, job, ("running",))

    listed = await (await client.get("/api/jobs", headers=as_b)).json()
    assert listed["jobs"] == []
    for ask in (f"/api/jobs?client_id={a}", "/api/jobs?status=running"):
        theirs = await (await client.get(ask, headers=as_b)).json()
        assert a not in str(theirs)  # never another client's jobs or id
    assert (await client.get(f"/api/jobs/{job}", headers=as_b)).status == 404
    assert (await client.delete(f"/api/jobs/{job}", headers=as_b)).status == 404
    assert (await (await client.get(f"/api/jobs/{job}")).json())["status"] == "running"

    ws_b = await client.ws_connect(f"/api/ws?client_id={b}")
    snapshot = await next_message(ws_b)
    assert snapshot["client_id"] == b and snapshot["jobs"] == []
    assert a not in str(snapshot)
    await ws_b.close()

    mine = (await (await client.get("/api/jobs")).json())["jobs"]
    assert [(j["id"], j["client_id"]) for j in mine] == [(job, a)]
    assert (await client.delete(f"/api/jobs/{job}")).status == 200
    assert (await wait_status(client, job, ("interrupted",)))["status"] == "interrupted"


async def test_client_ids_are_issued_and_one_rule_checks_them(aiohttp_client, tmp_path):
    app = make_test_app(make_config(tmp_path))
    client = await aiohttp_client(app)
    issued = await _new_id(client)
    again = await client.post("/api/clients", json={"client_id": issued})
    assert (await again.json())["client_id"] == issued  # a stored id is confirmed
    forged = "A" * 44
    fresh = await (await client.post("/api/clients", json={"client_id": forged})).json()
    assert fresh["client_id"] not in (forged, issued)
    for bad in ("x", "client-aaaa", forged, issued[:-1] + ("A" if issued[-1] != "A" else "B")):
        post = await client.post("/api/jobs", json={"workflow": txt2img(), "client_id": bad})
        assert post.status == 400 and (await post.json())["error"]["type"] == "bad_client_id"
        assert (await client.get(f"/api/ws?client_id={bad}")).status == 400
        assert (await client.get("/api/jobs", headers={"X-Client-Id": bad})).status == 400
    # without an id, POST issues one and says which
    body = await (await client.post("/api/jobs", json={"workflow": txt2img()})).json()
    assert ClientIds.at(tmp_path / "data").valid(body["client_id"])
    listed = await client.get("/api/jobs", headers={"X-Client-Id": body["client_id"]})
    assert [j["id"] for j in (await listed.json())["jobs"]] == [body["id"]]
    nobody = await client.get("/api/jobs")
    assert nobody.status == 400 and (await nobody.json())["error"]["type"] == "no_client_id"


async def test_the_operator_token_sees_every_job(aiohttp_client, tmp_path):
    token = "operator-secret-123"
    client = await aiohttp_client(make_test_app(make_config(tmp_path, auth_token=token)))
    operator = {"Authorization": f"Bearer {token}"}
    q = f"token={token}"  # how a browser authenticates: not the operator
    a = (await (await client.post(f"/api/clients?{q}")).json())["client_id"]
    b = (await (await client.post(f"/api/clients?{q}")).json())["client_id"]
    jobs = {}
    for cid in (a, b):
        resp = await client.post(f"/api/jobs?{q}", json={"workflow": txt2img(), "client_id": cid})
        jobs[cid] = (await resp.json())["id"]
    everything = (await (await client.get("/api/jobs", headers=operator)).json())["jobs"]
    assert {(j["id"], j["client_id"]) for j in everything} == {(jobs[a], a), (jobs[b], b)}
    only_b = await client.get(f"/api/jobs?client_id={b}", headers=operator)
    assert [j["id"] for j in (await only_b.json())["jobs"]] == [jobs[b]]
    assert (await client.get(f"/api/jobs/{jobs[a]}", headers=operator)).status == 200
    seen_by_a = await client.get(f"/api/jobs?{q}", headers={"X-Client-Id": a})
    assert [j["id"] for j in (await seen_by_a.json())["jobs"]] == [jobs[a]]
    assert (await client.get(f"/api/jobs/{jobs[b]}?{q}", headers={"X-Client-Id": a})).status == 404
