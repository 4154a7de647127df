"""How a run's samples evolved, as one animated GIF; and sample grids that carry their epoch in the picture.

The fixed-noise grids of a run (``samples/epoch-*.png``) become the frames
of ``evolution.gif``, each with its epoch written above it, so the file
tells its own story wherever it is shown. :func:`save_labelled_grid` writes
a grid PNG with the label already drawn in and records that in the PNG, so
the animation does not label it twice.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont
from PIL.PngImagePlugin import PngInfo
from torchvision.utils import make_grid

from gan_helpers.runs import run_folders
from gan_helpers.storage.atomic import atomic_write_bytes
from gan_helpers.errors import UserError
from gan_helpers.plots import pick_epochs, read_png

EVOLUTION_FILE = "evolution.gif"
_LABEL_KEY = "label"  # PNG text chunk holding the label drawn into the image


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)  # scalable default font (Pillow >= 10.1)
    except TypeError:
        return ImageFont.load_default()


def label_image(image: Image.Image, text: str) -> Image.Image:
    """`image` with a white strip above it holding `text` in black."""
    height = max(14, image.width // 22)
    labelled = Image.new("RGB", (image.width, image.height + height), "white")
    labelled.paste(image.convert("RGB"), (0, height))
    draw = ImageDraw.Draw(labelled)
    draw.text((4, height // 2), text, fill="black", font=_font(int(height * 0.8)), anchor="lm")
    return labelled


def grid_image(images: torch.Tensor, nrow: int | None = None) -> Image.Image:
    """A batch (N, 3, h, w) in [0, 1] as one PIL grid, laid out like gan_helpers.plots.image_grid."""
    nrow = nrow or math.ceil(math.sqrt(images.shape[0]))
    grid = make_grid(images.detach().float().cpu().clamp(0, 1), nrow=nrow, padding=2, pad_value=1.0)
    return Image.fromarray(grid.mul(255).round().byte().permute(1, 2, 0).numpy(), "RGB")


def save_labelled_grid(images: torch.Tensor, path: str | Path, label: str, nrow: int | None = None) -> Path:
    """Save a batch as a PNG grid with `label` (e.g. "epoch 50") drawn above it, atomically."""
    path = Path(path)
    info = PngInfo()
    info.add_text(_LABEL_KEY, label)
    buffer = io.BytesIO()
    label_image(grid_image(images, nrow), label).save(buffer, format="PNG", pnginfo=info)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _frame(path: Path, epoch: int, size: tuple[int, int] | None) -> Image.Image:
    pixels, labelled = read_png(path)  # a regular file of a sane size only: the run folder may come from anyone
    frame = Image.fromarray(pixels, "RGB")
    if not labelled:
        frame = label_image(frame, f"epoch {epoch}")
    if size is not None and frame.size != size:
        frame = frame.resize(size, Image.Resampling.NEAREST)
    return frame


def save_evolution(run_dir: str | Path, *, path: str | Path | None = None, frame_ms: int = 400,
                   last_frame_ms: int = 2500, max_frames: int = 100) -> Path:
    """Write the run's fixed-noise sample grids as an animated GIF (default RUN_DIR/evolution.gif).

    Frames are the saved epochs in order, at most `max_frames` spread
    evenly (always the first and last), each labelled with its epoch; the
    last frame stays longer so the end result can be looked at. Returns the path.
    """
    run_dir = Path(run_dir)
    saved = run_folders.samples(run_dir)
    if not saved:
        raise UserError(f"{run_dir} has no sample grids in samples/; train it for at least one sample epoch first.")
    frames: list[Image.Image] = []
    for epoch in pick_epochs(list(saved), max_frames):
        frames.append(_frame(saved[epoch], epoch, frames[0].size if frames else None))
    durations = [frame_ms] * (len(frames) - 1) + [last_frame_ms]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    target = Path(path) if path is not None else run_dir / EVOLUTION_FILE
    atomic_write_bytes(target, buffer.getvalue())
    return target
