"""Sample: samplers, schedules, guidance, progress, interruption, denoise."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from PIL import Image

from graph import CancelToken, Engine, InvalidWorkflow
from graph.events import Progress
from graph.workflow import parse_workflow
from nodes.encode_text import encode_windows
from nodes.sd.handles import ClipHandle, Conditioning, LatentBatch, ModelHandle
from nodes.sd.prompt_weights import tokenize_prompt
from nodes.sd.samplers import SAMPLERS, UnsupportedSchedule, scheduler_kwargs
from nodes.sd.sampling import SampleSettings, sample
from tests.sd_workflows import executed, run_ok, with_inputs, workflow_doc

# -- Sample -----------------------------------------------------------------------------


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
    run_ok(engine, doc, events, previews=True)
    progress = [e for e in events if isinstance(e, Progress) and e.node_id == "sample"]
    assert [(e.step, e.total) for e in progress] == [(i, 5) for i in range(1, 6)]
    assert progress[-1].fraction == 1.0
    # Previews are throttled (nodes/sd/preview.py): always on the first and last step.
    previews = [e.preview for e in progress if e.preview is not None]
    assert progress[0].preview is not None and progress[-1].preview is not None
    assert all(isinstance(p, Image.Image) and min(p.size) >= 16 for p in previews)


def test_no_previews_are_made_when_nobody_shows_them(engine: Engine) -> None:
    events: list = []
    doc = with_inputs(workflow_doc("txt2img"), {"sample": {"steps": 3}})
    run_ok(engine, doc, events)  # the CLI's and the benchmarks' way: previews off
    progress = [e for e in events if isinstance(e, Progress) and e.node_id == "sample"]
    assert [e.step for e in progress] == [1, 2, 3]
    assert all(e.preview is None for e in progress)


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
    with pytest.raises(InvalidWorkflow) as bad_pair:  # at validation, before loading
        engine.run(parse_workflow(doc))
    [p] = bad_pair.value.problems
    assert (p.node_id, p.field, p.code) == ("sample", "schedule", "invalid_combination")
    assert "no karras schedule" in p.message
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


def test_one_prompt_per_batch_item(model: ModelHandle, conds: Any) -> None:
    """A conditioning may hold one prompt per batch item; the same prompt twice equals
    that prompt repeated over the batch, and a count that fits neither is refused."""
    pos, neg = conds
    latent = LatentBatch(torch.zeros(2, 4, 8, 8))
    settings = SampleSettings(5, 3, 4.0, "euler", "normal")
    twice = Conditioning(pos.embeddings.repeat(2, 1, 1))
    assert torch.equal(
        sample(model, twice, neg, latent, settings), sample(model, pos, neg, latent, settings)
    )
    three = Conditioning(pos.embeddings.repeat(3, 1, 1))
    with pytest.raises(ValueError, match="does not fit a batch of 2"):
        sample(model, three, neg, latent, settings)
