"""Worker backends behind the one `service.worker.Worker` protocol, chosen by
``--workers``: ``inprocess`` (default), ``process:N`` or ``process:DEV,DEV,...``
(child processes, one device each), ``ray`` or ``ray:N`` (Ray actors)."""

from __future__ import annotations

from graph.executor import Engine
from service.config import ConfigError, ServerConfig
from service.worker import Worker

MAX_WORKERS = 64


def parse_spec(spec: str) -> tuple[str, list[str | None]]:
    """``(kind, devices)`` of a ``--workers`` value; one device entry per worker
    (None: the process's own view, e.g. every GPU, or Ray's choice)."""
    kind, _, rest = spec.strip().partition(":")
    if kind == "inprocess" and not rest:
        return kind, [None]
    if kind in ("process", "ray"):
        if not rest:
            return kind, [None] if kind == "process" else []
        if rest.isdigit() and 0 < int(rest) <= MAX_WORKERS:
            return kind, [None] * int(rest)
        devices = [d.strip() for d in rest.split(",")]
        if kind == "process" and devices and all(_device_ok(d) for d in devices):
            return kind, list(devices)
    raise ConfigError(
        f"--workers {spec!r}: expected inprocess, process:N, process:cuda:0,cuda:1 "
        f"(or cpu,cpu), ray or ray:N (N from 1 to {MAX_WORKERS})"
    )


def _device_ok(device: str) -> bool:
    return device in ("cpu", "cuda") or (
        device.startswith("cuda:") and device.removeprefix("cuda:").isdigit()
    )


def build_workers(config: ServerConfig, engine: Engine) -> list[Worker]:
    """The server's workers (not started yet)."""
    kind, devices = parse_spec(config.workers)
    if kind == "inprocess":
        from service.app import make_worker  # the per-job torch thread policy

        return [make_worker(config, engine)]
    if kind == "process":
        from service.workers.process import ProcessWorker

        return [ProcessWorker(f"process-{i}", config, d) for i, d in enumerate(devices)]
    from service.workers.ray import ray_workers

    return ray_workers(config, engine.workspace, engine.registry, len(devices) or None)
