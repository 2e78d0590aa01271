"""Does anything stall the server's event loop? Two figures:

1. `/api/status` latency while large animated PNGs (2048x2048, 150 frames, a workflow
   chunk after the frames) are uploaded, against `python server.py` in a subprocess;
   beside it, how long Pillow takes to read that file's text chunks (what the upload
   handler used to do on the event loop) and how long `graph.pngmeta` takes.
2. The websocket outbox of a client that stopped reading: seconds to offer N messages
   (half undroppable), which must grow linearly with N, not quadratically.

Usage: python bench/server_stalls.py [--size 2048] [--frames 150] [--uploads 5]
Target: status answered in < 50 ms during any upload.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any

import aiohttp
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graph.pngmeta import _chunks, read_png_text  # noqa: E402
from service.hub import Outbox  # noqa: E402
from tests.hardening_kit import png_chunk  # noqa: E402
from tests.server_testkit import txt2img  # noqa: E402


def animated_png(size: int, frames: int) -> bytes:
    """An APNG of ``frames`` full-size frames (one encoded frame written ``frames``
    times, as Pillow would merge identical frames), the workflow chunk after the last:
    a reader that wants that chunk through Pillow decodes every frame first."""
    picture = Image.new("RGB", (size, size), (40, 90, 160))  # deflate's best case:
    picture.paste((220, 180, 30), (size // 4, size // 4, size // 2, size // 2))  # ~12 KB
    buf = io.BytesIO()
    picture.save(buf, format="PNG", compress_level=9)
    single = buf.getvalue()
    ihdr = single[16:29]
    idat = b"".join(
        single[start + 8 : end - 4] for kind, start, end in _chunks(single) if kind == b"IDAT"
    )
    out = [single[:8], png_chunk(b"IHDR", ihdr), png_chunk(b"acTL", struct.pack(">II", frames, 0))]
    seq = 0
    for i in range(frames):
        control = struct.pack(">IIIIIHHBB", seq, size, size, 0, 0, 4, 100, 0, 0)
        out.append(png_chunk(b"fcTL", control))
        seq += 1
        if i == 0:
            out.append(png_chunk(b"IDAT", idat))
        else:
            out.append(png_chunk(b"fdAT", struct.pack(">I", seq) + idat))
            seq += 1
    body = b"workflow\0\0" + zlib.compress(json.dumps(txt2img()).encode())
    out += [png_chunk(b"zTXt", body), png_chunk(b"IEND", b"")]
    return b"".join(out)


def text_read_times(data: bytes) -> tuple[float, float]:
    t0 = time.perf_counter()
    with Image.open(io.BytesIO(data)) as im:
        assert "workflow" in im.text  # decodes every frame to reach the last chunk
    t1 = time.perf_counter()
    assert "workflow" in read_png_text(data, keys=("workflow",))
    return t1 - t0, time.perf_counter() - t1


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def status_during(base: str, requests: list[tuple[str, Any]]) -> tuple[list, list]:
    """Latencies of /api/status polled every 5 ms while ``requests`` (POST path, body
    factory) are sent one after another; and the seconds each of those took."""
    latencies: list[float] = []
    seconds: list[float] = []
    async with aiohttp.ClientSession() as session:
        busy = True

        async def poll() -> None:
            while busy:
                t0 = time.perf_counter()
                async with session.get(f"{base}/api/status") as resp:
                    await resp.read()
                    assert resp.status == 200
                latencies.append(time.perf_counter() - t0)
                await asyncio.sleep(0.005)

        poller = asyncio.create_task(poll())
        for path, make_body in requests:
            t0 = time.perf_counter()
            async with session.post(f"{base}{path}", data=make_body()) as resp:
                body = await resp.json()
                assert resp.status < 500, body
            seconds.append(time.perf_counter() - t0)
        busy = False
        await poller
    return latencies, seconds


def upload_form(data: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", data, filename="anim.png", content_type="image/png")
    return form


def large_job_body() -> bytes:
    """A ~4.5 MB job (under the 5 MB body limit): txt2img with a large canvas ui block."""
    wf = txt2img()
    wf["ui"] = {"notes": [{"i": i, "text": "a note"} for i in range(150_000)]}
    return json.dumps({"workflow": wf}).encode()


async def _wait_up(base: str, proc: subprocess.Popen) -> None:
    async with aiohttp.ClientSession() as session:
        for _ in range(300):
            try:
                async with session.get(f"{base}/api/status") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            if proc.poll() is not None:
                raise SystemExit(proc.communicate())
            await asyncio.sleep(0.2)
    raise SystemExit("the server did not start")


def bench_server(data: bytes, uploads: int) -> None:
    port = free_port()
    job = large_job_body()
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "server.py", "--port", str(port), "--data", f"{tmp}/data"]
        cmd += ["--models", f"{tmp}/models", "--nodes", "tests.server_testkit"]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            base = f"http://127.0.0.1:{port}"
            asyncio.run(_wait_up(base, proc))
            path = "/api/files/input?store=false"
            up = asyncio.run(status_during(base, [(path, lambda: upload_form(data))] * uploads))
            posts = asyncio.run(status_during(base, [("/api/jobs", lambda: job)] * uploads))
        finally:
            proc.terminate()
            proc.wait(30)
    for what, size, (latencies, seconds) in (
        ("uploads", len(data), up),
        ("job bodies", len(job), posts),
    ):
        ms = sorted(x * 1000 for x in latencies)
        print(
            f"{uploads} {what} of {size / 1e6:.1f} MB, {statistics.median(seconds):.2f} s each; "
            f"/api/status meanwhile: {len(ms)} requests, median {statistics.median(ms):.1f} ms, "
            f"p99 {ms[int(len(ms) * 0.99) - 1]:.1f} ms, max {ms[-1]:.1f} ms (target < 50 ms)"
        )


def bench_outbox(sizes: list[int]) -> None:
    class Stuck:
        async def send_str(self, data: str) -> None:
            await asyncio.Event().wait()

    for n in sizes:
        box = Outbox(Stuck(), limit=n)  # a bound high enough to keep every final event
        t0 = time.perf_counter()
        for i in range(n // 2):
            box.offer({"type": "run_finished", "job": f"j{i}", "status": "ok"})
            box.offer({"type": "progress", "job": f"j{i}", "node_id": "s", "step": i})
        seconds = time.perf_counter() - t0
        print(
            f"outbox, stalled client: {n} offers in {seconds * 1000:.1f} ms "
            f"({seconds / n * 1e6:.2f} us each)"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--size", type=int, default=2048)
    p.add_argument("--frames", type=int, default=150)
    p.add_argument("--uploads", type=int, default=5)
    a = p.parse_args()
    t0 = time.perf_counter()
    data = animated_png(a.size, a.frames)
    print(
        f"built a {a.size}x{a.size} APNG of {a.frames} frames, {len(data) / 1e6:.1f} MB "
        f"in {time.perf_counter() - t0:.0f} s"
    )
    pillow, ours = text_read_times(data)
    print(
        f"reading its workflow chunk: Pillow {pillow * 1000:.0f} ms "
        f"(was on the event loop), graph.pngmeta {ours * 1000:.2f} ms"
    )
    bench_server(data, a.uploads)
    bench_outbox([1_000, 10_000, 100_000])


if __name__ == "__main__":
    main()
