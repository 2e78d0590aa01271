"""The headless runner: exit codes, --json, --set, --vary, --nodes, --schema, PNG input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

import run
from tests.wf import link, n

ROOT = Path(__file__).resolve().parents[1]
NODES = ["--node-package", "tests.engine_nodes"]


def write(path: Path, nodes: dict) -> Path:
    path.write_text(json.dumps({"version": 1, "nodes": nodes}))
    return path


@pytest.fixture
def simple(tmp_path: Path) -> Path:
    return write(
        tmp_path / "wf.json",
        {
            "c": n("Const", value=2),
            "x": n("Scale", x=link("c"), factor=3),
            "s": n("Save", value=link("x")),
        },
    )


def cli(tmp_path: Path, *args: str) -> tuple[int, dict | None, str]:
    """Run main() in-process, capturing stdout as JSON when possible."""
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "run.py"),
            *NODES,
            "--data",
            str(tmp_path / "data"),
            "--models",
            str(tmp_path / "models"),
            *args,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        doc = None
    return proc.returncode, doc, proc.stderr


def test_ok_run_json_shape(tmp_path: Path, simple: Path) -> None:
    code, doc, _ = cli(tmp_path, str(simple), "--json")
    assert code == 0
    (r,) = doc["runs"]
    assert r["status"] == "ok" and r["error"] is None
    assert set(r["nodes"]) == {"c", "x", "s"}
    assert all(v["status"] == "executed" and v["seconds"] >= 0 for v in r["nodes"].values())
    (f,) = r["files"]
    assert json.loads(Path(f).read_text())["value"] == 6.0


def test_set_overrides_a_literal(tmp_path: Path, simple: Path) -> None:
    code, doc, _ = cli(tmp_path, str(simple), "--json", "--set", "x.factor=10")
    assert code == 0
    assert json.loads(Path(doc["runs"][0]["files"][0]).read_text())["value"] == 20.0


def test_vary_grid_reuses_cache(tmp_path: Path, simple: Path) -> None:
    code, doc, _ = cli(
        tmp_path, str(simple), "--json", "--vary", "x.factor=1,2,3", "--vary", "c.value=5,6"
    )
    assert code == 0
    runs = doc["runs"]
    assert len(runs) == 6
    values = sorted(json.loads(Path(r["files"][0]).read_text())["value"] for r in runs)
    assert values == [5, 6, 10, 12, 15, 18]
    # c.value varies slowest... each Const value is computed once, then served from the cache
    statuses = [r["nodes"]["c"]["status"] for r in runs]
    assert statuses.count("executed") == 2


def test_invalid_workflow_exits_2_and_lists_every_problem(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.json", {"c": n("Const", value="x"), "a": n("Nope")})
    code, doc, err = cli(tmp_path, str(bad))
    assert code == 2
    lines = err.strip().splitlines()
    assert any(line.startswith("c.value:") for line in lines)
    assert any(line.startswith("a:") and "unknown node type" in line for line in lines)
    assert any("no_output" in line for line in lines)
    assert not (tmp_path / "data" / "output").exists() or not any(
        (tmp_path / "data" / "output").iterdir()
    )


def test_bad_arguments_exit_2(tmp_path: Path, simple: Path) -> None:
    assert cli(tmp_path, str(simple), "--set", "nobody.x=1")[0] == 2
    assert cli(tmp_path, str(simple), "--set", "garbage")[0] == 2
    assert cli(tmp_path, str(tmp_path / "missing.json"))[0] == 2
    (tmp_path / "broken.json").write_text("{not json")
    code, _, err = cli(tmp_path, str(tmp_path / "broken.json"))
    assert code == 2 and "malformed JSON" in err
    (tmp_path / "v9.json").write_text('{"version": 9, "nodes": {}}')
    code, _, err = cli(tmp_path, str(tmp_path / "v9.json"))
    assert code == 2 and "unsupported workflow version 9" in err


def test_failing_node_exits_1_with_error(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "f.json",
        {"c": n("Const"), "f": n("Fail", x=link("c")), "s": n("Save", value=link("f"))},
    )
    code, doc, _ = cli(tmp_path, str(wf), "--json")
    assert code == 1
    r = doc["runs"][0]
    assert r["status"] == "error" and r["error"]["node_id"] == "f"
    assert r["nodes"]["c"]["status"] == "executed" and "s" not in r["nodes"]


def test_png_with_embedded_workflow_runs(tmp_path: Path, simple: Path) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text("workflow", simple.read_text())
    png = tmp_path / "shared.png"
    Image.new("RGB", (8, 8)).save(png, pnginfo=info)
    code, doc, _ = cli(tmp_path, str(png), "--json")
    assert code == 0 and doc["runs"][0]["status"] == "ok"
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    code, _, err = cli(tmp_path, str(plain))
    assert code == 2 and "no embedded workflow" in err


def test_nodes_listing_and_schema(tmp_path: Path) -> None:
    code, _, _ = cli(tmp_path, "--nodes")
    assert code == 0
    code, doc, _ = cli(tmp_path, "--nodes", "--json")
    assert code == 0
    scale = doc["nodes"]["Scale"]
    assert scale["inputs"][0] == {
        "name": "x",
        "required": True,
        "link_only": True,
        "type": "NUMBER",
        "accepts": ["INTEGER", "NUMBER"],
    }
    mode = next(i for i in scale["inputs"] if i["name"] == "mode")
    assert mode["widget"] == {"kind": "select", "choices": ["exact", "floor"]}
    assert doc["compatibility"]["NUMBER"] == ["INTEGER", "NUMBER"]
    code, schema, _ = cli(tmp_path, "--schema")
    assert code == 0 and "nodes" in schema["properties"]


def test_nodes_listing_text(tmp_path: Path, capsys) -> None:
    code = run.main([*NODES, "--data", str(tmp_path / "d"), "--models", str(tmp_path), "--nodes"])
    out = capsys.readouterr().out
    assert code == 0
    assert "Scale (v1, math)" in out and "in  mode: STRING, one of exact|floor" in out


def test_json_summary_says_what_was_loaded_and_evicted(tmp_path: Path) -> None:
    wf = write(
        tmp_path / "m.json",
        {"m": n("FakeModel", name="a", nbytes=600), "s": n("Save", value=link("m"))},
    )
    code, doc, _ = cli(
        tmp_path, str(wf), "--json", "--model-memory", "1000B", "--vary", "m.name=a,b,a"
    )
    assert code == 0
    runs = [r["models"] for r in doc["runs"]]
    assert [[e["name"] for e in r["loaded"]] for r in runs] == [["a"], ["b"], ["a"]]
    assert [[e["name"] for e in r["evicted"]] for r in runs] == [[], ["a"], ["b"]]
    assert runs[0]["loaded"][0]["bytes"] == 600 and runs[0]["loaded"][0]["device"] == "cpu"
    code, _, err = cli(tmp_path, str(wf), "--model-memory", "lots")
    assert code == 2 and "expected a size" in err


@pytest.mark.parametrize("kind", ["python", "cpu"])
def test_out_of_memory_fails_that_run_only(tmp_path: Path, kind: str) -> None:
    wf = write(
        tmp_path / "oom.json",
        {
            "m": n("FakeModel", name="a"),
            "f": n("OutOfMemory", x=link("m"), kind=kind),
            "s": n("Save", value=link("f")),
        },
    )
    code, doc, _ = cli(tmp_path, str(wf), "--json", "--vary", "m.name=a,b")
    assert code == 1
    first, second = doc["runs"]
    assert first["error"]["code"] == second["error"]["code"] == "out_of_memory"
    assert first["error"]["error_type"] == ("MemoryError" if kind == "python" else "RuntimeError")
    assert "out of memory" in first["error"]["hint"]
    # the second run ran (and loaded its own model) after the first one's release
    assert [e["name"] for e in second["models"]["loaded"]] == ["b"]
    assert second["nodes"]["m"]["status"] == "executed"
