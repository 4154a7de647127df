"""What the latent tools read and write: a run's checkpoint by epoch, target images, saved vectors (points 13–16)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from gan_helpers.runs import run_folders
from gan_helpers.storage.atomic import atomic_save
from gan_helpers.errors import UserError
from gan_helpers.latent import Inversion
from gan_helpers.runs.quality_records import best_epoch, favoured_model, read_quality
from gan_helpers.runs.results import work_dir
from gan_helpers.runs.run_plots import save_grid
from gan_helpers.datasets.convert import Dropped, convert_file


def typical_pair(images: torch.Tensor) -> tuple[int, int]:
    """Indices (A, B) of two typical but different training images (points 13 and 16).

    A is the image closest to the data set's mean image. B is, among the
    quarter of images closest to the mean, the one farthest from A, so the
    interpolation A -> B crosses a visible change while both ends stay typical.
    """
    if images.shape[0] < 2:
        raise UserError("the data set needs at least two images to pick A and B; raise max_images or add images.")
    flat = images.flatten(1).float()
    order = (flat - flat.mean(0)).pow(2).mean(1).argsort()
    a = int(order[0])
    pool = order[1 : max(2, images.shape[0] // 4 + 1)]
    b = int(pool[(flat[pool] - flat[a]).pow(2).mean(1).argmax()])
    return a, b


def load_target_image(path: str | Path) -> torch.Tensor:
    """Any picture file as a (3, 64, 64) target in [0, 1], cropped and resized like the training set.

    Uses the data preparation's own conversion (largest centred square,
    Lanczos resize, transparency flattened), so an outside picture (point 15)
    is framed the same way as the training images.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"image file {path} does not exist; pass the path of a picture (PNG, JPEG, ...).")
    try:
        image = convert_file(path, min_size=1, max_aspect=None)
    except Dropped as error:
        raise UserError(f"{path} could not be used as an image ({error}); pass another picture file.") from None
    return torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float().div(255)


def save_latent(result: Inversion, run_dir: str | Path, epoch: int, name: str) -> Path:
    """Store a found vector as ``run_dir/latents/epoch-NNNNNN-<name>.pt`` and return the path.

    For a shipped result (``results/NAME/GENERATOR``, tracked by git) the
    folder is ``runs/shipped/NAME/GENERATOR/latents/`` instead
    (:func:`gan_helpers.runs.results.work_dir`): nothing is written into results/.
    A PNG of the same name shows the target and the evolution in one row
    (point 13: save the evolution and the final vector). Nothing is ever
    overwritten: the same vector again returns the existing file, a
    different one gets the next free ``-vN`` name.
    """
    folder = work_dir(run_dir) / "latents"
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"epoch-{epoch:06d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'latent'}"
    record = {
        "z": result.z, "final_mse": result.final_mse, "losses": result.losses, "epoch": epoch,
        "settings": result.settings, "frame_steps": result.frame_steps,
        "frames": (result.frames.clamp(0, 1) * 255).round().to(torch.uint8),
    }
    for version in range(1, 1000):
        path = folder / (f"{stem}.pt" if version == 1 else f"{stem}-v{version}.pt")
        try:
            atomic_save(record, path, overwrite=False)
        except FileExistsError:
            try:
                same = torch.equal(torch.load(path, weights_only=True)["z"], result.z)
            except Exception:  # unreadable or foreign: certainly not this vector
                same = False
            if same:
                return path
            continue
        if not path.with_suffix(".png").exists():
            save_grid(torch.cat([result.target, result.frames]), path.with_suffix(".png"), nrow=len(result.frames) + 1)
        return path
    raise UserError(f"{folder} already holds 999 versions of {stem}; delete old ones you no longer need.")


def choose_checkpoint(run_dir: str | Path, epoch: int = -1) -> tuple[int, Path, dict | None]:
    """Point 13's checkpoint: `epoch` if given, else the one the quality measure rates best (else the last).

    Returns (epoch, path, the numbers behind the choice or None). The choice
    is :func:`~gan_helpers.runs.quality_records.best_epoch` for the generator
    the records favour (:func:`~gan_helpers.runs.quality_records.favoured_model`;
    ``numbers["model"]`` says which). A shipped result keeps the weights of
    the epoch its run chose this way.
    """
    saved = run_folders.generator_files(run_dir)
    model = favoured_model(run_dir)
    if epoch == -1 and saved and {r["epoch"] for r in read_quality(run_dir, model)} & set(saved):
        chosen, numbers = best_epoch(run_dir, model=model)
        return chosen, saved[chosen], numbers
    chosen, path = run_folders.checkpoint_for_epoch(run_dir, epoch)
    return chosen, path, None
