"""Model references in workflow files: record them on save, resolve them on load.

A workflow's ``models`` section maps ``NODE.INPUT`` to the file's identity (kind, name,
sha256, size; A1111 files give only the short AutoV2 or LoRA hash). Models named inside a
text input (``embedding:NAME`` in a prompt) are keyed ``NODE.INPUT:NAME``. Loading keeps a
name whose file matches; otherwise it finds the same content among local files under any
name and rewrites the input (the name inside the text); otherwise it reports
``model_missing`` before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from graph.validate import Problem
from graph.workflow import ModelRef, Workflow
from model_index.index import EXTENSIONS, ModelIndex

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


class ModelInputs(dict[str, dict[str, str]]):
    """{node type: {input: models kind}} for inputs whose value is a file name; ``texts``:
    {node type: node class} for nodes that name models inside text inputs (the class
    declares ``models_in_text(values)`` and ``rename_in_text(value, old, new)``)."""

    def __init__(self, files: dict[str, dict[str, str]], texts: dict[str, Any]) -> None:
        super().__init__(files)
        self.texts = texts


def model_inputs(registry: Any) -> ModelInputs:
    """The model-naming inputs, read off the node declarations."""
    files: dict[str, dict[str, str]] = {}
    texts: dict[str, Any] = {}
    for type_name, spec in registry.nodes.items():
        for name, inp in spec.inputs.items():
            kind = CHOICE_KINDS.get(inp.choice_source or "")
            if kind:
                files.setdefault(type_name, {})[name] = kind
        if hasattr(spec.cls, "models_in_text"):
            texts[type_name] = spec.cls
    return ModelInputs(files, texts)


Reference = tuple[str, str, str, str, str, bool]  # key, node, input, kind, name, in text


def _references(workflow: Workflow, inputs: dict[str, dict[str, str]]) -> Iterator[Reference]:
    texts = getattr(inputs, "texts", {})
    for node_id, entry in workflow.nodes.items():
        for name, kind in inputs.get(entry.type, {}).items():
            value = entry.inputs.get(name)
            if isinstance(value, str) and value and not value.startswith(BUILTIN_PREFIX):
                yield f"{node_id}.{name}", node_id, name, kind, value, False
        if entry.type in texts:
            literals = {k: v for k, v in entry.inputs.items() if isinstance(v, str)}
            for field, kind, named in texts[entry.type].models_in_text(literals):
                yield f"{node_id}.{field}:{named}", node_id, field, kind, named, True


def _path(index: ModelIndex, kind: str, name: str, in_text: bool) -> Path | None:
    """The file a name means; inside a text the extension may be left out."""
    path = index.path_of(kind, name)
    if path is not None or not in_text:
        return path
    for ext in EXTENSIONS:
        path = index.path_of(kind, name + ext)
        if path is not None:
            return path
    return None


def record_models(
    workflow: Workflow, index: ModelIndex, inputs: dict[str, dict[str, str]], wait: bool = True
) -> Workflow:
    """The workflow with a ``models`` entry (sha256, size) for each model file it names.
    With ``wait=False`` only hashes already known are written (the rest: name and size)."""
    refs = dict(workflow.models or {})
    for key, _node, _name, kind, value, in_text in _references(workflow, inputs):
        path = _path(index, kind, value, in_text)
        if path is None:
            continue
        sha = index.sha256(path) if wait else index.known_sha256(path)
        if in_text:  # the file, with its extension
            value = path.relative_to((index.models_dir / kind).resolve()).as_posix()
        family = index.family_of(kind, path)
        family = None if family == "unknown" else family
        refs[key] = ModelRef(
            kind=kind, name=value, sha256=sha, size=path.stat().st_size, family=family
        )
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
    texts = getattr(inputs, "texts", {})
    for key, node_id, name, kind, value, in_text in _references(workflow, inputs):
        ref = workflow.models.get(key)
        if ref is None:
            continue
        kind = ref.kind or kind
        path = _path(index, kind, value, in_text)
        if not (ref.sha256 or ref.autov2 or ref.addnet):  # a name only (A1111's LoRA tags)
            same = None if path is not None or in_text else index.find_by_stem(kind, value)
            if same is not None:
                doc["nodes"][node_id]["inputs"][name] = same.name
                doc["models"][key]["name"] = same.name
                notes.append(f"{key}: {value!r} is not here; using {same.name!r} (same name)")
            continue
        hashes = (ref.sha256, ref.autov2, ref.addnet)
        if path is not None and index.matches(path, index.sha256(path), *hashes):
            continue
        found = index.find(kind, ref.sha256, ref.size, ref.autov2, ref.addnet)
        what = f"embedding {value!r}" if in_text else repr(value)
        if found is not None:
            node_inputs = doc["nodes"][node_id]["inputs"]
            if in_text:  # the name inside the prompt: the file's name without extension
                new = str(PurePosixPath(found.name).with_suffix(""))
                cls = texts[workflow.nodes[node_id].type]
                node_inputs[name] = cls.rename_in_text(node_inputs[name], value, new)
                doc["models"][f"{node_id}.{name}:{new}"] = doc["models"].pop(key)
                key = f"{node_id}.{name}:{new}"
            else:
                node_inputs[name] = found.name
            doc["models"][key].update(name=found.name, sha256=found.sha256, size=found.size)
            why = "is not here" if path is None else "here has other content"
            notes.append(f"{key}: {what} {why}; using {found.name!r} (same content)")
            continue
        short = ref.sha256 or ref.autov2 or ref.addnet
        where = "a different file" if path is not None else "no file"
        problems.append(
            Problem(
                node_id,
                name,
                "model_missing",
                f"model {what} (sha256 {short}) is not in {kind}/ under any name "
                f"({where} has that name)",
                {"family": ref.family} if ref.family else None,
            )
        )
    return Workflow.model_validate(doc), problems, notes
