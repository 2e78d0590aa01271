"""The real CLIP tokenizer, built offline from the vocabulary file that ships with the project.

`data/bpe_simple_vocab_16e6.txt.gz` is OpenAI CLIP's BPE merge list (MIT, see
`data/LICENSE-openai-clip.txt`). It is turned into a transformers `CLIPTokenizer`
the way OpenAI's `simple_tokenizer` builds its vocabulary, so ids equal OpenAI CLIP's
and every SD 1.x / 2.x checkpoint (same vocabulary) can use it.
"""

from __future__ import annotations

import gzip
from functools import lru_cache
from pathlib import Path

from transformers import CLIPTokenizer

VOCAB_FILE = Path(__file__).parent / "data" / "bpe_simple_vocab_16e6.txt.gz"
MODEL_MAX_LENGTH = 77
VOCAB_SIZE = 49408
BOS_ID = 49406
EOS_ID = 49407
# OpenAI's simple_tokenizer keeps this many merges (49152 - 256 - 2).
_N_MERGES = 49152 - 256 - 2


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable unicode table (also used by CLIP)."""
    bs = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def clip_vocab_and_merges(path: Path = VOCAB_FILE) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Vocabulary and merges exactly as OpenAI's SimpleTokenizer derives them."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : _N_MERGES + 1]]
    byte_chars = list(_bytes_to_unicode().values())
    tokens = byte_chars + [c + "</w>" for c in byte_chars]
    tokens += ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    if len(vocab) != VOCAB_SIZE or any(len(m) != 2 for m in merges):
        raise ValueError(f"{path} is not the CLIP BPE vocabulary ({len(vocab)} tokens)")
    return vocab, merges  # type: ignore[return-value]


@lru_cache(maxsize=2)
def load_clip_tokenizer(pad_token: str | None = None) -> CLIPTokenizer:
    """The CLIP tokenizer (77-token windows). Memoised: a pure function of a shipped file,
    and building it takes about a second. Treat the returned object as read-only.

    ``pad_token``: None pads with ``<|endoftext|>`` (OpenAI CLIP, SD 1.x/2.x, SDXL's first
    encoder); ``"!"`` (id 0) is what SDXL's OpenCLIP bigG tokenizer pads with."""
    vocab, merges = clip_vocab_and_merges()
    extra = {} if pad_token is None else {"pad_token": pad_token}
    tok = CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=MODEL_MAX_LENGTH, **extra)
    if tok.bos_token_id != BOS_ID or tok.eos_token_id != EOS_ID:
        raise ValueError("CLIP tokenizer special tokens are not where CLIP puts them")
    return tok
