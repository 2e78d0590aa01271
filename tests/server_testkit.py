"""Test nodes and helpers for the server tests (no torch, no models).

The nodes mimic the shape of the SD graph: load -> encode -> sample -> save,
so caching, progress, interruption and budgets behave as with real nodes."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any, Literal

from aiohttp import web
from PIL import Image

from graph import Choice, Engine, Node, Registry, SocketType, Widget, Workspace, choice_source
from graph.cost import Cost, CostInputs
from service import ServerConfig, make_app
from service.clients import HEADER
from service.state import SERVICES

CHECKPOINTS = ["tiny.safetensors", "other.safetensors"]


class TValue(SocketType):
    name = "TVALUE"
    color = "#123456"


class TLoad(Node):
    """Stands in for a checkpoint loader (its name must be in the server's list)."""

    CATEGORY = "test"
    OUTPUTS = {"model": TValue}
    name: str = Choice("checkpoints")

    def run(self, ctx: Any, name: str) -> dict[str, Any]:
        store, key = ctx.resources.models, ("model", name)
        store.acquire(key, lambda: store.put(key, f"weights of {name}", 1000, "cpu", name))
        return {"model": f"model:{name}"}


class TEncode(Node):
    CATEGORY = "test"
    OUTPUTS = {"cond": TValue}
    model: TValue
    text: str = Widget("", multiline=True)

    def run(self, ctx: Any, model: str, text: str) -> dict[str, Any]:
        return {"cond": f"{model}|{text}"}


class TLatent(Node):
    CATEGORY = "test"
    OUTPUTS = {"latent": TValue}
    width: int = Widget(64, ge=8, le=16384, multiple_of=8)
    height: int = Widget(64, ge=8, le=16384, multiple_of=8)
    batch_size: int = Widget(1, ge=1, le=4096)

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        v = inputs.values
        pixels = v["width"] * v["height"] * v["batch_size"]
        return Cost(pixels=pixels, outputs={"latent": pixels}, pixels_field="width")

    def run(self, ctx: Any, width: int, height: int, batch_size: int) -> dict[str, Any]:
        return {"latent": f"{width}x{height}x{batch_size}"}


class TSample(Node):
    """Loops like a sampler: a progress report with a preview image every step."""

    CATEGORY = "test"
    OUTPUTS = {"latent": TValue}
    model: TValue
    cond: TValue
    latent: TValue
    seed: int = Widget(0, ge=0, seed=True)
    steps: int = Widget(3, ge=1, le=10000)
    delay: float = Widget(0.0, ge=0.0, le=5.0)

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        return Cost(inputs.linked_pixels("latent"), inputs.values["steps"], None, "latent", "steps")

    def run(
        self, ctx: Any, model: str, cond: str, latent: str, seed: int, steps: int, delay: float
    ) -> dict[str, Any]:
        done = ctx.resources.get_or_create("steps_done", dict)
        for i in range(steps):
            time.sleep(delay)
            done[ctx.run_id] = i + 1
            preview = Image.new("RGB", (32, 32), (i * 40 % 256, 80, seed % 256))
            ctx.progress((i + 1) / steps, i + 1, steps, preview=preview)
        return {"latent": f"sampled({model},{cond},{latent},{seed})"}


class TSave(Node):
    """Writes a small PNG into the output folder."""

    CATEGORY = "test"
    OUTPUT_NODE = True
    OUTPUTS = {}  # noqa: RUF012
    value: TValue
    prefix: str = Widget("out")

    def run(self, ctx: Any, value: str, prefix: str) -> dict[str, Any]:
        path = ctx.workspace.output_dir / f"{prefix}_{ctx.run_id[:12]}_{ctx.node_id}.png"
        Image.new("RGB", (8, 8), (len(value) % 256, 0, 0)).save(path)
        ctx.record_file("output", path)
        return {}


class TBoom(Node):
    """Always fails, like a node hitting a corrupt model."""

    CATEGORY = "test"
    OUTPUTS = {"value": TValue}
    value: TValue

    def run(self, ctx: Any, value: str) -> dict[str, Any]:
        raise ValueError("corrupt model file: header too large")


class TOom(Node):
    """Runs out of memory the way each device reports it: torch's CUDA error, torch's CPU
    allocator (a plain RuntimeError), Python's MemoryError."""

    CATEGORY = "test"
    OUTPUTS = {"value": TValue}
    value: TValue
    kind: Literal["cuda", "cpu", "python"] = "cuda"

    def run(self, ctx: Any, value: str, kind: str) -> dict[str, Any]:
        if kind == "python":
            raise MemoryError()
        import torch  # only when it runs: the test kit itself stays torch-free

        if kind == "cpu":
            torch.empty(2**61, dtype=torch.uint8)  # 2 EiB: the CPU allocator refuses
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")


class TCrash(Node):
    """Kills its worker process outright, like a segfault or a CUDA fatal error (only
    inside a worker process or actor: in the server it raises instead)."""

    CATEGORY = "test"
    OUTPUTS = {"value": TValue}
    value: TValue

    def run(self, ctx: Any, value: str) -> dict[str, Any]:
        if not os.environ.get("SDGRAPH_WORKER"):
            raise RuntimeError("TCrash only kills worker processes")
        os._exit(1)


class TStuck(Node):
    """Blocks without ever checking its interrupt, like a hung library call."""

    CATEGORY = "test"
    OUTPUTS = {"value": TValue}
    value: TValue
    seconds: float = Widget(30.0, ge=0.0, le=600.0)

    def run(self, ctx: Any, value: str, seconds: float) -> dict[str, Any]:
        time.sleep(seconds)
        return {"value": value}


NODES = [TLoad, TEncode, TLatent, TSample, TSave, TBoom, TOom, TCrash, TStuck]


@choice_source("checkpoints")
def list_checkpoints(workspace: Any) -> list[str]:
    return list(CHECKPOINTS)


def make_registry() -> Registry:
    """The same registry `server.py --nodes tests.server_testkit` loads."""
    registry = Registry.from_classes(NODES)
    registry.choice_sources["checkpoints"] = list_checkpoints
    return registry


def make_config(tmp: Path, **overrides: Any) -> ServerConfig:
    defaults: dict[str, Any] = {
        "data_dir": tmp / "data",
        "models_dir": tmp / "models",
        "workflows_dir": tmp / "workflows",
        "web_dist": tmp / "dist",
        "preview_interval": 0.0,
        "shutdown_timeout": 5.0,
    }
    defaults.update(overrides)
    return ServerConfig(**defaults)


def make_engine(config: ServerConfig) -> Engine:
    workspace = Workspace.at(config.data_dir, config.models_dir).ensure()
    return Engine(make_registry(), workspace)


def make_test_app(config: ServerConfig, engine: Engine | None = None) -> web.Application:
    return make_app(config, engine=engine or make_engine(config))


def txt2img(
    seed: int = 1,
    steps: int = 3,
    delay: float = 0.0,
    text: str = "a cat",
    width: int = 64,
    height: int = 64,
    batch_size: int = 1,
    ckpt: str = "tiny.safetensors",
    prefix: str = "out",
) -> dict[str, Any]:
    """A workflow shaped like txt2img on the test nodes."""
    return {
        "version": 1,
        "nodes": {
            "load": {"type": "TLoad", "inputs": {"name": ckpt}},
            "enc": {
                "type": "TEncode",
                "inputs": {"model": {"node": "load", "output": "model"}, "text": text},
            },
            "lat": {
                "type": "TLatent",
                "inputs": {"width": width, "height": height, "batch_size": batch_size},
            },
            "sample": {
                "type": "TSample",
                "inputs": {
                    "model": {"node": "load", "output": "model"},
                    "cond": {"node": "enc", "output": "cond"},
                    "latent": {"node": "lat", "output": "latent"},
                    "seed": seed,
                    "steps": steps,
                    "delay": delay,
                },
            },
            "save": {
                "type": "TSave",
                "inputs": {"value": {"node": "sample", "output": "latent"}, "prefix": prefix},
            },
        },
        "ui": {"positions": {"load": {"x": 0, "y": 0}}},
    }


def failing(node_type: str = "TBoom", **inputs: Any) -> dict[str, Any]:
    wf = txt2img()
    wf["nodes"]["boom"] = {
        "type": node_type,
        "inputs": {"value": {"node": "sample", "output": "latent"}, **inputs},
    }
    wf["nodes"]["save"]["inputs"]["value"] = {"node": "boom", "output": "value"}
    return wf


async def next_message(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), timeout)
    assert msg.type.name == "TEXT", f"websocket gave {msg.type}: {msg.data!r}"
    return json.loads(msg.data)


async def messages_until_finished(
    ws: Any,
    job: str,
    timeout: float = 15.0,
) -> list[dict[str, Any]]:
    """Every message up to and including the job's run_finished."""
    out: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while True:
        message = await next_message(ws, max(0.1, deadline - time.monotonic()))
        out.append(message)
        if message.get("type") == "run_finished" and message.get("job") == job:
            return out


async def wait_status(
    client: Any, job: str, statuses: tuple[str, ...], timeout: float = 15.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        resp = await client.get(f"/api/jobs/{job}")
        body = await resp.json()
        if body.get("status") in statuses:
            return body
        if time.monotonic() > deadline:
            raise AssertionError(f"job {job} stayed {body.get('status')}")
        await asyncio.sleep(0.02)


async def owned_client(
    aiohttp_client: Any, app: web.Application, client_id: str | None = None, **kwargs: Any
) -> Any:
    """A test client acting as one browser: every request (the websocket included)
    carries a client id the app issued (or ``client_id``), in ``client.client_id``."""
    client_id = client_id or app[SERVICES].clients.issue()
    headers = {HEADER: client_id, **kwargs.pop("headers", {})}
    client = await aiohttp_client(app, headers=headers, **kwargs)
    client.client_id = client_id
    return client


async def submit(
    client: Any, workflow: dict[str, Any], client_id: str | None = None, **extra: Any
) -> str:
    """Queue a job as ``client_id`` (default: the id the client's requests carry)."""
    body = {"workflow": workflow, **extra}
    if client_id is not None:
        body["client_id"] = client_id
    resp = await client.post("/api/jobs", json=body)
    body = await resp.json()
    assert resp.status == 200, body
    return str(body["id"])
