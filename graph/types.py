"""Socket types: the classes that typed links carry.

A socket type is a class; a link from an output of type A into an input of
type B is allowed when A is B or a subclass of B. That single rule
(`can_connect`) is used by validation, the node schema and the canvas.
"""

from __future__ import annotations

from typing import ClassVar


class SocketType:
    """Base of every linkable type. Subclass it to declare a new one."""

    name: ClassVar[str] = "ANY"
    color: ClassVar[str] = "#9ca3af"

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            cls.name = cls.__name__.upper()


def can_connect(source: type[SocketType], target: type[SocketType]) -> bool:
    """The one compatibility rule: the source type is the target or derives from it."""
    return issubclass(source, target)


def all_socket_types() -> list[type[SocketType]]:
    """Every socket type class defined so far (imported modules only)."""
    seen: list[type[SocketType]] = []
    stack = [SocketType]
    while stack:
        cls = stack.pop()
        seen.append(cls)
        stack.extend(cls.__subclasses__())
    return sorted(seen, key=lambda c: c.name)


class IntValue(SocketType):
    """An integer value on a link, into any INT literal input (widget converted to input)."""

    name = "INT"
    color = "#7dd3fc"


class FloatValue(SocketType):
    name = "FLOAT"
    color = "#a5b4fc"


class StringValue(SocketType):
    name = "STRING"
    color = "#86efac"


class BooleanValue(SocketType):
    name = "BOOLEAN"
    color = "#fca5a5"


VALUE_SOCKETS: dict[str, type[SocketType]] = {
    t.name: t for t in (IntValue, FloatValue, StringValue, BooleanValue)
}
