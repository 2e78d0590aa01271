"""The server path: start-up to the first answer, and fully cached jobs under load.

    python bench/server.py [--jobs 100] [--clients 1,10] [--workflow workflows/txt2img.json]

Starts ``server.py`` in a fresh process on a free loopback port with an empty data
folder and prints:
- start-up: seconds from spawning the process to the first answered ``/api/status``
  (the engine still loading), and until the status says the engine is ready;
- cached jobs: the workflow (on ``builtin/tiny-random`` at 64x64, so the first run is
  short) runs once to fill the cache, then every client (its own websocket) submits it
  again and again: latency from the POST to its ``run_finished`` on the websocket, p50
  and p95, jobs per second over the whole batch, and the CPU time per job of the
  server process (all threads) and of this client, for each ``--clients`` count.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cached_workflow(path: Path) -> dict[str, Any]:
    doc = json.loads(path.read_text())
    for node in doc["nodes"].values():
        if node["type"] == "LoadCheckpoint":
            node["inputs"].update({"name": "builtin/tiny-random", "dtype": "fp32"})
        if node["type"] == "Sample":
            node["inputs"]["steps"] = 2
        if node["type"] == "EmptyLatent":
            node["inputs"].update({"width": 64, "height": 64})
    return doc


async def wait_started(base: str, t0: float, timeout: float) -> dict[str, float]:
    import aiohttp

    first = ready = None
    state = ""
    async with aiohttp.ClientSession() as http:
        while time.perf_counter() - t0 < timeout:
            try:
                async with http.get(f"{base}/api/status") as r:
                    body = await r.json()
                now = time.perf_counter() - t0
                if first is None:
                    first, state = now, str(body.get("engine", {}).get("state"))
                if body.get("engine", {}).get("state") == "ready":
                    ready = now
                    break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.01)
    if first is None or ready is None:
        raise SystemExit("the server did not start in time")
    return {"first_answer_s": first, "first_state": state, "engine_ready_s": ready}  # type: ignore[dict-item]


async def client_jobs(base: str, workflow: dict, n: int, latencies: list[float]) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as anon, anon.post(f"{base}/api/clients") as r:
        cid = (await r.json())["client_id"]  # server-issued: jobs are private to it
    async with (
        aiohttp.ClientSession(headers={"X-Client-Id": cid}) as http,
        http.ws_connect(f"{base}/api/ws?client_id={cid}") as ws,
    ):
        await ws.receive_json()  # the snapshot
        for _ in range(n):
            t = time.perf_counter()
            async with http.post(
                f"{base}/api/jobs", json={"workflow": workflow, "client_id": cid}
            ) as r:
                job = (await r.json())["id"]
            while True:
                msg = await ws.receive_json()
                if msg.get("type") == "run_finished" and msg.get("job") == job:
                    if msg.get("status") != "ok":
                        raise SystemExit(f"job failed: {msg}")
                    break
            latencies.append(time.perf_counter() - t)


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process, all threads (Linux /proc; else None)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def cached_jobs(
    base: str, workflow: dict, clients: int, jobs: int, server_pid: int
) -> dict[str, float]:
    latencies: list[float] = []
    per = max(1, jobs // clients)
    cpu0, own0 = cpu_seconds(server_pid), time.process_time()
    t = time.perf_counter()
    await asyncio.gather(*(client_jobs(base, workflow, per, latencies) for _ in range(clients)))
    wall = time.perf_counter() - t
    cpu1, own = cpu_seconds(server_pid), time.process_time() - own0
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    q = statistics.quantiles(latencies, n=20)
    return {
        "clients": clients,
        "jobs": len(latencies),
        "p50_ms": 1000 * statistics.median(latencies),
        "p95_ms": 1000 * q[18],
        "jobs_per_s": len(latencies) / wall,
        # CPU per job: less at the mercy of other load on the machine than latency
        "server_cpu_ms": float("nan") if server_cpu is None else 1000 * server_cpu / len(latencies),
        "client_cpu_ms": 1000 * own / len(latencies),
    }


async def run(args: argparse.Namespace) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="server-bench-") as tmp:
        cmd = [sys.executable, str(ROOT / "server.py"), "--port", str(port)]
        cmd += ["--data", f"{tmp}/data", "--models", f"{tmp}/models"]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        t0 = time.perf_counter()
        log = open(f"{tmp}/server.log", "wb")  # noqa: SIM115 - closed with the folder
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=log)
        try:
            start = await wait_started(base, t0, args.timeout)
            print(
                f"start-up: first answer {start['first_answer_s']:.2f} s (engine "
                f"{start['first_state']}), engine ready {start['engine_ready_s']:.2f} s"
            )
            workflow = cached_workflow(args.workflow)
            await client_jobs(base, workflow, 1, [])  # fills the cache
            rows = [await cached_jobs(base, workflow, c, args.jobs, proc.pid) for c in args.clients]
        finally:
            proc.terminate()
            proc.wait(30)
            log.close()
    print()
    print("| clients | jobs | p50 | p95 | jobs/s | server CPU/job | client CPU/job |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['clients']} | {r['jobs']} | {r['p50_ms']:.1f} ms | {r['p95_ms']:.1f} ms "
            f"| {r['jobs_per_s']:.0f} | {r['server_cpu_ms']:.1f} ms | {r['client_cpu_ms']:.1f} ms |"
        )
    print(f"load average: {os.getloadavg()}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--jobs", type=int, default=100, help="cached jobs per client count")
    p.add_argument("--clients", type=lambda s: [int(x) for x in s.split(",")], default=[1, 10])
    p.add_argument("--workflow", type=Path, default=ROOT / "workflows" / "txt2img.json")
    p.add_argument("--timeout", type=float, default=300.0)
    asyncio.run(run(p.parse_args()))


if __name__ == "__main__":
    main()
