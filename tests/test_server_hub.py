"""Backpressure: a slow websocket never blocks the worker and never loses a final event."""

from __future__ import annotations

import asyncio
import json
import time

from service.hub import Hub, Outbox
from tests.server_testkit import (
    make_config,
    make_test_app,
    messages_until_finished,
    next_message,
    owned_client,
    submit,
    txt2img,
    wait_status,
)


class StuckSocket:
    """A client that stops reading: every send waits until released."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.release = asyncio.Event()

    async def send_str(self, data: str) -> None:
        await self.release.wait()
        self.sent.append(json.loads(data))


def _progress(job: str, step: int, node: str = "s") -> dict:
    return {"type": "progress", "job": job, "node_id": node, "step": step}


async def test_outbox_coalesces_progress_and_keeps_final_events():
    sock = StuckSocket()
    box = Outbox(sock, limit=8)
    pump = asyncio.create_task(box.pump())
    await asyncio.sleep(0)
    box.offer({"type": "queued", "job": "j"})
    box.offer({"type": "run_started", "job": "j", "to_run": ["s"], "cached": []})
    for step in range(1000):
        box.offer(_progress("j", step))
    assert len(box.pending) <= 8
    assert [m["step"] for m in box.pending if m["type"] == "progress"] == [999]  # coalesced
    for i in range(50):
        box.offer({"type": "node_finished", "job": "j", "node_id": f"n{i}"})
    box.offer({"type": "error", "job": "j", "node_id": "s"})
    box.offer({"type": "run_finished", "job": "j", "status": "error"})
    assert len(box.pending) <= 8
    assert box.dropped > 0
    kinds = [m["type"] for m in box.pending]
    assert kinds[-2:] == ["error", "run_finished"]
    sock.release.set()
    for _ in range(100):
        await asyncio.sleep(0)
    assert sock.sent[-1]["type"] == "run_finished"
    assert len(sock.sent) <= 9
    box.close()
    await asyncio.wait_for(pump, 1)


async def test_outbox_never_drops_final_events_even_over_its_bound():
    box = Outbox(StuckSocket(), limit=4)
    for i in range(20):
        box.offer({"type": "queued", "job": f"j{i}"})
        box.offer(_progress(f"j{i}", 1))
        box.offer({"type": "run_finished", "job": f"j{i}", "status": "ok"})
    finals = [m for m in box.pending if m["type"] == "run_finished"]
    assert len(finals) == 20
    assert not [m for m in box.pending if m["type"] == "progress"]


async def test_hub_routes_by_client():
    hub = Hub(limit=10)
    a, b = StuckSocket(), StuckSocket()
    box_a = hub.connect("a", a)
    box_b = hub.connect("b", b)
    hub.send("a", {"type": "queued", "job": "1"})
    hub.broadcast({"type": "status", "queue": []})
    assert [m["type"] for m in box_a.pending] == ["queued", "status"]
    assert [m["type"] for m in box_b.pending] == ["status"]
    hub.disconnect("a", box_a)
    hub.send("a", {"type": "queued", "job": "2"})
    assert len(box_a.pending) == 2 and hub.connections() == 1


async def test_client_that_never_reads_does_not_slow_the_queue(aiohttp_client, tmp_path):
    client = await owned_client(
        aiohttp_client, make_test_app(make_config(tmp_path, ws_queue_limit=8))
    )
    lazy = await client.ws_connect("/api/ws")  # never read until the end
    t0 = time.monotonic()
    jobs = [await submit(client, txt2img(seed=s, steps=150)) for s in range(3)]
    for job in jobs:
        await wait_status(client, job, ("ok",))
    assert time.monotonic() - t0 < 10
    got = await messages_until_finished(lazy, jobs[-1])
    finals = [m["job"] for m in got if m["type"] == "run_finished"]
    assert finals == jobs
    await lazy.close()
    # a fresh connection still works
    ws = await client.ws_connect("/api/ws")
    assert (await next_message(ws))["type"] == "snapshot"
    await ws.close()


async def test_odd_values_do_not_end_the_stream():
    sock = StuckSocket()
    sock.release.set()
    box = Outbox(sock, limit=8)
    pump = asyncio.create_task(box.pump())
    box.offer({"type": "error", "job": "j", "inputs": {"x": object()}})
    box.offer({"type": "run_finished", "job": "j", "status": "error"})
    for _ in range(20):
        await asyncio.sleep(0)
    assert [m["type"] for m in sock.sent] == ["error", "run_finished"]
    box.close()
    await asyncio.wait_for(pump, 1)


async def test_pongs_are_coalesced_and_dropped_first():
    box = Outbox(StuckSocket(), limit=8)
    box.offer({"type": "queued", "job": "j"})
    for _ in range(10_000):
        box.offer({"type": "pong"})
    assert [m["type"] for m in box.pending] == ["queued", "pong"]
    for i in range(20):
        box.offer({"type": "run_finished", "job": f"j{i}", "status": "ok"})
    assert "pong" not in [m["type"] for m in box.pending]


class ClosableStuckSocket(StuckSocket):
    def __init__(self) -> None:
        super().__init__()
        self.closed_with: int | None = None

    async def close(self, code: int = 1000, message: bytes = b"") -> None:
        self.closed_with = code


async def test_a_stalled_client_is_disconnected_not_buffered_forever():
    sock = ClosableStuckSocket()
    box = Outbox(sock, limit=8)
    for i in range(5_000):  # final events are never dropped: only a disconnect bounds them
        box.offer({"type": "run_finished", "job": f"j{i}", "status": "ok"})
        box.offer(_progress(f"j{i}", 1))
    await asyncio.sleep(0)
    assert box.stalled and box.pending == []
    assert sock.closed_with == 1013  # try again later: the client reconnects for a snapshot
    box.offer({"type": "queued", "job": "late"})
    assert box.pending == []
