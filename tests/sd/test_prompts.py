"""Tokenize and EncodeText: CLIP ids, weights, windows."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from nodes.encode_text import encode_windows
from nodes.sd.handles import ClipHandle
from nodes.sd.prompt_weights import PromptTooLong, apply_weights, parse_weights, tokenize_prompt

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
