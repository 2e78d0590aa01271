"""A worker in a child process: crash isolation, and one device per process.

The child (service/workers/child.py) owns an engine; the parent talks to it over
one duplex pipe: ``run``/``interrupt``/``free``/``stop`` down, ``ready``/``event``/
``done``/``state`` up. A reader thread per child receives everything; when the
pipe breaks (segfault, ``os._exit``, CUDA fatal error, OOM killer, a kill by
`restart`) the job in flight raises `WorkerLost` and a fresh child starts cold,
while every other worker and the queue go on.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from service.worker import JobOutcome, JobRequest, MessageSink, WorkerLost
from service.workers.child import child_main

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    job_id: str
    emit: MessageSink
    proc: BaseProcess
    done: threading.Event = field(default_factory=threading.Event)
    outcome: JobOutcome | None = None
    lost: str | None = None


def _exit_text(code: int | None) -> str:
    if code is None:
        return "the worker process stopped answering"
    if code < 0:
        return f"the worker process was killed by signal {-code}"
    return f"the worker process exited with code {code}"


class ProcessWorker:
    """One child process with its own engine; restarted cold whenever it dies."""

    kind = "process"

    def __init__(
        self, name: str, config: Any, device: str | None = None, start_timeout: float = 300.0
    ) -> None:
        self.name = name
        self.config = config
        self.device = device
        self.start_timeout = start_timeout
        self.starts = 0
        self._mp = multiprocessing.get_context("spawn")
        self._lock = threading.Lock()  # process, connection, pending job
        self._send_lock = threading.Lock()
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._ready = threading.Event()
        self._pending: _Pending | None = None
        self._interrupts: set[str] = set()
        self._state: dict[str, Any] = {}
        self._closing = False
        self._early_deaths = 0  # deaths before "ready" in a row: back off

    # -- life cycle -------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if self._closing or (self._proc is not None and self._proc.is_alive()):
                return
            parent, child = self._mp.Pipe()
            proc = self._mp.Process(
                target=child_main,
                args=(child, self.config, self.device, self.name),
                name=f"sdgraph-{self.name}",
                daemon=True,
            )
            proc.start()
            child.close()  # so the parent sees EOF when the child dies
            self._proc, self._conn = proc, parent
            self._ready.clear()
            self.starts += 1
        threading.Thread(
            target=self._read, args=(proc, parent), name=f"{self.name}-pipe", daemon=True
        ).start()

    @property
    def ready(self) -> bool:
        return self._ready.is_set() and not self._closing

    def restart(self) -> bool:
        with self._lock:
            proc = self._proc
        if proc is None or not proc.is_alive():
            return False
        proc.kill()  # the reader thread notices, fails the job and starts a new child
        return True

    def close(self) -> None:
        self._closing = True
        with self._lock:
            proc, conn = self._proc, self._conn
        if proc is None:
            return
        with contextlib.suppress(OSError, ValueError):
            self._send(conn, ("stop",))
        proc.join(5.0)
        if proc.is_alive():
            proc.kill()
            proc.join(5.0)

    # -- jobs -------------------------------------------------------------------
    def run(self, job: JobRequest, emit: MessageSink) -> JobOutcome:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not self._ready.wait(max(0.0, deadline - time.monotonic())):
                raise WorkerLost(f"the worker process did not start in {self.start_timeout} s")
            with self._lock:  # the reader clears `ready` under this lock when a child dies
                if self._ready.is_set() and self._proc is not None:
                    pending = _Pending(job.id, emit, self._proc)
                    self._pending, conn = pending, self._conn
                    break
        try:
            self._send(conn, ("run", job.id, job.workflow))
            if job.id in self._interrupts:
                self._send(conn, ("interrupt", job.id))
        except (OSError, ValueError):
            pass  # the child died: the reader marks the job lost
        pending.done.wait()
        with self._lock:
            self._pending = None
        self._interrupts.discard(job.id)
        if pending.lost is not None or pending.outcome is None:
            raise WorkerLost(pending.lost or "the worker process stopped")
        return pending.outcome

    def interrupt(self, job_id: str) -> bool:
        self._interrupts.add(job_id)  # also before run() sent the job
        with self._lock:
            pending, conn = self._pending, self._conn
        if pending is not None and pending.job_id == job_id and conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self._send(conn, ("interrupt", job_id))
        return True

    def loaded_models(self) -> list[str]:
        return list(self._state.get("loaded_models", []))

    def free_memory(self) -> None:
        with self._lock:
            conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError, ValueError):
                self._send(conn, ("free",))

    def stats(self) -> dict[str, Any]:
        proc = self._proc
        return {
            "name": self.name,
            "kind": self.kind,
            "device": self.device,
            "pid": None if proc is None else proc.pid,
            "ready": self.ready,
            "starts": self.starts,
            "loaded_models": self.loaded_models(),
            "cache": self._state.get("cache", {}),
        }

    # -- the pipe -----------------------------------------------------------------
    def _send(self, conn: Connection | None, message: tuple[Any, ...]) -> None:
        if conn is None:
            raise OSError("no worker process")
        with self._send_lock:
            conn.send(message)

    def _read(self, proc: BaseProcess, conn: Connection) -> None:
        became_ready = False
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                break
            except Exception:  # a message that does not unpickle: treat the child as broken
                log.exception("worker %s sent a broken message", self.name)
                proc.kill()
                break
            became_ready |= message[0] == "ready"
            self._receive(message)
        with contextlib.suppress(OSError):
            conn.close()
        proc.join(5.0)
        if proc.is_alive():
            proc.kill()
            proc.join(5.0)
        why = _exit_text(proc.exitcode)
        with self._lock:
            if self._proc is not proc:
                return
            self._ready.clear()
            pending = self._pending
            if pending is not None and pending.proc is proc and not pending.done.is_set():
                pending.lost = why
                pending.done.set()
        if self._closing:
            return
        log.warning("worker %s: %s; starting it again", self.name, why)
        self._early_deaths = 0 if became_ready else self._early_deaths + 1
        if self._early_deaths:  # it dies while starting: do not spin
            time.sleep(min(30.0, 0.5 * 2**self._early_deaths))
        self.start()

    def _receive(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        pending = self._pending
        if kind == "event":
            if pending is not None and message[1].get("job") == pending.job_id:
                pending.emit(message[1])
        elif kind == "done":
            self._state = message[3]
            if pending is not None and pending.job_id == message[1]:
                pending.outcome = JobOutcome(**message[2])
                pending.done.set()
        elif kind in ("ready", "state"):
            self._state = message[1]
            if kind == "ready":
                self._ready.set()
