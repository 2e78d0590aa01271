"""Fixtures of the SD node tests: the seeded random built-in's components as handles,
and an engine over the real nodes (this folder's `engine` replaces the test-node one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from graph import Engine, Registry
from nodes.encode_text import encode_windows
from nodes.sd.handles import ClipHandle, Conditioning, ModelHandle, VaeHandle
from nodes.sd.prompt_weights import tokenize_prompt
from tests.sd_fixtures import tiny_components
from tests.sd_workflows import make_engine


@pytest.fixture(scope="module")
def components() -> dict[str, Any]:
    return tiny_components(0)


@pytest.fixture(scope="module")
def tok(components: dict[str, Any]) -> Any:
    return components["tokenizer"]


@pytest.fixture(scope="module")
def clip(components: dict[str, Any]) -> ClipHandle:
    cpu = torch.device("cpu")
    return ClipHandle(components["tokenizer"], components["text_encoder"], cpu, torch.float32, "t")


@pytest.fixture(scope="module")
def model(components: dict[str, Any]) -> ModelHandle:
    config = dict(components["scheduler"].config)
    cpu = torch.device("cpu")
    return ModelHandle(components["unet"], config, "epsilon", cpu, torch.float32, "t")


@pytest.fixture(scope="module")
def vae(components: dict[str, Any]) -> VaeHandle:
    return VaeHandle(components["vae"], torch.device("cpu"), torch.float32, "t")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_package("nodes")


@pytest.fixture
def engine(registry: Registry, tmp_path: Path) -> Engine:
    return make_engine(tmp_path, registry)


@pytest.fixture(scope="module")
def conds(clip: ClipHandle, tok: Any) -> tuple[Conditioning, Conditioning]:
    pos = Conditioning(encode_windows(clip, tokenize_prompt(tok, "a red circle")))
    neg = Conditioning(encode_windows(clip, tokenize_prompt(tok, "blurry")))
    return pos, neg
