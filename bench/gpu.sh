#!/usr/bin/env bash
# GPU checks on a CUDA machine: engine vs diffusers pipeline (fp16), it/s, peak VRAM,
# first run vs seed-only rerun, device->host copies between runs (see bench/gpu.py).
# On a machine without CUDA it prints "no CUDA: skipped" and exits 0.
#   bench/gpu.sh [--steps 20] [--repeat 2] [--only sd15|sdxl] [--dry-run]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
fi
exec "$PY" bench/gpu.py "$@"
