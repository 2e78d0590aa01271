"""The node declaration API.

A node is one class: class-level annotations are its inputs, ``OUTPUTS`` its
named typed outputs, ``run`` its work. Everything else (value validation,
edge checks, JSON schema, CLI listing, the executor's call) is derived from
that declaration by `NodeSpec`.

    class EmptyLatent(Node):
        \"\"\"A blank latent batch to start sampling from.\"\"\"
        CATEGORY = "latent"
        OUTPUTS = {"latent": Latent}
        width: int = Widget(512, ge=64, le=4096, multiple_of=8)

        def run(self, ctx, width): ...
"""

from __future__ import annotations

import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, create_model

from graph.cost import Cost, CostInputs
from graph.types import VALUE_SOCKETS, SocketType

_MISSING: Any = ...


def Widget(  # noqa: N802 - reads like a type in declarations
    default: Any = _MISSING,
    *,
    ge: float | None = None,
    le: float | None = None,
    gt: float | None = None,
    lt: float | None = None,
    multiple_of: float | None = None,
    step: float | None = None,
    multiline: bool = False,
    seed: bool = False,
    max_length: int | None = None,
    description: str | None = None,
) -> Any:
    """Declare a literal input with constraints and UI hints (a pydantic Field)."""
    extra: dict[str, Any] = {}
    if step is not None:
        extra["step"] = step
    if multiline:
        extra["multiline"] = True
    if seed:
        extra["seed"] = True
    return Field(
        default,
        ge=ge,
        le=le,
        gt=gt,
        lt=lt,
        multiple_of=multiple_of,
        max_length=max_length,
        description=description,
        json_schema_extra=extra or None,
    )


@dataclass(frozen=True)
class Choice:
    """A string input whose allowed values come from the workspace at run time
    (checkpoints in the models folder, images in the input folder)."""

    source: str
    default: str | None = None
    description: str | None = None


@dataclass(frozen=True)
class InputSpec:
    """One declared input, as derived from the node class."""

    name: str
    socket: type[SocketType] | None  # None: a literal (widget) input
    required: bool
    default: Any = None
    choice_source: str | None = None
    choices: tuple[Any, ...] | None = None
    py_type: str = ""
    constraints: dict[str, Any] = field(default_factory=dict)

    @property
    def link_only(self) -> bool:
        return self.socket is not None

    @property
    def link_type(self) -> type[SocketType] | None:
        """The socket type a link into this input must carry: the declared one, or for a
        literal its value kind (INT, FLOAT, STRING, BOOLEAN: a widget converted to an input,
        fed by a primitive node); None for a literal no link can feed."""
        return self.socket if self.socket is not None else VALUE_SOCKETS.get(self.py_type)


_PY_TYPE_NAMES = {int: "INT", float: "FLOAT", str: "STRING", bool: "BOOLEAN"}


def _unwrap_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
    return tp, False


class NodeSpec:
    """Everything derived from one node class; built once, when the class is defined."""

    def __init__(self, cls: type[Node]) -> None:
        self.cls = cls
        self.type: str = cls.__dict__.get("TYPE") or cls.__name__
        self.category = cls.CATEGORY
        self.version = cls.VERSION
        self.output_node = cls.OUTPUT_NODE
        self.cacheable = cls.CACHEABLE
        self.has_fingerprint = cls.fingerprint.__func__ is not Node.fingerprint.__func__  # type: ignore[attr-defined]
        self.description = (cls.__doc__ or "").strip().split("\n")[0]
        self.outputs: dict[str, type[SocketType]] = dict(cls.OUTPUTS)
        self.output_inputs: dict[str, tuple[str, ...]] = dict(cls.OUTPUT_INPUTS)
        self.constant_outputs: dict[str, str] = dict(cls.CONSTANT_OUTPUTS)
        self.inputs: dict[str, InputSpec] = {}
        literal_fields: dict[str, Any] = {}
        hints = typing.get_type_hints(cls, include_extras=True)
        for name, tp in hints.items():
            if name.startswith("_") or get_origin(tp) is ClassVar:
                continue
            default = cls.__dict__.get(name, _MISSING)
            inner, optional = _unwrap_optional(tp)
            if isinstance(inner, type) and issubclass(inner, SocketType):
                self.inputs[name] = InputSpec(
                    name, inner, required=not optional and default is _MISSING
                )
                continue
            self.inputs[name] = self._literal_spec(name, inner, default)
            literal_fields[name] = self._pydantic_field(tp, default)
        self.literal_names = tuple(n for n, s in self.inputs.items() if s.socket is None)
        for out, names in self.output_inputs.items():
            unknown = [n for n in names if n not in self.inputs]
            if out not in self.outputs or unknown:
                raise TypeError(
                    f"{self.type}.OUTPUT_INPUTS: {out!r} is not an output or names "
                    f"undeclared inputs {unknown}"
                )
        for out, name in self.constant_outputs.items():
            if out not in self.outputs or name not in self.literal_names:
                raise TypeError(
                    f"{self.type}.CONSTANT_OUTPUTS: {out!r} is not an output or {name!r} "
                    f"is not a literal input"
                )
        self.link_names = tuple(n for n, s in self.inputs.items() if s.socket is not None)
        self._partial_models: dict[frozenset[str], type[BaseModel]] = {}
        self.model: type[BaseModel] = create_model(  # type: ignore[call-overload]
            f"{self.type}Inputs",
            __config__=ConfigDict(strict=True, extra="forbid", allow_inf_nan=False),
            **literal_fields,
        )

    def literal_model(self, linked: frozenset[str] = frozenset()) -> type[BaseModel]:
        """The model of the literal inputs, less those fed by links (their values are
        checked with the full model when they arrive)."""
        if not linked:
            return self.model
        model = self._partial_models.get(linked)
        if model is None:
            fields: dict[str, Any] = {name: (Any, None) for name in linked}
            model = create_model(f"{self.type}LinkedInputs", __base__=self.model, **fields)
            self._partial_models[linked] = model
        return model

    @staticmethod
    def _pydantic_field(tp: Any, default: Any) -> tuple[Any, Any]:
        if isinstance(default, Choice):
            return (str, Field(_MISSING if default.default is None else default.default))
        if default is _MISSING:
            return (tp, Field(...))
        return (tp, default)

    def _literal_spec(self, name: str, tp: Any, default: Any) -> InputSpec:
        choices: tuple[Any, ...] | None = None
        if get_origin(tp) is Literal:
            choices = get_args(tp)
            py_type = _PY_TYPE_NAMES.get(type(choices[0]), "STRING")
        else:
            py_type = _PY_TYPE_NAMES.get(tp, getattr(tp, "__name__", str(tp)).upper())
        if isinstance(default, Choice):
            return InputSpec(
                name,
                None,
                required=default.default is None,
                default=default.default,
                choice_source=default.source,
                py_type="STRING",
            )
        constraints: dict[str, Any] = {}
        value = default
        info = getattr(default, "metadata", None)
        if info is not None:  # a pydantic FieldInfo from Widget()
            value = default.default
            for m in default.metadata:
                for attr in ("ge", "le", "gt", "lt", "multiple_of", "max_length"):
                    v = getattr(m, attr, None)
                    if v is not None:
                        constraints[attr] = v
            extra = default.json_schema_extra
            if isinstance(extra, dict):
                constraints.update(extra)
        required = value is _MISSING or value is Ellipsis
        return InputSpec(
            name,
            None,
            required=required,
            default=None if required else value,
            choices=choices,
            py_type=py_type,
            constraints=constraints,
        )


class NodeDeclarationError(TypeError):
    """A node class whose declaration cannot be run as written (raised at registry load)."""


def run_signature_problems(spec: NodeSpec) -> list[str]:
    """Where ``run()`` and the declared inputs disagree.

    The executor calls ``run(ctx, **inputs)`` with every literal (defaults filled in)
    and every linked input, so each declared input must be a parameter, each parameter
    after ``ctx`` a declared input, and an optional link a parameter with a default."""
    cls = spec.cls
    if cls.run is Node.run:
        return ["it does not define run()"]
    params = list(inspect.signature(cls.run).parameters.values())[2:]  # self, ctx
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
        return []  # run(ctx, **inputs) takes whatever is declared
    named = {
        p.name: p
        for p in params
        if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    }
    problems = []
    missing = [n for n in spec.inputs if n not in named]
    if missing:
        problems.append(f"declared inputs missing from run(): {', '.join(missing)}")
    extra = [n for n, p in named.items() if n not in spec.inputs and p.default is p.empty]
    if extra:
        problems.append(f"run() parameters that are not declared inputs: {', '.join(extra)}")
    unfilled = [
        n
        for n, inp in spec.inputs.items()
        if inp.socket is not None
        and not inp.required
        and n in named
        and named[n].default is inspect.Parameter.empty
    ]
    if unfilled:
        problems.append(
            f"optional links without a default in run() (not passed when unlinked): "
            f"{', '.join(unfilled)}"
        )
    return problems


class Node:
    """Base class of every node. Subclasses declare inputs as annotations."""

    TYPE: ClassVar[str | None] = None
    CATEGORY: ClassVar[str] = "misc"
    VERSION: ClassVar[int] = 1
    # {old version: inputs -> inputs at old version + 1} (graph/versions.py)
    MIGRATIONS: ClassVar[dict[int, Any]] = {}
    OUTPUT_NODE: ClassVar[bool] = False
    CACHEABLE: ClassVar[bool] = True
    OUTPUTS: ClassVar[dict[str, type[SocketType]]] = {}
    # output -> the inputs it depends on; such an output gets its own cache key, so a
    # change to another input does not re-run what reads only this output
    OUTPUT_INPUTS: ClassVar[dict[str, tuple[str, ...]]] = {}
    # output -> the literal input it returns unchanged (primitive nodes): validation then
    # knows the value a linked widget gets, and checks and budgets it before the run
    CONSTANT_OUTPUTS: ClassVar[dict[str, str]] = {}
    spec: ClassVar[NodeSpec]

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._abstract = abstract
        if not abstract:
            cls.spec = NodeSpec(cls)

    def run(self, ctx: Any, **inputs: Any) -> dict[str, Any]:
        """Do the work; return a value for every declared output."""
        raise NotImplementedError

    @classmethod
    def check(
        cls, values: dict[str, Any], choices: Callable[[str], list[str]] | None
    ) -> list[tuple[str, str, str]]:
        """The node's own rules on its values that the declaration cannot express, checked
        at validation, before anything runs or loads: rules across several inputs (a
        sampler that has no such schedule: code ``invalid_combination``) or names inside a
        value that must exist (an embedding named in a prompt).

        Gets the validated literal values (defaults filled in; linked inputs are absent)
        and ``choices(source)``, which lists a Choice source (None: no workspace to check
        against); returns ``(input, code, message)`` for each broken rule."""
        return []

    @classmethod
    def cost(cls, inputs: CostInputs) -> Cost:
        """What running this node costs (graph/cost.py), from its literal values and the
        pixels its links carry; budgets are checked on it before a job is queued.

        The default costs nothing of its own and carries its largest linked input's
        pixels to every output. Nodes that make images or latents, or sample, say so."""
        return Cost()

    @classmethod
    def fingerprint(cls, workspace: Any, inputs: dict[str, Any]) -> str | None:
        """Outside state that should invalidate the cache (e.g. a file's hash).

        Gets the validated literal inputs; returns a string added to the key."""
        return None
