"""The generic model store (no torch): budgets per device, LRU eviction of unpinned
entries, pinning inside a job, reloading through a ComponentRef; the memory flags and
out-of-memory recognition."""

from __future__ import annotations

import pytest

from graph.memory import is_out_of_memory, memory_budgets, parse_size
from graph.models import ComponentRef, ModelStore, resolve


def put(store: ModelStore, key: str, nbytes: int, device: str = "cpu") -> str:
    return store.put(key, f"weights {key}", nbytes, device, key)


def held(store: ModelStore) -> list[str]:
    return [e["name"] for e in store.entries()]


def test_least_recently_used_unpinned_entries_go_per_device() -> None:
    store = ModelStore({"cpu": 100, "cuda": 50})
    put(store, "a", 40)
    put(store, "b", 40)
    put(store, "g", 50, "cuda:0")  # the "cuda" budget covers every cuda device
    assert store.get("a") == "weights a"  # a is now the most recent
    put(store, "c", 40)
    assert held(store) == ["g", "a", "c"]  # b went; the GPU entry is on another budget
    store.make_room("cuda:0", 10)
    assert held(store) == ["a", "c"] and store.budget("cuda:1") == 50
    store.set_default_budget("cuda:1", 7)  # a given budget wins over a default
    store.set_default_budget("mps", 7)
    assert store.budget("cuda:1") == 50 and store.budget("mps") == 7
    assert store.snapshot()["used"] == {"cpu": 80}


def test_a_job_pins_what_it_uses_and_the_store_shrinks_when_it_ends() -> None:
    store = ModelStore({"cpu": 100})
    put(store, "old", 60)
    with store.job() as report:
        put(store, "x", 70)  # old is not used by the job: it goes
        put(store, "y", 70)  # x is pinned: over budget while the job runs
        assert held(store) == ["x", "y"] and all(e["pinned"] for e in store.entries())
        assert store.free_memory() == []  # nothing unpinned to release
    assert [e["name"] for e in report.loaded] == ["x", "y"]
    assert [e["name"] for e in report.evicted] == ["old", "x"]
    assert held(store) == ["y"] and store.used("cpu") == 70
    assert [e["name"] for e in store.free_memory()] == ["y"] and held(store) == []


def test_a_ref_loads_again_after_eviction() -> None:
    store = ModelStore({"cpu": 10})
    loads: list[str] = []

    def load() -> None:
        loads.append("a")
        put(store, "a", 10)

    ref = ComponentRef(store, "a", load)
    assert resolve(ref) == "weights a" and resolve("plain") == "plain"
    assert ref.get() == "weights a" and loads == ["a"]
    put(store, "b", 10)  # a goes
    assert "a" not in store and ref.get() == "weights a" and loads == ["a", "a"]
    broken = ComponentRef(store, "never", lambda: None)
    with pytest.raises(KeyError, match="never"):
        broken.get()
    assert store.drop(lambda k: k == "a")[0]["name"] == "a" and "a" not in store


def test_sizes_and_memory_flags() -> None:
    assert parse_size("8") == 8 * 1024**3
    assert parse_size("512M") == parse_size("0.5G") == parse_size("512MiB") == 512 * 1024**2
    assert parse_size("100000B") == 100000
    with pytest.raises(ValueError, match="expected a size"):
        parse_size("lots")
    budgets = memory_budgets("12G", ["10", "cuda:1=2G"])
    assert budgets["cpu"] == 12 * 1024**3 and budgets["cuda:1"] == 2 * 1024**3
    assert budgets["cuda"] == budgets["mps"] == 10 * 1024**3
    assert memory_budgets(None, []) == {}
    with pytest.raises(ValueError, match="DEVICE=SIZE"):
        memory_budgets(None, ["=3G"])
    assert ModelStore().budget("cpu") > 0  # default: a share of the machine's memory


class OutOfMemoryError(RuntimeError):
    """Named like torch's (torch.cuda.OutOfMemoryError, torch.OutOfMemoryError)."""


def test_out_of_memory_of_every_device_is_recognised() -> None:
    cpu = RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 8 GB")
    assert is_out_of_memory(cpu) and is_out_of_memory(MemoryError())
    assert is_out_of_memory(OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory (MPS allocated: 9 GB)"))
    try:
        try:
            raise MemoryError()
        except MemoryError as inner:
            raise ValueError("model.safetensors: could not load") from inner
    except ValueError as wrapped:
        assert is_out_of_memory(wrapped)
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
    assert not is_out_of_memory(ValueError("out of memory"))  # not an allocation failure
