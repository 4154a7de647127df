"""The training loop: one discriminator step, one generator step, epochs, fit.

Plain functions with explicit arguments (points 7, 8 and 9 of the exercise).

Which network is in which mode. The generator stays in train mode for the
whole of training: in the discriminator step it only produces fakes (under
``no_grad``), so none of its parameters can change; its batch-norm running
statistics (buffers, not weights) follow its output there as in its own
step, and are used only when sampling in eval mode.

The discriminator is in train mode for its own step and in eval mode for the
generator's step. Its step sees a joined batch of reals and fakes, so its
batch norm learns to separate the two within such a batch. Judging a batch
of fakes only with that batch's own statistics would re-centre the fakes as
if they were a typical mixed batch, and the discriminator would call them
real no matter what they look like (seen in practice: loss_G near 0.07
while the discriminator step gave fakes D(G(z)) = 0.04), which leaves the
generator without a useful gradient. In eval mode the batch norm uses the
running statistics gathered in the discriminator's own steps and dropout is
off, so the generator is graded by the function the discriminator actually
learned, and the discriminator's state, buffers included, is untouched.

Each step computes gradients with ``torch.autograd.grad`` with respect to
the trained network's parameters only, so the other network never even
holds a ``.grad``.

``precision`` picks the path (see gan_helpers.speed): ``"bf16"``, the fast
path, runs each step's forward pass under bfloat16 autocast, entered and
left inside the step, and computes the losses in float32; ``"fp32"`` is the
plain float32 reference; ``"auto"``, the default, is bf16 where the device
computes bfloat16 natively and fp32 elsewhere. Networks, batch size and
update rules are the same.
"""

from __future__ import annotations

import contextlib
import functools
import math
import time
from collections.abc import Callable, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from gan_helpers import speed
from gan_helpers.averaging import update_average

METRICS = ("loss_D", "loss_G", "D_x", "D_G_z")


def jitter_labels(labels: torch.Tensor, amount: float) -> torch.Tensor:
    """Add uniform noise in [-amount, amount] and fold the result back into [0, 1].

    Binary cross entropy needs targets in [0, 1]. Clamping would pile half of
    the noise onto exactly 0 and 1; reflecting at the bounds instead keeps
    the jitter uniform: a real label becomes 1 - |u| and a fake one |u|.
    """
    noisy = labels + (torch.rand_like(labels) * 2 - 1) * amount
    noisy = noisy.abs()  # reflect below 0
    return 1 - (1 - noisy).abs()  # reflect above 1


def _apply_gradients(loss: torch.Tensor, model: nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Gradients of `loss` with respect to `model`'s parameters only, then one optimizer step."""
    params = [p for p in model.parameters() if p.requires_grad]
    grads = torch.autograd.grad(loss, params)
    for param, grad in zip(params, grads):
        param.grad = grad
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def d_step(
    D: nn.Module,
    G: nn.Module,
    opt_D: torch.optim.Optimizer,
    real: torch.Tensor,
    label_noise: float = 0.05,
    precision: str = "auto",
) -> dict[str, torch.Tensor]:
    """Point 7: one discriminator update on B real images and B fresh fakes.

    Real images are labelled 1 and fakes 0, the labels jittered by
    ``label_noise``; only D's weights are updated. Returns ``loss_D`` and
    the mean probabilities ``D_x`` (reals) and ``D_G_z`` (fakes), as
    0-dimensional tensors on the device (no host synchronisation).
    ``precision`` "bf16" runs the forward passes in bfloat16, "fp32" in float32
    ("auto": see the module docstring).
    """
    batch = real.shape[0]
    z = torch.randn(batch, G.latent_dim, device=real.device)
    labels = torch.cat([torch.ones(batch, device=real.device), torch.zeros(batch, device=real.device)])
    labels = jitter_labels(labels, label_noise)
    with speed.autocast(real.device, precision):  # bf16 forward passes on the fast path only
        with torch.no_grad():
            fake = G(z)
        logits = D.logits(torch.cat([real, fake])).float()  # the loss is computed in float32
    loss_D = F.binary_cross_entropy_with_logits(logits, labels)
    _apply_gradients(loss_D, D, opt_D)
    probs = logits.detach().sigmoid()
    return {"loss_D": loss_D.detach(), "D_x": probs[:batch].mean(), "D_G_z": probs[batch:].mean()}


def g_step(
    D: nn.Module, G: nn.Module, opt_G: torch.optim.Optimizer, batch: int, precision: str = "auto"
) -> dict[str, torch.Tensor]:
    """Point 8: one generator update on B fresh fakes labelled 1 (no label noise, no reals).

    Only G's weights are updated. D judges in eval mode (see the module
    docstring) and is returned to the mode it was in. Returns ``loss_G`` as
    a 0-dimensional tensor.
    """
    device = next(G.parameters()).device
    z = torch.randn(batch, G.latent_dim, device=device)
    was_training = D.training
    D.eval()
    try:
        with speed.autocast(device, precision):  # bf16 forward passes on the fast path only
            logits = D.logits(G(z)).float()  # the loss is computed in float32
    finally:
        D.train(was_training)
    loss_G = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    _apply_gradients(loss_G, G, opt_G)
    return {"loss_G": loss_G.detach()}


def train_step(
    D: nn.Module,
    G: nn.Module,
    opt_D: torch.optim.Optimizer,
    opt_G: torch.optim.Optimizer,
    real: torch.Tensor,
    *,
    label_noise: float = 0.05,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    precision: str = "auto",
    G_ema: nn.Module | None = None, ema_decay: float = 0.0,
) -> torch.Tensor:
    """Points 7 then 8 on one batch of real images (augmented first, if asked).

    Then `G_ema`, if given, takes one step towards G (:mod:`gan_helpers.averaging`).
    Returns ``loss_D, loss_G, D_x, D_G_z`` (:data:`METRICS`) stacked in one
    tensor on the device, so an epoch can add them up without waiting.
    """
    if augment is not None:
        real = augment(real)
    d = d_step(D, G, opt_D, real, label_noise, precision)
    g = g_step(D, G, opt_G, real.shape[0], precision)
    if G_ema is not None:
        update_average(G_ema, G, ema_decay)
    return torch.stack([d["loss_D"], g["loss_G"], d["D_x"], d["D_G_z"]])


def train_epoch(
    D: nn.Module,
    G: nn.Module,
    opt_D: torch.optim.Optimizer,
    opt_G: torch.optim.Optimizer,
    images: torch.Tensor,
    batch_size: int,
    *,
    label_noise: float = 0.05,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    bar: tqdm | None = None,
    precision: str = "auto",
    step: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, float]:
    """Points 7 and 8 over the whole training set once, in a fresh random order.

    `images` is the whole data set as one tensor on the training device; the
    last batch may be smaller. Losses are summed on the device and read once
    at the end, so the loop never waits for the GPU. `bar`, if given, counts the batches. `step` runs one batch
    (:func:`fit` passes a prepared, possibly graph-captured one); by default
    :func:`train_step` with the settings given here. Returns the epoch means
    of :data:`METRICS`.
    """
    if step is None:
        step = functools.partial(train_step, D, G, opt_D, opt_G,
                                 label_noise=label_noise, augment=augment, precision=precision)
    order = torch.randperm(images.shape[0], device=images.device)
    totals = torch.zeros(len(METRICS), device=images.device)
    batches = order.split(batch_size)
    for index in ticking(batches, bar):
        totals += step(images[index])
    means = (totals / len(batches)).tolist()
    return dict(zip(METRICS, means))


def ticking(batches: Sequence, bar: tqdm | None) -> Iterator:
    """`batches` one by one, ticking `bar` (if any) after each."""
    if bar is not None:
        bar.reset(total=len(batches))
    for batch in batches:
        yield batch
        if bar is not None:
            bar.update(1)


def prepare_training(
    D: nn.Module,
    G: nn.Module,
    opt_D: torch.optim.Optimizer,
    opt_G: torch.optim.Optimizer,
    images: torch.Tensor,
    batch_size: int,
    *,
    label_noise: float = 0.05,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    precision: str = "auto",
    graphs: bool | None = None,
    G_ema: nn.Module | None = None, ema_decay: float = 0.0,
) -> tuple[torch.Tensor, speed.GraphedStep]:
    """Set up the chosen path; returns the images to train on and the step :func:`train_epoch` should run.

    The fast path moves models, optimizer state and images to channels_last
    (:func:`gan_helpers.speed.prepare`: values and state dict shapes stay the
    same). ``graphs`` replays each full batch's step as a CUDA graph; by
    default it is on for bf16 on CUDA. Call it after loading checkpoints.
    """
    precision = speed.choose_precision(images.device, precision)
    if graphs is None:
        graphs = precision == "bf16" and images.device.type == "cuda"
    models = (D, G) if G_ema is None else (D, G, G_ema)
    images = speed.prepare(models, (opt_D, opt_G), images, precision, graphs)
    step = speed.GraphedStep(
        functools.partial(train_step, D, G, opt_D, opt_G, label_noise=label_noise, augment=augment, precision=precision,
                          G_ema=G_ema, ema_decay=ema_decay),
        batch_size, models=models, optimizers=(opt_D, opt_G), capture=graphs,
    )
    return images, step


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; `epoch` is the first bad epoch."""

    def __init__(self, epoch: int, stats: dict[str, float]) -> None:
        self.epoch = epoch
        self.stats = stats
        bad = ", ".join(f"{k}={v}" for k, v in stats.items() if not math.isfinite(v))
        super().__init__(f"training diverged at epoch {epoch} ({bad})")


EpochHook = Callable[[int, dict], None]


@contextlib.contextmanager
def progress_bars(progress: bool, epochs: int, start_epoch: int, batches: int) -> Iterator[tuple[tqdm, EpochHook]]:
    """For :func:`fit`: a bar of the epochs with the last losses, ticked by the hook yielded, and one bar of batches
    that every epoch reuses (so a notebook never holds a closed bar per epoch)."""
    epoch_bar = tqdm(total=epochs, initial=start_epoch, desc="epochs", unit="epoch", disable=not progress)
    batch_bar = tqdm(total=batches, desc="batches", unit="batch", disable=not progress)

    def show(epoch: int, stats: dict) -> None:
        epoch_bar.update(1)
        epoch_bar.set_postfix(loss_D=f"{stats['loss_D']:.3f}", loss_G=f"{stats['loss_G']:.3f}")

    try:
        yield batch_bar, show
    finally:
        batch_bar.close()
        epoch_bar.close()


def fit(
    D: nn.Module,
    G: nn.Module,
    opt_D: torch.optim.Optimizer,
    opt_G: torch.optim.Optimizer,
    images: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    start_epoch: int = 0,
    label_noise: float = 0.05,
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    hooks: Sequence[EpochHook] = (),
    progress: bool = True,
    precision: str = "auto",
    graphs: bool | None = None,
    stop: Callable[[int, dict], bool] | None = None,
    G_ema: nn.Module | None = None, ema_decay: float = 0.0,
) -> list[dict]:
    """Train from epoch ``start_epoch + 1`` to ``epochs``; call every hook after every epoch.

    A hook receives ``(epoch, stats)`` where stats holds the epoch's mean
    losses and probabilities and its wall time in seconds; saving, sampling
    and logging are hooks (see gan_helpers.runs.experiment). Raises
    :class:`TrainingDiverged` before any hook runs if a loss is not finite,
    so nothing from a broken epoch is saved. Returns every epoch's stats.

    ``precision`` picks the fast path ("bf16"), the fp32 reference or "auto" and
    ``graphs`` whether full batches replay as a CUDA graph (see
    :func:`prepare_training`); `G_ema` follows G as in :func:`train_step`. Load checkpoints before calling; the learning
    rates are fixed for the whole call, so ``stop(epoch, stats)``, asked
    after each epoch's hooks, ends the call early when a rate must change
    (call again from that epoch).
    """
    D.train()
    G.train()
    images, step = prepare_training(D, G, opt_D, opt_G, images, batch_size, label_noise=label_noise,
                                    augment=augment, precision=precision, graphs=graphs, G_ema=G_ema, ema_decay=ema_decay)
    history = []
    with progress_bars(progress, epochs, start_epoch, math.ceil(images.shape[0] / batch_size)) as (batches, show):
        for epoch in range(start_epoch + 1, epochs + 1):
            started = time.perf_counter()
            stats = train_epoch(D, G, opt_D, opt_G, images, batch_size, bar=batches, step=step)
            stats = {"epoch": epoch, **stats, "seconds": round(time.perf_counter() - started, 3)}
            if not all(math.isfinite(stats[name]) for name in METRICS):
                raise TrainingDiverged(epoch, {name: stats[name] for name in METRICS})
            for hook in (*hooks, show):
                hook(epoch, stats)
            history.append(stats)
            if stop is not None and stop(epoch, stats):
                break
    return history
