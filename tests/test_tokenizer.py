"""The offline CLIP tokenizer gives OpenAI CLIP's ids."""

from __future__ import annotations

import gzip
import hashlib
import html
from functools import lru_cache

import pytest

from nodes.sd.tokenizer import VOCAB_FILE, _bytes_to_unicode, load_clip_tokenizer


def test_vendored_vocab_is_the_clip_file() -> None:
    data = VOCAB_FILE.read_bytes()
    assert len(data) == 1_356_917
    assert hashlib.md5(data).hexdigest().startswith("933b7abb")
    assert (VOCAB_FILE.parent / "LICENSE-openai-clip.txt").read_text().startswith("MIT License")


def test_photo_of_a_cat() -> None:
    tok = load_clip_tokenizer()
    assert tok("a photo of a cat").input_ids == [49406, 320, 1125, 539, 320, 2368, 49407]


def test_shape_of_the_tokenizer() -> None:
    tok = load_clip_tokenizer()
    assert len(tok) == 49408
    assert tok.model_max_length == 77
    assert (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id) == (49406, 49407, 49407)
    padded = tok("a cat", padding="max_length", truncation=True).input_ids
    assert len(padded) == 77 and padded[:4] == [49406, 320, 2368, 49407]
    long = tok(" ".join(["cat"] * 200), padding="max_length", truncation=True).input_ids
    assert len(long) == 77 and long[-1] == 49407


def test_memoised() -> None:
    assert load_clip_tokenizer() is load_clip_tokenizer()


# --- an independent reference: OpenAI's SimpleTokenizer algorithm (MIT), without ftfy ---


@lru_cache(maxsize=1)
def _reference() -> tuple[dict[str, int], dict[tuple[str, str], int]]:
    with gzip.open(VOCAB_FILE, "rt", encoding="utf-8") as f:
        merges = [tuple(m.split()) for m in f.read().split("\n")[1 : 49152 - 256 - 2 + 1]]
    chars = list(_bytes_to_unicode().values())
    vocab = chars + [c + "</w>" for c in chars] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return {v: i for i, v in enumerate(vocab)}, {m: i for i, m in enumerate(merges)}


def _bpe(token: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    word = [*token[:-1], token[-1] + "</w>"]
    while len(word) > 1:
        pairs = {(word[i], word[i + 1]) for i in range(len(word) - 1)}
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        out, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                out.append(word[i] + word[i + 1])
                i += 2
            else:
                out.append(word[i])
                i += 1
        word = out
    return word


def _reference_ids(text: str) -> list[int]:
    regex = pytest.importorskip("regex")
    encoder, ranks = _reference()
    b2u = _bytes_to_unicode()
    pat = regex.compile(
        r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
        regex.IGNORECASE,
    )
    text = " ".join(html.unescape(html.unescape(text)).split()).lower()
    ids = [encoder["<|startoftext|>"]]
    for token in regex.findall(pat, text):
        token = "".join(b2u[b] for b in token.encode("utf-8"))
        ids.extend(encoder[t] for t in _bpe(token, ranks))
    return ids + [encoder["<|endoftext|>"]]


@pytest.mark.parametrize(
    "text",
    [
        "a photo of a cat",
        "A Red Circle on a BLUE square, highly detailed, 8k",
        "(masterpiece:1.3), [blurry], ((best quality))",
        "don't stop; it's the dog's toy",
        "caf\u00e9 na\u00efve \u00fcber stra\u00dfe",
        "a cat \U0001f431 and \u2764 emoji",
        "   spaces   and\ttabs\n\nnewlines  ",
        "",
    ],
)
def test_matches_openai_simple_tokenizer(text: str) -> None:
    assert load_clip_tokenizer()(text).input_ids == _reference_ids(text)
