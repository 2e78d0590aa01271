"""Shared fixtures: an engine over the small test nodes, in a temporary workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from graph import Engine, Registry, Workspace  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    """One torch thread for the whole test process: the tests use tiny models, where a
    second intra-op thread on 2 shared cores only spins (measured 40x slower)."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def test_registry() -> Registry:
    return Registry.from_package("tests.engine_nodes")


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace.at(tmp_path / "data", tmp_path / "models").ensure()


@pytest.fixture
def engine(test_registry: Registry, workspace: Workspace) -> Engine:
    return Engine(test_registry, workspace)
