"""The workflow engine: node declarations, workflow files, validation, planning,
caching and execution. It knows nothing of torch or Stable Diffusion."""

from graph.cache import OutputCache
from graph.context import CancelToken, Interrupted, Resources, RunContext
from graph.cost import Cost, CostInputs
from graph.executor import Engine, RunResult
from graph.node import Choice, Node, Widget
from graph.registry import Registry, choice_source
from graph.types import SocketType, can_connect
from graph.validate import InvalidWorkflow, Problem
from graph.workflow import Link, Workflow, WorkflowFormatError, load_workflow_file, parse_workflow
from graph.workspace import PathOutsideFolder, Workspace, confined_path

__all__ = [
    "CancelToken",
    "Choice",
    "Cost",
    "CostInputs",
    "Engine",
    "Interrupted",
    "InvalidWorkflow",
    "Link",
    "Node",
    "OutputCache",
    "PathOutsideFolder",
    "Problem",
    "Registry",
    "Resources",
    "RunContext",
    "RunResult",
    "SocketType",
    "Widget",
    "Workflow",
    "WorkflowFormatError",
    "Workspace",
    "can_connect",
    "choice_source",
    "confined_path",
    "load_workflow_file",
    "parse_workflow",
]
