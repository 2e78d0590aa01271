"""Model references in workflow files: record them on save, resolve them on load.

A workflow's ``models`` section maps ``NODE.INPUT`` to the file's identity (kind, name,
sha256, size; A1111 files give only the short AutoV2 hash). Loading keeps a name whose
file matches; otherwise it finds the same content among local files under any name and
rewrites the input; otherwise it reports ``model_missing`` before anything runs.
"""

from __future__ import annotations

from typing import Any

from graph.validate import Problem
from graph.workflow import ModelRef, Workflow
from model_index.index import ModelIndex

# choice sources (``Choice("checkpoints")``) that list files of a models folder
CHOICE_KINDS = {
    "checkpoints": "checkpoints",
    "loras": "loras",
    "vae": "vae",
    "vaes": "vae",
    "embeddings": "embeddings",
    "controlnet": "controlnet",
    "upscale_models": "upscale_models",
}
BUILTIN_PREFIX = "builtin/"


def model_inputs(registry: Any) -> dict[str, dict[str, str]]:
    """{node type: {input: models kind}}, read off the node declarations."""
    out: dict[str, dict[str, str]] = {}
    for type_name, spec in registry.nodes.items():
        for name, inp in spec.inputs.items():
            kind = CHOICE_KINDS.get(inp.choice_source or "")
            if kind:
                out.setdefault(type_name, {})[name] = kind
    return out


def _references(workflow: Workflow, inputs: dict[str, dict[str, str]]):
    for node_id, entry in workflow.nodes.items():
        for name, kind in inputs.get(entry.type, {}).items():
            value = entry.inputs.get(name)
            if isinstance(value, str) and value and not value.startswith(BUILTIN_PREFIX):
                yield f"{node_id}.{name}", node_id, name, kind, value


def record_models(
    workflow: Workflow, index: ModelIndex, inputs: dict[str, dict[str, str]], wait: bool = True
) -> Workflow:
    """The workflow with a ``models`` entry (sha256, size) for each model file it names.
    With ``wait=False`` only hashes already known are written (the rest: name and size)."""
    refs = dict(workflow.models or {})
    for key, _node, _name, kind, value in _references(workflow, inputs):
        path = index.path_of(kind, value)
        if path is None:
            continue
        sha = index.sha256(path) if wait else index.known_sha256(path)
        refs[key] = ModelRef(kind=kind, name=value, sha256=sha, size=path.stat().st_size)
    return workflow.model_copy(update={"models": refs or None})


def complete_models(doc: dict[str, Any], index: ModelIndex) -> dict[str, Any]:
    """A workflow dict whose model entries all carry their sha256 where the file is here
    (for SaveImage: a hash still pending at submission is known by the time it runs)."""
    models = doc.get("models")
    if not isinstance(models, dict) or all(
        isinstance(r, dict) and r.get("sha256") for r in models.values()
    ):
        return doc
    done = {}
    for key, ref in models.items():
        path = index.path_of(ref.get("kind") or "", ref.get("name") or "") if ref else None
        done[key] = {**ref, "sha256": index.sha256(path)} if path is not None else ref
    return {**doc, "models": done}


def resolve_models(
    workflow: Workflow, index: ModelIndex, inputs: dict[str, dict[str, str]]
) -> tuple[Workflow, list[Problem], list[str]]:
    """(the workflow with names pointed at local files, model_missing problems, notes)."""
    if not workflow.models:
        return workflow, [], []
    doc = workflow.model_dump(exclude_none=True)
    problems: list[Problem] = []
    notes: list[str] = []
    for key, node_id, name, kind, value in _references(workflow, inputs):
        ref = workflow.models.get(key)
        if ref is None or not (ref.sha256 or ref.autov2 or ref.addnet):
            continue
        kind = ref.kind or kind
        path = index.path_of(kind, value)
        hashes = (ref.sha256, ref.autov2, ref.addnet)
        if path is not None and index.matches(path, index.sha256(path), *hashes):
            continue
        found = index.find(kind, ref.sha256, ref.size, ref.autov2, ref.addnet)
        if found is not None:
            doc["nodes"][node_id]["inputs"][name] = found.name
            doc["models"][key].update(name=found.name, sha256=found.sha256, size=found.size)
            why = "is not here" if path is None else "here has other content"
            notes.append(f"{key}: {value!r} {why}; using {found.name!r} (same content)")
            continue
        short = ref.sha256 or ref.autov2 or ref.addnet
        where = "a different file" if path is not None else "no file"
        problems.append(
            Problem(
                node_id,
                name,
                "model_missing",
                f"model {value!r} (sha256 {short}) is not in {kind}/ under any name "
                f"({where} has that name)",
            )
        )
    return Workflow.model_validate(doc), problems, notes
