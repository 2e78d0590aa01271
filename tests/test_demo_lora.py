"""The demo LoRA ("brick" on builtin/shapes-demo): its data, its judge, its training code,
the shipped file and workflows/lora.json."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open

from bench.demo_quality import blurred
from demo import judge, scenes
from demo.export import sha256_of
from demo.lora import LoraSet
from demo.lora_prior import distill_teacher, prior_rows
from demo.models import build_text_encoder, build_unet
from demo.train_lora import LORAS_DIR, NAME, train_command
from graph import Registry
from graph.workspace import Workspace
from nodes.sd.addon_files import list_loras, resolve_addon
from nodes.sd.lora_keys import module_aliases, parse_lora
from nodes.sd.lora_patch import LoraPatch, patched
from tests.sd_workflows import WORKFLOWS, make_engine, output_pixels, run_ok, with_inputs

WEIGHTS = LORAS_DIR / f"{NAME}.safetensors"
RECORD = LORAS_DIR / f"{NAME}.json"
LORA = f"builtin/{NAME}"
shipped = pytest.mark.skipif(not WEIGHTS.exists(), reason="demo LoRA not shipped")

# -- data and judge ----------------------------------------------------------------------


def test_lora_scenes_mix_bricks_with_ordinary_scenes_and_keep_the_split() -> None:
    train = [scenes.lora_scene_for(i, "train") for i in range(400)]
    held = [scenes.lora_scene_for(i, "eval") for i in range(100)]
    share = np.mean([s.shape == scenes.LORA_SHAPE for s in train])
    assert 0.4 < share < 0.6
    assert not any(scenes.is_held_out(s.combo) for s in train)
    assert all(scenes.is_held_out(s.combo) for s in held)
    assert scenes.lora_scene_for(7, "train") == train[7]
    brick = scenes.Scene("brick", "red", "large", "centre", "blue")
    assert brick.caption == "a large red brick on a blue background, centre"


def test_judge_reads_bricks_and_sees_none_in_ordinary_scenes() -> None:
    lora_scenes = [scenes.lora_scene_for(i, "eval", seed=5) for i in range(160)]
    images = np.stack([scenes.render(s) for s in lora_scenes])
    assert sum(s.shape == "brick" for s in lora_scenes) > 50
    for imgs in (images, blurred(images, 1.0)):
        assert judge.accuracy(imgs, lora_scenes)["all"] >= 0.99
    ordinary, _ = scenes.batch(range(200), "eval", seed=3)
    for imgs in (ordinary, blurred(ordinary, 1.0)):
        assert not any(judge.judge(im).shape == "brick" for im in imgs)


# -- training code -----------------------------------------------------------------------


def _random_lora(seed: int):
    """The demo architecture (random weights) with rank-4 adapters set to random values,
    and the generator that drew them."""
    unet, te = build_unet(0).eval(), build_text_encoder(0).eval()
    lora = LoraSet({"unet": unet, "text_encoder": te}, rank=4, alpha=2.0)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in lora.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    return unet, te, lora, gen


def test_trained_adapters_equal_the_loaders_merge_of_their_kohya_export() -> None:
    """What training computes (hooks: W x + s * alpha/r * up(down(x))) is what LoadLoRA's
    merge of the exported file computes, at strength 0.7, for the U-Net and text encoder."""
    unet, te, lora, gen = _random_lora(seed=0)
    ids = torch.randint(0, 1000, (1, 77), generator=gen)
    x, t = torch.randn(1, 4, 8, 8, generator=gen), torch.tensor([500])
    lora.set_strength(0.7)
    with torch.no_grad():
        text_hooked = te(ids).last_hidden_state
        unet_hooked = unet(x, t, encoder_hidden_states=text_hooked).sample
    exported = lora.kohya_state_dict(torch.float32)
    lora.remove()
    aliases = {
        "unet": module_aliases("unet", unet),
        "text_encoder": module_aliases("text_encoder", te),
    }
    parsed = parse_lora(exported, {}, aliases)
    assert parsed.unmatched == [] and parsed.count == len(lora.adapters)
    with torch.no_grad(), patched(te, (LoraPatch(parsed, 0.7, "text_encoder"),)):
        text_merged = te(ids).last_hidden_state
    with torch.no_grad(), patched(unet, (LoraPatch(parsed, 0.7, "unet"),)):
        unet_merged = unet(x, t, encoder_hidden_states=text_merged).sample
    assert torch.allclose(text_hooked, text_merged, atol=1e-5)
    assert torch.allclose(unet_hooked, unet_merged, atol=1e-4)
    assert not torch.allclose(unet_merged, unet(x, t, encoder_hidden_states=te(ids)[0]).sample)


def test_distill_teacher_gives_non_brick_rows_the_base_models_prediction() -> None:
    """Prior preservation: rows whose caption does not name the brick (ordinary scenes,
    dropped captions) get the frozen base model's output as target; brick rows keep the
    ground truth; the adapters are back at strength 1 afterwards."""
    unet, te, lora, gen = _random_lora(seed=1)
    shows_word = torch.tensor([True, True, False, False])
    dropped = torch.tensor([False, True, False, True])
    rows = prior_rows(shows_word, dropped)
    assert rows.tolist() == [False, True, True, True]
    ids = torch.randint(0, 1000, (4, 77), generator=gen)
    noisy, t = torch.randn(4, 4, 8, 8, generator=gen), torch.tensor([100, 400, 700, 900])
    truth = torch.randn(4, 4, 8, 8, generator=gen)
    target, scale = distill_teacher(unet, te, lora, ids, rows, weight=2.0)(noisy, t, truth)
    assert scale.tolist() == [1.0, 2.0, 2.0, 2.0]
    assert torch.equal(target[0], truth[0])
    with torch.no_grad():
        lora.remove()  # the plain base model
        base = unet(noisy, t, encoder_hidden_states=te(ids).last_hidden_state).sample
    assert torch.allclose(target[1:], base[1:], atol=1e-5)
    assert all(a.strength == 1.0 for a in lora.adapters.values())


def test_train_command_names_every_option_of_the_run() -> None:
    """The record's command rebuilds the file whatever the defaults are now (a record of
    a run from before --prior existed says it trained on ground truth alone)."""
    old = train_command({"steps": 1500, "lr": 2e-3}, 1000)
    assert old == (
        "python -m demo.train_lora latents|train --steps 1500 --lr 0.002 --prior data "
        "--prior-weight 1 --unet-layers blocks --stop-at 1000|export"
    )
    run = {"steps": 1000, "lr": 2e-3, "prior": "distill", "prior_weight": 4.0}
    assert "--prior distill --prior-weight 4 --unet-layers blocks --stop-at 750" in train_command(
        run | {"unet_layers": "blocks"}, 750
    )


# -- the shipped file ----------------------------------------------------------------------


@shipped
def test_shipped_lora_is_a_small_kohya_file_matching_its_record() -> None:
    record = json.loads(RECORD.read_text())
    assert record["sha256"] == sha256_of(WEIGHTS)
    assert WEIGHTS.stat().st_size <= 2 * 1024 * 1024
    with safe_open(str(WEIGHTS), "pt") as f:
        keys = set(f.keys())
    assert all(k.startswith(("lora_unet_", "lora_te_")) for k in keys)
    stems = {k.rsplit(".lora_", 1)[0] for k in keys if ".lora_" in k}
    assert {f"{s}.alpha" for s in stems} <= keys and len(stems) == record["layers"]
    assert any(k.startswith("lora_te_") for k in keys)


@shipped
def test_shipped_lora_is_listed_on_a_fresh_machine_and_not_as_a_checkpoint(tmp_path) -> None:
    from nodes.sd.checkpoints import list_checkpoints

    ws = Workspace.at(tmp_path, tmp_path / "models")
    assert list_loras(ws)[0] == LORA
    assert resolve_addon(ws, "loras", LORA).path == WEIGHTS
    assert not any(NAME in c for c in list_checkpoints(ws))
    with pytest.raises(ValueError, match="no such built-in LoRA"):
        resolve_addon(ws, "loras", "builtin/nothing")


def _without_lora(doc: dict) -> dict:
    """The same workflow with the LoadLoRA node removed (its users read the checkpoint)."""
    out = copy.deepcopy(doc)
    del out["nodes"]["lora"]
    text = json.dumps(out).replace('"node": "lora"', '"node": "checkpoint"')
    return json.loads(text)


@shipped
def test_lora_workflow_draws_a_brick_and_strength_zero_is_the_base_image(tmp_path: Path) -> None:
    doc = json.loads((WORKFLOWS / "lora.json").read_text())
    doc["nodes"]["checkpoint"]["inputs"]["dtype"] = "fp32"
    engine = make_engine(tmp_path, Registry.from_package("nodes"))
    events: list = []
    lora = output_pixels(engine, run_ok(engine, doc, events))[0]
    done = next(
        e for e in events if getattr(e, "node_id", None) == "lora" and e.kind == "node_finished"
    )
    assert done.warnings == []  # every key of the file matched a layer
    off = {"lora": {"strength_model": 0.0, "strength_clip": 0.0}}
    zero = output_pixels(engine, run_ok(engine, with_inputs(doc, off)))[0]
    base = output_pixels(engine, run_ok(engine, _without_lora(doc)))[0]
    assert zero.tobytes() == base.tobytes()
    assert lora.tobytes() != base.tobytes()
    assert judge.judge(lora).shape == "brick" and judge.judge(base).shape != "brick"


@shipped
def test_lora_workflow_resolves_on_a_fresh_machine_without_a_hash(tmp_path: Path) -> None:
    """Shipped files travel with the code: nothing to record or look up by content."""
    from graph.workflow import parse_workflow
    from model_index import ModelIndex, model_inputs, record_models, resolve_models

    index = ModelIndex(tmp_path / "models", tmp_path / "data")
    inputs = model_inputs(Registry.from_package("nodes"))
    assert inputs["LoadLoRA"] == {"name": "loras"}
    wf = parse_workflow(json.loads((WORKFLOWS / "lora.json").read_text()))
    recorded = record_models(wf, index, inputs)
    assert not recorded.models
    resolved, problems, _ = resolve_models(recorded, index, inputs)
    assert problems == [] and resolved.nodes["lora"].inputs["name"] == LORA
