"""Folder listings remembered while the tree is unchanged (graph/listing.py): a file
added or removed anywhere in the tree is seen by the next listing."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from graph import listing
from graph.listing import Listings


def walk(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch):
    """A fresh memo whose computations are counted; changes older than 50 ms trusted."""
    monkeypatch.setattr(listing, "RACY_NS", 50_000_000)
    memo, calls = Listings(), []

    def get(folder: Path) -> list[str]:
        def compute() -> list[str]:
            calls.append(folder)
            return walk(folder)

        return memo.get(("t", str(folder)), folder, compute)

    return get, calls


def settle() -> None:
    time.sleep(0.08)  # past the racy window, and a later timestamp tick for what follows


def test_unchanged_tree_is_listed_once(tmp_path: Path, counted) -> None:
    get, calls = counted
    (tmp_path / "sub").mkdir()
    (tmp_path / "a.safetensors").write_bytes(b"x")
    (tmp_path / "sub" / "b.safetensors").write_bytes(b"x")
    settle()
    assert get(tmp_path) == ["a.safetensors", "sub/b.safetensors"]
    assert get(tmp_path) == ["a.safetensors", "sub/b.safetensors"]
    assert len(calls) == 1
    get(tmp_path).append("not kept")  # callers get a copy
    assert get(tmp_path) == ["a.safetensors", "sub/b.safetensors"]


def test_added_removed_and_renamed_files_are_seen(tmp_path: Path, counted) -> None:
    get, calls = counted
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    (tmp_path / "a.safetensors").write_bytes(b"x")
    settle()
    assert get(tmp_path) == ["a.safetensors"]
    (tmp_path / "sub" / "deep" / "new.safetensors").write_bytes(b"x")  # two levels down
    assert get(tmp_path) == ["a.safetensors", "sub/deep/new.safetensors"]
    settle()
    (tmp_path / "a.safetensors").unlink()
    assert get(tmp_path) == ["sub/deep/new.safetensors"]
    settle()
    os.rename(tmp_path / "sub" / "deep", tmp_path / "sub" / "moved")
    assert get(tmp_path) == ["sub/moved/new.safetensors"]
    settle()
    (tmp_path / "sub" / "other").mkdir()
    settle()
    assert get(tmp_path) == ["sub/moved/new.safetensors"]
    (tmp_path / "sub" / "other" / "c.safetensors").write_bytes(b"x")  # in a new folder
    assert get(tmp_path) == ["sub/moved/new.safetensors", "sub/other/c.safetensors"]


def test_a_missing_folder_is_seen_when_it_appears(tmp_path: Path, counted) -> None:
    get, calls = counted
    folder = tmp_path / "checkpoints"
    assert get(folder) == [] and get(folder) == []
    assert len(calls) == 1  # absent, and remembered as absent
    folder.mkdir()
    (folder / "a.safetensors").write_bytes(b"x")
    assert get(folder) == ["a.safetensors"]


def test_a_recent_change_is_never_trusted(tmp_path: Path, counted, monkeypatch) -> None:
    """Timestamps are coarse: a tree changed within RACY_NS is listed again each time."""
    get, calls = counted
    monkeypatch.setattr(listing, "RACY_NS", 60_000_000_000)
    (tmp_path / "a.safetensors").write_bytes(b"x")
    get(tmp_path)
    get(tmp_path)
    assert len(calls) == 2
