"""Latent-space tools for points 13-17: inversion, interpolation, single-coordinate edits.

A trained generator is a function from 128 numbers to an image. Inverting it
(point 13) searches for the numbers whose image best matches a given picture,
by gradient descent on the latent vector alone; the network's weights stay
exactly as they were. The vectors found can then be edited one coordinate at
a time (point 14) or blended into one another (point 16).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from gan_helpers.errors import UserError

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
    frames: int = 8,
    progress: bool = False,
) -> Inversion:
    """Point 13: a latent vector whose image matches `target`, found by SGD on the vector alone.

    Starts from standard normal noise (drawn on the CPU from `seed`, so the
    same on every device) and takes `steps` SGD updates (learning rate `lr`, `momentum`) of the
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
    on the device and read once at the end. ``progress`` shows a bar over the
    steps (restarts run together, so one bar covers them all) whose last line
    keeps the time taken and the best final error.
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

    if seed is not None:
        z0 = torch.randn(restarts, G.latent_dim, generator=torch.Generator().manual_seed(seed))
    else:
        z0 = torch.randn(restarts, G.latent_dim)
    starts = f", {restarts} starts at once" if restarts > 1 else ""
    z = z0.clone().to(device).requires_grad_(True)
    scale = target.numel() if reduction == "sum" else 1
    lr_auto = lr == "auto"
    if lr_auto:
        lr = auto_lr(G, z0[0], reduction)
    optimizer = torch.optim.SGD([z], lr=lr, momentum=momentum)
    recorded = _frame_steps(steps, frames)
    losses = torch.empty(steps, restarts, device=device)
    kept_frames: list[torch.Tensor] = []
    bar = tqdm(total=steps, desc=f"inversion ({reduction} error, lr {lr:.3g}{starts})", unit="step", disable=not progress)

    with _frozen(G), bar:
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
            bar.update()  # no loss in the bar: reading it every step would wait for the device
        with torch.no_grad():
            images = G(z)
        kept_frames.append(images)
        final = (images - target).pow(2).flatten(1).mean(1).cpu()
        best = int(torch.nan_to_num(final, nan=math.inf).argmin())
        bar.set_postfix_str(f"final MSE {float(final[best]):.5f}", refresh=False)  # shown as the bar closes

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


def flat_baseline(target: torch.Tensor) -> float:
    """MSE of the best single-colour image (the target's mean colour) against `target`.

    A yardstick for a final error: an imitation no better than this has
    matched at most the overall colour of the picture, not its structure.
    """
    target = _as_target(target)
    return float((target - target.mean(dim=(2, 3), keepdim=True)).pow(2).mean())


# ---- interpolating and editing ------------------------------------------------------------------

def as_latent_vector(z: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(z, torch.Tensor) or z.numel() != z.shape[-1] or z.dim() > 2:
        raise UserError(f"{name} must be one latent vector of shape (128,) or (1, 128), not {getattr(z, 'shape', type(z).__name__)}.")
    return z.detach().reshape(-1).float()


def coordinate_influence(G: nn.Module, z: torch.Tensor, probes: int = 8, seed: int = 0) -> torch.Tensor:
    """How strongly each coordinate of `z` moves the image: (128,) RMS pixel change per unit change.

    The exact answer needs 128 extra images; this estimates it from `probes`
    random projections of the Jacobian J (for random v, the expected square
    of (v^T J)_i is the squared length of column i), one batched backward
    pass. It is a local slope: large edits can behave differently.
    """
    device = next(G.parameters()).device
    zs = as_latent_vector(z, "z").to(device).repeat(probes, 1).requires_grad_(True)
    with _frozen(G):
        images = G(zs)
        v = torch.randn(images.shape, generator=torch.Generator().manual_seed(seed)).to(device)
        (grads,) = torch.autograd.grad((images * v).sum(), zs)
    return (grads.pow(2).mean(0) / images[0].numel()).sqrt().cpu()


# ---- reading results ----------------------------------------------------------------------------

SETTINGS = ("steps", "lr", "momentum", "reduction", "restarts")  # what a variant of the inversion may set


def settings_label(result: Inversion) -> str:
    """The settings of an inversion in a few words, e.g. 'sum squared error, auto lr = 0.0021, best of 8 starts'."""
    s = result.settings
    restarts = f", best of {s['restarts']} starts" if s.get("restarts", 1) > 1 else ""
    lr = f"auto lr = {s['lr']:.3g}" if s.get("lr_auto") else f"lr {s['lr']:g}"
    return f"{s['reduction']} squared error, {lr}{restarts}"


def best_result(results: dict[str, Inversion]) -> str:
    """The label of the inversion with the lowest final error (a diverged one, NaN, never wins)."""
    return min(results, key=lambda label: results[label].final_mse if math.isfinite(results[label].final_mse) else math.inf)


def step_changes(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute pixel change between consecutive images of a sequence (an interpolation, say)."""
    return (images[1:] - images[:-1]).abs().flatten(1).mean(1)


