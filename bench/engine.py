"""Engine overhead on a synthetic graph of 1,000 trivial nodes (chains and fan-ins).

Prints validate / plan+execute times for a cold run and a fully cached rerun.
Targets on a 2-core CPU: <= 20 ms to execute the 1,000 nodes, <= 5 ms for the
fully cached rerun.  Usage: python bench/engine.py [--nodes 1000] [--repeat 20]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graph import Engine, Node, Registry, RunContext, SocketType, Widget, Workspace  # noqa: E402
from graph.workflow import parse_workflow  # noqa: E402


class Num(SocketType):
    pass


class Value(Node):
    """A constant."""

    OUTPUTS = {"value": Num}
    value: int = Widget(0, ge=-(10**9), le=10**9)

    def run(self, ctx: RunContext, value: int) -> dict[str, Any]:
        return {"value": value}


class Inc(Node):
    """x + 1, optionally plus y (fan-in)."""

    OUTPUTS = {"value": Num}
    x: Num
    y: Num | None = None

    def run(self, ctx: RunContext, x: int, y: int | None = None) -> dict[str, Any]:
        return {"value": x + 1 + (y or 0)}


class Out(Node):
    """Output sink."""

    OUTPUT_NODE = True
    x: Num

    def run(self, ctx: RunContext, x: int) -> dict[str, Any]:
        return {}


def synthetic(total: int, seed_value: int = 1) -> dict[str, Any]:
    """Chains of 50 nodes; every chain after the first also reads the previous chain's end."""
    nodes: dict[str, Any] = {}
    chain_len = 50
    made = 0
    prev_end: str | None = None
    chain = 0
    while made < total - 1:
        head = f"c{chain}_0"
        nodes[head] = {"type": "Value", "inputs": {"value": seed_value + chain}}
        made += 1
        last = head
        for i in range(1, chain_len):
            if made >= total - 1:
                break
            nid = f"c{chain}_{i}"
            inputs: dict[str, Any] = {"x": {"node": last, "output": "value"}}
            if i == 1 and prev_end is not None:
                inputs["y"] = {"node": prev_end, "output": "value"}
            nodes[nid] = {"type": "Inc", "inputs": inputs}
            last = nid
            made += 1
        prev_end = last
        chain += 1
    nodes["out"] = {"type": "Out", "inputs": {"x": {"node": prev_end, "output": "value"}}}
    return {"version": 1, "nodes": nodes}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=20)
    args = ap.parse_args()
    registry = Registry.from_classes([Value, Inc, Out])
    tmp = Path(tempfile.mkdtemp())
    cold_check, cold_exec, warm_check, warm_exec = [], [], [], []
    for i in range(args.repeat):
        engine = Engine(registry, Workspace.at(tmp, tmp / "models"))
        wf = parse_workflow(synthetic(args.nodes, seed_value=i))
        t0 = time.perf_counter()
        checked = engine.check(wf)
        t1 = time.perf_counter()
        result = engine.execute(checked, wf)
        t2 = time.perf_counter()
        assert result.status == "ok" and len(result.nodes) == args.nodes
        checked = engine.check(wf)
        t3 = time.perf_counter()
        again = engine.execute(checked, wf)
        t4 = time.perf_counter()
        assert all(n.status == "cached" for n in again.nodes.values())
        cold_check.append(t1 - t0)
        cold_exec.append(t2 - t1)
        warm_check.append(t3 - t2)
        warm_exec.append(t4 - t3)

    def ms(xs: list[float]) -> str:
        return f"{statistics.median(xs) * 1e3:7.2f} ms (min {min(xs) * 1e3:.2f})"

    n = args.nodes
    print(f"{n} nodes, median of {args.repeat}")
    print(f"  cold:   validate {ms(cold_check)}   plan+execute {ms(cold_exec)}")
    print(
        f"          engine overhead per executed node: "
        f"{statistics.median(cold_exec) / n * 1e6:.1f} us"
    )
    print(f"  cached: validate {ms(warm_check)}   plan+serve   {ms(warm_exec)}")
    total = [a + b for a, b in zip(warm_check, warm_exec, strict=True)]
    print(f"  cached rerun, validate+plan+serve: {ms(total)}")


if __name__ == "__main__":
    main()
