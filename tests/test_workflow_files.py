"""Every workflow shipped in workflows/ validates against the real node registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from graph import Engine, Registry, Workspace, load_workflow_file

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "workflows").glob("*.json"))


@pytest.fixture(scope="module")
def real_engine(tmp_path_factory) -> Engine:
    tmp = tmp_path_factory.mktemp("wf")
    return Engine(Registry.from_package("nodes"), Workspace.at(tmp, ROOT / "models").ensure())


def test_the_documented_workflows_exist() -> None:
    names = {p.stem for p in FILES}
    assert {"txt2img", "img2img", "ddim_inversion"} <= names


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_workflow_file_validates(path: Path, real_engine: Engine) -> None:
    workflow = load_workflow_file(path)
    problems = real_engine.check(workflow).problems
    assert problems == [], "\n".join(map(str, problems))
