"""Synthetic captioned scenes for the demo model: one flat shape on a flat background.

Everything is a pure function of (seed, index), so datasets are reproducible without
storing images, and the held-out split is decided by the caption's attribute combination
(never seen in training) as well as by the seed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
SUPERSAMPLE = 4

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (240, 220, 50),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "purple": (140, 50, 170),
    "orange": (250, 140, 20),
}
COLOURS = tuple(PALETTE)
SHAPES = ("circle", "square", "triangle", "diamond")
# The demo LoRA's new shape word (never in the base model's captions): a wide rectangle.
# One CLIP token ("rectangle" is two, which would shift every later word's position); the
# frozen VAE gives it back recognisably, unlike a star, an outline or a new colour
# (docs/demo-model.md, "The demo LoRA").
LORA_SHAPE = "brick"
# A brick is 1.5 sides wide and half a side tall (aspect 3): the decoder draws thin things
# thicker and rounder, so a 2:1 brick came back from the VAE at aspect 1.1-1.4, too close to
# the base shapes' 1.0-1.2; a 3:1 brick comes back at 1.3-2.4
BRICK_WIDTH = 1.5
LORA_SHARE = 0.5  # fraction of the LoRA's scenes that show a brick
SIZES = ("small", "large")
# Side of the shape's bounding box in pixels (before a +-1 px jitter).
SIZE_PX = {"small": 14, "large": 24}
POSITIONS = (
    "top left",
    "top centre",
    "top right",
    "centre left",
    "centre",
    "centre right",
    "bottom left",
    "bottom centre",
    "bottom right",
)
# Grid cell centres in pixels; position index p -> (row p // 3, column p % 3).
CENTRES = (13.0, 32.0, 51.0)
JITTER_PX = 2.0

# Fraction of full attribute combinations never used for training.
HELD_OUT_PERCENT = 10
TRAIN_SEED_BASE = 0
EVAL_SEED_BASE = 1_000_000_000


@dataclass(frozen=True)
class Scene:
    """The generator's ground truth for one image."""

    shape: str
    colour: str
    size: str
    position: str
    background: str
    dx: float = 0.0
    dy: float = 0.0
    dsize: float = 0.0

    @property
    def caption(self) -> str:
        """Fixed word order, so each attribute always sits in the same token slot."""
        return self.describe()

    def describe(self, size: bool = True, position: bool = True) -> str:
        """The caption, optionally without the size word or the position phrase."""
        size_word = f"{self.size} " if size else ""
        bg = f"{_article(self.background)} {self.background} background"
        where = f", {self.position}" if position else ""
        return f"a {size_word}{self.colour} {self.shape} on {bg}{where}"

    @property
    def combo(self) -> tuple[str, str, str, str, str]:
        return (self.shape, self.colour, self.size, self.position, self.background)


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def is_held_out(combo: tuple[str, ...]) -> bool:
    """Deterministic ~10% of attribute combinations reserved for evaluation."""
    digest = hashlib.sha256("|".join(combo).encode()).digest()
    return int.from_bytes(digest[:4], "little") % 100 < HELD_OUT_PERCENT


def _random_scene(rng: np.random.Generator) -> Scene:
    fg, bg = rng.choice(len(COLOURS), size=2, replace=False)
    return Scene(
        shape=SHAPES[rng.integers(len(SHAPES))],
        colour=COLOURS[fg],
        size=SIZES[rng.integers(len(SIZES))],
        position=POSITIONS[rng.integers(len(POSITIONS))],
        background=COLOURS[bg],
        dx=float(rng.uniform(-JITTER_PX, JITTER_PX)),
        dy=float(rng.uniform(-JITTER_PX, JITTER_PX)),
        dsize=float(rng.uniform(-1.0, 1.0)),
    )


def scene_for(index: int, split: str = "train", seed: int = 0) -> Scene:
    """Scene number `index` of a split: train scenes avoid held-out combinations, eval
    scenes use only them (and seeds disjoint from training)."""
    base = TRAIN_SEED_BASE if split == "train" else EVAL_SEED_BASE
    rng = np.random.default_rng([seed, base + index])
    while True:
        scene = _random_scene(rng)
        if is_held_out(scene.combo) == (split != "train"):
            return scene


def lora_scene_for(index: int, split: str = "train", seed: int = 0) -> Scene:
    """Scene `index` of the demo LoRA's data: a brick with probability LORA_SHARE, else an
    ordinary scene (so the LoRA keeps what the base model does); the same held-out rule
    on the full combination, with seeds apart from the base model's."""
    base = TRAIN_SEED_BASE if split == "train" else EVAL_SEED_BASE
    rng = np.random.default_rng([seed, base + index, 13])
    while True:
        scene = _random_scene(rng)
        if rng.random() < LORA_SHARE:
            scene = replace(scene, shape=LORA_SHAPE)
        if is_held_out(scene.combo) == (split != "train"):
            return scene


def shape_polygon(shape: str, cx: float, cy: float, side: float) -> list[tuple[float, float]]:
    """Polygon vertices (or the bbox for a circle) centred on the bounding-box centre."""
    h = side / 2
    if shape == "triangle":
        return [(cx, cy - h), (cx + h, cy + h), (cx - h, cy + h)]
    if shape == "diamond":
        return [(cx, cy - h), (cx + h, cy), (cx, cy + h), (cx - h, cy)]
    if shape == LORA_SHAPE:
        w = BRICK_WIDTH * h
        return [
            (cx - w, cy - h / 2),
            (cx + w, cy - h / 2),
            (cx + w, cy + h / 2),
            (cx - w, cy + h / 2),
        ]
    return [(cx - h, cy - h), (cx + h, cy - h), (cx + h, cy + h), (cx - h, cy + h)]


def scene_geometry(scene: Scene) -> tuple[float, float, float]:
    """Centre x, centre y and side (pixels) of the shape's bounding box."""
    p = POSITIONS.index(scene.position)
    cx = CENTRES[p % 3] + scene.dx
    cy = CENTRES[p // 3] + scene.dy
    return cx, cy, SIZE_PX[scene.size] + scene.dsize


def render(scene: Scene) -> np.ndarray:
    """uint8 [64, 64, 3], anti-aliased by drawing at 4x and box-filtering down."""
    s = SUPERSAMPLE
    img = Image.new("RGB", (SIZE * s, SIZE * s), PALETTE[scene.background])
    draw = ImageDraw.Draw(img)
    cx, cy, side = scene_geometry(scene)
    pts = [(x * s, y * s) for x, y in shape_polygon(scene.shape, cx, cy, side)]
    colour = PALETTE[scene.colour]
    if scene.shape == "circle":
        draw.ellipse([pts[0], pts[2]], fill=colour)
    else:
        draw.polygon(pts, fill=colour)
    return np.asarray(img.resize((SIZE, SIZE), Image.Resampling.BOX))


def batch(indices: range | list[int], split: str = "train", seed: int = 0):
    """(uint8 images [n, 64, 64, 3], scenes) for the given indices."""
    scenes = [scene_for(i, split, seed) for i in indices]
    return np.stack([render(sc) for sc in scenes]), scenes


def all_combos(held_out: bool) -> list[tuple[str, str, str, str, str]]:
    """Every valid attribute combination on one side of the split."""
    out = []
    for shape in SHAPES:
        for colour in COLOURS:
            for size in SIZES:
                for position in POSITIONS:
                    for background in COLOURS:
                        combo = (shape, colour, size, position, background)
                        if colour != background and is_held_out(combo) == held_out:
                            out.append(combo)
    return out
