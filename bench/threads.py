"""Torch threads per job: 1 thread vs every core, by image size (the policy's evidence).

    python bench/threads.py [--sizes 64,128,256,512] [--steps 10] [--rounds 3]
                            [--checkpoint builtin/shapes-demo] [--dtype fp32]

One process, the model loaded once; for each size the two settings alternate within
each round (so a machine that gets busier hurts both alike), median of ``--rounds``.
Each measurement is one txt2img image through the node functions (encode both
prompts, ``--steps`` dpmpp_2m steps with cfg, VAE decode). Also prints what
`nodes.sd.runtime.threads_for` picks for each size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as run.py and server.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from graph.context import Resources  # noqa: E402
from graph.workspace import Workspace  # noqa: E402
from nodes.encode_text import encode_windows  # noqa: E402
from nodes.sd.checkpoints import load_checkpoint  # noqa: E402
from nodes.sd.handles import Conditioning, LatentBatch  # noqa: E402
from nodes.sd.prompt_weights import tokenize_prompt  # noqa: E402
from nodes.sd.runtime import threads_for, usable_cores  # noqa: E402
from nodes.sd.sampling import SampleSettings, sample  # noqa: E402
from nodes.vae_decode import decode  # noqa: E402

PROMPT = "a large red circle on a blue background, top left"


def one_image(handles: tuple, size: int, steps: int, seed: int) -> float:
    model, clip, vae = handles
    t = time.perf_counter()
    cond = [
        Conditioning(encode_windows(clip, tokenize_prompt(clip.tokenizer, text)), text=text)
        for text in (PROMPT, "")
    ]
    latent = LatentBatch(torch.zeros(1, 4, size // 8, size // 8))
    out = sample(
        model, cond[0], cond[1], latent, SampleSettings(seed, steps, 2.0, "dpmpp_2m", "normal")
    )
    decode(vae, LatentBatch(out.float()), "off")
    return time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="64,128,256,512")
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--checkpoint", default="builtin/shapes-demo")
    p.add_argument("--dtype", default="fp32")
    a = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="threads-bench-"))
    ws = Workspace.at(tmp, tmp / "models")
    handles = load_checkpoint(ws, Resources(), a.checkpoint, a.dtype, "cpu")
    cores = usable_cores()
    settings = sorted({1, cores})
    print(f"{a.checkpoint} ({a.dtype}), {a.steps} steps, {cores} cores, load {os.getloadavg()}")
    rows = []
    for size in (int(s) for s in a.sizes.split(",")):
        times: dict[int, list[float]] = {n: [] for n in settings}
        torch.set_num_threads(1)
        one_image(handles, size, 2, 0)  # warm-up
        for r in range(a.rounds):
            for n in settings if r % 2 == 0 else settings[::-1]:
                torch.set_num_threads(n)
                times[n].append(one_image(handles, size, a.steps, r))
        med = {n: statistics.median(t) for n, t in times.items()}
        rows.append((size, med, threads_for(size * size, cores)))
        print(f"  {size}: " + ", ".join(f"{n} thr {v:.3f} s" for n, v in med.items()), flush=True)
    print()
    head = " | ".join(f"{n} thread{'s' if n > 1 else ''}" for n in settings)
    print(f"| size | {head} | {cores}/1 ratio | policy picks |")
    print("|---" * (len(settings) + 3) + "|")
    for size, med, pick in rows:
        cells = " | ".join(f"{med[n]:.3f} s" for n in settings)
        print(f"| {size}x{size} | {cells} | {med[cores] / med[1]:.2f}x | {pick} |")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
