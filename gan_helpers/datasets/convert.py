"""One picture file in, one 64×64 RGB image out, or the reason why not.

Used by the folder cleaning (:mod:`gan_helpers.datasets.prepare`), for previews of
source files (:mod:`gan_helpers.datasets.loading`) and for the target images of the
latent-space experiments (:mod:`gan_helpers.latent`). Only regular files are
opened, so a FIFO or device named like a picture never blocks.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from gan_helpers.storage.regular import NotRegular, open_regular_file

IMAGE_SIZE = 64
# A 64×64 image counts as greyscale when 99 % of its pixels have channels
# within this many levels (of 255) of each other: the percentile ignores a
# few coloured stars or compression artefacts on an otherwise grey plate.
GREY_TOLERANCE = 12
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


class Dropped(Exception):
    """A source file that does not make it into the set: `reason` is a short code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


def to_rgb(image: Image.Image, background: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """Any Pillow mode as 8-bit RGB; transparency is flattened onto `background`.

    Pillow's own conversion clips 16-bit greyscale to white instead of
    scaling it, so those modes are rescaled by hand first.
    """
    if image.mode in _SIXTEEN_BIT or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode in _SIXTEEN_BIT or values.max(initial=0) > 255:
            values = values / 257.0  # 0..65535 -> 0..255
        elif image.mode == "F" and values.max(initial=0) <= 1.0:
            values = values * 255.0  # floats in [0, 1]
        image = Image.fromarray(np.clip(values.round(), 0, 255).astype(np.uint8), mode="L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (*background, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def center_square(image: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    """The largest centred square of `image`, resized to size×size with Lanczos."""
    return ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def is_greyscale(image: Image.Image, tolerance: int = GREY_TOLERANCE) -> bool:
    """Whether an RGB image carries no real colour (see GREY_TOLERANCE)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    return float(np.percentile(spread, 99)) <= tolerance


def open_image(path: Path, *, min_size: int, max_aspect: float | None, draft_size: int) -> Image.Image:
    """Decode the first frame of an image file, or raise :class:`Dropped` saying why not."""
    try:
        handle = open_regular_file(path, follow_links=True)
    except NotRegular:
        raise Dropped("not-a-file", "not a regular file (a FIFO, socket or device)") from None
    except OSError as error:  # permissions, a file that vanished
        raise Dropped("unreadable", error.strerror or str(error)) from None
    with handle, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's chatter about odd files is not a decision
        # A decompression-bomb warning means "suspiciously large": drop it like the error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            opened = Image.open(handle)
        except UnidentifiedImageError:
            raise Dropped("not-an-image", "no image format recognised") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise Dropped("too-large", f"decompression bomb guard: {error}") from None
        except OSError as error:
            raise Dropped("undecodable", str(error)) from None
        with opened as image:  # closes the file even for animations, which Pillow keeps open
            width, height = image.size
            if min(width, height) < min_size:
                raise Dropped("too-small", f"{width}x{height} is below {min_size} px")
            if max_aspect is not None and max(width, height) > max_aspect * min(width, height):
                raise Dropped("aspect", f"{width}x{height} is more elongated than {max_aspect:g}:1")
            try:
                image.seek(0)  # the first frame of an animation
                image.draft(None, (draft_size, draft_size))  # JPEG only: decode at reduced scale, much faster
                image.load()
                return ImageOps.exif_transpose(image) or image.copy()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
                raise Dropped("too-large", f"decompression bomb guard: {error}") from None
            except Exception as error:  # noqa: BLE001 - any decoder failure means a defective file
                raise Dropped("undecodable", f"{type(error).__name__}: {error}") from None


def convert_file(path: Path, *, size: int = IMAGE_SIZE, min_size: int = IMAGE_SIZE,
                 max_aspect: float | None = 2.0, background: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """One source file as a size×size RGB image, or :class:`Dropped`."""
    image = open_image(path, min_size=min_size, max_aspect=max_aspect, draft_size=2 * size)
    return center_square(to_rgb(image, background), size)
