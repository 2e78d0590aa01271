"""The job queue end to end: websocket events, interrupt, cancel, isolation, cache,
failures, persistence across restarts, history retention."""

from __future__ import annotations

import asyncio

import pytest

from service import make_app
from service.state import SERVICES
from service.store import JobStore
from service.worker import InProcessWorker
from tests.server_testkit import (
    failing,
    make_config,
    make_engine,
    make_registry,
    make_test_app,
    messages_until_finished,
    next_message,
    owned_client,
    submit,
    txt2img,
    wait_status,
)


async def test_websocket_event_sequence_of_a_job(aiohttp_client, tmp_path):
    client = await owned_client(aiohttp_client, make_test_app(make_config(tmp_path)))
    ws = await client.ws_connect("/api/ws")
    snapshot = await next_message(ws)
    assert snapshot["type"] == "snapshot"
    assert snapshot["client_id"] == client.client_id
    assert snapshot["queue"] == [] and snapshot["running"] == []

    job = await submit(client, txt2img(steps=3))
    got = await messages_until_finished(ws, job)
    mine = [m for m in got if m.get("job") == job]
    kinds = [m["type"] for m in mine]
    assert kinds[0] == "queued"
    assert kinds[1] == "run_started"
    assert kinds[-1] == "run_finished" and mine[-1]["status"] == "ok"
    assert mine[1]["to_run"] == ["lat", "load", "enc", "sample", "save"]
    assert mine[1]["cached"] == []
    started = [m["node_id"] for m in mine if m["type"] == "node_started"]
    finished = [m["node_id"] for m in mine if m["type"] == "node_finished"]
    assert started == finished == ["lat", "load", "enc", "sample", "save"]
    progress = [m for m in mine if m["type"] == "progress"]
    steps = [p["step"] for p in progress]  # unsent progress may be coalesced
    assert steps == sorted(set(steps)) and steps[-1] == 3
    assert all(p["node_id"] == "sample" and p["total"] == 3 for p in progress)
    assert progress[0]["preview"].startswith("data:image/jpeg;base64,")
    saved = next(m for m in mine if m["type"] == "node_finished" and m["node_id"] == "save")
    [f] = saved["files"]
    assert f["kind"] == "output" and f["url"] == f"/api/files/output/{f['name']}"
    # queue status broadcasts are interleaved but never carry a job
    assert all(m["type"] == "status" for m in got if "job" not in m)

    detail = await (await client.get(f"/api/jobs/{job}")).json()
    assert detail["status"] == "ok"  # stored before run_finished was sent
    assert detail["files"] == [f]
    assert set(detail["nodes"]) == {"lat", "load", "enc", "sample", "save"}
    assert all(n["status"] == "executed" for n in detail["nodes"].values())
    assert detail["started"] >= detail["created"] and detail["finished"] >= detail["started"]
    image = await client.get(f["url"])
    assert image.status == 200 and image.content_type == "image/png"
    assert (await image.read()).startswith(b"\x89PNG")
    await ws.close()


async def test_interrupt_running_job_mid_sampling(aiohttp_client, tmp_path):
    config = make_config(tmp_path)
    engine = make_engine(config)
    client = await owned_client(aiohttp_client, make_test_app(config, engine))
    ws = await client.ws_connect("/api/ws")
    await next_message(ws)
    job = await submit(client, txt2img(steps=200, delay=0.02))
    while True:  # wait for sampling to be under way
        m = await next_message(ws)
        if m["type"] == "progress" and m["step"] >= 2:
            break
    resp = await client.delete(f"/api/jobs/{job}")
    assert resp.status == 200
    assert (await resp.json()) == {"id": job, "status": "running", "interrupting": True}
    rest = await messages_until_finished(ws, job)
    assert rest[-1]["status"] == "interrupted"
    steps_done = engine.resources.get_or_create("steps_done", dict)[job]
    assert 2 <= steps_done < 200
    detail = await wait_status(client, job, ("interrupted",))
    assert detail["nodes"]["sample"]["status"] == "interrupted"
    assert detail["nodes"]["save"]["status"] == "skipped"
    assert detail["files"] == []
    # the model stays loaded and the next job runs
    status = await (await client.get("/api/status")).json()
    assert "tiny.safetensors" in status["worker"]["loaded_models"]
    job2 = await submit(client, txt2img(steps=2))
    assert (await messages_until_finished(ws, job2))[-1]["status"] == "ok"
    await ws.close()


async def test_cancel_queued_job(aiohttp_client, tmp_path):
    client = await owned_client(aiohttp_client, make_test_app(make_config(tmp_path)))
    ws = await client.ws_connect("/api/ws")
    await next_message(ws)
    blocker = await submit(client, txt2img(steps=100, delay=0.02))
    waiting = await submit(client, txt2img(seed=2))
    await wait_status(client, blocker, ("running",))
    queue = await (await client.get("/api/jobs?status=queued")).json()
    assert [j["id"] for j in queue["jobs"]] == [waiting]

    resp = await client.delete(f"/api/jobs/{waiting}")
    assert (await resp.json()) == {"id": waiting, "status": "cancelled"}
    assert (await client.delete(f"/api/jobs/{waiting}")).status == 200  # idempotent
    assert (await client.delete("/api/jobs/nope")).status == 404
    await client.delete(f"/api/jobs/{blocker}")
    got = await messages_until_finished(ws, blocker)
    cancelled = [m for m in got if m.get("job") == waiting]
    assert [m["type"] for m in cancelled] == ["queued", "run_finished"]
    assert cancelled[-1]["status"] == "cancelled"
    detail = await (await client.get(f"/api/jobs/{waiting}")).json()
    assert detail["status"] == "cancelled" and detail["started"] is None
    await ws.close()


async def test_two_clients_see_only_their_own_jobs(aiohttp_client, tmp_path):
    client = await owned_client(aiohttp_client, make_test_app(make_config(tmp_path)))
    a, b = [(await (await client.post("/api/clients")).json())["client_id"] for _ in "ab"]
    ws_a = await client.ws_connect(f"/api/ws?client_id={a}")
    ws_b = await client.ws_connect(f"/api/ws?client_id={b}")
    await next_message(ws_a)
    await next_message(ws_b)
    job_a = await submit(client, txt2img(seed=1), client_id=a)
    job_b = await submit(client, txt2img(seed=2), client_id=b)
    got_a = await messages_until_finished(ws_a, job_a)
    got_b = await messages_until_finished(ws_b, job_b)
    assert {m["job"] for m in got_a if "job" in m} == {job_a}
    assert {m["job"] for m in got_b if "job" in m} == {job_b}
    assert any(m["type"] == "progress" for m in got_b)
    # A's socket never receives B's events even after B finished
    await asyncio.sleep(0.1)
    while True:
        try:
            m = await next_message(ws_a, 0.2)
        except TimeoutError:
            break
        assert m.get("job") in (None, job_a)
    await ws_a.close()
    await ws_b.close()


async def test_server_issues_client_id_and_refuses_guessable_ones(aiohttp_client, tmp_path):
    client = await owned_client(aiohttp_client, make_test_app(make_config(tmp_path)))
    ws = await client.ws_connect("/api/ws")
    issued = (await next_message(ws))["client_id"]
    assert len(issued) >= 16
    await ws.close()
    resp = await client.get("/api/ws?client_id=a")  # too short to be a secret
    assert resp.status == 400


async def test_reconnect_snapshot_reports_missed_final_state(aiohttp_client, tmp_path):
    client = await owned_client(aiohttp_client, make_test_app(make_config(tmp_path)))
    job = await submit(client, txt2img())
    await wait_status(client, job, ("ok",))
    ws = await client.ws_connect("/api/ws")
    snapshot = await next_message(ws)
    assert snapshot["type"] == "snapshot"
    assert [(j["id"], j["status"]) for j in snapshot["jobs"]] == [(job, "ok")]
    await ws.close()


async def test_cache_survives_between_jobs_seed_only_change(aiohttp_client, tmp_path):
    app = make_test_app(make_config(tmp_path))
    client = await owned_client(aiohttp_client, app)
    ws = await client.ws_connect("/api/ws")
    await next_message(ws)
    first = await submit(client, txt2img(seed=1))
    await messages_until_finished(ws, first)
    second = await submit(client, txt2img(seed=2))
    got = await messages_until_finished(ws, second)
    started = next(m for m in got if m["type"] == "run_started")
    assert started["to_run"] == ["sample", "save"]
    assert sorted(started["cached"]) == ["enc", "lat", "load"]
    assert [m["node_id"] for m in got if m["type"] == "node_finished"] == ["sample", "save"]
    detail = await (await client.get(f"/api/jobs/{second}")).json()
    assert {k: v["status"] for k, v in detail["nodes"].items()} == {
        "load": "cached",
        "enc": "cached",
        "lat": "cached",
        "sample": "executed",
        "save": "executed",
    }
    # the same workflow again: everything from the cache, output files still listed;
    # served where it was queued (service/job_fastpath.py), never by the worker's thread
    worker = app[SERVICES].worker
    threaded: list[str] = []
    plain_run = worker.run
    worker.run = lambda job, emit: (threaded.append(job.id), plain_run(job, emit))[1]
    third = await submit(client, txt2img(seed=2))
    got = await messages_until_finished(ws, third)
    mine = [m for m in got if m.get("job") == third]
    assert [m["type"] for m in mine] == ["queued", "run_started", "node_cached", "run_finished"]
    assert mine[1]["to_run"] == [] and mine[1]["worker"] == worker.name
    assert threaded == []
    detail3 = await (await client.get(f"/api/jobs/{third}")).json()
    assert detail3["status"] == "ok" and detail3["files"] == detail["files"]
    assert {v["status"] for v in detail3["nodes"].values()} == {"cached"}
    fourth = await submit(client, txt2img(seed=3))  # sampling again: the worker's thread
    assert (await messages_until_finished(ws, fourth))[-1]["status"] == "ok"
    assert threaded == [fourth]
    await ws.close()


async def test_failing_node_fails_only_its_job(aiohttp_client, tmp_path):
    client = await owned_client(aiohttp_client, make_test_app(make_config(tmp_path)))
    ws = await client.ws_connect("/api/ws")
    await next_message(ws)
    bad = await submit(client, failing())
    got = await messages_until_finished(ws, bad)
    error = next(m for m in got if m["type"] == "error")
    assert error["node_id"] == "boom" and error["error_type"] == "ValueError"
    assert "corrupt model file" in error["message"] and "Traceback" in error["traceback"]
    assert got[-1]["status"] == "error"
    detail = await (await client.get(f"/api/jobs/{bad}")).json()
    assert detail["status"] == "error"
    assert detail["error"]["node_id"] == "boom"
    assert detail["nodes"]["boom"]["status"] == "error"
    summary = (await (await client.get("/api/jobs")).json())["jobs"][0]
    assert summary["error"]["node_id"] == "boom" and "traceback" not in summary["error"]
    # the server keeps serving, and upstream outputs of the failed job are reused
    good = await submit(client, txt2img())
    got = await messages_until_finished(ws, good)
    assert got[-1]["status"] == "ok"
    assert next(m for m in got if m["type"] == "run_started")["to_run"] == ["save"]
    await ws.close()


@pytest.mark.parametrize(
    ("kind", "error_type"),
    [("cuda", "OutOfMemoryError"), ("cpu", "RuntimeError"), ("python", "MemoryError")],
)
async def test_out_of_memory_releases_unused_models_and_cache(
    aiohttp_client, tmp_path, kind, error_type
):
    client = await owned_client(aiohttp_client, make_test_app(make_config(tmp_path)))
    first = await submit(client, txt2img(ckpt="other.safetensors"))
    await wait_status(client, first, ("ok",))
    status = await (await client.get("/api/status")).json()
    assert status["worker"]["cache"]["entries"] == 5
    job = await submit(client, failing("TOom", kind=kind))
    detail = await wait_status(client, job, ("error",))
    error = detail["error"]
    assert error["error_type"] == error_type and error["node_id"] == "boom"
    assert error["code"] == "out_of_memory" and "lower the size or batch" in error["hint"]
    status = await (await client.get("/api/status")).json()
    # the model the failed job used stays; the one it did not use and the cache went
    assert status["worker"]["loaded_models"] == ["tiny.safetensors"]
    assert status["worker"]["cache"]["entries"] == 0
    again = await submit(client, txt2img(ckpt="other.safetensors"))
    assert (await wait_status(client, again, ("ok", "error")))["status"] == "ok"
    status = await (await client.get("/api/status")).json()
    assert status["worker"]["loaded_models"] == ["tiny.safetensors", "other.safetensors"]
    models = status["worker"]["models"]
    assert models["used"] == {"cpu": 2000} and models["budgets"]["cpu"] > 0
    assert models["loaded"][1] == {
        "name": "other.safetensors",
        "device": "cpu",
        "bytes": 1000,
        "pinned": False,
    }


def test_model_memory_flags_reach_the_engine(tmp_path):
    import server
    from service.app import make_engine

    config = server.parse_args(
        ["--data", str(tmp_path), "--model-memory", "2G", "--gpu-memory", "cuda:1=512M"]
    )
    store = make_engine(config, make_registry()).resources.models
    assert store.budget("cpu") == 2 * 1024**3 and store.budget("cuda:1") == 512 * 1024**2


async def test_queue_and_history_survive_restart(aiohttp_client, tmp_path):
    config = make_config(tmp_path)
    client = await owned_client(aiohttp_client, make_test_app(config))
    done = await submit(client, txt2img(seed=1))
    await wait_status(client, done, ("ok",))
    blocker = await submit(client, txt2img(seed=2, steps=150, delay=0.03))
    await wait_status(client, blocker, ("running",))
    waiting = [await submit(client, txt2img(seed=s)) for s in (3, 4)]
    await client.close()  # graceful stop: the running job is interrupted, the rest wait

    # the same browser after the restart: its id is still valid (the secret is on disk)
    client2 = await owned_client(aiohttp_client, make_test_app(config), client.client_id)
    for job in waiting:
        assert (await wait_status(client2, job, ("ok",)))["status"] == "ok"
    assert (await (await client2.get(f"/api/jobs/{blocker}")).json())["status"] == "interrupted"
    history = (await (await client2.get("/api/jobs")).json())["jobs"]
    assert [j["id"] for j in history] == [*waiting[::-1], blocker, done]
    by_id = {j["id"]: j for j in history}
    assert by_id[done]["status"] == "ok" and by_id[done]["files"]
    assert (await client2.get(by_id[done]["files"][0]["url"])).status == 200


async def test_a_job_running_at_a_crash_runs_again_once_then_fails(aiohttp_client, tmp_path):
    config = make_config(tmp_path)
    engine = make_engine(config)
    app = make_test_app(config, engine)
    owner = app[SERVICES].clients.issue()
    store = JobStore(config.db_path)
    crashed, _ = store.add(txt2img(seed=9), owner)
    twice, _ = store.add(txt2img(seed=11), owner)
    later, _ = store.add(txt2img(seed=10), owner)
    assert store.claim_next().id == crashed.id  # then the process dies without finishing
    store.close()
    store = JobStore(config.db_path)
    assert store.claim_next().id == crashed.id  # it dies again, on another job this time
    assert store.claim(twice.id).attempts == 1
    store.close()

    client = await owned_client(aiohttp_client, app, owner)
    assert (await wait_status(client, later.id, ("ok",)))["status"] == "ok"
    detail = await wait_status(client, crashed.id, ("error",))
    assert detail["error"]["error_type"] == "worker_lost"  # two attempts, none finished
    assert crashed.id not in engine.resources.get_or_create("steps_done", dict)
    detail = await wait_status(client, twice.id, ("ok",))  # its second attempt
    assert detail["attempts"] == 2 and detail["worker"] == "inprocess"


async def test_history_is_bounded(aiohttp_client, tmp_path):
    client = await owned_client(
        aiohttp_client, make_test_app(make_config(tmp_path, history_limit=3))
    )
    jobs = [await submit(client, txt2img(seed=s, steps=1)) for s in range(6)]
    await wait_status(client, jobs[-1], ("ok",))
    listed = [j["id"] for j in (await (await client.get("/api/jobs")).json())["jobs"]]
    assert listed == jobs[::-1][:3]
    assert (await client.get(f"/api/jobs/{jobs[0]}")).status == 404


class BrokenOnceWorker(InProcessWorker):
    """A worker whose first run blows up outside any node (a bug, a lost backend)."""

    def __init__(self, engine) -> None:
        super().__init__(engine)
        self.broken = True

    def run(self, job, emit):
        if self.broken:
            self.broken = False
            raise RuntimeError("backend lost")
        return super().run(job, emit)


async def test_a_broken_worker_fails_the_job_not_the_server(aiohttp_client, tmp_path):
    config = make_config(tmp_path)
    engine = make_engine(config)
    app = make_app(config, engine=engine, worker=BrokenOnceWorker(engine))
    client = await owned_client(aiohttp_client, app)
    ws = await client.ws_connect("/api/ws")
    await next_message(ws)
    bad = await submit(client, txt2img())
    got = await messages_until_finished(ws, bad)
    assert [m["type"] for m in got if m.get("job") == bad] == ["queued", "error", "run_finished"]
    assert got[-1]["status"] == "error"
    detail = await (await client.get(f"/api/jobs/{bad}")).json()
    assert detail["error"]["message"] == "backend lost"
    good = await submit(client, txt2img())
    assert (await messages_until_finished(ws, good))[-1]["status"] == "ok"
    await ws.close()
