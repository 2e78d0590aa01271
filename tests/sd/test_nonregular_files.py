"""A FIFO (or device) where a file is read is refused at once, never read from."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from graph import Engine
from graph.workspace import NotARegularFile
from nodes.load_image import LoadImage, input_images
from nodes.sd.checkpoint_files import CheckpointError, sniff_format
from nodes.sd.checkpoints import checkpoints_folder, list_checkpoints, resolve_checkpoint
from service.routes_files import store_upload
from tests.blocking import outcome_within

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")


def _raises_quickly(fn: Any, kind: type[BaseException]) -> BaseException:
    err = outcome_within(fn)
    assert isinstance(err, kind), err
    return err


def test_load_image_refuses_a_fifo(engine: Engine) -> None:
    ws = engine.workspace
    os.mkfifo(ws.input_dir / "stuck.png")
    assert "stuck.png" not in input_images(ws)  # never offered as a choice
    _raises_quickly(lambda: LoadImage.fingerprint(ws, {"file": "stuck.png"}), NotARegularFile)

    class Ctx:
        workspace = ws

    _raises_quickly(lambda: LoadImage().run(Ctx(), "stuck.png"), NotARegularFile)


def test_checkpoints_refuse_fifos(engine: Engine) -> None:
    ws = engine.workspace
    folder = checkpoints_folder(ws)
    folder.mkdir(parents=True)
    os.mkfifo(folder / "stuck.safetensors")
    assert "stuck.safetensors" not in list_checkpoints(ws)
    err = _raises_quickly(lambda: resolve_checkpoint(ws, "stuck.safetensors"), CheckpointError)
    assert "regular file" in str(err)
    _raises_quickly(lambda: sniff_format(folder / "stuck.safetensors"), CheckpointError)


def test_an_upload_replaces_a_fifo_planted_under_its_name(tmp_path: Path) -> None:
    data = b"\x89PNG fake"
    name = store_upload(tmp_path, data, ".png")
    (tmp_path / name).unlink()
    os.mkfifo(tmp_path / name)
    assert store_upload(tmp_path, data, ".png") == name
    assert (tmp_path / name).read_bytes() == data
