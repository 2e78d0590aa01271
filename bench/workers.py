"""Throughput and checkpoint loads with several workers behind one queue.

For each backend (process, ray; inprocess for reference) on the built-in demo
model with 1 torch thread per worker: jobs per minute with 1 and 2 workers
(txt2img, 20 steps, a new seed per job so every job samples), after a warm-up
job per worker. Then checkpoint loads with two checkpoints (builtin/shapes-demo,
builtin/tiny-random) in alternating pairs of jobs queued at once on 2 ready workers,
with model affinity and with plain FIFO on the least recently used worker (a
load = the job's LoadCheckpoint ran rather than coming from that worker's cache;
a worker keeps every model it loaded, so FIFO tops out at 2 loads per worker).

Usage: python bench/workers.py [--jobs 16] [--steps 20] [--backends process,ray,inprocess]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

from nodes.sd.runtime import configure_process  # noqa: E402
from service import ServerConfig, make_app  # noqa: E402
from service.clients import HEADER  # noqa: E402
from service.scheduler import Policy  # noqa: E402
from service.state import SERVICES  # noqa: E402
from tests.sd_workflows import workflow_doc  # noqa: E402

CHECKPOINTS = ("builtin/shapes-demo", "builtin/tiny-random")


def job(seed: int, steps: int, checkpoint: str = CHECKPOINTS[0]) -> dict[str, Any]:
    doc = workflow_doc("txt2img", checkpoint)
    doc["nodes"]["sample"]["inputs"].update(seed=seed, steps=steps)
    return doc


async def wait_all(client: TestClient, ids: list[str], owner: str) -> list[dict[str, Any]]:
    details: dict[str, dict[str, Any]] = {}
    while len(details) < len(ids):
        for job_id in ids:
            if job_id not in details:
                resp = await client.get(f"/api/jobs/{job_id}", headers={HEADER: owner})
                d = await resp.json()
                if d["status"] not in ("queued", "running"):
                    assert d["status"] == "ok", d["error"]
                    details[job_id] = d
        await asyncio.sleep(0.05)
    return [details[i] for i in ids]


async def wait_ready(client: TestClient, count: int) -> None:
    while True:
        workers = (await (await client.get("/api/status")).json())["worker_stats"]
        if sum(w.get("ready", True) for w in workers) >= count:
            return
        await asyncio.sleep(0.2)


async def measure(
    backend: str, workers: int, args: argparse.Namespace, policy: Policy | None = None
) -> dict[str, Any]:
    """Jobs per minute; or, given a policy, checkpoint loads of alternating pairs."""
    spec = "inprocess" if backend == "inprocess" else f"{backend}:{workers}"
    with tempfile.TemporaryDirectory() as tmp:
        config = ServerConfig(
            data_dir=Path(tmp) / "data",
            models_dir=Path(tmp) / "models",
            web_dist=Path(tmp) / "none",
            workers=spec,
            threads=1,
            max_queue=1000,
        )
        app = make_app(config)
        async with TestClient(TestServer(app)) as client:
            t0 = time.perf_counter()
            await wait_ready(client, workers)
            start_s = time.perf_counter() - t0
            svc = app[SERVICES]
            owner = svc.clients.issue()

            def queue(docs: list[dict[str, Any]]) -> list[str]:
                """A batch queued in one go (straight into the store, then one wake-up)."""
                ids = [svc.jobs.add(doc, owner)[0].id for doc in docs]
                svc.queue.wake()
                return ids

            if policy is not None:
                svc.queue.policy = policy
                pattern = [CHECKPOINTS[(i // 2) % 2] for i in range(args.jobs)]
                docs = [job(i, 4, c) for i, c in enumerate(pattern)]
                done = await wait_all(client, queue(docs), owner)
                loads = sum(d["nodes"]["checkpoint"]["status"] == "executed" for d in done)
                return {"start_s": start_s, "loads": loads}
            # warm-up: enough jobs that every worker loads the model
            warm = [job(10_000 + i, args.steps) for i in range(3 * workers)]
            await wait_all(client, queue(warm), owner)
            t0 = time.perf_counter()
            await wait_all(client, queue([job(i, args.steps) for i in range(args.jobs)]), owner)
            seconds = time.perf_counter() - t0
    return {"start_s": start_s, "jobs_per_min": args.jobs / seconds * 60}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=16)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--backends", default="process,ray,inprocess")
    args = p.parse_args()
    configure_process()
    print(f"{os.cpu_count()} CPUs; {args.jobs} jobs of txt2img 64x64, {args.steps} steps")
    for backend in args.backends.split(","):
        if backend == "ray":
            try:
                import ray
            except ImportError:
                print("ray: not installed (pip install -r requirements-ray.txt)")
                continue
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        rates = {}
        for count in (1, 2) if backend != "inprocess" else (1,):
            got = asyncio.run(measure(backend, count, args))
            rates[count] = got["jobs_per_min"]
            print(
                f"{backend} x{count}: {got['jobs_per_min']:.1f} jobs/min "
                f"(workers ready after {got['start_s']:.1f} s)",
                flush=True,
            )
        if 2 in rates:
            print(f"{backend}: 2 workers = {rates[2] / rates[1]:.2f}x of 1", flush=True)
            for name, policy in (("affinity", Policy()), ("fifo", Policy(affinity=False))):
                got = asyncio.run(measure(backend, 2, args, policy))
                print(
                    f"{backend} x2, {args.jobs} jobs, 2 checkpoints in alternating pairs, "
                    f"{name}: {got['loads']} checkpoint loads",
                    flush=True,
                )
        if backend == "ray":
            ray.shutdown()


if __name__ == "__main__":
    main()
