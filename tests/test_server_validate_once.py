"""A queued job is validated once, when it is POSTed: the in-process worker runs the
checked workflow, and checks it again only when a Choice listing changed meanwhile (a
model file removed while the job waited still fails it, naming node and field). An
identical resubmission reuses the POST's check too (service/submission_memo.py) while what
it read outside the body is unchanged."""

from __future__ import annotations

import json

import graph.executor
from graph.workflow import ModelRef, parse_workflow
from service.routes_import import Imported
from service.state import SERVICES
from service.submission_memo import Accepted, SubmissionMemo
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


async def test_resubmission_is_checked_once_until_a_listing_changes(
    aiohttp_client, tmp_path, monkeypatch
):
    app = make_test_app(make_config(tmp_path))
    engine = app[SERVICES].engine
    checks: list[int] = []
    real_check = engine.check
    monkeypatch.setattr(engine, "check", lambda wf: checks.append(1) or real_check(wf))
    client = await owned_client(aiohttp_client, app)
    workflow = txt2img(seed=5, steps=1)

    first = await wait_status(client, await submit(client, workflow), ("ok",))
    again = await wait_status(client, await submit(client, workflow), ("ok",))
    assert len(checks) == 1
    assert again["workflow"] == first["workflow"] and again["id"] != first["id"]

    # a checkpoint appears: the listing validation read differs, so it checks again
    monkeypatch.setattr(kit, "CHECKPOINTS", [*kit.CHECKPOINTS, "new.ckpt"])
    await wait_status(client, await submit(client, workflow), ("ok",))
    assert len(checks) == 2

    # the workflow's checkpoint is gone: the same bytes are now refused
    monkeypatch.setattr(kit, "CHECKPOINTS", ["other.safetensors"])
    resp = await client.post("/api/jobs", json={"workflow": workflow})
    assert resp.status == 400 and (await resp.json())["error"]["type"] == "invalid_workflow"

    # a refusal is never remembered: refused each time, checked each time
    bad = txt2img(steps=0)
    for _ in range(2):
        resp = await client.post("/api/jobs", json={"workflow": bad})
        assert resp.status == 400
    assert len(checks) == 5


def _imported(sha: str | None) -> Imported:
    workflow = parse_workflow(txt2img())
    if sha is not None:
        ref = ModelRef(kind="checkpoints", name="tiny.safetensors", sha256=sha)
        workflow = workflow.model_copy(update={"models": {"load.name": ref}})
    return Imported(workflow, "sdgraph")


class _Engine:
    valid = True

    def still_valid(self, checked: object) -> bool:
        return self.valid


def test_a_changed_model_file_or_listing_invalidates_the_memory() -> None:
    held = _imported("a" * 64)
    accepted = Accepted({}, None, held, None, {}, "{}")  # type: ignore[arg-type]
    engine = _Engine()
    assert accepted.still_holds(_imported("a" * 64), engine)
    assert not accepted.still_holds(_imported("b" * 64), engine)  # another file, same name
    assert not accepted.still_holds(_imported(None), engine)
    engine.valid = False
    assert not accepted.still_holds(_imported("a" * 64), engine)


def test_memory_keeps_the_latest_small_bodies() -> None:
    memo = SubmissionMemo(size=2, max_bytes=100)
    entries = {
        bytes([i]) * 10: Accepted({"i": i}, None, None, None, {}, "")  # type: ignore[arg-type]
        for i in range(3)
    }
    for raw, accepted in entries.items():
        memo.put(raw, accepted)
    raws = list(entries)
    assert memo.get(raws[0]) is None  # the oldest went
    assert memo.get(raws[2]) is entries[raws[2]]
    big = json.dumps({"x": "y" * 200}).encode()
    memo.put(big, entries[raws[1]])
    assert memo.get(big) is None  # large bodies are not kept
