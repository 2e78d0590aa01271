"""Start-up: the socket answers before the engine has loaded (service.startup)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from service import app as app_module
from service import make_app
from tests.server_testkit import make_config, make_engine, owned_client, submit, txt2img


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """make_engine blocks until the event is set, like importing torch and the nodes."""
    release = threading.Event()

    def slow_engine(config, registry=None):
        assert release.wait(30), "the test never released the engine"
        return make_engine(config)

    monkeypatch.setattr(app_module, "make_engine", slow_engine)
    return release


async def test_status_answers_while_loading_and_the_api_waits(aiohttp_client, tmp_path: Path, gate):
    client = await owned_client(aiohttp_client, make_app(make_config(tmp_path), background=True))
    status = await (await client.get("/api/status")).json()
    assert status["engine"]["state"] == "loading"
    assert "torch" in status["engine"]["message"]
    nodes = client.get("/api/nodes")  # waits for the engine instead of failing
    threading.Timer(0.2, gate.set).start()
    resp = await nodes
    assert resp.status == 200 and "TSample" in (await resp.json())["nodes"]
    status = await (await client.get("/api/status")).json()
    assert status["engine"]["state"] == "ready" and "worker" in status
    job_id = await submit(client, txt2img())
    assert job_id


async def test_api_answers_503_while_still_loading(aiohttp_client, tmp_path: Path, gate):
    client = await aiohttp_client(
        make_app(make_config(tmp_path, engine_wait=0.05), background=True)
    )
    resp = await client.get("/api/models")
    assert resp.status == 503
    body = await resp.json()
    assert body["error"]["type"] == "engine_loading" and "loading" in body["error"]["message"]
    gate.set()


async def test_a_failing_load_is_reported(aiohttp_client, tmp_path: Path, monkeypatch):
    def broken(config, registry=None):
        raise ImportError("no module named 'torch'")

    monkeypatch.setattr(app_module, "make_engine", broken)
    client = await aiohttp_client(make_app(make_config(tmp_path, engine_wait=5), background=True))
    resp = await client.get("/api/nodes")
    assert resp.status == 503
    assert (await resp.json())["error"]["type"] == "engine_failed"
    status = await (await client.get("/api/status")).json()
    assert status["engine"]["state"] == "failed" and "torch" in status["engine"]["error"]
