"""ComfyUI and A1111 files through run.py and the server (real nodes, the tiny model)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aiohttp import FormData

import run
from graph import Registry
from service import make_app
from tests.server_testkit import make_config, owned_client, submit, wait_status

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures" / "comfyui"
pytest.importorskip("torch")


def small_comfy_api() -> dict:
    """Case 01, made cheap: the built-in tiny model, 64x64, 2 steps."""
    doc = json.loads((FIX / "case01_euler_normal.api.json").read_text())
    doc["4"]["inputs"]["ckpt_name"] = "builtin/tiny-random"
    doc["5"]["inputs"].update(width=64, height=64)
    doc["3"]["inputs"]["steps"] = 2
    return doc


def test_cli_runs_converts_and_exports(tmp_path: Path, capsys) -> None:
    def cli(*args: str) -> tuple[int, str, str]:
        base = ["--data", str(tmp_path / "data"), "--models", str(tmp_path / "models")]
        code = run.main([*base, *args])
        out, err = capsys.readouterr()
        return code, out, err

    api = tmp_path / "comfy.api.json"
    api.write_text(json.dumps(small_comfy_api()))
    code, out, err = cli(str(api), "--json")
    assert code == 0, err
    (saved,) = json.loads(out)["runs"][0]["files"]
    assert Path(saved).name.startswith("case01_euler_normal")
    ours = tmp_path / "ours.json"
    assert cli("--convert", str(FIX / "case01_euler_normal.png"), str(ours))[0] == 0
    doc = json.loads(ours.read_text())
    assert doc["nodes"]["3"]["type"] == "Sample"
    assert doc["ui"]["positions"]["4"] == {"x": round(26 * 1.6), "y": 474}
    back = tmp_path / "back.api.json"
    code, _, err = cli("--convert", str(ours), str(back), "--export", "comfyui-api")
    assert code == 0, err
    assert json.loads(back.read_text())["3"]["class_type"] == "KSampler"
    code, out, err = cli(str(FIX / "refused.api.json"), "--json")
    assert code == 2
    assert {e["node_id"] for e in json.loads(out)["errors"]} >= {"11", "12"}
    assert "IPAdapterAdvanced" in err


@pytest.fixture(scope="module")
def sd_registry() -> Registry:
    return Registry.from_package("nodes")


async def test_server_accepts_converts_and_refuses(aiohttp_client, tmp_path, sd_registry):
    app = make_app(make_config(tmp_path), registry=sd_registry)
    client = await owned_client(aiohttp_client, app)
    job = await submit(client, small_comfy_api())
    done = await wait_status(client, job, ("ok", "error", "interrupted"), timeout=120)
    assert done["status"] == "ok", done
    resp = await client.post(
        "/api/jobs", json={"workflow": json.loads((FIX / "refused.api.json").read_text())}
    )
    body = await resp.json()
    assert resp.status == 400
    assert {"11", "12"} <= {p["node_id"] for p in body["error"]["details"]}
    ui = json.loads((FIX / "case01_euler_normal.ui.json").read_text())
    resp = await client.post("/api/workflows/import", json=ui)
    body = await resp.json()
    assert resp.status == 200 and body["source"] == "comfyui-ui"
    assert body["workflow"]["ui"]["positions"]["3"] == {"x": round(863 * 1.6), "y": 186}
    form = FormData()
    form.add_field("file", (FIX / "case01_euler_normal.png").read_bytes(), filename="c.png")
    body = await (await client.post("/api/files/input?store=false", data=form)).json()
    assert body["workflow"]["nodes"]["3"]["type"] == "Sample", body
    assert body["workflow"]["ui"]["positions"]["9"] == {"x": round(1451 * 1.6), "y": 189}
