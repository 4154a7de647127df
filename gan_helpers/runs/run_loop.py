"""The training loop of a run: fit with its saving, sampling, quality and stopping hooks."""

from __future__ import annotations
import signal
import threading
import torch
from pathlib import Path

from gan_helpers.runs.config import TrainConfig
from gan_helpers.training import TrainingDiverged, fit
from gan_helpers.errors import UserError
from gan_helpers.runs.quality_records import append_quality, is_new_best, quality_record, read_quality
from gan_helpers.models import generate
from gan_helpers.seeding import rng_state
from gan_helpers.storage.atomic import atomic_save
from gan_helpers.runs import run_folders, checkpoints
from gan_helpers.runs.run_plots import save_grid
from gan_helpers.paths import shown
from gan_helpers.averaging import ema_decay, standing_statistics
from gan_helpers.augment import BatchAugment
from gan_helpers.balance import point10_warnings


def sample_epoch(run_dir: Path, config: TrainConfig, G, fixed_z: torch.Tensor, images: torch.Tensor, epoch: int,
                 G_ema=None) -> None:
    """Point 9's fixed-noise grid, labelled with its epoch, and the epoch's quality numbers; the same for G_ema,
    if given (its grids in ``samples/ema/``), after its batch-norm statistics are made its own."""
    name = run_folders.epoch_name(epoch, "png")
    save_grid(generate(G, fixed_z), run_dir / "samples" / name, label=f"epoch {epoch}")
    if config.quality_samples:
        append_quality(run_dir, quality_record(G, images, epoch=epoch, seed=config.seed, samples=config.quality_samples))
    if G_ema is None:
        return
    standing_statistics(G_ema, seed=config.seed + epoch)
    (run_dir / "samples" / "ema").mkdir(exist_ok=True)
    save_grid(generate(G_ema, fixed_z), run_dir / "samples" / "ema" / name, label=f"epoch {epoch}, G_ema")
    if config.quality_samples:
        append_quality(run_dir, quality_record(G_ema, images, epoch=epoch, seed=config.seed, samples=config.quality_samples,
                                               model="G_ema"))


def discriminator_rate(config: TrainConfig, history: list[dict]) -> float:
    """Point 10 as a rule: ``config.lr_d``, halved for good once an epoch of `history` had a mean D(G(z)) below
    ``config.lower_lr_d_below`` (the discriminator was winning). The rule reads only the run's own
    metrics, so a resumed run lowers the rate exactly where the uninterrupted run did."""
    winning = any(record.get("D_G_z", 1.0) < config.lower_lr_d_below for record in history)
    return config.lr_d / 2 if winning else config.lr_d


def fit_run(run_dir, config, G, D, opt_G, opt_D, images, fixed_z, *, start_epoch: int, precision: str, watch=None,
            G_ema=None) -> None:
    run_folders.check_subfolders(run_dir)  # before any write: a link there would put the run's files elsewhere
    device = str(images.device.type)
    decay = ema_decay(config.ema_half_life, -(-images.shape[0] // config.batch_size)) if G_ema is not None else 0.0
    history = [record for record in run_folders.read_metrics(run_dir) if record["epoch"] <= start_epoch]
    rate = discriminator_rate(config, history)
    augment = (BatchAugment(flip=config.flip, zoom=config.zoom, rotate_degrees=config.rotate_degrees)
               if config.augment else None)

    def log_metrics(epoch: int, stats: dict) -> None:
        run_folders.append_metrics(run_dir, {**stats, "lr_d": rate, "device": device, "precision": precision})

    def sample(epoch: int, stats: dict) -> None:
        if config.samples_at(epoch):
            sample_epoch(run_dir, config, G, fixed_z, images, epoch, G_ema)
            if epoch % config.save_every and epoch != config.epochs and is_new_best(run_dir, epoch):
                (run_dir / "best").mkdir(exist_ok=True)  # a best-scoring epoch between checkpoints: its generators
                atomic_save({"epoch": epoch, "config": config.to_dict(), **generators()},
                            run_dir / "best" / run_folders.epoch_name(epoch, "pt"))

    def generators() -> dict:
        return {"G": G.state_dict(), **({"G_ema": G_ema.state_dict()} if G_ema is not None else {})}

    def checkpoint(epoch: int) -> None:
        checkpoints.save_checkpoint(run_dir, epoch, {
            "epoch": epoch,
            "config": config.to_dict(),
            **generators(),
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

    if start_epoch and start_epoch not in run_folders.checkpoint_files(run_dir):
        checkpoint(start_epoch)  # a warm restart's first: training continues from a full checkpoint of its own
    records, said = list(history), set()

    def warn(epoch: int, stats: dict) -> None:
        """Point 10's warnings (:mod:`gan_helpers.balance`), each printed once at the epoch it starts, from the
        quality records the sample hook has just written."""
        records.append(stats)
        for alert in point10_warnings(records, read_quality(run_dir), epoch=epoch):
            if (alert.kind, alert.since) not in said:
                said.add((alert.kind, alert.since))
                print(alert.line(), flush=True)

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
                label_noise=config.label_noise, augment=augment, G_ema=G_ema, ema_decay=decay,
                hooks=[log_metrics, sample, save, warn, *([live] if live is not None else [])], progress=config.progress, precision=precision, stop=stop_now,
            )
            epoch = history[-1]["epoch"]
            if stopper.requested and epoch < config.epochs:
                if epoch not in run_folders.checkpoint_files(run_dir):
                    checkpoint(epoch)
                raise TrainingStopped(f"{stopper.requested}: stopped after epoch {epoch}, saved as a checkpoint; continue with "
                                      f"`python -m gan_helpers train --resume {shown(run_dir)} --epochs {config.epochs}`.")
            if epoch < config.epochs:
                lowered = discriminator_rate(config, history)
                print(f"Epoch {epoch}: mean D(G(z)) {history[-1]['D_G_z']:.3f} is below {config.lower_lr_d_below:g}, "
                      f"the discriminator is winning (point 10): lr_d {rate:g} -> {lowered:g} from epoch {epoch + 1}")
                rate = lowered
    except TrainingDiverged as error:
        saved = run_folders.checkpoint_files(run_dir)
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
