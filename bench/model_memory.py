"""The model store under a budget: three copies of the built-in demo model (different
files, so three checkpoints), txt2img on each in turn and then on the first again with a
new seed, once with a model budget that fits two and once unbounded, each in a fresh
process. Prints, per run: seconds, components loaded and evicted, bytes the store holds,
and the process's resident memory (VmRSS) after the run.

    python bench/model_memory.py [--threads 1] [--steps 4] [--json OUT]

What it shows: under the budget the store stays within it and the process's memory stops
growing with each new checkpoint; a later run on an evicted checkpoint pays for loading
it again (only the parts it needs: the cached conditioning spares the text encoder).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DEMO = ROOT / "nodes" / "sd" / "builtin_models" / "shapes-demo.safetensors"
NAMES = ("a.safetensors", "b.safetensors", "c.safetensors")


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def measure(models: Path, budget: str | None, steps: int, threads: int) -> list[dict[str, Any]]:
    """In this process: the four runs, one row each."""
    import torch

    from graph import Engine, Registry, Resources, Workspace
    from graph.memory import memory_budgets
    from graph.models import ModelStore
    from graph.workflow import parse_workflow

    torch.set_num_threads(threads)
    doc = json.loads((ROOT / "workflows" / "txt2img.json").read_text())
    doc["nodes"]["sample"]["inputs"]["steps"] = steps
    doc["nodes"]["checkpoint"]["inputs"].update(device="cpu", dtype="fp32")
    with tempfile.TemporaryDirectory() as data:
        ws = Workspace.at(Path(data), models).ensure()
        store = ModelStore(memory_budgets(budget, []))
        engine = Engine(Registry.from_package("nodes"), ws, resources=Resources(store))
        rows = []
        for name, seed in [(n, 1) for n in NAMES] + [(NAMES[0], 2)]:
            doc["nodes"]["checkpoint"]["inputs"]["name"] = name
            doc["nodes"]["sample"]["inputs"]["seed"] = seed
            t0 = time.perf_counter()
            result = engine.run(parse_workflow(doc))
            assert result.status == "ok", result.error
            rows.append(
                {
                    "run": f"{name} seed {seed}",
                    "seconds": round(time.perf_counter() - t0, 3),
                    "loaded": [e["component"] for e in result.models["loaded"]],
                    "evicted": [e["name"] for e in result.models["evicted"]],
                    "store_mib": round(store.used("cpu") / 1024**2, 1),
                    "rss_mib": round(rss_mib(), 1),
                }
            )
    return rows


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--json", type=Path)
    p.add_argument("--child", nargs=2, metavar=("MODELS", "BUDGET"), help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        budget = None if a.child[1] == "none" else a.child[1]
        rows = measure(Path(a.child[0]), budget, a.steps, a.threads)
        print(json.dumps(rows))
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        models = Path(tmp)
        (models / "checkpoints").mkdir()
        for name in NAMES:
            shutil.copyfile(DEMO, models / "checkpoints" / name)
        # fp32 components of the demo model: 30,085,012 bytes; two fit in 60 MB, three do not
        report = {}
        for budget in ("60M", "none"):
            cmd = [sys.executable, __file__, "--child", str(models), budget]
            cmd += ["--steps", str(a.steps), "--threads", str(a.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
            report[budget] = json.loads(out.strip().splitlines()[-1])
    for budget, rows in report.items():
        print(f"model budget {budget}:")
        for r in rows:
            print(
                f"  {r['run']:<22} {r['seconds']:7.3f} s  loaded {','.join(r['loaded']) or '-':<27}"
                f" evicted {len(r['evicted'])}  store {r['store_mib']:6.1f} MiB"
                f"  RSS {r['rss_mib']:7.1f} MiB"
            )
    if a.json:
        a.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
