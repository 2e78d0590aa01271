"""`python server.py` as a process: start-up message, serving, graceful SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from service.store import JobStore
from tests.server_testkit import CHECKPOINTS, txt2img

REPO = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _call(
    port: int,
    path: str,
    body: dict | None = None,
    client_id: str = "",
    headers: dict | None = None,
) -> dict:
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(headers or {})}
    if client_id:
        headers["X-Client-Id"] = client_id
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def test_server_process_serves_and_stops_gracefully(tmp_path):
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "server.py",
            "--port",
            str(port),
            "--data",
            str(tmp_path / "data"),
            "--models",
            str(tmp_path / "models"),
            "--web-dist",
            str(tmp_path / "no-dist"),
            "--nodes",
            "tests.server_testkit",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                models = _call(port, "/api/models")
                break
            except OSError:
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)
        assert models == {"checkpoints": CHECKPOINTS, "files": [], "native_sizes": {}}
        wf = txt2img(steps=150, delay=0.05)
        first = _call(port, "/api/jobs", {"workflow": wf})  # the server issues a client id
        running, me = first["id"], first["client_id"]
        wf = txt2img(seed=7)
        waiting = _call(port, "/api/jobs", {"workflow": wf, "client_id": me})["id"]
        while (
            _call(port, f"/api/jobs/{running}", client_id=me)["nodes"]
            .get("sample", {})
            .get("status")
            != "running"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 5
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert f"serving on http://127.0.0.1:{port}/" in out
    assert "npm ci && npm run build" in err
    store = JobStore(tmp_path / "data" / "jobs.sqlite3")
    try:
        assert store.get(running).status == "interrupted"
        assert store.get(waiting).status == "queued"  # runs at the next start
    finally:
        store.close()
