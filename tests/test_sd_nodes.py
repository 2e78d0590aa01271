"""The SD nodes one by one: tokenizing and weights, encoding, sampling options, progress and
interruption, image files in and out."""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from graph import CancelToken, Engine, InvalidWorkflow, Registry
from graph.events import Progress
from graph.pngmeta import read_png_text
from graph.workflow import load_workflow_file, parse_workflow
from graph.workspace import PathOutsideFolder
from nodes.encode_text import encode_windows
from nodes.load_image import LoadImage
from nodes.sd import images as images_mod
from nodes.sd.handles import ClipHandle, Conditioning, LatentBatch, ModelHandle, VaeHandle
from nodes.sd.images import save_png
from nodes.sd.prompt_weights import PromptTooLong, apply_weights, parse_weights, tokenize_prompt
from nodes.sd.samplers import SAMPLERS, UnsupportedSchedule, scheduler_kwargs
from nodes.sd.sampling import SampleSettings, sample
from nodes.vae_decode import decode
from nodes.vae_encode import encode
from tests.sd_fixtures import tiny_components
from tests.sd_workflows import executed, make_engine, run_ok, with_inputs, workflow_doc


@pytest.fixture(scope="module")
def components() -> dict[str, Any]:
    return tiny_components(0)


@pytest.fixture(scope="module")
def tok(components: dict[str, Any]) -> Any:
    return components["tokenizer"]


@pytest.fixture(scope="module")
def clip(components: dict[str, Any]) -> ClipHandle:
    cpu = torch.device("cpu")
    return ClipHandle(components["tokenizer"], components["text_encoder"], cpu, torch.float32, "t")


@pytest.fixture(scope="module")
def model(components: dict[str, Any]) -> ModelHandle:
    config = dict(components["scheduler"].config)
    cpu = torch.device("cpu")
    return ModelHandle(components["unet"], config, "epsilon", cpu, torch.float32, "t")


@pytest.fixture(scope="module")
def vae(components: dict[str, Any]) -> VaeHandle:
    return VaeHandle(components["vae"], torch.device("cpu"), torch.float32, "t")


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry.from_package("nodes")


@pytest.fixture
def engine(registry: Registry, tmp_path: Path) -> Engine:
    return make_engine(tmp_path, registry)


# -- Tokenize ---------------------------------------------------------------------------


def test_plain_prompt_ids_equal_openai_clip_and_the_pipeline(tok: Any) -> None:
    windows = tokenize_prompt(tok, "a photo of a cat")
    assert windows.ids.shape == (1, 77)
    assert windows.ids[0, :7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    expected = tok("a photo of a cat", padding="max_length", max_length=77).input_ids
    assert windows.ids[0].tolist() == expected
    assert bool(torch.all(windows.weights == 1.0))


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("a (red:1.3) cat", [("a ", 1.0), ("red", 1.3), (" cat", 1.0)]),
        ("a (red) cat", [("a ", 1.0), ("red", 1.1), (" cat", 1.0)]),
        ("a [red] cat", [("a ", 1.0), ("red", 1 / 1.1), (" cat", 1.0)]),
        ("((red))", [("red", 1.1 * 1.1)]),
        ("(red (big:2) dog:0.5)", [("red ", 0.5), ("big", 1.0), (" dog", 0.5)]),
        (r"\(not weighted\)", [("(not weighted)", 1.0)]),
        ("(open ended", [("open ended", 1.1)]),
        ("stray) paren", [("stray) paren", 1.0)]),
        ("ratio 16:9 (x: 1.5 )", [("ratio 16:9 ", 1.0), ("x", 1.5)]),
    ],
)
def test_weight_syntax(prompt: str, expected: list[tuple[str, float]]) -> None:
    got = [(s.text, s.weight) for s in parse_weights(prompt)]
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])


def test_weights_follow_their_tokens(tok: Any) -> None:
    w = tokenize_prompt(tok, "a photo of a (cat:1.5)")
    plain = tokenize_prompt(tok, "a photo of a cat")
    assert torch.equal(w.ids, plain.ids)  # brackets change weights, never tokens
    assert w.weights[0, :7].tolist() == pytest.approx([1, 1, 1, 1, 1, 1.5, 1])


def test_long_prompts_split_into_77_token_windows(tok: Any) -> None:
    prompt = " ".join(["cat"] * 100) + " BREAK dog"
    w = tokenize_prompt(tok, prompt)
    assert w.ids.shape == (3, 77)
    assert w.ids[:, 0].tolist() == [49406] * 3
    assert w.ids[0, 76].item() == 49407 and w.ids[0, 1:76].tolist() == [2368] * 75
    assert w.ids[1, 1:26].tolist() == [2368] * 25 and w.ids[1, 26].item() == 49407
    assert w.ids[2, 1:3].tolist() == [1929, 49407]  # BREAK started a new window


def test_prompt_length_cap_is_a_clear_error(tok: Any) -> None:
    with pytest.raises(PromptTooLong, match=r"limit is 8 windows \(600 tokens\)"):
        tokenize_prompt(tok, "cat " * 700)


# -- EncodeText -------------------------------------------------------------------------


def test_windows_are_encoded_separately_and_concatenated(clip: ClipHandle, tok: Any) -> None:
    w = tokenize_prompt(tok, " ".join(["cat"] * 80))
    emb = encode_windows(clip, w)
    assert emb.shape == (1, 154, 32)
    with torch.no_grad():
        first = clip.text_encoder(w.ids[:1])[0]
        second = clip.text_encoder(w.ids[1:2])[0]
    assert torch.equal(emb, torch.cat([first, second], dim=1))


def test_weights_scale_the_weighted_token(clip: ClipHandle, tok: Any) -> None:
    plain = encode_windows(clip, tokenize_prompt(tok, "a photo of a cat"))
    strong = encode_windows(clip, tokenize_prompt(tok, "a photo of a (cat:1.5)"))
    assert torch.isfinite(strong).all()
    weighted = strong[0, 5].norm() / plain[0, 5].norm()
    other = strong[0, 2].norm() / plain[0, 2].norm()
    assert float(weighted / other) == pytest.approx(1.5, rel=1e-5)
    cos = torch.nn.functional.cosine_similarity(strong[0, 5], plain[0, 5], dim=0)
    assert float(cos) == pytest.approx(1.0, abs=1e-6)


def test_emphasis_restores_the_window_mean() -> None:
    """A1111's rule on embeddings with a clear mean: scaled tokens, same mean."""
    h = torch.randn(1, 77, 16, generator=torch.Generator().manual_seed(0)) + 0.5
    w = torch.ones(1, 77)
    w[0, 3] = 1.8
    out = apply_weights(h, w)
    assert out.mean().item() == pytest.approx(h.mean().item(), rel=1e-5)
    factor = out[0, 0] / h[0, 0]  # the common rescale
    assert torch.allclose(out[0, 3], h[0, 3] * 1.8 * factor, rtol=1e-5)
    assert 0.9 < float(factor[0]) < 1.0
    assert torch.equal(apply_weights(h, torch.ones(1, 77)), h)  # no weights: exact no-op
    # a zero-mean encoder output (a bias-free final LayerNorm): scaling only, no NaN
    z = h - h.mean(dim=-1, keepdim=True)
    out = apply_weights(z, w)
    assert torch.isfinite(out).all() and torch.allclose(out[0, 3], z[0, 3] * 1.8)


# -- Sample -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def conds(clip: ClipHandle, tok: Any) -> tuple[Conditioning, Conditioning]:
    pos = Conditioning(encode_windows(clip, tokenize_prompt(tok, "a red circle")))
    neg = Conditioning(encode_windows(clip, tokenize_prompt(tok, "blurry")))
    return pos, neg


@pytest.mark.parametrize("sampler", sorted(SAMPLERS))
def test_every_sampler_runs_and_is_deterministic(
    sampler: str, model: ModelHandle, conds: tuple[Conditioning, Conditioning]
) -> None:
    pos, neg = conds
    latent = LatentBatch(torch.zeros(1, 4, 8, 8))
    settings = SampleSettings(3, 3, 5.0, sampler, "normal")
    steps: list[int] = []
    a = sample(model, pos, neg, latent, settings, lambda s, t, x: steps.append(s))
    b = sample(model, pos, neg, latent, settings)
    assert torch.isfinite(a).all() and torch.equal(a, b)
    assert steps == list(range(1, len(steps) + 1)) and len(steps) >= 3
    c = sample(model, pos, neg, latent, SampleSettings(4, 3, 5.0, sampler, "normal"))
    assert not torch.equal(a, c)


def test_schedules_map_to_sigma_options_and_reject_what_diffusers_lacks() -> None:
    assert scheduler_kwargs("euler", "karras")[1] == {"use_karras_sigmas": True}
    assert scheduler_kwargs("dpmpp_2m", "exponential")[1]["use_exponential_sigmas"] is True
    with pytest.raises(UnsupportedSchedule, match="ddim .* no karras schedule"):
        scheduler_kwargs("ddim", "karras")


def test_karras_changes_the_result(model: ModelHandle, conds: Any) -> None:
    pos, neg = conds
    latent = LatentBatch(torch.zeros(1, 4, 8, 8))
    a = sample(model, pos, neg, latent, SampleSettings(1, 4, 5.0, "euler", "normal"))
    b = sample(model, pos, neg, latent, SampleSettings(1, 4, 5.0, "euler", "karras"))
    assert not torch.allclose(a, b)


def test_prompts_of_different_lengths_guide_together(
    model: ModelHandle, clip: ClipHandle, tok: Any
) -> None:
    long = Conditioning(encode_windows(clip, tokenize_prompt(tok, "cat " * 90)))
    short = Conditioning(encode_windows(clip, tokenize_prompt(tok, "")))
    out = sample(
        model,
        long,
        short,
        LatentBatch(torch.zeros(1, 4, 8, 8)),
        SampleSettings(0, 2, 7.0, "euler", "normal"),
    )
    assert torch.isfinite(out).all()


def test_cfg_one_skips_the_negative(model: ModelHandle, conds: Any) -> None:
    """cfg 1 is the conditional prediction alone (as diffusers: guidance only above 1)."""
    pos, neg = conds
    other = Conditioning(neg.embeddings * 3)
    latent = LatentBatch(torch.zeros(1, 4, 8, 8))
    a = sample(model, pos, neg, latent, SampleSettings(0, 3, 1.0, "ddim", "normal"))
    b = sample(model, pos, other, latent, SampleSettings(0, 3, 1.0, "ddim", "normal"))
    assert torch.equal(a, b)


def test_progress_every_step_with_previews(engine: Engine) -> None:
    events: list = []
    doc = with_inputs(workflow_doc("txt2img"), {"sample": {"steps": 5}})
    run_ok(engine, doc, events)
    progress = [e for e in events if isinstance(e, Progress) and e.node_id == "sample"]
    assert [(e.step, e.total) for e in progress] == [(i, 5) for i in range(1, 6)]
    assert progress[-1].fraction == 1.0
    assert all(isinstance(e.preview, Image.Image) and e.preview.size == (64, 64) for e in progress)


def test_interrupt_stops_sampling_within_a_step(engine: Engine) -> None:
    cancel = CancelToken()
    seen: list[int] = []

    def on_event(e: Any) -> None:
        if isinstance(e, Progress) and e.node_id == "sample":
            seen.append(e.step)
            if e.step == 2:
                cancel.cancel()

    doc = with_inputs(workflow_doc("txt2img"), {"sample": {"steps": 10}})
    result = engine.run(parse_workflow(doc), on_event=on_event, cancel=cancel)
    assert result.status == "interrupted"
    assert seen == [1, 2]
    assert "sample" not in executed(result) and not result.files
    # nothing partial was cached: the next run samples again and succeeds
    again = run_ok(engine, doc)
    assert {"sample", "decode", "save"} <= executed(again)


def test_denoise_below_one_runs_fewer_steps(engine: Engine) -> None:
    events: list = []
    doc = with_inputs(
        workflow_doc("img2img"),
        {"sample": {"steps": 10, "denoise": 0.3}, "source_sample": {"steps": 2}},
    )
    run_ok(engine, doc, events)
    totals = {e.total for e in events if isinstance(e, Progress) and e.node_id == "sample"}
    assert totals == {3}


def test_bad_sampling_settings_are_clear_errors(engine: Engine) -> None:
    doc = with_inputs(
        workflow_doc("txt2img"), {"sample": {"sampler": "ddim", "schedule": "karras"}}
    )
    result = engine.run(parse_workflow(doc))
    assert result.status == "error" and result.error["node_id"] == "sample"
    assert "no karras schedule" in result.error["message"]
    doc = with_inputs(workflow_doc("txt2img"), {"sample": {"steps": 2, "denoise": 0.2}})
    result = engine.run(parse_workflow(doc))
    assert "runs no step" in result.error["message"]
    with pytest.raises(InvalidWorkflow) as err:
        engine.run(
            parse_workflow(
                with_inputs(workflow_doc("txt2img"), {"sample": {"sampler": "nope", "denoise": 0}})
            )
        )
    assert {p.field for p in err.value.problems} == {"sampler", "denoise"}


# -- VAE --------------------------------------------------------------------------------


def test_vae_round_trip_shapes_and_crop(vae: VaeHandle) -> None:
    image = torch.rand(2, 70, 43, 3)
    latents = encode(vae, image)
    assert latents.shape == (2, 4, 8, 5)
    out = decode(vae, LatentBatch(latents))
    assert out.shape == (2, 64, 40, 3) and out.min() >= 0 and out.max() <= 1


# -- image files ------------------------------------------------------------------------


def test_save_image_numbers_files_and_embeds_workflow_and_parameters(engine: Engine) -> None:
    out = engine.workspace.output_dir
    (out / "txt2img_00007_.png").write_bytes(b"taken")
    doc = with_inputs(
        workflow_doc("txt2img"),
        {"sample": {"steps": 3, "seed": 9}, "negative_tokens": {"text": "blurry, low quality"}},
    )
    result = run_ok(engine, doc)
    assert result.files == [{"kind": "output", "name": "txt2img_00008_.png"}]
    assert (out / "txt2img_00007_.png").read_bytes() == b"taken"
    text = read_png_text((out / "txt2img_00008_.png").read_bytes())
    assert parse_workflow(json.loads(text["workflow"])).nodes["sample"].inputs["seed"] == 9
    params = text["parameters"].splitlines()
    inputs = {nid: node["inputs"] for nid, node in doc["nodes"].items()}
    assert params[0] == inputs["positive_tokens"]["text"]
    assert params[1] == "Negative prompt: " + inputs["negative_tokens"]["text"]
    sample = inputs["sample"]
    for part in (
        "Steps: 3",
        f"Sampler: {sample['sampler']}",
        f"Schedule type: {sample['schedule']}",
        f"CFG scale: {sample['cfg']}",
        "Seed: 9",
        "Size: 64x64",
        "Model: builtin/tiny-random",
    ):
        assert part in params[2]


def test_the_png_reruns_to_the_same_image(
    engine: Engine, registry: Registry, tmp_path: Path
) -> None:
    """The embedded workflow reproduces the image bit for bit in a fresh engine."""
    doc = with_inputs(
        workflow_doc("txt2img"), {"sample": {"steps": 3, "seed": 77, "sampler": "euler_ancestral"}}
    )
    [f] = run_ok(engine, doc).files
    png = engine.workspace.output_dir / f["name"]
    fresh = make_engine(tmp_path / "fresh", registry)
    [g] = run_ok(fresh, load_workflow_file(png).model_dump()).files
    again = fresh.workspace.output_dir / g["name"]
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(again)))


def test_save_image_subfolders_and_confinement(engine: Engine) -> None:
    doc = with_inputs(
        workflow_doc("txt2img"), {"sample": {"steps": 2}, "save": {"filename_prefix": "runs/a/cat"}}
    )
    result = run_ok(engine, doc)
    assert result.files[0]["name"] == "runs/a/cat_00001_.png"
    for bad in ("../escape", "/abs/x", "a/../../x"):
        doc = with_inputs(doc, {"save": {"filename_prefix": bad}})
        res = engine.run(parse_workflow(doc))
        assert res.status == "error" and res.error["error_type"] == "PathOutsideFolder"
    assert not (engine.workspace.output_dir.parent / "escape_00001_.png").exists()


def test_concurrent_saves_never_share_a_name(engine: Engine) -> None:
    img = Image.new("RGB", (8, 8))
    paths: list[Path] = []
    lock = threading.Lock()

    def save() -> None:
        for _ in range(5):
            p = save_png(engine.workspace, "output", "race", img, {"k": "v"})
            with lock:
                paths.append(p)

    threads = [threading.Thread(target=save) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({p.name for p in paths}) == 20
    with pytest.raises(PathOutsideFolder):
        save_png(engine.workspace, "output", "../x", img, {})


def test_preview_image_writes_temp_files(engine: Engine) -> None:
    doc = with_inputs(workflow_doc("txt2img"), {"sample": {"steps": 2}})
    doc["nodes"]["save"] = {
        "type": "PreviewImage",
        "inputs": {"image": {"node": "decode", "output": "image"}},
    }
    result = run_ok(engine, doc)
    [f] = result.files
    assert f["kind"] == "temp"
    assert (engine.workspace.temp_dir / f["name"]).is_file()
    assert list(engine.workspace.output_dir.iterdir()) == []


def test_load_image_lists_loads_and_fingerprints(engine: Engine, tmp_path: Path) -> None:
    ws = engine.workspace
    (ws.input_dir / "sub").mkdir()
    pixels = np.random.default_rng(1).integers(0, 256, (12, 20, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(ws.input_dir / "sub" / "pic.png")
    Image.new("RGBA", (4, 4), (0, 0, 0, 0)).save(ws.input_dir / "clear.png")
    (ws.input_dir / "notes.txt").write_text("no image")
    assert engine.choices("input_images") == ["clear.png", "sub/pic.png"]
    node = LoadImage()
    ctx = type("Ctx", (), {"workspace": ws})()
    image = node.run(ctx, file="sub/pic.png")["image"]
    assert image.shape == (1, 12, 20, 3)
    assert np.array_equal((image[0].numpy() * 255).round().astype(np.uint8), pixels)
    white = node.run(ctx, file="clear.png")["image"]
    assert bool(torch.all(white == 1.0))  # transparency composited on white
    digest = hashlib.sha256((ws.input_dir / "sub" / "pic.png").read_bytes()).hexdigest()
    assert LoadImage.fingerprint(ws, {"file": "sub/pic.png"}) == digest


def test_load_image_refuses_oversized_and_unlisted_files(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    Image.new("RGB", (40, 30)).save(engine.workspace.input_dir / "big.png")
    monkeypatch.setattr(images_mod, "MAX_INPUT_PIXELS", 1000)
    doc = {
        "version": 1,
        "nodes": {
            "load": {"type": "LoadImage", "inputs": {"file": "big.png"}},
            "show": {
                "type": "PreviewImage",
                "inputs": {"image": {"node": "load", "output": "image"}},
            },
        },
    }
    result = engine.run(parse_workflow(doc))
    assert result.status == "error" and result.error["error_type"] == "ImageTooLarge"
    assert "40x30 = 1200 pixels; the limit is 1000" in result.error["message"]
    doc["nodes"]["load"]["inputs"]["file"] = "../secret.png"
    with pytest.raises(InvalidWorkflow, match="not one of the available input_images"):
        engine.run(parse_workflow(doc))


def test_inversion_with_guidance_needs_the_negative(model: ModelHandle, conds: Any) -> None:
    from nodes.sd.sampling import INVERTED, invert

    pos, neg = conds
    x = LatentBatch(torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match="needs a negative conditioning"):
        invert(model, pos, None, x, 3, 3.0)
    guided = invert(model, pos, neg, x, 3, 3.0)
    plain = invert(model, pos, None, x, 3, 1.0)
    assert guided.extra[INVERTED] == {"steps": 3, "timestep_spacing": "leading"}
    assert not torch.allclose(guided.samples, plain.samples)
    with pytest.raises(ValueError, match="use denoise 1"):
        sample(model, pos, neg, guided, SampleSettings(0, 3, 3.0, "ddim", "normal", 0.5))
