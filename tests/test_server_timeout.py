"""--job-timeout: a job running past it is interrupted and failed with a timeout error."""

from __future__ import annotations

import time

from server import parse_args
from tests.server_testkit import (
    make_config,
    make_test_app,
    messages_until_finished,
    next_message,
    owned_client,
    submit,
    txt2img,
    wait_status,
)


async def test_a_job_past_its_timeout_is_interrupted_and_failed(aiohttp_client, tmp_path):
    app = make_test_app(make_config(tmp_path, job_timeout=0.5))
    client = await owned_client(aiohttp_client, app)
    ws = await client.ws_connect("/api/ws")
    await next_message(ws)
    t0 = time.monotonic()
    slow = await submit(client, txt2img(steps=200, delay=0.05))  # 10 s unless stopped
    got = await messages_until_finished(ws, slow)
    assert time.monotonic() - t0 < 5
    errors = [m for m in got if m["type"] == "error" and m.get("job") == slow]
    assert [e["error_type"] for e in errors] == ["timeout"]
    assert "--job-timeout of 0.5 s" in errors[0]["message"]
    assert got[-1]["status"] == "error"
    detail = await wait_status(client, slow, ("error",))
    assert detail["error"]["error_type"] == "timeout"
    assert detail["nodes"]["sample"]["status"] == "interrupted"
    # the queue goes on: a quick job after it runs to the end
    quick = await submit(client, txt2img(seed=2, steps=2))
    assert (await wait_status(client, quick, ("ok", "error")))["status"] == "ok"
    await ws.close()


def test_job_timeout_option() -> None:
    assert parse_args([]).job_timeout == 3600
    assert parse_args(["--job-timeout", "90"]).job_timeout == 90
    assert parse_args(["--job-timeout", "0"]).job_timeout is None
