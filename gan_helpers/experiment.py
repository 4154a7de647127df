"""Training runs of the lab's experiment: start one, resume one, find the lab's two (points 9, 10).

:func:`train` builds the networks and optimizers from a :class:`TrainConfig`,
creates a run folder (or continues one) and calls
:func:`gan_helpers.training.fit` with end-of-epoch hooks: append the epoch's
metrics; every ``sample_every`` epochs a sample grid from the fixed noise and
the quality numbers (``quality.jsonl``, :mod:`gan_helpers.evaluate`); every ``save_every`` epochs a full checkpoint.

:func:`lab_runs` is how notebooks 03–06 find their runs: by the settings
that make runs the same (:meth:`TrainConfig.identity`), never by "the newest
run", so every notebook of one profile sees the same two folders; for the
full profile a shipped result may stand in for them (gan_helpers.shipped).
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import threading
from pathlib import Path

import torch

from gan_helpers import locks, runs, speed
from gan_helpers.animation import save_labelled_grid
from gan_helpers.atomic import atomic_copy
from gan_helpers.config import GENERATOR_KINDS, TrainConfig, resumable
from gan_helpers.errors import UserError
from gan_helpers.evaluate import QUALITY_FILE, append_quality, quality_record, truncate_quality
from gan_helpers.models import Discriminator, build_generator, generate
from gan_helpers.paths import from_root, shown
from gan_helpers.plots import save_grid
from gan_helpers.training import TrainingDiverged, fit
from gan_helpers.utils import pick_device, rng_state, seed_everything, set_rng_state


def build_models(config: TrainConfig, device: torch.device):
    """G, D and their Adam optimizers, initialised from ``config.seed`` (identically on any device)."""
    seed_everything(config.seed)
    G = build_generator(config.generator).to(device)
    D = Discriminator(dropout=config.dropout).to(device)
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
    from gan_helpers.augment import BatchAugment

    return BatchAugment(flip=config.flip, zoom=config.zoom, rotate_degrees=config.rotate_degrees)


def train(config: TrainConfig | None = None, *, resume: str | Path | None = None, watch=None, **overrides) -> Path:
    """Run training and return the run folder.

    A new run: ``train(TrainConfig(...))`` or ``train(epochs=5, data=...)``.
    Resuming: ``train(resume=run_dir_or_checkpoint, epochs=N)`` continues up
    to N epochs in total, restoring both networks, both optimizers and every
    RNG state, so the result is the same as a run that never stopped. A run
    folder resumes from its newest checkpoint; an older checkpoint starts a
    new run folder that carries the history up to that epoch, so nothing
    saved later is ever overwritten.

    `watch` shows the training as it goes: an object whose ``follow(run_dir, epochs, history)`` returns
    an epoch hook with a ``close()`` (:class:`gan_helpers.live.LivePanel`, the notebooks' live panel);
    None (the command line) shows only the progress bars and point 10's warning lines.
    """
    if resume is not None:
        if config is not None:
            raise UserError("pass either a config or resume=…, not both; changes to a resumed run go as keyword arguments.")
        return _resume(Path(resume), overrides, watch)
    config = (config or TrainConfig()).replace(**overrides)
    device = pick_device(config.device)
    precision = speed.setup(device, threads=config.threads, precision=config.precision)["precision"]
    images = _load_images(config, device)
    G, D, opt_G, opt_D = build_models(config, device)
    fixed_z = draw_fixed_noise(config)

    tag = config.name or f"{Path(config.data).name}-{config.generator}"
    run_dir = runs.create_run_dir(from_root(config.runs_dir), tag, config=config.to_dict(), fixed_noise=fixed_z)
    with locks.hold(run_dir, "training"), _removed_unless_trained(run_dir):
        save_grid(images[: config.fixed_noise], run_dir / "reals.png")
        _sample_epoch(run_dir, config, G, fixed_z, images, 0)
        print(f"Run folder: {shown(run_dir)}")
        _fit(run_dir, config, G, D, opt_G, opt_D, images, fixed_z, start_epoch=0, precision=precision, watch=watch)
    return run_dir


@contextlib.contextmanager
def _removed_unless_trained(run_dir: Path):
    """Delete the new run folder `run_dir` when training fails before its first epoch is finished and saved:
    such a folder holds nothing to resume or read, and a run that never started should leave nothing behind."""
    try:
        yield
    except BaseException as error:
        if runs.checkpoints(run_dir) or runs.read_metrics(run_dir):
            raise
        shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(error, UserError):
            raise UserError(f"{str(error).rstrip('.')} (the new run folder {shown(run_dir)} was removed, as it held "
                            f"no finished epoch).") from None
        raise


def find_run(config: TrainConfig, source: str | None = None) -> Path | None:
    """The folder the lab reads for `config`: the shipped result that replaces training, if any
    (:func:`gan_helpers.shipped.shipped_result`), else the newest run in ``config.runs_dir`` with the
    same identity as `config` and a checkpoint, else None."""
    from gan_helpers.shipped import shipped_result

    result = shipped_result(config, source, say=None)
    if result is not None:
        return result
    wanted = config.identity()
    for run_dir in reversed(runs.find_runs(from_root(config.runs_dir), config.generator)):
        saved = runs.read_config(run_dir)
        if {k: saved.get(k) for k in wanted} == wanted and runs.checkpoints(run_dir):
            return run_dir
    return None


def lab_run(config: TrainConfig, generator: str, source: str | None = None, *, watch=None) -> Path:
    """The experiment's run of one generator: a shipped result, or a run reused, continued or started.

    `source` (default ``$LAB_SOURCE``, else auto) decides whether a shipped
    result (``results/reference/<generator>``) stands in for training; see
    :mod:`gan_helpers.shipped`. Otherwise a finished run with the same
    identity (every setting but the schedule: epochs, sample/save intervals,
    device, …) is returned untouched; an unfinished one is resumed up to
    ``config.epochs``; otherwise a new run starts. An interrupted notebook or
    report build therefore picks up where it stopped, and two runs differing
    in one training setting are never confused. `watch` as in :func:`train` (only training shows in it).
    """
    from gan_helpers.shipped import shipped_result

    config = config.replace(generator=generator)
    result = shipped_result(config, source)
    if result is not None:
        print(f"Using the shipped result {shown(result)} (trained elsewhere; LAB_SOURCE=train trains here instead)")
        return result
    run_dir = find_run(config, "train")
    if run_dir is None:
        return train(config, watch=watch)
    last = max(runs.checkpoints(run_dir))
    if last >= config.epochs:
        print(f"Reusing {shown(run_dir)} (trained to epoch {last})")
        return run_dir
    schedule = {k: v for k, v in config.to_dict().items() if k not in config.identity()}
    return train(resume=run_dir, watch=watch, **schedule)


def lab_runs(config: TrainConfig, generators=GENERATOR_KINDS, source: str | None = None, *, watch=None) -> dict[str, Path]:
    """The experiment's runs (or shipped results), one per generator kind: ``{"transposed": Path, "upsampling": Path}``."""
    return {kind: lab_run(config, kind, source, watch=watch) for kind in generators}


def _resume(target: Path, overrides: dict, watch=None) -> Path:
    target = from_root(target)
    folder = target if target.is_dir() else target.parent.parent
    if not ((folder / "config.json").is_file() and (folder / "checkpoints").is_dir()) or runs.is_shipped(folder):
        runs.load_training_state(target)  # not a run folder's: its one sentence, and no lock file is made there
    with contextlib.ExitStack() as held:  # a second resume of the run stops here, before it reads or changes anything
        held.enter_context(locks.hold(folder, "resuming"))
        return _resume_held(target, overrides, held, watch)


def _resume_held(target: Path, overrides: dict, held: contextlib.ExitStack, watch=None) -> Path:
    state = runs.load_training_state(target)  # every key, shape and setting checked; one sentence otherwise
    saved = TrainConfig.from_dict(state["config"])
    run_dir = target if target.is_dir() else target.parent.parent
    _check_written_config(run_dir, saved)
    fixed = {k: v for k, v in overrides.items() if not resumable(k) and v != getattr(saved, k, v)}
    if fixed:
        names = ", ".join(sorted(fixed))
        raise UserError(f"{names} cannot change when resuming; start a new run instead.")
    config = saved.replace(**{k: v for k, v in overrides.items() if resumable(k)})
    epoch = state["epoch"]
    if config.epochs <= epoch:
        raise UserError(f"the checkpoint is already at epoch {epoch}; pass --epochs larger than {epoch} to continue.")

    runs.remove_partials(run_dir)
    if max(runs.checkpoints(run_dir)) > epoch:
        source, run_dir = run_dir, runs.fork_run(run_dir, epoch, config=config.to_dict())
        held.enter_context(locks.hold(run_dir, "resuming"))
        if (source / QUALITY_FILE).is_file():
            atomic_copy(source / QUALITY_FILE, run_dir / QUALITY_FILE)
        print(f"Epoch {epoch} is not the newest checkpoint, so training continues in a new run folder: {shown(run_dir)}")
    else:
        runs.truncate_metrics(run_dir, epoch)
    truncate_quality(run_dir, epoch)

    device = pick_device(config.device)
    precision = speed.setup(device, threads=config.threads, precision=config.precision)["precision"]
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
    fixed_z = runs.load_fixed_noise(run_dir)
    print(f"Resuming {shown(run_dir)} from epoch {epoch}")
    runs.note_resume(run_dir, f"resumed from epoch {epoch} on {device}{_changes(saved, config)}")
    _fit(run_dir, config, G, D, opt_G, opt_D, images, fixed_z, start_epoch=epoch, precision=precision, watch=watch)
    return run_dir


def _check_written_config(run_dir: Path, saved: TrainConfig) -> None:
    """Refuse to resume a run whose config.json says other fixed settings than its checkpoint: a hand edit of,
    say, ``generator`` would otherwise be overwritten in silence. Settings a resume may change (epochs, lr_d, …)
    are taken from the command line, never from an edited config.json, and are not compared here."""
    written = runs.read_config(run_dir)
    for key, value in saved.to_dict().items():
        if not resumable(key) and key in written and written[key] != value:
            raise UserError(f"{shown(run_dir / 'config.json')} says {key} {written[key]!r}, but the run's checkpoints were "
                            f"trained with {key} {value!r}, which a resume cannot change; put {value!r} back, or start "
                            f"a new run with the settings you want.")


def _changes(saved: TrainConfig, config: TrainConfig) -> str:
    """The training settings a resume changed, as ``; lr_g 5e-05 -> 2.5e-05``: point 10's interventions, kept in
    the run's ``resumes.txt`` (schedule settings such as epochs are left out; they do not change what is trained)."""
    changed = [f"{k} {getattr(saved, k)!r} -> {v!r}" for k, v in config.identity().items() if getattr(saved, k) != v]
    return "".join(f"; {change}" for change in changed)


def _load_images(config: TrainConfig, device: torch.device) -> torch.Tensor:
    from gan_helpers.data import load_dataset

    return load_dataset(from_root(config.data), max_images=config.max_images, min_images=config.batch_size, device=device)


def _sample_epoch(run_dir: Path, config: TrainConfig, G, fixed_z: torch.Tensor, images: torch.Tensor, epoch: int) -> None:
    """Point 9's fixed-noise grid, labelled with its epoch, and the epoch's quality numbers."""
    save_labelled_grid(generate(G, fixed_z), run_dir / "samples" / runs.epoch_name(epoch, "png"), f"epoch {epoch}")
    if config.quality_samples:
        append_quality(run_dir, quality_record(G, images, epoch=epoch, seed=config.seed, samples=config.quality_samples))


def discriminator_rate(config: TrainConfig, history: list[dict]) -> float:
    """Point 10 as a rule: ``config.lr_d``, halved for good once an epoch of `history` had a mean D(G(z)) below
    ``config.lower_lr_d_below`` (the discriminator was winning). The rule reads only the run's own
    metrics, so a resumed run lowers the rate exactly where the uninterrupted run did."""
    winning = any(record.get("D_G_z", 1.0) < config.lower_lr_d_below for record in history)
    return config.lr_d / 2 if winning else config.lr_d


def _fit(run_dir, config, G, D, opt_G, opt_D, images, fixed_z, *, start_epoch: int, precision: str, watch=None) -> None:
    device = str(images.device.type)
    history = [record for record in runs.read_metrics(run_dir) if record["epoch"] <= start_epoch]
    rate = discriminator_rate(config, history)

    def log_metrics(epoch: int, stats: dict) -> None:
        runs.append_metrics(run_dir, {**stats, "lr_d": rate, "device": device, "precision": precision})

    def sample(epoch: int, stats: dict) -> None:
        if (epoch % config.sample_every == 0 or epoch <= config.sample_all_first or epoch % config.save_every == 0
                or epoch == config.epochs):
            _sample_epoch(run_dir, config, G, fixed_z, images, epoch)

    def checkpoint(epoch: int) -> None:
        runs.save_checkpoint(run_dir, epoch, {
            "epoch": epoch,
            "config": config.to_dict(),
            "G": G.state_dict(),
            "D": D.state_dict(),
            "opt_G": opt_G.state_dict(),
            "opt_D": opt_D.state_dict(),
            "rng": rng_state(),
        })

    def save(epoch: int, stats: dict) -> None:
        if epoch % config.save_every == 0 or epoch == config.epochs:
            checkpoint(epoch)

    def stop_now(epoch: int, stats: dict) -> bool:
        return stopper.requested or discriminator_rate(config, [*history, stats]) != rate

    warn = _point10_printer(run_dir, history)
    live = watch.follow(run_dir, config.epochs, history) if watch is not None else None
    epoch = start_epoch
    stopper = StopAtEpochEnd()
    try:
        while epoch < config.epochs:  # one call of fit per discriminator rate: a graph-captured step bakes it in
            for group in opt_D.param_groups:
                group["lr"] = rate
            history += fit(
                D, G, opt_D, opt_G, images,
                epochs=config.epochs, batch_size=config.batch_size, start_epoch=epoch,
                label_noise=config.label_noise, augment=_make_augment(config),
                hooks=[log_metrics, sample, save, warn, *([live] if live is not None else [])], progress=config.progress, precision=precision, stop=stop_now,
            )
            epoch = history[-1]["epoch"]
            if stopper.requested and epoch < config.epochs:
                if epoch not in runs.checkpoints(run_dir):
                    checkpoint(epoch)
                raise TrainingStopped(f"{stopper.requested}: stopped after epoch {epoch}, saved as a checkpoint; continue with "
                                      f"`python -m gan_helpers train --resume {shown(run_dir)} --epochs {config.epochs}`.")
            if epoch < config.epochs:
                lowered = discriminator_rate(config, history)
                print(f"Epoch {epoch}: mean D(G(z)) {history[-1]['D_G_z']:.3f} is below {config.lower_lr_d_below:g}, "
                      f"the discriminator is winning (point 10): lr_d {rate:g} -> {lowered:g} from epoch {epoch + 1}")
                rate = lowered
    except TrainingDiverged as error:
        saved = runs.checkpoints(run_dir)
        if not saved:
            raise UserError(f"{error} before any checkpoint was saved; start again with a lower --lr-g or --lr-d.") from None
        last = saved[max(saved)]
        raise UserError(
            f"{error}; the last good checkpoint is {last}: resume from it with "
            f"`python -m gan_helpers train --resume {last} --epochs {config.epochs}` (and perhaps a lower --lr-g or --lr-d)."
        ) from None
    finally:
        stopper.restore()
        if live is not None:
            live.close()


def _point10_printer(run_dir: Path, history: list[dict]):
    """An epoch hook that prints point 10's warning (:mod:`gan_helpers.balance`) at the epoch it starts, so the
    training output says when a network wins or the samples collapse; it reads the quality records the
    sample hook has just written."""
    from gan_helpers.balance import point10_warnings
    from gan_helpers.evaluate import read_quality

    records, said = list(history), set()

    def warn(epoch: int, stats: dict) -> None:
        records.append(stats)
        for alert in point10_warnings(records, read_quality(run_dir), epoch=epoch):
            if (alert.kind, alert.since) not in said:
                said.add((alert.kind, alert.since))
                print(alert.line(), flush=True)

    return warn


class TrainingStopped(KeyboardInterrupt):
    """Training stopped at an epoch boundary on request; the message says where and how to continue."""


class StopAtEpochEnd:
    """SIGTERM or SIGINT during training asks for a stop at the end of the running epoch, so a stop
    (``kill PID``, Ctrl-C, a notebook's interrupt) keeps every finished epoch; a second SIGINT stops at once.

    ``requested`` is the signal's name once one came, else "". Handlers are installed only in the main
    thread (Python allows no other) and :meth:`restore` puts the previous ones back.
    """

    def __init__(self) -> None:
        self.requested = ""
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGTERM, signal.SIGINT):
                self._previous[number] = signal.signal(number, self._handle)

    def _handle(self, number: int, frame) -> None:
        if self.requested and number == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = signal.Signals(number).name
        print(f"\n{self.requested}: stopping at the end of this epoch, after its checkpoint "
              f"(Ctrl-C again stops at once and loses the epoch).", flush=True)

    def restore(self) -> None:
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        self._previous = {}


# ---- command line (python -m gan_helpers train) ---------------------------------------------

HELP = "Train a DCGAN: a new run (from a profile's experiment and flags), or --resume RUN_DIR|CHECKPOINT to continue one."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from gan_helpers.cli import add_config_arguments

    parser.add_argument("--profile", default="", help="start from this parameter set's experiment (notebooks/params/PROFILE.yaml, block train); flags override it")
    parser.add_argument("--resume", metavar="RUN_DIR|CHECKPOINT", help="continue a run from its newest checkpoint, or from a given checkpoint file")
    add_config_arguments(parser, TrainConfig)


def run(args: argparse.Namespace) -> int:
    from gan_helpers.cli import given_config_values

    given = given_config_values(args, TrainConfig)
    if args.resume:
        if args.profile:
            raise UserError("--profile starts a new run; a resumed run keeps its own settings (drop --profile).")
        run_dir = train(resume=Path(args.resume).expanduser().resolve(), **given)
    elif args.profile:
        from gan_helpers.profiles import experiment_config

        run_dir = train(experiment_config(args.profile).replace(**given))
    else:
        run_dir = train(TrainConfig(**given))
    print(f"Done: {shown(run_dir)}")
    return 0
