"""The scheduler alone: pure functions over a queue snapshot."""

from __future__ import annotations

from service.scheduler import Idle, Policy, Waiting, assign, fair_order, model_keys
from tests.server_testkit import make_registry, txt2img

A, B = frozenset({"checkpoints:a"}), frozenset({"checkpoints:b"})


def jobs(*specs: tuple[str, frozenset[str]], created: float = 100.0) -> list[Waiting]:
    return [
        Waiting(f"j{i}", client, i, created + i, models) for i, (client, models) in enumerate(specs)
    ]


def test_model_keys_come_from_the_choice_inputs():
    registry = make_registry()
    assert model_keys(txt2img(ckpt="other.safetensors"), registry) == {
        "checkpoints:other.safetensors"
    }
    assert model_keys({"nodes": {"x": {"type": "Unknown"}}}, registry) == frozenset()


def test_an_idle_worker_holding_the_model_takes_the_job():
    waiting = jobs(("c", B))
    idle = [Idle("wa", A, last_used=1.0), Idle("wb", B, last_used=5.0)]
    assert assign(waiting, idle, now=101.0)[0] == [("j0", "wb")]


def test_otherwise_the_least_recently_used_worker_loads_it():
    waiting = jobs(("c", B))
    idle = [Idle("w1", A, last_used=5.0), Idle("w2", A, last_used=1.0)]
    assert assign(waiting, idle, now=101.0)[0] == [("j0", "w2")]


def test_look_ahead_finds_a_job_for_the_model_a_worker_holds():
    waiting = jobs(("c", B), ("c", B), ("c", A))
    picks, _ = assign(waiting, [Idle("wa", A)], now=101.0)
    assert picks == [("j2", "wa")]  # the A job jumps two B jobs: no load
    picks, _ = assign(waiting, [Idle("wa", A)], now=101.0, policy=Policy(lookahead=2))
    assert picks == [("j0", "wa")]  # beyond the window: the head goes, A worker loads B


def test_alternating_checkpoints_stay_on_their_workers():
    waiting = jobs(("c", A), ("c", A), ("c", B), ("c", B), ("c", A), ("c", B))
    idle = [Idle("w1", A, 2.0), Idle("w2", B, 1.0)]
    picks, _ = assign(waiting, idle, now=101.0)
    assert picks == [("j0", "w1"), ("j2", "w2")]
    plain, _ = assign(waiting, idle, now=101.0, policy=Policy(affinity=False))
    assert plain == [("j0", "w2"), ("j1", "w1")]  # FIFO on LRU workers: both load


def test_age_bound_prevents_starvation():
    # A stream of A jobs keeps an A worker busy; the B job at the head must not wait forever.
    waiting = jobs(("c", B), ("c", A), ("c", A), created=100.0)
    policy = Policy(max_wait=30.0)
    assert assign(waiting, [Idle("wa", A)], now=110.0, policy=policy)[0] == [("j1", "wa")]
    assert assign(waiting, [Idle("wa", A)], now=131.0, policy=policy)[0] == [("j0", "wa")]


def test_aged_jobs_go_oldest_first_even_against_affinity():
    waiting = jobs(("x", B), ("y", A), ("x", A), created=0.0)
    picks, _ = assign(waiting, [Idle("wa", A)], now=1000.0)
    assert picks == [("j0", "wa")]


def test_clients_take_turns():
    waiting = jobs(("busy", A), ("busy", A), ("busy", A), ("busy", A), ("late", A))
    order = [j.id for j in fair_order(waiting)]
    assert order == ["j0", "j4", "j1", "j2", "j3"]  # the late client's one job goes second
    order = [j.id for j in fair_order(waiting, last_client="late")]
    assert order[0] == "j0"
    picks, cursor = assign(waiting, [Idle("w1"), Idle("w2")], now=101.0)
    assert picks == [("j0", "w1"), ("j4", "w2")] and cursor == "late"
    # next round starts after the client served last
    rest = [j for j in waiting if j.id not in ("j0", "j4")]
    assert assign(rest, [Idle("w1")], now=102.0, last_client=cursor)[0] == [("j1", "w1")]


def test_fairness_over_many_rounds_with_one_worker():
    waiting = jobs(*[("big", A)] * 6, ("small", A), ("small", A))
    served, cursor = [], None
    while waiting:
        (pick,), cursor = assign(waiting, [Idle("w")], now=101.0, last_client=cursor)
        served.append(next(j.client_id for j in waiting if j.id == pick[0]))
        waiting = [j for j in waiting if j.id != pick[0]]
    assert served[:4] == ["big", "small", "big", "small"]


def test_nothing_to_do():
    assert assign([], [Idle("w")], now=0.0) == ([], None)
    assert assign(jobs(("c", A)), [], now=0.0) == ([], None)


def test_workers_spec_parsing_and_a_clear_message_without_ray(monkeypatch, tmp_path):
    import builtins

    import pytest

    from service import make_app
    from service.config import ConfigError
    from service.workers import parse_spec
    from tests.server_testkit import make_config

    assert parse_spec("inprocess") == ("inprocess", [None])
    assert parse_spec("process:3") == ("process", [None, None, None])
    assert parse_spec("process:cuda:0,cuda:1") == ("process", ["cuda:0", "cuda:1"])
    assert parse_spec("ray") == ("ray", []) and parse_spec("ray:2") == ("ray", [None, None])
    for bad in ("threads", "process:0", "process:gpu7", "ray:cuda:0", "inprocess:2"):
        with pytest.raises(ConfigError, match="--workers"):
            parse_spec(bad)

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(ConfigError, match="requirements-ray.txt"):
        make_app(make_config(tmp_path, workers="ray", node_packages=("tests.server_testkit",)))


def simulate(pattern: list[frozenset[str]], workers: int, policy: Policy) -> int:
    """Checkpoint loads when each worker holds one model and every job takes one tick."""
    waiting = jobs(*[("c", m) for m in pattern])
    held = {f"w{i}": frozenset() for i in range(workers)}
    last_used = dict.fromkeys(held, 0.0)
    loads, now, cursor, running = 0, 101.0, None, {}  # worker -> (job, ends at)
    while waiting or running:
        for name, (_, ends) in list(running.items()):
            if ends <= now:
                del running[name]
                last_used[name] = now
        idle = [Idle(n, held[n], last_used[n]) for n in held if n not in running]
        busy = [held[n] for n in running]
        picks, cursor = assign(waiting, idle, now, policy, cursor, busy)
        for job_id, name in picks:
            job = next(j for j in waiting if j.id == job_id)
            waiting.remove(job)
            if not job.models <= held[name]:
                loads += 1
                held[name] = job.models
            running[name] = (job, now + 1.0)
        now += 0.5
    return loads


def test_two_checkpoints_in_alternating_pairs_load_once_per_worker():
    pattern = [A, A, B, B] * 4
    assert simulate(pattern, 2, Policy()) == 2
    assert simulate(pattern, 2, Policy(affinity=False)) >= 8  # FIFO: a load for most jobs
    assert simulate([A, B] * 8, 2, Policy()) == 2


def test_a_second_copy_is_loaded_only_for_a_backlog():
    # A busy worker holds A; an idle one holds B. Two A jobs: the busy one takes them in turn.
    two = jobs(("c", A), ("c", A))
    assert assign(two, [Idle("wb", B)], now=101.0, busy=[A])[0] == []
    # A backlog of A jobs is worth a second load; a job without models never waits.
    assert assign(jobs(*[("c", A)] * 3), [Idle("wb", B)], now=101.0, busy=[A])[0] == [("j0", "wb")]
    plain = jobs(("c", A), ("c", frozenset()))
    assert assign(plain, [Idle("wb", B)], now=101.0, busy=[A])[0] == [("j1", "wb")]
    # A cold worker (holding nothing) evicts nothing by loading: it takes the job at once.
    assert assign(two, [Idle("cold")], now=101.0, busy=[A])[0] == [("j0", "cold")]
    # ...and the age bound still wins.
    assert assign(two, [Idle("wb", B)], now=1000.0, busy=[A])[0] == [("j0", "wb")]
