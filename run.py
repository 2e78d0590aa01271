"""Run workflow files headlessly.

    python run.py WORKFLOW.json [--set NODE.INPUT=VALUE ...] [--vary NODE.INPUT=V1,V2 ...]
                  [--out DIR] [--json]
    python run.py --nodes [--json]      list the node types
    python run.py --schema              JSON Schema of the workflow file format

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
from graph.executor import Engine, RunResult
from graph.node import NodeDeclarationError
from graph.registry import Registry
from graph.schema import describe_node, registry_schema
from graph.validate import Problem
from graph.workflow import (
    WorkflowFormatError,
    load_workflow_file,
    parse_workflow,
    workflow_json_schema,
)
from graph.workspace import Workspace
from nodes.sd.runtime import configure_process

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
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
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
    configure_process(args.threads)
    try:
        registry = make_registry(args.node_package)
    except NodeDeclarationError as exc:  # a node package that cannot run as declared
        print(f"run.py: {exc}", file=sys.stderr)
        return 2
    workspace = Workspace.at(args.data, args.models, allow_pickle=args.allow_pickle)
    if args.out:
        workspace = workspace.with_output(args.out)
    engine = Engine(registry, workspace.ensure(), cache_budget=args.cache_bytes)
    if args.nodes:
        if args.json:
            print(json.dumps(registry_schema(registry, engine.choices), indent=2))
        else:
            print("\n\n".join(describe_node(s) for _, s in sorted(registry.nodes.items())))
        return 0
    if not args.workflow:
        print("run.py: a workflow file is required (or --nodes / --schema)", file=sys.stderr)
        return 2
    try:
        base = load_workflow_file(args.workflow).model_dump(exclude_none=True)
        docs = expand_runs(base, args.set, args.vary)
        workflows = [parse_workflow(d) for d in docs]
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
    for wf, checked in checked_runs:
        printer = ProgressPrinter(enabled=show_bars)
        try:
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
