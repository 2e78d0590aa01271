"""Our pictures for ComfyUI's reference workflows vs ComfyUI's own PNGs.

    python bench/comfyui_reference.py --ref DIR --checkpoint FILE [--cases 1,3] [--threads 2]
                                      [--json OUT]

DIR is the reference set (``caseNN_*.png`` written by ComfyUI 0.3.64 with their ``prompt``
and ``workflow`` chunks, ``case13_img2img_source.png``); FILE the checkpoint rebuilt with
its ``make_checkpoint.py`` (2 GB; the workflows name it sd15-det-random-fp16.safetensors).
Each case's PNG is imported as a user would drop it (importers/), run through one engine
(the model loads once) and compared per channel value: mean and max absolute difference
in 8-bit levels, and how many of the values differ. Target: mean <= 1, max <= 8 levels.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from graph import Engine, Registry, Workspace  # noqa: E402
from importers import import_file  # noqa: E402
from nodes.sd.runtime import configure_process  # noqa: E402

NAME = "sd15-det-random-fp16.safetensors"


def compare(ours: Path, theirs: Path) -> dict[str, float]:
    a = np.asarray(Image.open(ours).convert("RGB"), dtype=np.int16)
    b = np.asarray(Image.open(theirs).convert("RGB"), dtype=np.int16)
    d = np.abs(a - b)
    return {"mean": float(d.mean()), "max": int(d.max()), "differ": int((d > 0).sum())}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--ref", type=Path, required=True)
    p.add_argument("--checkpoint", type=Path, required=True, help="same file system as /tmp")
    p.add_argument("--cases", default="1,2,3,4,5,6,13")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    configure_process()
    import torch

    torch.set_num_threads(args.threads)
    tmp = Path(tempfile.mkdtemp(prefix="comfy-ref-"))
    (tmp / "models" / "checkpoints").mkdir(parents=True)
    os.link(args.checkpoint.resolve(), tmp / "models" / "checkpoints" / NAME)  # no symlinks out
    workspace = Workspace.at(tmp / "data", tmp / "models").ensure()
    source = args.ref / "case13_img2img_source.png"
    if source.is_file():
        (workspace.input_dir / source.name).write_bytes(source.read_bytes())
    registry = Registry.from_package("nodes")
    engine = Engine(registry, workspace)
    rows = []
    for number in [int(c) for c in args.cases.split(",")]:
        (png,) = sorted(args.ref.glob(f"case{number:02d}_*[!e].png"))  # not the source image
        workflow = import_file(png, set(registry.nodes)).workflow
        t0 = time.perf_counter()
        result = engine.run(workflow)
        seconds = time.perf_counter() - t0
        if result.status != "ok":
            print(f"{png.name}: {result.status} {result.error}", file=sys.stderr)
            return 1
        (saved,) = [f for f in result.files if f["kind"] == "output"]
        row = {"case": png.stem, "seconds": round(seconds, 1)}
        row.update(compare(workspace.folder("output") / saved["name"], png))
        rows.append(row)
        print(
            f"{row['case']:32} mean {row['mean']:.4f}  max {row['max']}  "
            f"differ {row['differ']}/49152  {row['seconds']} s",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0 if all(r["mean"] <= 1 and r["max"] <= 8 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
