"""Finds node classes and choice sources by importing a package's modules.

Nothing is registered by hand: a class deriving from `Node` in any module of
the package is a node type; a function decorated with `choice_source` lists
the allowed values of `Choice` inputs.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from graph.node import Node, NodeDeclarationError, NodeSpec, run_signature_problems
from graph.types import SocketType, all_socket_types, can_connect

ChoiceLister = Callable[[Any], list[str]]


def choice_source(name: str) -> Callable[[ChoiceLister], ChoiceLister]:
    """Mark a function ``f(workspace) -> [values]`` as the lister of a Choice source."""

    def mark(fn: ChoiceLister) -> ChoiceLister:
        fn.__choice_source__ = name  # type: ignore[attr-defined]
        return fn

    return mark


class Registry:
    """Node types and choice sources, by name."""

    def __init__(self) -> None:
        self.nodes: dict[str, NodeSpec] = {}
        self.choice_sources: dict[str, ChoiceLister] = {}

    @classmethod
    def from_package(cls, package: str) -> Registry:
        reg = cls()
        for module in _import_all(package):
            reg.add_module(module)
        return reg

    @classmethod
    def from_classes(cls, classes: Iterable[type[Node]]) -> Registry:
        reg = cls()
        for c in classes:
            reg.add(c)
        return reg

    def merge(self, other: Registry) -> None:
        for spec in other.nodes.values():
            self.add(spec.cls)
        self.choice_sources.update(other.choice_sources)

    def add_module(self, module: ModuleType) -> None:
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Node)
                and value.__module__ == module.__name__
                and not value.__dict__.get("_abstract", False)
            ):
                self.add(value)
            name = getattr(value, "__choice_source__", None)
            if callable(value) and isinstance(name, str):
                self.choice_sources[name] = value

    def add(self, cls: type[Node]) -> None:
        """Register a node type; NodeDeclarationError when its run() and its declared
        inputs disagree (caught here, at start-up, not when a workflow first runs it)."""
        spec = cls.spec
        problems = run_signature_problems(spec)
        if problems:
            raise NodeDeclarationError(
                f"node {spec.type} ({cls.__module__}.{cls.__qualname__}): " + "; ".join(problems)
            )
        other = self.nodes.get(spec.type)
        if other is not None and other.cls is not cls:
            raise ValueError(
                f"node type {spec.type!r} declared twice: {other.cls.__module__} "
                f"and {cls.__module__}"
            )
        self.nodes[spec.type] = spec

    def socket_types(self) -> list[type[SocketType]]:
        return [t for t in all_socket_types() if t is not SocketType]

    def compatibility(self) -> dict[str, list[str]]:
        """For each socket type, the source types a link into it accepts."""
        kinds = all_socket_types()
        return {t.name: [s.name for s in kinds if can_connect(s, t)] for t in kinds}


def _import_all(package: str) -> list[ModuleType]:
    root = importlib.import_module(package)
    modules = [root]
    paths = [str(Path(p)) for p in getattr(root, "__path__", [])]
    for info in pkgutil.walk_packages(paths, prefix=package + "."):
        modules.append(importlib.import_module(info.name))
    return modules
