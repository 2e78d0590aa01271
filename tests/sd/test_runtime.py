"""Per-job settings: the bf16 capability probe behind dtype auto, the thread policy."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from graph import Engine, Node, Registry, Widget, Workspace
from nodes.sd import checkpoints as ckpts
from nodes.sd import runtime
from service.app import make_worker
from service.config import ServerConfig
from service.worker import JobRequest


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx512f avx512_bf16 amx_tile\n")
    assert runtime.cpu_flags(info) & runtime.NATIVE_BF16_FLAGS == {"avx512_bf16"}
    info.write_text("processor\t: 0\nflags\t\t: fpu sse avx2\n")
    assert not runtime.cpu_flags(info) & runtime.NATIVE_BF16_FLAGS
    assert runtime.cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize("native", [True, False])
def test_auto_dtype_follows_the_cpu(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(ckpts, "cpu_has_native_bf16", lambda: native)
    expected = torch.bfloat16 if native else torch.float32
    assert ckpts.resolve_dtype("auto", torch.device("cpu")) == expected
    assert ckpts.resolve_dtype("fp32", torch.device("cpu")) == torch.float32  # the override
    assert ckpts.resolve_dtype("auto", torch.device("cuda")) == torch.float16


def test_native_bf16_probe_agrees_with_torch() -> None:
    probe = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert runtime.cpu_has_native_bf16() == (probe or bool(runtime.cpu_flags() & {"amx_bf16"}))


def test_bf16_on_the_cpu_lays_convolutions_out_channels_last() -> None:
    """bf16 CPU convolutions run on NHWC (faster there); fp32 keeps diffusers' layout, so
    the parity tests' pixels stay bit-equal."""
    import copy

    from nodes.sd.model_store import move

    net = torch.nn.Sequential(torch.nn.Conv2d(4, 8, 3), torch.nn.Linear(6, 6))
    cpu = torch.device("cpu")
    fast = move(copy.deepcopy(net), cpu, torch.bfloat16)
    assert fast[0].weight.dtype == torch.bfloat16
    assert fast[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert not fast[0].weight.is_contiguous()
    plain = move(net, cpu, torch.float32)
    assert plain[0].weight.is_contiguous()
    x = torch.randn(1, 4, 8, 8)
    with torch.no_grad():  # same numbers either way, up to bf16 rounding
        same = plain.to(torch.bfloat16)(x.bfloat16()).float()
        assert torch.allclose(fast(x.bfloat16()).float(), same, atol=0.02)


def _doc(width: int, height: int, batch: int = 1) -> dict[str, Any]:
    inputs = {"width": width, "height": height, "batch_size": batch}
    return {"nodes": {"latent": {"type": "EmptyLatent", "inputs": inputs}}}


def test_thread_policy_by_size() -> None:
    assert runtime.threads_for(64 * 64, cores=8) == 1
    assert runtime.threads_for(512 * 512, cores=8) == 8
    assert runtime.workflow_pixels(_doc(64, 64, 4)) == 64 * 64 * 4
    assert runtime.workflow_pixels({"nodes": {"a": {"inputs": {"width": {"node": "x"}}}}}) == 0
    assert runtime.job_thread_count(_doc(64, 64)) == 1
    assert runtime.job_thread_count(_doc(1024, 1024)) == runtime.usable_cores()
    assert runtime.job_thread_count({"nodes": {}}) == runtime.usable_cores()  # size unknown
    assert runtime.job_thread_count(_doc(64, 64), override=3) == 3  # --threads


def test_job_threads_restores_the_count() -> None:
    before = torch.get_num_threads()
    with runtime.job_threads(_doc(2048, 2048), override=before + 1) as n:
        assert n == torch.get_num_threads() == before + 1
    assert torch.get_num_threads() == before


class ThreadProbe(Node):
    """Records the torch thread count its job runs with."""

    CATEGORY = "test"
    OUTPUT_NODE = True
    OUTPUTS = {}  # noqa: RUF012
    width: int = Widget(64, ge=8)
    height: int = Widget(64, ge=8)

    def run(self, ctx: Any, width: int, height: int) -> dict[str, Any]:
        seen_threads.append(torch.get_num_threads())
        return {}


seen_threads: list[int] = []


@pytest.mark.skipif(runtime.usable_cores() < 2, reason="needs two cores")
def test_the_worker_applies_the_policy_per_job(tmp_path: Path) -> None:
    engine = Engine(
        Registry.from_classes([ThreadProbe]), Workspace.at(tmp_path, tmp_path / "models").ensure()
    )
    seen_threads.clear()
    statuses: list[str] = []

    def job(worker: Any, size: int, seed: int) -> None:
        doc = {"version": 1, "nodes": {"p": {"type": "ThreadProbe", "inputs": {}}}}
        doc["nodes"]["p"]["inputs"] = {"width": size, "height": size + seed * 8}
        outcome = worker.run(JobRequest(f"job-{size}-{seed}", doc), lambda m: None)
        statuses.append(outcome.status)

    policy = make_worker(ServerConfig(), engine)
    fixed = make_worker(ServerConfig(threads=2), engine)

    def worker_thread() -> None:  # jobs run in the dispatcher's thread
        job(policy, 64, 0)
        job(policy, 1024, 0)
        job(fixed, 64, 1)

    t = threading.Thread(target=worker_thread)
    t.start()
    t.join()
    assert statuses == ["ok"] * 3
    assert seen_threads == [1, runtime.usable_cores(), 2]
