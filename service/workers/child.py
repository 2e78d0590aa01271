"""The main function of a worker child process (started with multiprocessing spawn).

It builds its own engine (output cache, loaded models) on the server's settings,
then runs the jobs the parent sends, one at a time, on an `InProcessWorker`,
streaming every message back. A listener thread takes interrupts while a job
runs, so an interrupt lands at the job's next sampler step. Nothing heavy is
imported before ``CUDA_VISIBLE_DEVICES`` is set, so the child sees only its device.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import threading
from dataclasses import asdict
from multiprocessing.connection import Connection
from typing import Any


def visible_devices(device: str) -> str | None:
    """CUDA_VISIBLE_DEVICES for a device name: cuda:1 -> "1", cpu -> "" (no GPU)."""
    if device == "cpu":
        return ""
    if device.startswith("cuda:"):
        return device.removeprefix("cuda:")
    if device.isdigit():
        return device
    return None  # "cuda": whatever the server sees


def child_main(conn: Connection, config: Any, device: str | None, name: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the server's to handle
    os.environ["SDGRAPH_WORKER"] = name
    if device is not None and (visible := visible_devices(device)) is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = visible
    if config.threads:  # read by torch when (if) a node imports it
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(config.threads)
    from nodes.sd.runtime import configure_process

    configure_process()
    from service.app import make_engine, make_worker
    from service.worker import JobRequest

    engine = make_engine(config)
    worker = make_worker(config, engine, name)
    send_lock = threading.Lock()

    def send(message: tuple[Any, ...]) -> None:
        with send_lock:
            conn.send(message)

    def state() -> dict[str, Any]:
        stats = worker.stats()
        return {"pid": os.getpid(), "loaded_models": stats["loaded_models"], **stats}

    tasks: queue.Queue[tuple[Any, ...] | None] = queue.Queue()

    def listen() -> None:
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                os._exit(0)  # the server is gone: so is this worker
            if message[0] == "interrupt":
                worker.interrupt(message[1])
            elif message[0] == "stop":
                tasks.put(None)
            else:
                tasks.put(message)

    threading.Thread(target=listen, name="commands", daemon=True).start()
    send(("ready", state()))
    while (task := tasks.get()) is not None:
        if task[0] == "run":
            _, job_id, workflow = task
            outcome = worker.run(JobRequest(job_id, workflow), lambda m: send(("event", m)))
            send(("done", job_id, asdict(outcome), state()))
        elif task[0] == "free":
            worker.free_memory()
            send(("state", state()))
    with contextlib.suppress(OSError):
        conn.close()
    os._exit(0)  # nothing to flush; library threads (torch, OpenMP) must not hold the exit
