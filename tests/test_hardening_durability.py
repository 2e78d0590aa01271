"""Durability (issue 11): a job database is never replaced silently, a killed job's
nodes are settled, secrets stay out of the access log, the temp folder is cleared at
start and numbered files are found without listing their folder."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import TestServer
from PIL import Image

from service.store import JobStore
from tests.server_testkit import make_config, make_test_app, txt2img
from tests.test_server_process import REPO, _call, _free_port

TOKEN = "tok-SECRET-1234567890"


def _job_db(path: Path, jobs: int = 200) -> bytes:
    store = JobStore(path)
    for i in range(jobs):
        store.add({"version": 1, "nodes": {}, "ui": {"pad": "x" * 500, "i": i}}, "client-a1")
    store.close()
    return path.read_bytes()


def _broken(kind: str, tmp_path: Path) -> bytes:
    if kind == "empty":
        return b""
    if kind == "garbage":
        return os.urandom(5000)
    good = _job_db(tmp_path / "good.sqlite3")
    if kind == "truncated":
        return good[: len(good) // 2]
    return good[:100]  # the header and nothing else


@pytest.mark.parametrize("kind", ["empty", "garbage", "truncated", "header-only"])
def test_a_broken_database_is_refused_and_left_alone(tmp_path, kind):
    from service.store_file import StoreUnusable

    path = tmp_path / "data" / "jobs.sqlite3"
    path.parent.mkdir()
    data = _broken(kind, tmp_path)
    path.write_bytes(data)
    with pytest.raises(StoreUnusable) as err:
        JobStore(path)
    message = str(err.value)
    assert str(path) in message and "mv " in message and "not replaced" in message
    assert path.read_bytes() == data  # never replaced


@pytest.mark.parametrize(
    ("kind", "reason"),
    [("empty", "the file is empty"), ("truncated", "database disk image is malformed")],
)
def test_server_refuses_to_start_on_a_broken_database(tmp_path, kind, reason):
    db = tmp_path / "data" / "jobs.sqlite3"
    db.parent.mkdir()
    data = _broken(kind, tmp_path)
    db.write_bytes(data)
    proc = subprocess.run(
        [sys.executable, "server.py", "--port", str(_free_port()), "--data", str(db.parent)]
        + ["--models", str(tmp_path / "models"), "--nodes", "tests.server_testkit"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"the job database {db} cannot be used: {reason}" in proc.stderr
    assert f"mv {db} {db}.broken-" in proc.stderr
    assert db.read_bytes() == data


def test_recovery_settles_the_nodes_of_an_interrupted_job(tmp_path):
    path = tmp_path / "jobs.sqlite3"
    store = JobStore(path)
    job, _ = store.add(txt2img(), "client-a1")
    store.claim_next()
    store.set_nodes(
        job.id,
        {
            "load": {"status": "executed", "seconds": 0.1},
            "sample": {"status": "running", "seconds": None, "started": 1.0},
            "save": {"status": "pending", "seconds": None},
        },
    )
    store.close()  # as a kill would leave it
    store = JobStore(path)
    got = store.get(job.id)
    assert got.status == "queued" and got.nodes == {}  # its second attempt starts afresh
    store.claim_next()
    store.set_nodes(
        job.id,
        {
            "load": {"status": "executed", "seconds": 0.1},
            "sample": {"status": "running", "seconds": None, "started": 1.0},
            "save": {"status": "pending", "seconds": None},
        },
    )
    store.close()  # killed again: out of attempts
    store = JobStore(path)
    got = store.get(job.id)
    store.close()
    assert got.status == "error" and got.error["error_type"] == "worker_lost"
    assert {k: v["status"] for k, v in got.nodes.items()} == {
        "load": "executed",
        "sample": "interrupted",
        "save": "skipped",
    }


def test_kill_9_then_restart_settles_nodes_and_the_token_never_reaches_the_log(tmp_path):
    port = _free_port()
    args = [sys.executable, "server.py", "--port", str(port), "--data", str(tmp_path / "data")]
    args += ["--models", str(tmp_path / "models"), "--nodes", "tests.server_testkit"]
    args += ["--auth-token", TOKEN]
    proc = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _call(port, f"/api/status?token={TOKEN}")
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, "no start"
                time.sleep(0.2)
        job = _call(port, "/api/jobs", {"workflow": txt2img(steps=200, delay=0.05)}, headers=auth)[
            "id"
        ]
        while (
            _call(port, f"/api/jobs/{job}", headers=auth)["nodes"].get("sample", {}).get("status")
            != "running"
        ):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    log = err.decode()
    assert "GET /api/status?token=[redacted]" in log  # the access log was written
    assert TOKEN not in log
    store = JobStore(tmp_path / "data" / "jobs.sqlite3")  # what the next start does
    try:
        got = store.get(job)
    finally:
        store.close()
    assert got.status == "queued" and got.attempts == 1  # it runs once more
    assert got.nodes == {}  # no stale "running" node states


async def test_access_log_redacts_tokens(aiohttp_client, tmp_path, caplog):
    from service.accesslog import RedactingAccessLogger

    app = make_test_app(make_config(tmp_path, auth_token=TOKEN))
    server = TestServer(app)
    await server.start_server(access_log_class=RedactingAccessLogger)  # as server.py runs it
    client = await aiohttp_client(server)
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    headers = {"Referer": f"http://127.0.0.1/?a=1&token={TOKEN}"}
    assert (await client.get(f"/api/status?x=1&token={TOKEN}", headers=headers)).status == 200
    text = "\n".join(r.getMessage() for r in caplog.records if r.name == "aiohttp.access")
    assert "/api/status?x=1&token=[redacted]" in text
    assert TOKEN not in text


async def test_temp_folder_is_cleared_when_the_server_starts(aiohttp_client, tmp_path):
    temp = tmp_path / "data" / "temp"
    (temp / "sub").mkdir(parents=True)
    (temp / "preview_00001_.png").write_bytes(b"old")
    (temp / "sub" / "x.png").write_bytes(b"old")
    outside = tmp_path / "keep.png"
    outside.write_bytes(b"keep")
    (temp / "link.png").symlink_to(outside)
    await aiohttp_client(make_test_app(make_config(tmp_path)))
    assert temp.is_dir() and list(temp.iterdir()) == []
    assert outside.read_bytes() == b"keep"  # links are removed, not followed


def test_numbered_files_beside_number_99999_without_listing_the_folder(tmp_path, monkeypatch):
    import nodes.sd.images as images
    from graph.workspace import Workspace

    workspace = Workspace.at(tmp_path / "data", tmp_path / "models").ensure()
    temp = workspace.temp_dir
    for n in (*range(1, 4), 99_999):
        (temp / f"preview_{n:05d}_.png").write_bytes(b"taken")

    def no_listing(*args, **kwargs):
        raise AssertionError("the folder was listed")

    monkeypatch.setattr(os, "scandir", no_listing)
    monkeypatch.setattr(os, "listdir", no_listing)
    image = Image.new("RGB", (4, 4))
    path = images.save_png(workspace, "temp", "preview", image, {})
    assert path.name == "preview_00004_.png"
    assert (temp / "preview_99999_.png").read_bytes() == b"taken"
