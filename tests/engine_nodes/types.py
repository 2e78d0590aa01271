from graph.types import SocketType


class Number(SocketType):
    color = "#22c55e"


class Integer(Number):
    """An INTEGER output may feed a NUMBER input, not the reverse."""


class Text(SocketType):
    color = "#eab308"
