"""Run workflow files headlessly.

    python run.py WORKFLOW.json [--set NODE.INPUT=VALUE ...] [--vary NODE.INPUT=V1,V2 ...]
                  [--out DIR] [--json] [--model-memory SIZE] [--gpu-memory [DEVICE=]SIZE]
    python run.py --nodes [--json]      list the node types
    python run.py --schema              JSON Schema of the workflow file format
    python run.py --convert IN OUT [--export comfyui-api]
                                        ComfyUI/A1111 file -> ours (or ours -> ComfyUI API)

WORKFLOW may be ours, ComfyUI API or UI JSON, or a PNG from SaveImage, ComfyUI or A1111.

Exit codes: 0 every run ok; 2 invalid workflow or arguments (nothing ran); 1 a run failed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path
from typing import Any

from graph import jsondoc
from graph.cli_progress import ProgressPrinter
from graph.context import Resources
from graph.executor import Engine, RunResult
from graph.memory import add_memory_options, memory_budgets
from graph.models import ModelStore
from graph.node import NodeDeclarationError
from graph.registry import Registry
from graph.schema import describe_node, registry_schema
from graph.validate import Problem
from graph.versions import migrate
from graph.workflow import (
    WorkflowFormatError,
    parse_workflow,
    workflow_json_schema,
)
from graph.workspace import Workspace
from importers import ImportRefused, export_comfyui_api, import_file
from model_index import index_for, model_inputs, record_models, resolve_models
from nodes.sd.runtime import configure_process, job_threads

ROOT = Path(__file__).resolve().parent


class UsageError(Exception):
    """Bad command-line arguments: exit code 2."""


def parse_value(text: str) -> Any:
    """A JSON value when it parses as one, else the text itself."""
    try:
        return jsondoc.loads(text)
    except ValueError:  # not JSON, or out of jsondoc's bounds: the text as given
        return text


def parse_assignment(text: str, option: str) -> tuple[str, str, str]:
    target, sep, value = text.partition("=")
    node, dot, name = target.partition(".")
    if not sep or not dot or not node or not name:
        raise UsageError(f"{option} {text!r}: expected NODE.INPUT=VALUE")
    return node, name, value


def apply_override(doc: dict[str, Any], node: str, name: str, value: Any, option: str) -> None:
    nodes = doc.get("nodes", {})
    if node not in nodes:
        raise UsageError(f"{option} {node}.{name}: the workflow has no node {node!r}")
    nodes[node].setdefault("inputs", {})[name] = value


def expand_runs(base: dict[str, Any], sets: list[str], varies: list[str]) -> list[dict[str, Any]]:
    """One workflow document per combination of --vary values, --set applied to all."""
    for item in sets:
        node, name, value = parse_assignment(item, "--set")
        apply_override(base, node, name, parse_value(value), "--set")
    axes = []
    for item in varies:
        node, name, values = parse_assignment(item, "--vary")
        options = [parse_value(v) for v in values.split(",")]
        axes.append([(node, name, v) for v in options])
    runs = []
    for combo in itertools.product(*axes):
        doc = json.loads(json.dumps(base))
        for node, name, value in combo:
            apply_override(doc, node, name, value, "--vary")
        runs.append(doc)
    return runs


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("workflow", nargs="?", help="workflow .json, or a PNG that embeds one")
    p.add_argument("--set", action="append", default=[], metavar="NODE.INPUT=VALUE")
    p.add_argument("--vary", action="append", default=[], metavar="NODE.INPUT=V1,V2")
    p.add_argument("--out", type=Path, help="output folder (default: DATA/output)")
    p.add_argument("--data", type=Path, default=ROOT / "data", help="input/output/temp root")
    p.add_argument("--models", type=Path, default=ROOT / "models", help="models root")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    p.add_argument("--nodes", action="store_true", help="list the node types")
    p.add_argument("--schema", action="store_true", help="print the workflow JSON Schema")
    p.add_argument("--allow-pickle", action="store_true", help="load pickle checkpoints")
    p.add_argument("--cache-bytes", type=int, default=4 * 1024**3, help="output cache budget")
    p.add_argument(
        "--threads", type=int, help="torch CPU threads (default: 1 for small images, else all)"
    )
    add_memory_options(p)
    p.add_argument("--convert", nargs=2, metavar=("IN", "OUT"), help="convert a workflow file")
    p.add_argument(
        "--export",
        choices=["sdgraph", "comfyui-api"],
        default="sdgraph",
        help="--convert's output format (default: ours)",
    )
    p.add_argument("--node-package", action="append", default=[], help=argparse.SUPPRESS)
    return p


def make_registry(packages: list[str]) -> Registry:
    registry = Registry()
    for package in packages or ["nodes"]:
        registry.merge(Registry.from_package(package))
    return registry


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.schema:
        print(json.dumps(workflow_json_schema(), indent=2))
        return 0
    configure_process()
    try:
        budgets = memory_budgets(args.model_memory, args.gpu_memory)
    except ValueError as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    try:
        registry = make_registry(args.node_package)
    except NodeDeclarationError as exc:  # a node package that cannot run as declared
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    workspace = Workspace.at(args.data, args.models, allow_pickle=args.allow_pickle)
    if args.out:
        workspace = workspace.with_output(args.out)
    resources = Resources(ModelStore(budgets))
    engine = Engine(registry, workspace.ensure(), args.cache_bytes, resources)
    if args.nodes:
        if args.json:
            print(json.dumps(registry_schema(registry, engine.choices), indent=2))
        else:
            print("\n\n".join(describe_node(s) for _, s in sorted(registry.nodes.items())))
        return 0
    if args.convert:
        return convert(args.convert[0], args.convert[1], args.export, registry, workspace)
    if not args.workflow:
        print("run.py: a workflow file is required (or --nodes / --schema)", file=sys.stderr)
        return 2
    try:
        workflow, missing = read_workflow(args.workflow, registry, workspace)
        if missing:  # model_missing, newer_version, no_migration: before anything runs
            report_problems(missing, args.json)
            return 2
        base = workflow.model_dump(exclude_none=True)
        docs = expand_runs(base, args.set, args.vary)
        workflows = [parse_workflow(d) for d in docs]
    except ImportRefused as exc:
        report_problems(exc.problems, args.json)
        print(f"run.py: {args.workflow}: cannot import this {exc.source} workflow", file=sys.stderr)
        return 2
    except (OSError, WorkflowFormatError, UsageError) as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    checked_runs = []
    for wf in workflows:
        checked = engine.check(wf)
        if not checked.ok:
            report_problems(checked.problems, args.json)
            return 2
        checked_runs.append((wf, checked))
    show_bars = not args.json and sys.stderr.isatty()
    results: list[RunResult] = []
    for doc, (wf, checked) in zip(docs, checked_runs, strict=True):
        printer = ProgressPrinter(enabled=show_bars)
        try:
            with job_threads(doc, args.threads):
                result = engine.execute(checked, wf, on_event=printer)
        finally:
            printer.close()
        results.append(result)
        if not args.json:
            report_run(result, workspace)
    if args.json:
        runs = []
        for r in results:
            data = r.to_json()
            data["files"] = [str(workspace.folder(f["kind"]) / f["name"]) for f in r.files]
            runs.append(data)
        print(json.dumps({"runs": runs}, indent=2))
    return 0 if all(r.status == "ok" for r in results) else 1


def read_workflow(path: str, registry: Registry, workspace: Workspace) -> tuple[Any, list[Problem]]:
    """Our Workflow from a file in any format we read, its model names resolved (by name,
    else by content hash) and every local model's sha256 and size recorded; plus the
    problems found on the way (model_missing, newer_version, no_migration). Notes go to stderr."""
    result = import_file(path, set(registry.nodes))
    index, inputs = index_for(workspace), model_inputs(registry)
    workflow, outdated = migrate(result.workflow, registry)  # node versions (and stamps)
    workflow, missing, notes = resolve_models(workflow, index, inputs)
    for note in [*result.warnings, *notes]:
        print(f"run.py: {path}: {note}", file=sys.stderr)
    return record_models(workflow, index, inputs), [*outdated, *missing]


def convert(source: str, target: str, fmt: str, registry: Registry, workspace: Workspace) -> int:
    """--convert: write ``source`` as our format, or as ComfyUI API JSON."""
    try:
        workflow, missing = read_workflow(source, registry, workspace)
        for problem in missing:
            print(f"run.py: {problem}", file=sys.stderr)
        if any(p.code != "model_missing" for p in missing):
            return 2
        if fmt == "comfyui-api":
            defaults = {
                name: {n: i.default for n, i in spec.inputs.items() if i.socket is None}
                for name, spec in registry.nodes.items()
            }
            doc = export_comfyui_api(workflow, defaults, registry)
        else:
            doc = workflow.model_dump(mode="json", exclude_none=True)
        Path(target).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    except ImportRefused as exc:
        report_problems(exc.problems, False)
        print(f"run.py: cannot convert {source}", file=sys.stderr)
        return 2
    except (OSError, WorkflowFormatError) as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    print(target)
    return 0


def report_problems(problems: list[Problem], as_json: bool) -> None:
    if as_json:
        print(json.dumps({"errors": [p.to_json() for p in problems]}, indent=2))
    for p in problems:
        print(str(p), file=sys.stderr)


def report_run(result: RunResult, workspace: Workspace) -> None:
    executed = sum(1 for n in result.nodes.values() if n.status == "executed")
    cached = len(result.nodes) - executed
    print(
        f"{result.status}: {executed} executed, {cached} cached, {result.seconds:.2f} s",
        file=sys.stderr,
    )
    models = result.models
    for verb, entries in (("loaded", models.get("loaded")), ("evicted", models.get("evicted"))):
        if entries:
            mib = sum(e["bytes"] for e in entries) / 1024**2
            print(f"  {verb} {len(entries)} model component(s), {mib:.1f} MiB", file=sys.stderr)
    for f in result.files:
        print(workspace.folder(f["kind"]) / f["name"])
    if result.error:
        e = result.error
        print(
            f"error in node {e['node_id']} ({e['node_type']}): {e['error_type']}: {e['message']}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    sys.exit(main())
