"""Execution: ordering, pruning, caching, fingerprints, eviction, errors, interruption."""

from __future__ import annotations

import threading

from graph import CancelToken, Engine, OutputCache
from graph.events import Progress
from tests.wf import executed, link, n, wf


def chain_workflow(factor: float = 2.0, text: str = "{}"):
    return wf(
        c=n("Const", value=3),
        x=n("Scale", x=link("c"), factor=factor),
        f=n("Format", x=link("x"), template=text),
        c2=n("Const", value=10),
        g=n("Format", x=link("c2")),
        j=n("Join", a=link("f", "text"), b=link("g", "text")),
        s=n("Save", text=link("j", "text")),
        unused=n("Const", value=99),
        unused2=n("Scale", x=link("unused")),
    )


def test_runs_in_dependency_order_and_prunes_unused(engine: Engine) -> None:
    events: list = []
    result = engine.run(chain_workflow(), on_event=events.append)
    assert result.status == "ok"
    order = executed(events)
    assert set(order) == {"c", "x", "f", "c2", "g", "j", "s"}
    assert "unused" not in order and "unused2" not in order
    for before, after in [("c", "x"), ("x", "f"), ("f", "j"), ("g", "j"), ("j", "s")]:
        assert order.index(before) < order.index(after)
    assert len(result.files) == 1
    path = engine.workspace.output_dir / result.files[0]["name"]
    assert path.read_text() == '{"value": null, "text": "6.0 10.0"}'


def test_order_is_deterministic(engine: Engine, test_registry, workspace) -> None:
    orders = []
    for _ in range(3):
        events: list = []
        Engine(test_registry, workspace).run(chain_workflow(), on_event=events.append)
        orders.append(executed(events))
    assert orders[0] == orders[1] == orders[2]


def test_event_stream_shape(engine: Engine) -> None:
    events: list = []
    engine.run(chain_workflow(), on_event=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "run_started" and kinds[-1] == "run_finished"
    assert events[0].to_run == executed(events)
    assert kinds.count("node_started") == kinds.count("node_finished") == 7
    assert all(e.seconds >= 0 for e in events if e.kind == "node_finished")


def test_changing_one_literal_reruns_exactly_its_downstream(engine: Engine) -> None:
    engine.run(chain_workflow())
    events: list = []
    result = engine.run(chain_workflow(factor=5.0), on_event=events.append)
    assert executed(events) == ["x", "f", "j", "s"]
    assert set(events[0].cached) == {"c", "c2", "g"}
    assert {k for k, v in result.nodes.items() if v.status == "cached"} == {"c", "c2", "g"}


def test_identical_rerun_executes_nothing_and_reports_files(engine: Engine) -> None:
    first = engine.run(chain_workflow())
    events: list = []
    second = engine.run(chain_workflow(), on_event=events.append)
    assert executed(events) == []
    assert second.files == first.files
    assert len(list(engine.workspace.output_dir.iterdir())) == 1


def test_run_cached_serves_only_a_fully_cached_workflow(engine: Engine) -> None:
    w = chain_workflow()
    checked = engine.check(w)
    events: list = []
    assert engine.run_cached(checked, w, events.append) is None  # nothing cached yet
    assert events == []  # and nothing was said
    first = engine.run(w)
    served = engine.run_cached(checked, w, events.append, "r1")
    assert served is not None and served.status == "ok" and served.files == first.files
    assert [e.kind for e in events] == ["run_started", "node_cached", "run_finished"]
    assert events[0].run_id == "r1" and executed(events) == []
    changed = chain_workflow(factor=5.0)  # a node would execute: the usual run's job
    assert engine.run_cached(engine.check(changed), changed) is None
    with engine._lock:  # another run holds the engine: no waiting on the loop
        assert engine.run_cached(checked, w) is None


def test_same_subgraph_under_other_ids_hits_cache(engine: Engine) -> None:
    engine.run(wf(a=n("Const", value=1), s=n("Save", value=link("a"))))
    events: list = []
    engine.run(wf(zz=n("Const", value=1), out=n("Save", value=link("zz"))), on_event=events.append)
    assert executed(events) == []


def test_fingerprint_invalidates_on_file_change(engine: Engine) -> None:
    note = engine.workspace.input_dir / "n.txt"
    note.write_text("one")
    w = wf(r=n("ReadNote", name="n.txt"), s=n("Save", text=link("r", "text")))
    engine.run(w)
    events: list = []
    engine.run(w, on_event=events.append)
    assert executed(events) == []
    note.write_text("two")
    events.clear()
    engine.run(w, on_event=events.append)
    assert executed(events) == ["r", "s"]


def test_uncacheable_node_reruns_with_its_downstream(engine: Engine) -> None:
    w = wf(
        r=n("Noise"),
        x=n("Scale", x=link("r")),
        c=n("Const"),
        s=n("Save", value=link("x")),
        t=n("Save", value=link("c"), prefix="c"),
    )
    engine.run(w)
    events: list = []
    engine.run(w, on_event=events.append)
    assert executed(events) == ["r", "x", "s"]


def test_byte_budget_evicts_least_recently_used() -> None:
    class Blob:
        def __init__(self, n: int) -> None:
            self.nbytes = n

    cache = OutputCache(budget=250)
    cache.put("a", {"v": Blob(100)}, [])
    cache.put("b", {"v": Blob(100)}, [])
    assert cache.get("a") is not None  # a is now most recently used
    cache.put("c", {"v": Blob(100)}, [])
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.nbytes == 200
    cache.put("huge", {"v": Blob(1000)}, [])
    assert "huge" not in cache and cache.nbytes <= 250


def test_eviction_during_a_run_keeps_needed_values(test_registry, workspace) -> None:
    engine = Engine(test_registry, workspace, cache_budget=100)  # every float counts 64 bytes
    w = chain_workflow()
    assert engine.run(w).status == "ok"
    assert engine.run(chain_workflow(factor=3.0)).status == "ok"
    assert engine.cache.nbytes <= 100


def test_failing_node_reports_and_caches_nothing_of_its_own(engine: Engine) -> None:
    w = wf(
        c=n("Const", value=1),
        x=n("Scale", x=link("c")),
        f=n("Fail", x=link("x"), message="kaput"),
        s=n("Save", value=link("f")),
    )
    events: list = []
    result = engine.run(w, on_event=events.append)
    assert result.status == "error"
    err = result.error
    assert err["node_id"] == "f" and err["node_type"] == "Fail"
    assert err["message"] == "kaput" and err["error_type"] == "RuntimeError"
    assert "RuntimeError" in err["traceback"]
    assert err["inputs"] == {"message": "kaput", "x": "<x.value>"}
    assert [e.kind for e in events][-2:] == ["error", "run_finished"]
    assert events[-1].status == "error"
    # the nodes before it were cached; the failed one was not
    events.clear()
    engine.run(w, on_event=events.append)
    assert executed(events) == []
    assert events[0].to_run == ["f", "s"]
    # and the engine stays healthy
    assert engine.run(wf(c=n("Const"), s=n("Save", value=link("c")))).status == "ok"


def test_interrupt_stops_a_running_node_and_the_engine_recovers(engine: Engine) -> None:
    cancel = CancelToken()
    events: list = []

    def sink(event) -> None:
        events.append(event)
        if isinstance(event, Progress) and event.step == 3:
            cancel.cancel()

    w = wf(
        c=n("Const"),
        slow=n("Slow", x=link("c"), steps=1000, delay=0.001),
        s=n("Save", value=link("slow")),
    )
    result = engine.run(w, on_event=sink, cancel=cancel)
    assert result.status == "interrupted"
    assert events[-1].kind == "run_finished" and events[-1].status == "interrupted"
    steps = [e.step for e in events if isinstance(e, Progress)]
    assert steps == [1, 2, 3]
    assert engine.run(w.model_copy(deep=True)).status == "ok"


def test_cancel_from_another_thread_between_nodes(engine: Engine) -> None:
    cancel = CancelToken()
    w = wf(
        c=n("Const"),
        a=n("Slow", x=link("c"), steps=20, delay=0.01),
        b=n("Slow", x=link("a"), steps=20, delay=0.01),
        s=n("Save", value=link("b")),
    )
    timer = threading.Timer(0.05, cancel.cancel)
    timer.start()
    events: list = []
    result = engine.run(w, on_event=events.append, cancel=cancel)
    timer.join()
    assert result.status == "interrupted"
    assert "s" not in executed(events)


def test_progress_events_carry_steps(engine: Engine) -> None:
    events: list = []
    w = wf(c=n("Const"), sl=n("Slow", x=link("c"), steps=4, delay=0), s=n("Save", value=link("sl")))
    engine.run(w, on_event=events.append)
    prog = [(e.step, e.total, e.fraction) for e in events if isinstance(e, Progress)]
    assert prog == [(1, 4, 0.25), (2, 4, 0.5), (3, 4, 0.75), (4, 4, 1.0)]


def test_fan_in_sums(engine: Engine) -> None:
    w = wf(
        a=n("Const", value=1),
        b=n("Const", value=2),
        c=n("Const", value=3),
        t=n("Sum", a=link("a"), b=link("b"), c=link("c"), d=link("a")),
        s=n("Save", value=link("t")),
    )
    result = engine.run(w)
    path = engine.workspace.output_dir / result.files[0]["name"]
    assert '"value": 7.0' in path.read_text()
