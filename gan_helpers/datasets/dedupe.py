"""Duplicates: the same bytes, or the same picture as one kept before.

The same picture means re-encoded (JPEG, WebP), resized, cropped by a
percent or two, or slightly recoloured, not merely the same layout: two
cartoon faces on one background that differ only in the mouth are two
pictures. So the comparison looks for any concentrated difference, after
forgiving exactly what copying does:

- luma is compared at 64×64, colour at 32×32 (JPEG stores colour at half
  resolution, so colour edges of a copy bleed by a pixel);
- a pixel matches anything between the darkest and brightest value of the
  other image's 3×3 neighbourhood (sub-pixel shifts, resampling, ringing);
- a global brightness and saturation gain (recolouring) and a zoom of up to
  ±2 % about the centre (a crop) are aligned away;
- what remains is averaged over every small window (4×4 luma pixels, 3×3
  colour pixels) and the worst window is the score, in levels of 255.

A different mouth, letter or star leaves a window above the limit;
compression noise is spread too thin to. Measured: re-encoded, resized,
cropped and recoloured copies score at most 7.8 (drawings, words, photos and
galaxies of ``tests/dedupe_set.py``) and 6.9 (copies of the Stellarium
photos); distinct pictures at least 12.2 there and 10.5 among the 506 colour
Stellarium photos (two faint star fields). The limit of 9 sits between.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from gan_helpers.storage.regular import open_regular_file

# Pictures whose worst window differs by at most this many levels (of 255) are the same picture.
NEAR_DUPLICATE_LIMIT = 9.0
ZOOMS = (1.0, 0.99, 1.01, 0.98, 1.02)  # a crop of up to 2 % is a zoom about the centre
MAX_BRIGHTNESS_GAIN = 0.06  # recolouring: luma scaled by at most ±6 %
MAX_COLOUR_GAIN = 0.12  # and colour saturation by at most ±12 %
# Two cheap checks pick the pairs worth the full comparison. First 8×8 thumbnails: their mean
# difference after the gains, relative to how much both thumbnails vary (plus THUMBNAIL_FLOOR
# levels, so near-blank images compare in absolute terms), at most THUMBNAIL_LIMIT; copies in
# the test sets and in copies of the Stellarium photos stay below 0.05, and under 3 % of other
# pairs pass. Then the unzoomed comparison at 32×32 within COARSE_FACTOR times the limit
# (copies stay within 1.7 times).
THUMBNAIL_LIMIT, THUMBNAIL_FLOOR = 0.15, 8.0
COARSE_FACTOR = 3.0
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
_CHROMA = np.array([[-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], dtype=np.float32).T


@dataclass
class Planes:
    """One image at one resolution: luma (H, W) and colour (H/2, W/2, 2), each with the per-pixel
    range of its 3×3 neighbourhood."""

    luma: np.ndarray
    luma_low: np.ndarray
    luma_high: np.ndarray
    colour: np.ndarray
    colour_low: np.ndarray
    colour_high: np.ndarray


@dataclass(frozen=True)
class Scale:
    """How one resolution is compared: its side, the windows averaged and the border left out
    (in luma pixels; where crops and resampling differ most)."""

    side: int
    luma_window: int
    colour_window: int
    border: int


FINE, COARSE = Scale(64, 4, 3, 2), Scale(32, 3, 2, 1)


@dataclass
class Signature:
    """What the comparison needs of one image: its planes at both scales and an 8×8 thumbnail."""

    fine: Planes
    coarse: Planes
    thumbnail: np.ndarray


def _neighbourhood_range(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel minimum and maximum over the 3×3 neighbourhood (edges repeated)."""
    padded = np.pad(values, [(1, 1), (1, 1)] + [(0, 0)] * (values.ndim - 2), mode="edge")
    h, w = values.shape[:2]
    shifted = [padded[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
    return np.min(shifted, axis=0), np.max(shifted, axis=0)


def planes(image: Image.Image, scale: Scale = FINE) -> Planes:
    """The :class:`Planes` of an RGB image resized to the side of `scale` (as needed)."""
    side = scale.side
    if image.size != (side, side):
        image = image.resize((side, side), Image.Resampling.BOX if side < min(image.size) else Image.Resampling.LANCZOS)
    pixels = np.asarray(image, dtype=np.float32)
    luma = pixels @ _LUMA
    colour = (pixels @ _CHROMA).reshape(side // 2, 2, side // 2, 2, 2).mean(axis=(1, 3))
    return Planes(luma, *_neighbourhood_range(luma), colour, *_neighbourhood_range(colour))


def signature(image: Image.Image) -> Signature:
    """The :class:`Signature` of an RGB image of any size."""
    fine = planes(image, FINE)
    thumbnail = np.concatenate([fine.luma[..., None], np.repeat(np.repeat(fine.colour, 2, 0), 2, 1)], axis=2)
    thumbnail = thumbnail.reshape(8, FINE.side // 8, 8, FINE.side // 8, 3).mean(axis=(1, 3))
    return Signature(fine, planes(image, COARSE), thumbnail)


def zoomed(image: Image.Image, factor: float) -> Image.Image:
    """`image` scaled by `factor` about its centre, keeping its size (a crop when factor > 1)."""
    if factor == 1.0:
        return image
    w, h = image.size
    inverse = 1 / factor
    return image.transform((w, h), Image.Transform.AFFINE,
                           (inverse, 0, w / 2 * (1 - inverse), 0, inverse, h / 2 * (1 - inverse)),
                           resample=Image.Resampling.BICUBIC)


def _outside(values: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """How far each value lies outside [low, high] (0 inside)."""
    return np.maximum(np.maximum(low - values, values - high), 0)


def _worst_window(differences: np.ndarray, size: int, border: int) -> np.ndarray:
    """For a stack (N, H, W): the largest mean over any size×size window of each, `border` pixels
    at the edges left out."""
    differences = differences[:, border:-border, border:-border] if border else differences
    sums = np.pad(differences.cumsum(axis=1).cumsum(axis=2), ((0, 0), (1, 0), (1, 0)))
    windows = sums[:, size:, size:] - sums[:, :-size, size:] - sums[:, size:, :-size] + sums[:, :-size, :-size]
    return windows.reshape(len(differences), -1).max(axis=1) / (size * size)


def _gain(new: np.ndarray, kept: np.ndarray, limit: float) -> np.ndarray:
    """Least-squares gain g (per kept image) with kept ≈ g·new, clipped to 1 ± limit, shaped to
    broadcast over `kept`."""
    energy = float((new * new).sum())
    gain = (kept * new).sum(axis=tuple(range(1, kept.ndim))) / energy if energy else np.ones(len(kept))
    return np.clip(gain, 1 - limit, 1 + limit).astype(np.float32).reshape(-1, *[1] * new.ndim)


def difference(versions: list[Planes], kept: list[Planes], scale: Scale = FINE) -> np.ndarray:
    """The score (levels of 255) of a new image against each kept one at `scale`; `versions` holds
    the new image in several alignments (e.g. zooms) and the best one counts."""
    stack = {name: np.stack([getattr(k, name) for k in kept]) for name in Planes.__dataclass_fields__}
    best = np.full(len(kept), np.inf, dtype=np.float32)
    for new in versions:
        g = _gain(new.luma, stack["luma"], MAX_BRIGHTNESS_GAIN)
        luma = np.maximum(_outside(new.luma * g, stack["luma_low"], stack["luma_high"]),
                          _outside(stack["luma"], new.luma_low * g, new.luma_high * g))
        g = _gain(new.colour, stack["colour"], MAX_COLOUR_GAIN)
        colour = np.maximum(_outside(new.colour * g, stack["colour_low"], stack["colour_high"]),
                            _outside(stack["colour"], new.colour_low * g, new.colour_high * g)).max(axis=3)
        score = np.maximum(_worst_window(luma, scale.luma_window, scale.border),
                           _worst_window(colour, scale.colour_window, scale.border // 2))
        best = np.minimum(best, score)
    return best


def _spread(thumbnails: np.ndarray) -> np.ndarray:
    """Mean absolute deviation of each thumbnail (..., 8, 8, 3) from its own mean colour."""
    return np.abs(thumbnails - thumbnails.mean(axis=(-3, -2), keepdims=True)).mean(axis=(-3, -2, -1))


def thumbnail_distance(new: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The cheap first check of a new thumbnail (8, 8, 3) against kept ones (N, 8, 8, 3)."""
    luma = np.abs(new[..., :1] * _gain(new[..., :1], kept[..., :1], MAX_BRIGHTNESS_GAIN) - kept[..., :1])
    colour = np.abs(new[..., 1:] * _gain(new[..., 1:], kept[..., 1:], MAX_COLOUR_GAIN) - kept[..., 1:])
    mean = (luma.sum(axis=(1, 2, 3)) + colour.sum(axis=(1, 2, 3))) / new.size
    return mean / (_spread(new) + _spread(kept) + THUMBNAIL_FLOOR)


class NearDuplicates:
    """The images kept so far, for asking whether a new one repeats any of them."""

    def __init__(self, limit: float = NEAR_DUPLICATE_LIMIT) -> None:
        self.limit = limit
        self.sources: list[str] = []
        self.signatures: list[Signature] = []
        self._thumbnails = np.zeros((64, 8, 8, 3), dtype=np.float32)  # grown by doubling

    def check(self, image: Image.Image, source: str) -> tuple[str, float] | None:
        """The kept source that `image` repeats and the score; or None, and `image` is remembered
        as kept under `source`."""
        plain = signature(image)
        count = len(self.sources)
        candidates = np.flatnonzero(thumbnail_distance(plain.thumbnail, self._thumbnails[:count]) <= THUMBNAIL_LIMIT)
        if len(candidates):
            coarse = difference([plain.coarse], [self.signatures[i].coarse for i in candidates], COARSE)
            candidates = candidates[coarse <= COARSE_FACTOR * self.limit]
        if len(candidates):
            versions = [plain.fine] + [planes(zoomed(image, factor)) for factor in ZOOMS[1:]]
            scores = difference(versions, [self.signatures[i].fine for i in candidates])
            best = int(np.argmin(scores))
            if scores[best] <= self.limit:
                return self.sources[candidates[best]], float(scores[best])
        if count == len(self._thumbnails):
            self._thumbnails = np.concatenate([self._thumbnails, np.zeros_like(self._thumbnails)])
        self._thumbnails[count] = plain.thumbnail
        self.sources.append(source)
        self.signatures.append(plain)
        return None


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (exact duplicates); only regular files are opened."""
    sha = hashlib.sha256()
    with open_regular_file(path, follow_links=True) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()
