"""What runs inside a Ray actor: one engine per actor, on the actor's own machine.

The actor keeps its files in a local scratch folder: input images arrive by
content hash (sent only when the actor lacks them), and the files a job writes
go back to the server as bytes, so worker machines need no shared file system.
Models come from the worker machine's own models folder (``SDGRAPH_MODELS`` on
that machine, else the server's ``--models`` path), by name and, where the workflow
records a model's sha256, by content under any name. Ray imports this module by
name on each worker, so the project must be importable there.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from graph.workspace import confined_path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class EngineActor:
    """Ray actor class (wrapped with ``ray.remote`` by service/workers/ray.py)."""

    def __init__(self, config: Any, name: str) -> None:
        os.environ["SDGRAPH_WORKER"] = name
        if config.threads:
            os.environ["OMP_NUM_THREADS"] = str(config.threads)
            torch = sys.modules.get("torch")  # Ray's worker process may have loaded it
            if torch is not None:
                torch.set_num_threads(config.threads)
        from nodes.sd.runtime import configure_process
        from service.app import make_engine, make_worker

        configure_process()
        scratch = Path(tempfile.mkdtemp(prefix=f"sdgraph-{name}-"))
        models = Path(os.environ.get("SDGRAPH_MODELS") or config.models_dir)
        self.config = replace(config, data_dir=scratch, models_dir=models)
        self.engine = make_engine(self.config)
        self.worker = make_worker(self.config, self.engine, name)
        self._inputs: dict[str, str] = {}  # input file name -> sha256 of what is there

    def state(self) -> dict[str, Any]:
        stats = self.worker.stats()
        return {"pid": os.getpid(), "node": _node_id(), **stats}

    def missing(self, inputs: dict[str, str]) -> list[str]:
        """The hashes among ``{name: sha256}`` this actor does not have under that name."""
        return sorted({sha for name, sha in inputs.items() if self._inputs.get(name) != sha})

    def interrupt(self, job_id: str) -> bool:
        return self.worker.interrupt(job_id)

    def free_memory(self) -> None:
        self.worker.free_memory()

    def run(
        self, job_id: str, workflow: dict[str, Any], inputs: dict[str, str], blobs: dict[str, bytes]
    ) -> Iterator[tuple[Any, ...]]:
        """Stream ("event", message)... then ("done", outcome, files as bytes, state)."""
        self._store_inputs(inputs, blobs)
        workflow = self.local_models(workflow)
        from service.worker import JobRequest

        messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        result: dict[str, Any] = {}

        def work() -> None:
            try:
                result["outcome"] = self.worker.run(JobRequest(job_id, workflow), messages.put)
            finally:
                messages.put(None)

        threading.Thread(target=work, name=f"job-{job_id[:8]}", daemon=True).start()
        while (message := messages.get()) is not None:
            yield ("event", message)
        outcome = result["outcome"]
        yield ("done", asdict(outcome), self._take_files(outcome.files), self.state())

    def local_models(self, workflow: dict[str, Any]) -> dict[str, Any]:
        """The workflow with its model names pointed at this machine's files: the server
        resolved them against its own models folder, and this machine may hold the same
        file (same sha256 in the workflow's ``models`` section) under another name. A model
        found nowhere keeps its name, and the job's validation then names it."""
        if not workflow.get("models"):
            return workflow
        from graph.workflow import parse_workflow
        from model_index import index_for, model_inputs, resolve_models

        parsed = parse_workflow(workflow)
        index = index_for(self.engine.workspace)
        local, _missing, _notes = resolve_models(parsed, index, model_inputs(self.engine.registry))
        return local.model_dump(exclude_none=True)

    def _store_inputs(self, inputs: dict[str, str], blobs: dict[str, bytes]) -> None:
        folder = self.engine.workspace.input_dir
        for name, sha in inputs.items():
            if self._inputs.get(name) == sha or sha not in blobs:
                continue
            path = confined_path(folder, name)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(blobs[sha])
            self._inputs[name] = sha

    def _take_files(self, files: list[dict[str, str]]) -> list[tuple[str, str, bytes]]:
        """The job's files as bytes; the local copies go (the server keeps them)."""
        out = []
        for f in files:
            path = confined_path(self.engine.workspace.folder(f["kind"]), f["name"])
            if path.is_file():
                out.append((f["kind"], f["name"], path.read_bytes()))
                path.unlink()
        return out


def _node_id() -> str | None:
    try:
        import ray

        return str(ray.get_runtime_context().get_node_id())
    except Exception:
        return None
