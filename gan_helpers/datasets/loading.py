"""Loading a data set for training (point 4): one tensor of 64×64 RGB images in [0, 1].

The whole set fits in memory (a few hundred images are a few MB), so it is
loaded once as a single tensor on the training device; batches are slices of
it. Any folder works: a prepared one is read as it is, anything else is
cleaned first (:func:`gan_helpers.datasets.prepare.prepare_cached`). Only regular
files are ever opened, so a FIFO named like a picture cannot stall training.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gan_helpers.datasets.convert import IMAGE_SIZE, Dropped, convert_file
from gan_helpers.errors import UserError
from gan_helpers.datasets.folders import FILE, is_regular_file, walk
from gan_helpers.datasets.manifest import MANIFEST, is_complete, read_manifest
from gan_helpers.paths import DEFAULT_DATA, shown
from gan_helpers.storage.regular import NotRegular, open_regular_file
from gan_helpers.datasets.prepare import prepare_cached

# Files that may sit beside prepared images without making the folder "raw".
_SIDECARS = {".csv", ".txt", ".md", ".json"}


def _is_sidecar(name: str) -> bool:
    return Path(name).name.startswith(".") or Path(name).suffix.lower() in _SIDECARS


def is_prepared(folder: Path) -> bool:
    """Whether `folder` is a prepared set: written by prepare, or flat 64×64 RGB PNGs only.

    Anything else, a FIFO, a broken link or an unreadable sub-folder
    included, makes it raw, so that prepare reports it in a manifest.
    """
    if (folder / MANIFEST).is_file():
        return True
    entries = [entry for entry in walk(folder) if not (entry.kind == FILE and _is_sidecar(entry.relative))]
    if not entries or any(entry.kind != FILE or "/" in entry.relative or not entry.relative.lower().endswith(".png")
                          for entry in entries):
        return False
    for entry in entries:  # reads headers only
        try:
            with open_regular_file(folder / entry.relative, follow_links=True) as handle, Image.open(handle) as image:
                if image.size != (IMAGE_SIZE, IMAGE_SIZE) or image.mode != "RGB":
                    return False
        except (OSError, NotRegular, Image.DecompressionBombError):
            return False
    return True


def image_paths(path: str | Path) -> list[Path]:
    """The images of a prepared folder in sorted file-name order (the training order); only regular
    files are listed, and a manifest's names only where they lie inside the folder."""
    folder = Path(path).expanduser()
    rows = read_manifest(folder)
    if rows:
        names = sorted(row.output for row in rows if row.status == "kept")
        missing = [name for name in names if not is_regular_file(folder / name)]
        if missing:
            raise UserError(f"Prepared folder {folder} lacks {len(missing)} of its images as regular files "
                            f"(e.g. {missing[0]}); prepare it again.")
        return [folder / name for name in names]
    return [folder / entry.relative for entry in walk(folder, recursive=False)
            if entry.kind == FILE and entry.relative.lower().endswith(".png") and not _is_sidecar(entry.relative)]


def resolve_dataset(path: str | Path) -> Path:
    """The prepared folder behind `path`: the default set once built, the folder itself if prepared,
    or a cached prepared copy of it."""
    folder = Path(path).expanduser()
    if folder.resolve() == DEFAULT_DATA.resolve():
        if not is_complete(folder):
            raise UserError(f"The default data set {shown(folder)} is missing or incomplete; build it with make data "
                            f"(or python -m gan_helpers data).")
        return folder.resolve()
    if not folder.exists():
        raise UserError(f"Image folder {folder} does not exist; pass an existing folder of pictures with --data.")
    if not folder.is_dir():
        raise UserError(f"Data path {folder} is a file, not a folder; pass the folder that holds the pictures.")
    return folder if is_prepared(folder) else prepare_cached(folder)


def load_images(paths: list[Path]) -> torch.Tensor:
    """Prepared PNGs as a float32 tensor (N, 3, 64, 64) in [0, 1] on the CPU."""
    arrays = []
    for path in paths:
        try:
            with open_regular_file(path, follow_links=True) as handle, Image.open(handle) as image:
                if image.size != (IMAGE_SIZE, IMAGE_SIZE):
                    raise UserError(f"Image {path} is {image.size[0]}x{image.size[1]}, not "
                                    f"{IMAGE_SIZE}x{IMAGE_SIZE}; prepare the folder again.")
                arrays.append(np.asarray(image.convert("RGB")))
        except NotRegular:
            raise UserError(f"Image {path} is not a regular file (a FIFO, socket or device); prepare the folder "
                            f"again.") from None
        except (OSError, Image.DecompressionBombError) as error:
            raise UserError(f"Image {path} cannot be read ({error}); prepare the folder again.") from None
    stacked = torch.from_numpy(np.stack(arrays)) if arrays else torch.zeros(0, IMAGE_SIZE, IMAGE_SIZE, 3, dtype=torch.uint8)
    return stacked.permute(0, 3, 1, 2).float().div_(255.0)


def load_dataset(path: str | Path, *, max_images: int | None = None, min_images: int = 1,
                 device: str | torch.device = "cpu") -> torch.Tensor:
    """The data set in `path` as one float32 tensor (N, 3, 64, 64) in [0, 1] on `device`.

    The default set must be built first (``make data``). Images come in sorted
    file-name order, so a run is reproducible; `max_images` keeps the first N of that order.
    """
    if max_images is not None and max_images < 1:
        raise UserError(f"max_images is {max_images}; use a positive number, or None for all images.")
    folder = resolve_dataset(path)
    paths = image_paths(folder)
    total = len(paths)
    paths = paths[:max_images] if max_images is not None else paths
    if len(paths) < min_images:
        limit = f" (limited by max_images={max_images} of {total})" if len(paths) < total else ""
        raise UserError(f"Data set {path} has {len(paths)} usable images{limit} but a batch needs {min_images}; "
                        f"add images or lower --batch-size.")
    images = load_images(paths)
    try:
        return images.to(device)
    except (RuntimeError, AssertionError) as error:  # e.g. "cuda" on a machine without a GPU
        raise UserError(f"Device {device!r} cannot be used here ({error}); choose another device, e.g. 'cpu'.") from None


# ------------------------------------------------ showing what cleaning does
def _to_pil(image: torch.Tensor, size: int) -> Image.Image:
    pixels = (image.detach().cpu().clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(pixels, "RGB").resize((size, size), Image.Resampling.LANCZOS)


def make_cleaning_demo(images: torch.Tensor, folder: str | Path) -> Path:
    """A fresh folder of a few pictures made from `images` (at least 4) plus one of each defect prepare drops.

    For the notebook: whatever data set is used, cleaning it again shows
    little, so this folder shows every kind of decision on a small scale.
    """
    if images.shape[0] < 4:
        raise UserError(f"The cleaning demo needs at least 4 images, not {images.shape[0]}; load more images.")
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)  # only ever a demo folder this function made
    folder.mkdir(parents=True)
    photos = [_to_pil(image, 2 * IMAGE_SIZE) for image in images[:4]]
    for i, photo in enumerate(photos, start=1):
        photo.save(folder / (f"photo_{i}.png" if i % 2 else f"photo_{i}.jpg"), quality=92)
    shutil.copy(folder / "photo_1.png", folder / "photo_1_duplicate.png")  # sorts after the original
    photos[1].resize((100, 100), Image.Resampling.BILINEAR).save(folder / "photo_2_small.jpg", quality=70)
    photos[2].convert("L").save(folder / "grey_plate.png")
    photos[3].resize((32, 32)).save(folder / "thumbnail.png")
    strip = Image.new("RGB", (10 * IMAGE_SIZE, IMAGE_SIZE))
    for i in range(10):
        strip.paste(photos[i % 4].resize((IMAGE_SIZE, IMAGE_SIZE)), (i * IMAGE_SIZE, 0))
    strip.save(folder / "strip.png")
    transparent = photos[3].convert("RGBA")
    transparent.putalpha(Image.linear_gradient("L").resize(transparent.size))
    transparent.save(folder / "transparent.png")
    buffer = io.BytesIO()
    photos[0].save(buffer, format="JPEG", quality=95)
    (folder / "broken.jpg").write_bytes(buffer.getvalue()[: buffer.tell() // 2])
    (folder / "notes.jpg").write_text("not a picture, despite the name\n")
    (folder / "empty.png").write_bytes(b"")
    return folder


def source_preview(path: str | Path, size: int = IMAGE_SIZE) -> np.ndarray | None:
    """A size×size RGB preview of any source file for display, or None when it cannot be decoded."""
    try:
        return np.asarray(convert_file(Path(path), size=size, min_size=1, max_aspect=None))
    except (Dropped, OSError):
        return None
