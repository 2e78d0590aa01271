#!/usr/bin/env bash
# Fetch, on this (networked) machine, the wheels bench/gpu.sh needs on the GPU machine,
# whose image has torch, safetensors, tokenizers, huggingface-hub 1.x, aiohttp, networkx
# and pillow but not diffusers or pydantic (and an older transformers): Python 3.12,
# x86-64. They land in bench/out/wheels (git-ignored, ~24 MB); carry that folder with
# the run (see README, "GPU").   bench/gpu_wheels.sh [DEST]
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${1:-bench/out/wheels}"
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY=python3
mkdir -p "$DEST"
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$DEST" \
    diffusers==0.42.1 transformers==5.24.0 pydantic==2.14.4 pydantic_core==2.50.5 \
    typing-inspection==0.4.5 annotated-types==0.8.0 typing_extensions==4.16.0 \
    importlib_metadata==8.7.0 regex==2026.11.19
ls "$DEST"
