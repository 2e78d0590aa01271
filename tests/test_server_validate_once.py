"""A queued job is validated once, when it is POSTed: the in-process worker runs the
checked workflow, and checks it again only when a Choice listing changed meanwhile (a
model file removed while the job waited still fails it, naming node and field)."""

from __future__ import annotations

import graph.executor
from tests import server_testkit as kit
from tests.server_testkit import (
    make_config,
    make_test_app,
    owned_client,
    submit,
    txt2img,
    wait_status,
)


async def test_a_job_is_checked_once_when_nothing_changed(aiohttp_client, tmp_path, monkeypatch):
    client = await owned_client(aiohttp_client, make_test_app(make_config(tmp_path)))
    calls = []
    real = graph.executor.validate
    monkeypatch.setattr(
        graph.executor, "validate", lambda *a, **k: calls.append(1) or real(*a, **k)
    )
    job = await submit(client, txt2img(steps=1))
    assert (await wait_status(client, job, ("ok", "error")))["status"] == "ok"
    assert calls == [1]  # the POST's check; the worker reused it


async def test_a_model_removed_while_queued_fails_the_job_by_node_and_field(
    aiohttp_client, tmp_path, monkeypatch
):
    client = await owned_client(aiohttp_client, make_test_app(make_config(tmp_path)))
    monkeypatch.setattr(kit, "CHECKPOINTS", ["tiny.safetensors", "other.safetensors"])
    busy = await submit(client, txt2img(steps=2, delay=0.3))  # holds the only worker
    waiting = await submit(client, txt2img(ckpt="other.safetensors", steps=1))
    monkeypatch.setattr(kit, "CHECKPOINTS", ["tiny.safetensors"])  # gone before it runs
    assert (await wait_status(client, busy, ("ok", "error")))["status"] == "ok"
    detail = await wait_status(client, waiting, ("ok", "error"))
    assert detail["status"] == "error"
    [problem] = detail["error"]["details"]
    assert (problem["node_id"], problem["field"], problem["code"]) == (
        "load",
        "name",
        "not_in_choices",
    )
