"""A deterministic judge that reads a 64x64 picture and says what scene it shows.

It knows nothing about the model, only pixel statistics: the background is the border's
median colour; the object is the largest connected region far from it; each pixel's
coverage (0..1, sub-pixel accurate on anti-aliased or blurred edges) is its projection onto
the line from background to object colour. Colour = nearest palette entry, position =
coverage centroid in the 3x3 grid, size = bounding-box side, shape = coverage / bbox area
(square 1, circle pi/4, triangle and diamond 1/2) and, for the last two, how bottom-heavy
the coverage is (triangles point up). The demo LoRA's "brick" is told by its aspect ratio
(width / height 2; every base shape is as wide as it is tall).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from demo.scenes import BRICK_WIDTH, LORA_SHAPE, PALETTE, POSITIONS, SIZE, Scene

ATTRIBUTES = ("background", "colour", "shape", "size", "position")
_NAMES = list(PALETTE)
_RGB = np.array([PALETTE[n] for n in _NAMES], dtype=np.float64)
OBJECT_DIST = 45.0  # RGB distance from the background that marks an object pixel
MIN_AREA = 20.0  # pixels of coverage below which there is "no object"
SIZE_SPLIT_PX = 19.0  # small shapes are 13-15 px wide, large ones 23-25 px
# width / height above which a shape is a brick: drawn bricks are 3, every base shape 1;
# the VAE returns bricks at 1.3-2.4 (median 1.6) and base shapes at <= 1.18
BRICK_ASPECT = 1.3


@dataclass(frozen=True)
class Verdict:
    background: str
    colour: str | None = None
    shape: str | None = None
    size: str | None = None
    position: str | None = None
    fill: float = 0.0
    bottom_heavy: float = 0.0
    aspect: float = 1.0

    def as_dict(self) -> dict:
        return asdict(self)


def nearest_colour(rgb: np.ndarray) -> str:
    return _NAMES[int(np.argmin(((_RGB - rgb) ** 2).sum(axis=1)))]


def _shape_from(fill: float, bottom_heavy: float, aspect: float = 1.0) -> str:
    if aspect > BRICK_ASPECT:
        return LORA_SHAPE
    if fill > 0.9:
        return "square"
    if fill > 0.67:
        return "circle"
    return "triangle" if bottom_heavy > 0.22 else "diamond"


def _side(shape: str, w: float, h: float) -> float:
    """The size's side: a brick is BRICK_WIDTH sides wide."""
    return w / BRICK_WIDTH if shape == LORA_SHAPE else max(w, h)


def judge(image: np.ndarray) -> Verdict:
    """Read one uint8 [64, 64, 3] image."""
    img = np.asarray(image, dtype=np.float64)
    border = np.concatenate([img[:2].reshape(-1, 3), img[-2:].reshape(-1, 3)])
    border = np.concatenate([border, img[:, :2].reshape(-1, 3), img[:, -2:].reshape(-1, 3)])
    bg = np.median(border, axis=0)
    dist = np.sqrt(((img - bg) ** 2).sum(axis=2))
    labels, n = ndimage.label(dist > OBJECT_DIST)
    background = nearest_colour(bg)
    if n == 0:
        return Verdict(background)
    sizes = ndimage.sum_labels(np.ones_like(dist), labels, index=np.arange(1, n + 1))
    region = labels == (1 + int(np.argmax(sizes)))
    # Object colour: the pixels of the region that are farthest from the background.
    d = dist[region]
    fg = np.median(img[region][d >= np.percentile(d, 60)], axis=0)
    axis = fg - bg
    cover = np.clip(((img - bg) @ axis) / max(float(axis @ axis), 1e-6), 0.0, 1.0)
    cover *= ndimage.binary_dilation(region, iterations=1)
    area = float(cover.sum())
    if area < MIN_AREA:
        return Verdict(background)
    ys, xs = np.nonzero(cover > 0.5)
    if len(ys) == 0:
        return Verdict(background)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # Sub-pixel extent: each row/column counts by its strongest coverage.
    w, h = float(cover.max(axis=0).sum()), float(cover.max(axis=1).sum())
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    cy = float((cover * (yy + 0.5)).sum() / area)
    cx = float((cover * (xx + 0.5)).sum() / area)
    fill = area / float(w * h)
    rows = cover[y0:y1, x0:x1].sum(axis=1)
    third = max(1, round((y1 - y0) / 3))
    bottom_heavy = float((rows[-third:].sum() - rows[:third].sum()) / max(rows.sum(), 1e-6))
    cell = SIZE / 3
    shape = _shape_from(fill, bottom_heavy, w / h)
    pos = POSITIONS[3 * min(2, int(cy // cell)) + min(2, int(cx // cell))]
    return Verdict(
        background=background,
        colour=nearest_colour(fg),
        shape=shape,
        size="small" if _side(shape, w, h) < SIZE_SPLIT_PX else "large",
        position=pos,
        fill=round(fill, 3),
        bottom_heavy=round(bottom_heavy, 3),
        aspect=round(w / h, 3),
    )


def score(verdict: Verdict, scene: Scene) -> dict[str, bool]:
    """Per-attribute agreement with the caption's scene, plus 'all'."""
    got = {a: getattr(verdict, a) == getattr(scene, a) for a in ATTRIBUTES}
    got["all"] = all(got.values())
    return got


def accuracy(images: np.ndarray, scene_list: list[Scene]) -> dict[str, float]:
    """Fraction correct per attribute (and all together) over a batch."""
    rows = [score(judge(im), sc) for im, sc in zip(images, scene_list, strict=True)]
    return {k: float(np.mean([r[k] for r in rows])) for k in (*ATTRIBUTES, "all")}
