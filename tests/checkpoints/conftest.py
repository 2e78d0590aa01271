"""Fixtures of the checkpoint tests: the seeded tiny model, and a models folder holding
it in every supported format (built once per test module)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.sd_fixtures import tiny_components, write_every_format

SEED = 3


@pytest.fixture(scope="module")
def parts() -> dict[str, Any]:
    return tiny_components(SEED)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory, parts: dict[str, Any]) -> Path:
    """A models folder holding the tiny model in every supported format."""
    return write_every_format(tmp_path_factory.mktemp("models"), parts)
