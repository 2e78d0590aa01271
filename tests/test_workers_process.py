"""Child-process workers (``--workers process:2``) on the test nodes: two jobs at
once, interrupts reach the right worker, a worker that dies under a job is
restarted cold while its job is retried once and then fails ``worker_lost``, and
nothing else in the queue is lost or run twice."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter

from service import make_app
from service.state import SERVICES
from tests.sd_workflows import workflow_doc
from tests.server_testkit import (
    failing,
    make_config,
    messages_until_finished,
    next_message,
    owned_client,
    submit,
    txt2img,
    wait_status,
)
from tests.test_server_process import REPO, _call, _free_port


def process_config(tmp_path, **overrides):
    return make_config(
        tmp_path, workers="process:2", node_packages=("tests.server_testkit",), **overrides
    )


async def wait_ready(client, count: int = 2, timeout: float = 60.0) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        workers = (await (await client.get("/api/status")).json())["worker_stats"]
        if sum(w["ready"] for w in workers) >= count:
            return workers
        assert time.monotonic() < deadline, f"workers did not start: {workers}"
        await asyncio.sleep(0.1)


async def wait_sampling(client, job: str, timeout: float = 60.0) -> dict:
    """The job's detail once its sampler runs (claimed is not yet started)."""
    deadline = time.monotonic() + timeout
    while True:
        detail = await (await client.get(f"/api/jobs/{job}")).json()
        if detail["nodes"].get("sample", {}).get("status") == "running":
            return detail
        assert time.monotonic() < deadline, detail
        await asyncio.sleep(0.05)


async def test_two_process_workers_share_the_queue_and_survive_a_crash(aiohttp_client, tmp_path):
    app = make_app(process_config(tmp_path))
    client = await owned_client(aiohttp_client, app)
    before = {w["name"]: w for w in await wait_ready(client)}
    ws = await client.ws_connect("/api/ws")
    await next_message(ws)

    # Two slow jobs run at the same time, one per worker; interrupting one leaves the other.
    slow = [await submit(client, txt2img(seed=s, steps=200, delay=0.02)) for s in (1, 2)]
    running = [await wait_sampling(client, j) for j in slow]
    assert {r["worker"] for r in running} == {"process-0", "process-1"}
    status = await (await client.get("/api/status")).json()
    assert sorted(status["running"]) == sorted(slow)
    resp = await client.delete(f"/api/jobs/{slow[0]}")
    assert (await resp.json())["status"] == "running"
    t0 = time.monotonic()
    stopped = await wait_status(client, slow[0], ("interrupted",))
    assert time.monotonic() - t0 < 2.0 and stopped["nodes"]["sample"]["status"] == "interrupted"
    assert (await client.get(f"/api/jobs/{slow[1]}")).status == 200
    assert (await wait_status(client, slow[1], ("running", "ok")))["status"] == "running"
    await client.delete(f"/api/jobs/{slow[1]}")
    await wait_status(client, slow[1], ("interrupted",))

    # Events stream back from the child: progress with previews, files with URLs.
    job = await submit(client, txt2img(seed=3, steps=3))
    got = await messages_until_finished(ws, job)
    mine = [m for m in got if m.get("job") == job]
    assert mine[-1]["status"] == "ok"
    started = next(m for m in mine if m["type"] == "run_started")
    assert started["worker"] in before
    progress = [m for m in mine if m["type"] == "progress"]
    assert progress and progress[0]["preview"].startswith("data:image/jpeg;base64,")

    # A node kills its worker: the job runs once more, then fails worker_lost; the
    # workers come back and the jobs queued around it run exactly once each.
    crash = await submit(client, failing("TCrash"))
    others = [await submit(client, txt2img(seed=s, steps=2, prefix=f"o{s}")) for s in range(10, 14)]
    got = await messages_until_finished(ws, crash, timeout=60)
    mine = [m for m in got if m.get("job") == crash]
    assert [m["type"] for m in mine].count("requeued") == 1
    assert mine[-1] == {**mine[-1], "type": "run_finished", "status": "error"}
    detail = await wait_status(client, crash, ("error",))
    assert detail["error"]["error_type"] == "worker_lost" and detail["attempts"] == 2
    assert "exited with code 1" in detail["error"]["message"]
    assert detail["error"]["node_id"] == "boom"
    for other in others:
        done = await wait_status(client, other, ("ok",), timeout=60)
        assert done["attempts"] == 1
    written = Counter(p.name.split("_")[0] for p in (tmp_path / "data" / "output").iterdir())
    assert all(written[f"o{s}"] == 1 for s in range(10, 14))
    after = {w["name"]: w for w in await wait_ready(client)}
    assert sum(after[n]["starts"] - before[n]["starts"] for n in after) == 2  # two crashes
    assert all(after[n]["pid"] for n in after)
    next_job = await submit(client, txt2img(seed=20))
    assert (await wait_status(client, next_job, ("ok",), timeout=30))["status"] == "ok"

    # A node that never checks its interrupt: the job-timeout hook replaces its worker.
    stuck = await submit(client, failing("TStuck"))
    running = await wait_status(client, stuck, ("running",))
    deadline = time.monotonic() + 30
    while (await (await client.get(f"/api/jobs/{stuck}")).json())["nodes"].get("boom", {}).get(
        "status"
    ) != "running":
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    dispatcher = app[SERVICES].queue
    dispatcher.replace_grace = 0.5
    t0 = time.monotonic()
    dispatcher.stop_or_replace(stuck)
    detail = await wait_status(client, stuck, ("error",), timeout=10)
    assert time.monotonic() - t0 < 5  # not the node's 30 s
    assert detail["error"]["error_type"] == "timeout" and detail["attempts"] == 1
    assert "restarted" in detail["error"]["message"]
    stats = {w["name"]: w for w in await wait_ready(client)}
    assert stats[running["worker"]]["starts"] == after[running["worker"]]["starts"] + 1
    last = await submit(client, txt2img(seed=21))
    assert (await wait_status(client, last, ("ok",), timeout=30))["status"] == "ok"
    await ws.close()


def _start_server(tmp_path, port: int) -> subprocess.Popen:
    args = ["--port", str(port), "--data", str(tmp_path / "data"), "--models", str(tmp_path)]
    args += ["--web-dist", str(tmp_path / "none"), "--nodes", "tests.server_testkit"]
    return subprocess.Popen(
        [sys.executable, "server.py", *args, "--workers", "process:2"],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _poll(port: int, ready: int, timeout: float = 60.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            status = _call(port, "/api/status")
            if sum(w["ready"] for w in status["worker_stats"]) >= ready:
                return status
        except OSError:
            pass
        assert time.monotonic() < deadline, "the server or its workers did not start"
        time.sleep(0.2)


def test_kill_9_of_the_server_loses_and_duplicates_nothing(tmp_path):
    port = _free_port()
    server = _start_server(tmp_path, port)
    try:
        _poll(port, ready=2)
        me = _call(port, "/api/clients", {})["client_id"]
        body = {"client_id": me}
        slow = [
            _call(port, "/api/jobs", {**body, "workflow": txt2img(s, 100, 0.03, prefix=f"s{s}")})
            for s in (1, 2)
        ]
        quick = [
            _call(port, "/api/jobs", {**body, "workflow": txt2img(s, 2, prefix=f"q{s}")})
            for s in (3, 4, 5)
        ]
        ids = [j["id"] for j in slow + quick]
        deadline = time.monotonic() + 30
        while (status := _call(port, "/api/status"))["running"] != ids[:2]:
            assert time.monotonic() < deadline, status
            time.sleep(0.05)
        children = [w["pid"] for w in status["worker_stats"]]
        server.send_signal(signal.SIGKILL)
        server.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children):  # they see the pipe close and leave
            assert time.monotonic() < deadline, "worker processes outlived the server"
            time.sleep(0.1)

        server = _start_server(tmp_path, port)
        _poll(port, ready=1)
        deadline = time.monotonic() + 60
        while True:
            jobs = _call(port, "/api/jobs?limit=50", client_id=me)["jobs"]
            if all(j["status"] not in ("queued", "running") for j in jobs):
                break
            assert time.monotonic() < deadline, jobs
            time.sleep(0.2)
    finally:
        server.kill()
        server.wait(10)
    assert sorted(j["id"] for j in jobs) == sorted(ids)  # none lost, none added
    by_id = {j["id"]: j for j in jobs}
    assert [by_id[i]["attempts"] for i in ids] == [2, 2, 1, 1, 1]  # the running two re-ran
    assert all(by_id[i]["status"] == "ok" for i in ids)
    written = Counter(p.name.split("_")[0] for p in (tmp_path / "data" / "output").iterdir())
    assert written == {"s1": 1, "s2": 1, "q3": 1, "q4": 1, "q5": 1}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_two_demo_model_jobs_sample_at_the_same_time(aiohttp_client, tmp_path):
    """The built-in demo model on two CPU worker processes (1 torch thread each)."""
    config = make_config(tmp_path, workers="process:2", node_packages=("nodes",), threads=1)
    client = await owned_client(aiohttp_client, make_app(config))
    await wait_ready(client, timeout=120)  # (a websocket unread that long misses its pings)
    ws = await client.ws_connect("/api/ws")
    await next_message(ws)
    doc = workflow_doc("txt2img", "builtin/shapes-demo")
    jobs = [await submit(client, doc) for _ in range(2)]  # same workflow and seed twice
    order: list[tuple[str, str]] = []
    done: set[str] = set()
    while done != set(jobs):
        m = await next_message(ws, timeout=120)
        if m.get("node_id") == "sample" and m["type"] in ("node_started", "node_finished"):
            order.append((m["type"], m["job"]))
        if m["type"] == "run_finished":
            assert m["status"] == "ok", m
            done.add(m["job"])
    # both samplers started before either finished: they ran at the same time
    assert [kind for kind, _ in order[:2]] == ["node_started", "node_started"], order
    details = [await (await client.get(f"/api/jobs/{j}")).json() for j in jobs]
    assert {d["worker"] for d in details} == {"process-0", "process-1"}
    images = [(tmp_path / "data" / "output" / d["files"][0]["name"]).read_bytes() for d in details]
    assert images[0] == images[1]  # same workflow + seed: same bytes from either worker
    await ws.close()
