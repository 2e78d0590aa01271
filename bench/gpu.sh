#!/usr/bin/env bash
# GPU checks on a CUDA machine, in one call: SD-1.5 (512x512) and SDXL (1024x1024)
# architectures with random weights, fp16, 20 steps: engine vs diffusers pipeline, it/s,
# peak VRAM, first run vs seed-only rerun, device<->host copies of the rerun, then the
# options (SDPA backends, channels_last, torch.compile, CUDA graphs), most important
# rows first, within --budget seconds; rows go to $OUT/gpu.json as they come
# (see bench/gpu.py). Without CUDA it prints "no CUDA: skipped" and exits 0.
#   bench/gpu.sh [--budget 420] [--steps 20] [--only sd15|sdxl] [--rows baseline,sdpa,...]
#                [--dry-run] [--smoke]
# Wheels for packages the GPU machine lacks (bench/gpu_wheels.sh fetches them) are
# installed from bench/out/wheels when that folder was carried along.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
WHEELS=bench/out/wheels
if ls "$WHEELS"/*.whl >/dev/null 2>&1 && ! "$PY" -c "import diffusers, pydantic" 2>/dev/null; then
    SITE="${TMPDIR:-/tmp}/sdgraph-gpu-site"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target "$SITE" "$WHEELS"/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec "$PY" bench/gpu.py "$@"
