"""Workers as Ray actors, for a cluster: one actor per GPU (``num_gpus=1``), or per
CPU slot when the cluster has no GPU.

The server stays the only public surface and its SQLite queue the only truth;
Ray only places actors, streams their events (a generator method) and restarts
an actor whose process or machine died (``max_restarts``). Ray never retries a
job by itself (``max_task_retries=0``): a lost actor raises `WorkerLost` and the
store's attempts rule decides. Ray is optional: ``pip install -r requirements-ray.txt``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from typing import Any

from graph.workspace import Workspace, confined_path
from service.config import ConfigError, ServerConfig
from service.scheduler import choice_values
from service.worker import JobOutcome, JobRequest, MessageSink, Worker, WorkerLost

log = logging.getLogger(__name__)
RAY_HINT = "pip install -r requirements-ray.txt"


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise ConfigError(
            f"--workers ray needs Ray, which is not installed: {RAY_HINT} "
            "(or use --workers process:N on one machine)"
        ) from None
    return ray


def ray_workers(
    config: ServerConfig, workspace: Workspace, registry: Any, count: int | None
) -> list[Worker]:
    """Connect to (or start) Ray and make ``count`` actors (default: one per GPU, else one)."""
    ray = import_ray()
    if not ray.is_initialized():
        if config.ray_address:
            ray.init(address=config.ray_address, log_to_driver=False)
        else:
            ray.init(include_dashboard=False, log_to_driver=False)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    count = count or max(gpus, 1)
    resources = {"num_gpus": 1} if gpus >= count else {"num_cpus": 1}
    return [RayWorker(f"ray-{i}", config, workspace, registry, resources) for i in range(count)]


class RayWorker:
    """One Ray actor with its own engine; Ray restarts it cold when it dies."""

    kind = "ray"

    def __init__(
        self,
        name: str,
        config: ServerConfig,
        workspace: Workspace,
        registry: Any,
        resources: dict[str, Any],
        max_restarts: int = -1,
    ) -> None:
        self.name = name
        self.config = config
        self.workspace = workspace  # the server's: inputs are read, outputs written here
        self.registry = registry
        self.resources = resources
        self.max_restarts = max_restarts
        self.starts = 0
        self.inputs_sent = 0  # input files sent as bytes (an actor that has one gets none)
        self._ray = import_ray()
        self._actor: Any = None
        self._ready = threading.Event()
        self._closing = False
        self._state: dict[str, Any] = {}

    # -- life cycle ---------------------------------------------------------------
    def start(self) -> None:
        from service.workers.ray_actor import EngineActor

        ray = self._ray
        actor_class = ray.remote(EngineActor).options(
            name=None,
            max_restarts=self.max_restarts,
            max_task_retries=0,
            max_concurrency=4,  # interrupt and state calls beside a running job
            **self.resources,
        )
        self._actor = actor_class.remote(self.config, self.name)
        self._await_ready()

    def _await_ready(self) -> None:
        """Wait in the background for the (re)started actor to answer."""
        self._ready.clear()

        def wait() -> None:
            while not self._closing:
                try:
                    self._state = self._ray.get(self._actor.state.remote(), timeout=600)
                except Exception as exc:  # still restarting, or gone for good
                    if not self._closing:
                        log.warning("ray worker %s not ready: %s", self.name, exc)
                    time.sleep(1.0)
                    continue
                self.starts += 1
                self._ready.set()
                return

        threading.Thread(target=wait, name=f"{self.name}-ready", daemon=True).start()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self._closing

    def restart(self) -> bool:
        if self._actor is None:
            return False
        self._ray.kill(self._actor, no_restart=False)
        return True

    def close(self) -> None:
        self._closing = True
        if self._actor is not None:
            with contextlib.suppress(Exception):
                self._ray.kill(self._actor, no_restart=True)

    # -- jobs -------------------------------------------------------------------------
    def run(self, job: JobRequest, emit: MessageSink) -> JobOutcome:
        ray = self._ray
        if not self._ready.wait(600):
            raise WorkerLost(f"ray worker {self.name} did not start")
        try:
            inputs, blobs = self._inputs(job.workflow)
            if inputs:
                missing = set(ray.get(self._actor.missing.remote(inputs), timeout=60))
                blobs = {sha: data for sha, data in blobs.items() if sha in missing}
                self.inputs_sent += len(blobs)
            stream = self._actor.run.options(num_returns="streaming").remote(
                job.id, job.workflow, inputs, blobs
            )
            for ref in stream:
                message = ray.get(ref)
                if message[0] == "event":
                    emit(message[1])
                else:
                    _, outcome, files, self._state = message
                    self._write(files)
                    return JobOutcome(**outcome)
        except ray.exceptions.RayActorError as exc:  # died, node lost, or unreachable
            self._await_ready()
            raise WorkerLost(f"ray actor {self.name} was lost: {type(exc).__name__}") from None
        except ray.exceptions.GetTimeoutError as exc:
            raise WorkerLost(f"ray actor {self.name} did not answer: {exc}") from None
        raise WorkerLost(f"ray actor {self.name} ended the job without a result")

    def _inputs(self, workflow: dict[str, Any]) -> tuple[dict[str, str], dict[str, bytes]]:
        """The input images the job reads: {name: sha256} and {sha256: bytes}."""
        inputs: dict[str, str] = {}
        blobs: dict[str, bytes] = {}
        for _, name in choice_values(workflow, self.registry, ("input_images",)):
            with contextlib.suppress(OSError, ValueError):
                data = confined_path(self.workspace.input_dir, name).read_bytes()
                sha = hashlib.sha256(data).hexdigest()
                inputs[name], blobs[sha] = sha, data
        return inputs, blobs

    def _write(self, files: list[tuple[str, str, bytes]]) -> None:
        for kind, name, data in files:
            path = confined_path(self.workspace.folder(kind), name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)

    def interrupt(self, job_id: str) -> bool:
        # Also before the job reached the actor: its cancel token waits for the job.
        if self._actor is not None:
            self._actor.interrupt.remote(job_id)
        return True

    def loaded_models(self) -> list[str]:
        return list(self._state.get("loaded_models", []))

    def free_memory(self) -> None:
        if self._actor is not None:
            self._actor.free_memory.remote()

    def stats(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "ready": self.ready,
            "starts": self.starts,
            "inputs_sent": self.inputs_sent,
            "resources": self.resources,
            "pid": self._state.get("pid"),
            "node": self._state.get("node"),
            "loaded_models": self.loaded_models(),
            "cache": self._state.get("cache", {}),
        }
