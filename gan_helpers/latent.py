"""Latent-space tools for points 13-17: inversion, interpolation, single-coordinate edits.

A trained generator is a function from 128 numbers to an image. Inverting it
(point 13) searches for the numbers whose image best matches a given picture,
by gradient descent on the latent vector alone; the network's weights stay
exactly as they were. The vectors found can then be edited one coordinate at
a time (point 14) or blended into one another (point 16).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import torch
from matplotlib.ticker import MaxNLocator
from torch import nn

from gan_helpers import runs
from gan_helpers.errors import UserError
from gan_helpers.plots import image_grid, save_grid

REDUCTIONS = ("mean", "sum")
METHODS = ("lerp", "slerp")


@dataclass
class Inversion:
    """The result of :func:`invert`; every tensor is detached and on the CPU.

    ``losses`` and ``final_mse`` are always the mean squared error per pixel
    value, whichever ``reduction`` drove the optimisation, so runs with
    different settings can be compared directly.
    """

    z: torch.Tensor  # (1, 128) latent vector found (the best restart)
    image: torch.Tensor  # (1, 3, 64, 64) G(z)
    target: torch.Tensor  # (1, 3, 64, 64) the image that was imitated
    losses: list[float]  # MSE of the kept restart at every step, before that step's update
    final_mse: float  # MSE of G(z), after the last update
    frames: torch.Tensor  # (F, 3, 64, 64) images of the kept restart at frame_steps
    frame_steps: list[int]  # update counts of the frames: 0 is the random start, the last is `steps`
    restart_mses: list[float]  # final MSE of every restart (the lowest is kept)
    settings: dict = field(default_factory=dict)  # steps, lr (the number used), momentum, reduction, restarts, seed, lr_auto


def _as_target(target: torch.Tensor) -> torch.Tensor:
    """`target` as a (1, 3, 64, 64) float batch, or a UserError saying what is wrong with it."""
    if not isinstance(target, torch.Tensor):
        raise UserError(f"the target must be an image tensor of shape (3, 64, 64), not a {type(target).__name__}.")
    if target.dim() == 3:
        target = target.unsqueeze(0)
    if tuple(target.shape) != (1, 3, 64, 64):
        raise UserError(f"the target image has shape {tuple(target.shape)}; resize it to (3, 64, 64) (or (1, 3, 64, 64)) first.")
    target = target.float()
    if not torch.isfinite(target).all() or target.min() < 0 or target.max() > 1:
        raise UserError("the target image has values outside [0, 1]; scale its pixels to [0, 1] first (divide 8-bit values by 255).")
    return target


@contextmanager
def _frozen(G: nn.Module) -> Iterator[None]:
    """G in eval mode with its parameters out of autograd; mode and flags restored on exit.

    Eval mode is the sampling mode (batch norm uses its running statistics,
    which therefore cannot move); without ``requires_grad`` no gradient is
    ever computed for a weight, so no optimizer step could change one.
    """
    was_training = G.training
    flags = [p.requires_grad for p in G.parameters()]
    try:
        G.eval()
        for p in G.parameters():
            p.requires_grad_(False)
        with torch.enable_grad():  # z needs its gradient even if the caller is inside no_grad
            yield
    finally:
        G.train(was_training)
        for p, flag in zip(G.parameters(), flags):
            p.requires_grad_(flag)


def _frame_steps(steps: int, count: int) -> list[int]:
    """`count` update counts spread evenly over 0..steps, always including both ends."""
    count = max(2, min(count, steps + 1))
    return sorted({round(i * steps / (count - 1)) for i in range(count)})


def invert(
    G: nn.Module,
    target: torch.Tensor,
    *,
    steps: int,
    lr: float | str = 0.01,
    momentum: float = 0.9,
    reduction: str = "mean",
    restarts: int = 1,
    seed: int | None = None,
    start: torch.Tensor | None = None,
    frames: int = 8,
) -> Inversion:
    """Point 13: a latent vector whose image matches `target`, found by SGD on the vector alone.

    Starts from standard normal noise (drawn on the CPU from `seed`, so the
    same on every device) or from the vector `start` (with ``restarts=1``),
    and takes `steps` SGD updates (learning rate `lr`, `momentum`) of the
    squared error between G(z) and `target`. ``reduction='mean'`` averages
    it over the 12,288 pixel values (the spec's loss); ``'sum'`` adds them
    up: the same minimum, but a gradient 12,288 times larger, so the spec's
    small learning rate takes steps big enough to settle in tens of updates
    where the mean can need thousands. ``restarts`` > 1 runs that
    many independent starts side by side in one batch and keeps the one with
    the lowest final error, which guards against a start in a poor valley.
    ``lr='auto'`` sets the step from the generator's slope at the start
    (:func:`auto_lr`), for generators whose sensitivity no fixed rate suits.

    G runs in eval mode (batch norm uses its running statistics, as when
    sampling, so each restart depends on its own vector only). Its
    parameters are taken out of autograd for the duration and the gradient
    is taken with respect to z alone, so the weights never change; G's mode
    and ``requires_grad`` flags are restored afterwards. Losses are gathered
    on the device and read once at the end.
    """
    if reduction not in REDUCTIONS:
        raise UserError(f"reduction must be one of {', '.join(REDUCTIONS)}, not {reduction!r}.")
    for name, value in (("steps", steps), ("restarts", restarts)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise UserError(f"{name} must be a whole number of at least 1, not {value!r}.")
    if not (lr == "auto" or (isinstance(lr, (int, float)) and lr > 0)) or not 0 <= momentum < 1:
        raise UserError(f"lr must be positive or 'auto' and momentum in [0, 1) (got lr={lr!r}, momentum={momentum!r}).")
    device = next(G.parameters()).device
    target = _as_target(target).to(device)

    if start is not None:
        if restarts != 1:
            raise UserError("restarts > 1 needs random starts; leave start=None or set restarts=1.")
        z0 = _as_vector(start, "start").cpu().reshape(1, -1)
        if z0.shape[1] != G.latent_dim:
            raise UserError(f"start has {z0.shape[1]} values but the generator takes {G.latent_dim}; pass a vector found for this generator.")
    elif seed is not None:
        z0 = torch.randn(restarts, G.latent_dim, generator=torch.Generator().manual_seed(seed))
    else:
        z0 = torch.randn(restarts, G.latent_dim)
    z = z0.clone().to(device).requires_grad_(True)
    scale = target.numel() if reduction == "sum" else 1
    lr_auto = lr == "auto"
    if lr_auto:
        lr = auto_lr(G, z0[0], reduction)
    optimizer = torch.optim.SGD([z], lr=lr, momentum=momentum)
    recorded = _frame_steps(steps, frames)
    losses = torch.empty(steps, restarts, device=device)
    kept_frames: list[torch.Tensor] = []

    with _frozen(G):
        for step in range(steps):
            images = G(z)
            per_restart = (images - target).pow(2).flatten(1).mean(1)  # (restarts,)
            losses[step] = per_restart.detach()
            if step in recorded:
                kept_frames.append(images.detach())
            # Summing over restarts gives each vector exactly the gradient it would get alone.
            objective = per_restart.sum() * scale
            (grad,) = torch.autograd.grad(objective, z)
            z.grad = grad
            optimizer.step()
        with torch.no_grad():
            images = G(z)
        kept_frames.append(images)
        final = (images - target).pow(2).flatten(1).mean(1)

    final = final.cpu()
    best = int(torch.nan_to_num(final, nan=math.inf).argmin())
    return Inversion(
        z=z.detach()[best : best + 1].cpu(),
        image=images[best : best + 1].cpu(),
        target=target.cpu(),
        losses=losses[:, best].tolist(),
        final_mse=float(final[best]),
        frames=torch.stack([f[best] for f in kept_frames]).cpu(),
        frame_steps=recorded,
        restart_mses=final.tolist(),
        settings={"steps": steps, "lr": lr, "momentum": momentum, "reduction": reduction, "restarts": restarts, "seed": seed, "lr_auto": lr_auto},
    )


def auto_lr(G: nn.Module, z: torch.Tensor, reduction: str = "mean", probes: int = 8) -> float:
    """A learning rate matched to how strongly G's image reacts to z near `z`.

    How fast a fixed learning rate moves z depends on the generator: a
    barely trained one changes its pixels by about 0.001 per unit of a
    coordinate, a trained one by about 0.01 or more, and the curvature of
    the squared error grows with the square of that. This returns one over
    the trace of the Gauss-Newton curvature (2 * sum of squared Jacobian
    columns, times 12,288 for ``reduction='sum'``), estimated with
    :func:`coordinate_influence`; the trace bounds the largest curvature,
    so SGD with momentum 0.9 stays stable (it needs lr * curvature < 3.8).
    """
    influence = coordinate_influence(G, z, probes=probes)
    trace = 2 * float(influence.pow(2).sum()) * (3 * 64 * 64 if reduction == "sum" else 1)
    if not trace > 0:
        raise UserError("the generator's image does not react to the latent vector at all, so no learning rate helps; load a trained checkpoint.")
    return 1 / trace


def steps_to_settle(losses: Sequence[float], final: float, tolerance: float = 0.05) -> int | None:
    """Updates after which the error stays within `tolerance` of its total fall; None if it never fell.

    With ``tolerance=0.05`` this is the step from which 95 % of the drop from
    the first to the final error is done for good. A curve still falling
    steeply at the end reports a number close to its length: run longer.
    """
    curve = [*losses, final]
    drop = curve[0] - final
    if not drop > 0:
        return None
    for step in range(len(curve)):
        if max(curve[step:]) - final <= tolerance * drop:
            return step
    return len(curve) - 1


def describe_convergence(result: Inversion) -> str:
    """One phrase saying how far an inversion got: diverged, barely moved, settled, or still falling."""
    steps, start, final = result.settings.get("steps", len(result.losses)), result.losses[0], result.final_mse
    if not math.isfinite(final):
        return "diverged (the error became NaN or infinite)"
    fall = 1 - final / start if start > 0 else 0.0
    if fall < 0:
        return f"ended {-fall:.1%} above its starting error after {steps} steps"
    if fall < 0.01:
        return f"barely moved the error ({fall:.2%} lower after {steps} steps)"
    settled = steps_to_settle(result.losses, final)
    if settled is not None and settled <= 0.8 * steps:
        return f"lowered the error by {fall:.0%} and settled after about {settled} steps"
    return f"lowered the error by {fall:.0%} in {steps} steps and was still falling at the end"


def flat_baseline(target: torch.Tensor) -> float:
    """MSE of the best single-colour image (the target's mean colour) against `target`.

    A yardstick for a final error: an imitation no better than this has
    matched at most the overall colour of the picture, not its structure.
    """
    target = _as_target(target)
    return float((target - target.mean(dim=(2, 3), keepdim=True)).pow(2).mean())


# ---- generating, interpolating and editing ------------------------------------------------------


def generate(G: nn.Module, z: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """Images (N, 3, 64, 64) on the CPU from latents (N, 128), in eval mode, leaving G's mode as it was."""
    device = next(G.parameters()).device
    was_training = G.training
    try:
        G.eval()
        with torch.no_grad():
            z = z.reshape(-1, G.latent_dim)
            return torch.cat([G(chunk.to(device)).cpu() for chunk in z.split(batch_size)])
    finally:
        G.train(was_training)


def _as_vector(z: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(z, torch.Tensor) or z.numel() != z.shape[-1] or z.dim() > 2:
        raise UserError(f"{name} must be one latent vector of shape (128,) or (1, 128), not {getattr(z, 'shape', type(z).__name__)}.")
    return z.detach().reshape(-1).float()


def interpolate(z_a: torch.Tensor, z_b: torch.Tensor, steps: int, method: str = "lerp") -> torch.Tensor:
    """Point 16: a (steps, 128) path whose first row is exactly `z_a` and last exactly `z_b`.

    ``'lerp'`` walks the straight line. ``'slerp'`` turns the direction along
    the great circle between the two and moves the length linearly from
    |z_a| to |z_b|. Gaussian latents in 128 dimensions lie near a sphere of
    radius about sqrt(128); the midpoint of a straight line between two of
    them is about 1/sqrt(2) as long, a vector the generator rarely saw in
    training, while slerp's stay at typical lengths.
    """
    if method not in METHODS:
        raise UserError(f"method must be one of {', '.join(METHODS)}, not {method!r}.")
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise UserError(f"steps must be a whole number of at least 2 (both ends are included), not {steps!r}.")
    a, b = _as_vector(z_a, "z_a"), _as_vector(z_b, "z_b")
    if a.shape != b.shape:
        raise UserError(f"z_a and z_b must have the same length, not {a.numel()} and {b.numel()}.")
    t = torch.linspace(0, 1, steps, device=a.device).unsqueeze(1)
    norm_a, norm_b = a.norm(), b.norm()
    cosine = torch.dot(a, b) / (norm_a * norm_b) if norm_a > 0 and norm_b > 0 else torch.tensor(1.0)
    if method == "lerp" or cosine > 0.9995:  # (almost) parallel: the arc is a straight line
        path = (1 - t) * a + t * b
    else:
        if cosine < -0.9995:
            raise UserError("z_a and z_b point in opposite directions, so no single great circle joins them; use method='lerp'.")
        omega = torch.arccos(cosine.clamp(-1, 1))
        direction = (torch.sin((1 - t) * omega) * a / norm_a + torch.sin(t * omega) * b / norm_b) / torch.sin(omega)
        path = direction * ((1 - t) * norm_a + t * norm_b)
    path[0], path[-1] = a, b  # exact ends, whatever the rounding inside
    return path


def edit_coordinates(z: torch.Tensor, coords: Sequence[int], values: Sequence[float], mode: str = "set") -> torch.Tensor:
    """Point 14: copies of `z` with one coordinate changed each, shape (len(coords) * len(values), 128).

    Row ``i * len(values) + j`` has coordinate ``coords[i]`` set to (``mode='set'``)
    or shifted by (``mode='add'``) ``values[j]``; a grid with
    ``nrow=len(values)`` shows one coordinate per row.
    """
    z = _as_vector(z, "z")
    if mode not in ("set", "add"):
        raise UserError(f"mode must be 'set' or 'add', not {mode!r}.")
    if not coords or not values:
        raise UserError("pass at least one coordinate and one value to edit.")
    bad = [c for c in coords if not 0 <= int(c) < z.numel()]
    if bad:
        raise UserError(f"coordinates {bad} are outside the latent vector; use indices 0 to {z.numel() - 1}.")
    rows = z.repeat(len(coords) * len(values), 1)
    for i, coord in enumerate(coords):
        for j, value in enumerate(values):
            row = i * len(values) + j
            rows[row, int(coord)] = value if mode == "set" else rows[row, int(coord)] + value
    return rows


def coordinate_influence(G: nn.Module, z: torch.Tensor, probes: int = 8, seed: int = 0) -> torch.Tensor:
    """How strongly each coordinate of `z` moves the image: (128,) RMS pixel change per unit change.

    The exact answer needs 128 extra images; this estimates it from `probes`
    random projections of the Jacobian J (for random v, the expected square
    of (v^T J)_i is the squared length of column i), one batched backward
    pass. It is a local slope: large edits can behave differently.
    """
    device = next(G.parameters()).device
    zs = _as_vector(z, "z").to(device).repeat(probes, 1).requires_grad_(True)
    with _frozen(G):
        images = G(zs)
        v = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed)).to(device)
        (grads,) = torch.autograd.grad((images * v).sum(), zs)
    return (grads.pow(2).mean(0) / images[0].numel()).sqrt().cpu()


# ---- choosing checkpoints and images, saving vectors --------------------------------------------


def checkpoint_for_epoch(run_dir: str | Path, epoch: int = -1) -> tuple[int, Path]:
    """The saved checkpoint of `epoch` in a run (-1: the last one saved), as (epoch, path)."""
    saved = runs.checkpoints(run_dir)
    if not saved:
        raise UserError(f"{run_dir} has no checkpoints yet; train it for at least save_every epochs first.")
    if epoch == -1:
        epoch = max(saved)
    if epoch not in saved:
        raise UserError(f"{Path(run_dir).name} has no checkpoint for epoch {epoch}; choose one of {list(saved)} (or -1 for the last).")
    return epoch, saved[epoch]


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
    import numpy as np

    from gan_helpers.prepare import Dropped, convert_file

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

    The file holds the vector, its final error, the loss curve, the
    settings and the evolution frames (as 8-bit images); a PNG of the same
    name shows the target and the evolution in one row (point 13: save the
    evolution and the final vector). Nothing is ever overwritten: the same
    vector again returns the existing file, a different one gets the next
    free ``-vN`` name.
    """
    folder = Path(run_dir) / "latents"
    folder.mkdir(exist_ok=True)
    stem = f"epoch-{epoch:06d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name).strip('_') or 'latent'}"
    record = {
        "z": result.z, "final_mse": result.final_mse, "losses": result.losses, "epoch": epoch,
        "settings": result.settings, "frame_steps": result.frame_steps,
        "frames": (result.frames.clamp(0, 1) * 255).round().to(torch.uint8),
    }
    for version in range(1, 1000):
        path = folder / (f"{stem}.pt" if version == 1 else f"{stem}-v{version}.pt")
        try:
            with open(path, "xb") as f:  # exclusive: fails rather than overwrite
                torch.save(record, f)
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


# ---- figures ------------------------------------------------------------------------------------


def show_inversion(result: Inversion, title: str | None = None, size: float = 1.5):
    """Target, then the image at each recorded step (random -> imitation), then the loss curve."""
    pictures = [(result.target[0], "target")] + [(f, f"step {s}") for f, s in zip(result.frames, result.frame_steps)]
    fig = plt.figure(figsize=(size * (len(pictures) + 3), size * 1.5), layout="constrained")
    grid = fig.add_gridspec(1, len(pictures) + 1, width_ratios=[1] * len(pictures) + [3])
    for i, (image, label) in enumerate(pictures):
        ax = fig.add_subplot(grid[0, i])
        ax.imshow(image.clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(label, fontsize="small")
        ax.set_axis_off()
    plot_inversion_losses({"": result}, ax=fig.add_subplot(grid[0, -1]), legend=False)
    if title:
        fig.suptitle(title)
    return fig


def plot_inversion_losses(results: dict[str, Inversion], ax=None, legend: bool = True):
    """Loss curves (MSE per step) of several inversions on one axes; log scale when they span a factor of 3."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    values = []
    for label, result in results.items():
        curve = [*result.losses, result.final_mse]
        values += [v for v in curve if math.isfinite(v) and v > 0]
        ax.plot(range(len(curve)), curve, marker="." if len(curve) < 30 else None, label=label or None)
    if values and max(values) > 3 * min(values):
        ax.set_yscale("log")
    else:  # a flat curve: plain numbers read better than log ticks 1e-1 apart
        ax.ticklabel_format(axis="y", style="plain", useOffset=False)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("SGD step")
    ax.set_ylabel("MSE")
    ax.grid(alpha=0.3, which="both")
    if legend and any(results):
        ax.legend(fontsize="small")
    return ax


def show_rows(rows: dict[str, torch.Tensor], title: str | None = None, size: float = 1.3):
    """One labelled row of images per entry (e.g. one per generator or per method), all (N, 3, 64, 64)."""
    width = max(r.shape[0] for r in rows.values())
    fig, axes = plt.subplots(len(rows), 1, figsize=(size * width, size * len(rows) + 0.6), squeeze=False)
    for ax, (label, images) in zip(axes[:, 0], rows.items()):
        ax.imshow(image_grid(images, nrow=images.shape[0]).permute(1, 2, 0).numpy(), interpolation="nearest")
        ax.set_title(label, fontsize="small", loc="left")
        ax.set_axis_off()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_edits(original: torch.Tensor, edited: torch.Tensor, coords: Sequence[int], values: Sequence[float], title: str | None = None, size: float = 1.3):
    """Point 14 grid: the unedited image, then one row per coordinate and one column per value."""
    fig, axes = plt.subplots(len(coords), len(values) + 1, figsize=(size * (len(values) + 1), size * len(coords) + 0.8), squeeze=False)
    for i, coord in enumerate(coords):
        for j in range(len(values) + 1):
            image = original.reshape(3, 64, 64) if j == 0 else edited[i * len(values) + j - 1]
            ax = axes[i, j]
            ax.imshow(image.clamp(0, 1).permute(1, 2, 0).numpy(), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title("found" if j == 0 else f"{values[j - 1]:+g}", fontsize="small")
        axes[i, 0].set_ylabel(f"z[{coord}]", fontsize="small")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
