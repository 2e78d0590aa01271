"""Every workflow shipped in workflows/ validates against the real node registry.

Some name a checkpoint the user provides (the SDXL ones): there the only problems allowed
are LoadCheckpoint names that are not installed, reported clearly, and with a built-in
checkpoint swapped in the file validates."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from graph import Engine, Registry, Workspace, load_workflow_file
from graph.workflow import parse_workflow

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "workflows").glob("*.json"))
USER_MODELS = {"sdxl_txt2img", "sdxl_base_refiner"}  # need a checkpoint the user provides


@pytest.fixture(scope="module")
def real_engine(tmp_path_factory) -> Engine:
    tmp = tmp_path_factory.mktemp("wf")
    return Engine(Registry.from_package("nodes"), Workspace.at(tmp, tmp / "models").ensure())


def test_the_documented_workflows_exist() -> None:
    names = {p.stem for p in FILES}
    assert {"txt2img", "img2img", "ddim_inversion"} | USER_MODELS <= names


def _user_checkpoints(doc: dict) -> dict[str, str]:
    return {
        nid: node["inputs"]["name"]
        for nid, node in doc["nodes"].items()
        if node["type"] == "LoadCheckpoint" and not node["inputs"]["name"].startswith("builtin/")
    }


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_workflow_file_validates(path: Path, real_engine: Engine) -> None:
    workflow = load_workflow_file(path)
    problems = real_engine.check(workflow).problems
    doc = workflow.model_dump(exclude_none=True)
    missing = _user_checkpoints(doc)
    assert bool(missing) == (path.stem in USER_MODELS)
    # a checkpoint the user has not installed: one clear problem per loader, nothing else
    assert sorted((p.node_id, p.field, p.code) for p in problems) == sorted(
        (nid, "name", "not_in_choices") for nid in missing
    ), "\n".join(map(str, problems))
    for p in problems:
        assert missing[p.node_id] in p.message and "checkpoints" in p.message
    swapped = copy.deepcopy(doc)
    for nid in missing:
        swapped["nodes"][nid]["inputs"]["name"] = "builtin/tiny-random"
    assert real_engine.check(parse_workflow(swapped)).problems == []
