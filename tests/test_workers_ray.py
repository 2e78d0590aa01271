"""Ray actors as workers (``--workers ray:2``) on a real Ray cluster on this host
(``ray.cluster_utils.Cluster``: a head without CPUs and two one-CPU worker nodes, so
two actors on two "machines"): two jobs at once, targeted interrupts, files back as
bytes, input files by content hash, an actor that dies under a job (retried once,
then ``worker_lost``), and a machine removed while its job runs."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter

import pytest

from service import make_app
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
from tests.test_workers_process import wait_ready, wait_sampling
from tests.worker_nodes import echo

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.ray


@pytest.fixture(scope="module")
def cluster():
    """One cluster for the module (starting Ray takes seconds); nodes die fast."""
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")  # short: Ray puts sockets in it
    os.environ["RAY_TMPDIR"] = temp
    fast_death = {"health_check_period_ms": 500, "health_check_failure_threshold": 3}
    cluster = Cluster(
        initialize_head=True,
        head_node_args={
            "num_cpus": 0,
            "include_dashboard": False,
            "_system_config": fast_death,
        },
    )
    nodes = [cluster.add_node(num_cpus=1) for _ in range(2)]
    ray.init(address=cluster.address, log_to_driver=False)
    yield cluster, nodes
    ray.shutdown()
    cluster.shutdown()
    del os.environ["RAY_TMPDIR"]
    shutil.rmtree(temp, ignore_errors=True)


def ray_config(tmp_path, **overrides):
    packages = ("tests.server_testkit", "tests.worker_nodes")
    return make_config(tmp_path, workers="ray:2", node_packages=packages, **overrides)


async def test_ray_workers_run_jobs_and_survive_a_lost_actor(cluster, aiohttp_client, tmp_path):
    client = await owned_client(aiohttp_client, make_app(ray_config(tmp_path)))
    before = {w["name"]: w for w in await wait_ready(client)}
    ws = await client.ws_connect("/api/ws")
    await next_message(ws)
    assert all(w["kind"] == "ray" and w["resources"] == {"num_cpus": 1} for w in before.values())

    slow = [await submit(client, txt2img(seed=s, steps=200, delay=0.02)) for s in (1, 2)]
    running = [await wait_sampling(client, j) for j in slow]
    assert {r["worker"] for r in running} == {"ray-0", "ray-1"}
    await client.delete(f"/api/jobs/{slow[1]}")
    stopped = await wait_status(client, slow[1], ("interrupted",))
    assert stopped["nodes"]["sample"]["status"] == "interrupted"
    assert (await wait_status(client, slow[0], ("running", "ok")))["status"] == "running"
    await client.delete(f"/api/jobs/{slow[0]}")
    await wait_status(client, slow[0], ("interrupted",))

    # Events stream back; files come back as bytes into the server's own output folder.
    job = await submit(client, txt2img(seed=3, steps=3, prefix="bytes"))
    mine = [m for m in await messages_until_finished(ws, job) if m.get("job") == job]
    assert mine[-1]["status"] == "ok"
    assert any(m["type"] == "progress" and m["preview"] for m in mine)
    [saved] = (await (await client.get(f"/api/jobs/{job}")).json())["files"]
    assert (await client.get(saved["url"])).status == 200

    # Input images go by content hash: each actor gets the bytes at most once.
    picture = os.urandom(2048)
    (tmp_path / "data" / "input" / "pic.png").write_bytes(picture)
    for _ in range(4):
        done = await wait_status(client, await submit(client, echo("pic.png")), ("ok", "error"))
        assert done["status"] == "ok", done["error"]
        [copy] = done["files"]
        assert (tmp_path / "data" / "output" / copy["name"]).read_bytes() == picture
    stats = (await (await client.get("/api/status")).json())["worker_stats"]
    assert 1 <= sum(w["inputs_sent"] for w in stats) <= 2

    # An actor dies under a job: retried once, then worker_lost; the rest run once each.
    crash = await submit(client, failing("TCrash"))
    others = [await submit(client, txt2img(seed=s, steps=2, prefix=f"o{s}")) for s in (10, 11, 12)]
    mine = [m for m in await messages_until_finished(ws, crash, 90) if m.get("job") == crash]
    assert [m["type"] for m in mine].count("requeued") == 1
    detail = await wait_status(client, crash, ("error",))
    assert detail["error"]["error_type"] == "worker_lost" and detail["attempts"] == 2
    for other in others:
        assert (await wait_status(client, other, ("ok",), timeout=60))["attempts"] == 1
    written = Counter(p.name.split("_")[0] for p in (tmp_path / "data" / "output").iterdir())
    assert [written[f"o{s}"] for s in (10, 11, 12)] == [1, 1, 1]
    after = {w["name"]: w for w in await wait_ready(client, timeout=60)}
    assert sum(after[n]["starts"] - before[n]["starts"] for n in after) == 2  # Ray restarted them
    last = await submit(client, txt2img(seed=20))
    assert (await wait_status(client, last, ("ok",), timeout=30))["status"] == "ok"
    await ws.close()


async def test_a_machine_lost_under_its_job(cluster, aiohttp_client, tmp_path):
    cluster_, nodes = cluster
    client = await owned_client(aiohttp_client, make_app(ray_config(tmp_path)))
    workers = {w["name"]: w for w in await wait_ready(client, timeout=60)}
    ws = await client.ws_connect("/api/ws")
    await next_message(ws)
    assert len({w["node"] for w in workers.values()}) == 2  # one actor per machine
    job = await submit(client, txt2img(seed=5, steps=200, delay=0.02, prefix="moved"))
    first = await wait_sampling(client, job)
    doomed = next(n for n in nodes if n.node_id == workers[first["worker"]]["node"])
    cluster_.remove_node(doomed)
    mine = [m for m in await messages_until_finished(ws, job, 90) if m.get("job") == job]
    assert [m["type"] for m in mine].count("requeued") == 1 and mine[-1]["status"] == "ok"
    detail = await (await client.get(f"/api/jobs/{job}")).json()
    assert detail["attempts"] == 2 and detail["worker"] != first["worker"]
    written = [p.name for p in (tmp_path / "data" / "output").iterdir()]
    assert [n.split("_")[0] for n in written] == ["moved"]  # once, by the survivor
    nodes.append(cluster_.add_node(num_cpus=1))  # a new machine: the lost actor restarts there
    await wait_ready(client, count=2, timeout=90)
    again = [await submit(client, txt2img(seed=s, steps=20, delay=0.02)) for s in (6, 7)]
    done = [await wait_status(client, j, ("ok",), timeout=60) for j in again]
    assert {d["worker"] for d in done} == set(workers)
    await ws.close()
