"""Each checkpoint's native size (GET /api/models): SD 1.x 512, SD 2.x 512-base vs 768-v,
SDXL 1024, our own exports from their hints, diffusers folders from their configs; read
from headers (and one small tensor), never by loading the model."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from model_index.native_size import V_PROBE, native_size
from service import make_app
from service.app import make_engine
from tests.server_testkit import make_config, owned_client

VAE = [f"first_stage_model.encoder.down.{i}.block.0.conv1.weight" for i in range(4)]
SD1 = ["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", *VAE]
SD2 = ["cond_stage_model.model.token_embedding.weight", *VAE]
SDXL = ["conditioner.embedders.1.model.token_embedding.weight", *VAE]


def write(path: Path, keys: list[str], meta: dict | None = None, probe: np.ndarray | None = None):
    """A safetensors file: 2-byte zero tensors under ``keys``, and the SD 2.x probe."""
    header: dict = {
        k: {"dtype": "F16", "shape": [1], "data_offsets": [2 * i, 2 * i + 2]}
        for i, k in enumerate(keys)
    }
    data = bytes(2 * len(keys))
    if probe is not None:
        raw = probe.astype(np.float16).tobytes()
        header[V_PROBE] = {
            "dtype": "F16",
            "shape": [probe.size],
            "data_offsets": [len(data), len(data) + len(raw)],
        }
        data += raw
    if meta:
        header["__metadata__"] = meta
    head = json.dumps(header).encode()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(struct.pack("<Q", len(head)) + head + data)
    return path


def test_sizes_by_family_metadata_and_weights(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    assert native_size("sd1", write(tmp_path / "a", SD1)) == 512
    assert native_size("sdxl", write(tmp_path / "b", SDXL)) == 1024
    # SD 2.x: the norm-bias spread tells 768-v (wide) from 512-base (narrow) ...
    assert native_size("sd2", write(tmp_path / "c", SD2, probe=rng.normal(0, 0.3, 320))) == 768
    assert native_size("sd2", write(tmp_path / "d", SD2, probe=rng.normal(0, 0.01, 320))) == 512
    # ... unless the file says which it is.
    meta = {"modelspec.prediction_type": "epsilon"}
    assert native_size("sd2", write(tmp_path / "e", SD2, meta, rng.normal(0, 0.3, 320))) == 512
    meta = {"modelspec.resolution": "768x768"}
    assert native_size("sd1", write(tmp_path / "f", SD1, meta)) == 768
    # Our exports: the U-Net's sample size times the VAE's factor (2 ** (down blocks - 1)).
    hints = {"sdgraph.hints": json.dumps({"unet": {"sample_size": 8}})}
    assert native_size("sd1", write(tmp_path / "g", SD1, hints)) == 64
    assert native_size("unknown", write(tmp_path / "h", ["x"])) is None
    (tmp_path / "bad").write_bytes(b"not safetensors")
    assert native_size("sd1", tmp_path / "bad") is None
    folder = tmp_path / "diffusers"
    for part, cfg in {
        "unet": {"sample_size": 96},
        "vae": {"block_out_channels": [1, 2, 3, 4]},
    }.items():
        (folder / part).mkdir(parents=True)
        (folder / part / "config.json").write_text(json.dumps(cfg))
    assert native_size(None, folder) == 768


async def test_models_api_lists_native_sizes(tmp_path: Path, aiohttp_client) -> None:
    pytest.importorskip("torch")
    config = make_config(tmp_path)
    ckpts = config.models_dir / "checkpoints"
    write(ckpts / "sd15.safetensors", SD1)
    write(ckpts / "xl" / "base.safetensors", SDXL)
    write(ckpts / "v768.safetensors", SD2, {"modelspec.prediction_type": "v"})
    client = await owned_client(aiohttp_client, make_app(config, engine=make_engine(config)))
    body = await (await client.get("/api/models")).json()
    assert body["native_sizes"] == {
        "builtin/tiny-random": 64,
        "builtin/shapes-demo": 64,
        "sd15.safetensors": 512,
        "v768.safetensors": 768,
        "xl/base.safetensors": 1024,
    }
    files = {f["name"]: f["native_size"] for f in body["files"] if f["kind"] == "checkpoints"}
    assert files == {"sd15.safetensors": 512, "v768.safetensors": 768, "xl/base.safetensors": 1024}
    # Memoized with the family: a second listing reads no header again.
    again = await (await client.get("/api/models")).json()
    assert again["native_sizes"] == body["native_sizes"]
