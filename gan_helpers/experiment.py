"""Training runs: start one, resume one, and the ``train`` command line (points 9, 10).

:func:`train` builds the networks and optimizers from a :class:`TrainConfig`,
creates a run folder (or continues one) and calls
:func:`gan_helpers.training.fit` with three end-of-epoch hooks: append the
metrics, and every ``save_every`` epochs save a sample grid from the fixed
noise and a full checkpoint.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import fields
from pathlib import Path

import torch

from gan_helpers import runs
from gan_helpers.config import TrainConfig, resumable
from gan_helpers.errors import UserError
from gan_helpers.models import Discriminator, build_generator
from gan_helpers.paths import from_root, shown
from gan_helpers.plots import save_grid
from gan_helpers.training import TrainingDiverged, fit
from gan_helpers.utils import pick_device, rng_state, seed_everything, set_rng_state


def build_models(config: TrainConfig, device: torch.device):
    """G, D and their Adam optimizers, initialised from ``config.seed`` (identically on any device)."""
    seed_everything(config.seed)
    G = build_generator(config.generator)
    D = Discriminator(dropout=config.dropout)
    G.to(device)
    D.to(device)
    opt_G = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=(config.beta1, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=config.lr_d, betas=(config.beta1, 0.999))
    return G, D, opt_G, opt_D


def draw_fixed_noise(config: TrainConfig) -> torch.Tensor:
    """The fixed latent vectors, drawn from their own CPU generator: the same on every device."""
    generator = torch.Generator().manual_seed(config.seed)
    return torch.randn(config.fixed_noise, build_generator(config.generator).latent_dim, generator=generator)


def _make_augment(config: TrainConfig):
    if not config.augment:
        return None
    from gan_helpers.augment import Augment

    return Augment(flip=config.flip, zoom=config.zoom, rotate_degrees=config.rotate_degrees)


def _sample(G, fixed_z: torch.Tensor) -> torch.Tensor:
    """Images from the fixed noise in eval mode, leaving G's mode and state as they were."""
    was_training = G.training
    G.eval()
    with torch.no_grad():
        images = G(fixed_z)
    G.train(was_training)
    return images


def train(config: TrainConfig | None = None, *, resume: str | Path | None = None, **overrides) -> Path:
    """Run training and return the run folder.

    A new run: ``train(TrainConfig(...))`` or ``train(epochs=5, data=...)``.
    Resuming: ``train(resume=run_dir_or_checkpoint, epochs=N)`` continues up
    to N epochs in total, restoring both networks, both optimizers and every
    RNG state, so the result is the same as a run that never stopped. A run
    folder resumes from its newest checkpoint; an older checkpoint starts a
    new run folder that carries the history up to that epoch, so nothing
    saved later is ever overwritten.
    """
    if resume is not None:
        if config is not None:
            raise UserError("pass either a config or resume=…, not both; changes to a resumed run go as keyword arguments.")
        return _resume(Path(resume), overrides)
    config = (config or TrainConfig()).replace(**overrides)
    device = pick_device(config.device)
    images = _load_images(config, device)
    G, D, opt_G, opt_D = build_models(config, device)
    fixed_z = draw_fixed_noise(config)

    tag = config.name or f"{Path(config.data).name}-{config.generator}"
    run_dir = runs.create_run_dir(from_root(config.runs_dir), tag)
    runs.write_config(run_dir, config.to_dict())
    torch.save(fixed_z, run_dir / "fixed_noise.pt")
    save_grid(images[: config.fixed_noise], run_dir / "reals.png")
    save_grid(_sample(G, fixed_z.to(device)), run_dir / "samples" / runs.epoch_name(0, "png"))
    print(f"Run folder: {shown(run_dir)}")
    _fit(run_dir, config, G, D, opt_G, opt_D, images, fixed_z.to(device), start_epoch=0)
    return run_dir


def train_or_resume(config: TrainConfig) -> Path:
    """The run for `config` in ``config.runs_dir``: reused, continued or started.

    A run counts as the same when every setting matches except the number
    of epochs and settings that do not shape training (save_every, device,
    progress). If its newest checkpoint
    has reached ``config.epochs`` it is returned untouched; otherwise it is
    resumed up to ``config.epochs``; with no such run a new one starts. This
    makes an interrupted notebook or report build pick up where it stopped.
    """
    free = ("epochs", "save_every", "device", "progress")
    wanted = {k: v for k, v in config.to_dict().items() if k not in free}
    for run_dir in reversed(runs.find_runs(from_root(config.runs_dir), config.generator)):
        saved = runs.read_config(run_dir)
        if {k: saved.get(k) for k in wanted} != wanted or not runs.checkpoints(run_dir):
            continue
        last = max(runs.checkpoints(run_dir))
        if last >= config.epochs:
            print(f"Reusing {shown(run_dir)} (trained to epoch {last})")
            return run_dir
        changes = {k: getattr(config, k) for k in free}
        return train(resume=run_dir, **changes)
    return train(config)


def _resume(target: Path, overrides: dict) -> Path:
    target = from_root(target)
    state = runs.load_checkpoint(target)
    saved = TrainConfig.from_dict(state["config"])
    fixed = {k: v for k, v in overrides.items() if not resumable(k) and v != getattr(saved, k, v)}
    if fixed:
        names = ", ".join(sorted(fixed))
        raise UserError(f"{names} cannot change when resuming; start a new run instead.")
    config = saved.replace(**{k: v for k, v in overrides.items() if resumable(k)})
    epoch = state["epoch"]
    if config.epochs <= epoch:
        raise UserError(f"the checkpoint is already at epoch {epoch}; pass --epochs larger than {epoch} to continue.")

    run_dir = target if target.is_dir() else target.parent.parent
    if max(runs.checkpoints(run_dir)) > epoch:
        run_dir = _fork(run_dir, epoch, config)
        print(f"Epoch {epoch} is not the newest checkpoint, so training continues in a new run folder: {shown(run_dir)}")
    else:
        runs.truncate_metrics(run_dir, epoch)

    device = pick_device(config.device)
    images = _load_images(config, device)
    G, D, opt_G, opt_D = build_models(config, device)
    G.load_state_dict(state["G"])
    D.load_state_dict(state["D"])
    opt_G.load_state_dict(state["opt_G"])
    opt_D.load_state_dict(state["opt_D"])
    for opt, lr in ((opt_G, config.lr_g), (opt_D, config.lr_d)):
        for group in opt.param_groups:
            group["lr"] = lr
    set_rng_state(state["rng"])
    runs.write_config(run_dir, config.to_dict())
    fixed_z = torch.load(run_dir / "fixed_noise.pt", weights_only=True).to(device)
    print(f"Resuming {shown(run_dir)} from epoch {epoch}")
    with open(run_dir / "resumes.txt", "a") as f:  # the run's history says where it was continued
        f.write(f"resumed from epoch {epoch} on {device}\n")
    _fit(run_dir, config, G, D, opt_G, opt_D, images, fixed_z, start_epoch=epoch)
    return run_dir


def _fork(source: Path, epoch: int, config: TrainConfig) -> Path:
    """A new run folder holding `source`'s history up to `epoch`."""
    run_dir = runs.create_run_dir(source.parent, _run_tag(source))
    for name in ("fixed_noise.pt", "reals.png"):
        shutil.copy2(source / name, run_dir / name)
    for kind, files in (("samples", runs.samples(source)), ("checkpoints", runs.checkpoints(source))):
        for e, path in files.items():
            if e <= epoch:
                shutil.copy2(path, run_dir / kind / path.name)
    (run_dir / "metrics.jsonl").write_text((source / "metrics.jsonl").read_text())
    runs.truncate_metrics(run_dir, epoch)
    runs.write_config(run_dir, {**config.to_dict()})
    (run_dir / "FORKED_FROM").write_text(f"{source / 'checkpoints' / runs.epoch_name(epoch, 'pt')}\n")
    return run_dir


def _run_tag(run_dir: Path) -> str:
    return run_dir.name.split("-", 1)[1]


def _load_images(config: TrainConfig, device: torch.device) -> torch.Tensor:
    from gan_helpers.data import load_dataset

    return load_dataset(from_root(config.data), max_images=config.max_images, min_images=config.batch_size, device=device)


def _fit(run_dir, config, G, D, opt_G, opt_D, images, fixed_z, *, start_epoch: int) -> None:
    device = str(images.device.type)

    def log_metrics(epoch: int, stats: dict) -> None:
        runs.append_metrics(run_dir, {**stats, "device": device})

    def save(epoch: int, stats: dict) -> None:
        if epoch % config.save_every and epoch != config.epochs:
            return
        save_grid(_sample(G, fixed_z), run_dir / "samples" / runs.epoch_name(epoch, "png"))
        runs.save_checkpoint(run_dir, epoch, {
            "epoch": epoch,
            "config": config.to_dict(),
            "G": G.state_dict(),
            "D": D.state_dict(),
            "opt_G": opt_G.state_dict(),
            "opt_D": opt_D.state_dict(),
            "rng": rng_state(),
        })

    try:
        fit(
            D, G, opt_D, opt_G, images,
            epochs=config.epochs, batch_size=config.batch_size, start_epoch=start_epoch,
            label_noise=config.label_noise, augment=_make_augment(config),
            hooks=[log_metrics, save], progress=config.progress,
        )
    except TrainingDiverged as error:
        saved = runs.checkpoints(run_dir)
        if not saved:
            raise UserError(f"{error} before any checkpoint was saved; start again with a lower --lr-g or --lr-d.") from None
        last = saved[max(saved)]
        raise UserError(
            f"{error}; the last good checkpoint is {last}: resume from it with "
            f"`python -m gan_helpers train --resume {last} --epochs {config.epochs}` (and perhaps a lower --lr-g or --lr-d)."
        ) from None


# ---- command line -------------------------------------------------------------------------

HELP = "Train a DCGAN (a new run, or --resume RUN_DIR|CHECKPOINT to continue one)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    for f in fields(TrainConfig):
        flag = "--" + f.name.replace("_", "-")
        kind = {"bool": bool, "int": int, "float": float, "str": str, "int | None": int}[str(f.type)]
        text = f"{f.metadata['help']} (default: {f.default})".replace("%", "%%")
        if kind is bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif f.name == "generator":
            parser.add_argument(flag, dest=f.name, choices=["transposed", "upsampling"], default=None, help=text)
        elif f.name == "device":
            parser.add_argument(flag, dest=f.name, choices=["auto", "cpu", "cuda"], default=None, help=text)
        else:
            parser.add_argument(flag, dest=f.name, type=kind, default=None, metavar=f.name.upper(), help=text)
    parser.add_argument("--resume", metavar="RUN_DIR|CHECKPOINT", help="continue a run from its newest checkpoint, or from a given checkpoint file")


def run(args: argparse.Namespace) -> int:
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig) if getattr(args, f.name) is not None}
    if args.resume:
        run_dir = train(resume=args.resume, **given)
    else:
        run_dir = train(TrainConfig(**given))
    print(f"Done: {shown(run_dir)}")
    return 0
