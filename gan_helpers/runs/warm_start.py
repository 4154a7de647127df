"""A warm restart: training continued from a checkpoint that holds G and D but no optimizer state.

A shipped result keeps the newest epoch's G and D (in float16) so that its
training survives the machine it ran on. :func:`warm_start` continues from
there in a new run folder: the history up to that epoch is copied, both
networks get their weights, the Adam moments start from zero, G_ema starts
from G and the random numbers from the run's seed and the epoch. So it is
not the run that never stopped (an exact resume needs the full checkpoint),
and ``resumes.txt`` says so; a later export carries that line into its
provenance.
"""

from __future__ import annotations

from pathlib import Path

from gan_helpers.averaging import averaged_copy
from gan_helpers.errors import UserError
from gan_helpers.paths import from_root, shown
from gan_helpers.runs import checkpoints, run_folders
from gan_helpers.runs.config import TrainConfig, resumable
from gan_helpers.runs.experiment import build_models, resume_note, training_images
from gan_helpers.runs.run_loop import fit_run
from gan_helpers.storage import locks
from gan_helpers.seeding import rng_state, seed_everything
from gan_helpers import speed

WARM_SEED_OFFSET = 7_919  # the restarted run's random numbers: seed + this + epoch, unlike any run's own


def warm_start(source: str | Path, *, note: str = "", watch=None, **overrides) -> Path:
    """Continue training from `source` (a run folder or result: its newest checkpoint; or a checkpoint file) in a new
    run folder under ``runs_dir`` and return that folder. `overrides` change settings a resume may change (epochs,
    rates, runs_dir, …); `note` is kept with the restart in ``resumes.txt``."""
    note = resume_note(note)
    source = from_root(Path(source))
    state = checkpoints.load_checkpoint(source)
    missing = [part for part in ("epoch", "config", "G", "D") if part not in state]
    if missing:
        raise UserError(f"{shown(source)} lacks {', '.join(missing)}, so training cannot continue from it; export the run "
                        f"again (an export keeps the newest epoch's G and D).")
    saved = TrainConfig.from_dict(state["config"], complete=True)
    fixed = sorted(k for k, v in overrides.items() if not resumable(k) and v != getattr(saved, k))
    if fixed:
        raise UserError(f"{', '.join(fixed)} cannot change when training continues; start a new run instead.")
    config = saved.replace(**overrides)
    epoch = state["epoch"]
    if config.epochs <= epoch:
        raise UserError(f"the checkpoint is already at epoch {epoch}; pass --epochs larger than {epoch} to continue.")
    folder = source if source.is_dir() else source.parent.parent
    run_dir = _copy_history(folder, epoch, config)
    with locks.hold(run_dir, "training"):
        device = speed.pick_device(config.device)
        precision = speed.setup(device, threads=config.threads, precision=config.precision)["precision"]
        images = training_images(config, device)
        G, D, opt_G, opt_D = build_models(config, device)
        G.load_state_dict(state["G"])  # float16 weights are copied into the float32 parameters
        D.load_state_dict(state["D"])
        seed_everything(config.seed + WARM_SEED_OFFSET + epoch)
        G_ema = averaged_copy(G) if config.ema_half_life else None
        checkpoints.save_checkpoint(run_dir, epoch, {
            "epoch": epoch, "config": config.to_dict(), "G": G.state_dict(),
            **({"G_ema": G_ema.state_dict()} if G_ema is not None else {}),
            "D": D.state_dict(), "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(), "rng": rng_state()})
        run_folders.note_resume(run_dir, f"warm restart from {shown(source)} at epoch {epoch} on {device.type}: optimizer "
                                         f"moments re-initialised, G_ema restarted from G{f'; note: {note}' if note else ''}")
        print(f"Warm restart of {shown(folder)} at epoch {epoch} in {shown(run_dir)}")
        fit_run(run_dir, config, G, D, opt_G, opt_D, images, checkpoints.load_fixed_noise(run_dir), start_epoch=epoch,
                precision=precision, watch=watch, G_ema=G_ema)
    return run_dir


def _copy_history(folder: Path, epoch: int, config: TrainConfig) -> Path:
    """A new run folder holding `config`, `folder`'s fixed noise and its history up to `epoch`
    (:func:`gan_helpers.runs.checkpoints.copy_history`); `folder` is only read."""
    metrics = [m for m in run_folders.read_metrics(folder, strict=True) if m["epoch"] <= epoch]
    if [m["epoch"] for m in metrics] != list(range(1, epoch + 1)):
        raise UserError(f"{shown(folder / 'metrics.jsonl')} does not hold epochs 1 to {epoch} once each, so the history "
                        f"cannot be continued; use an intact copy.")
    run_dir = run_folders.create_run_dir(from_root(config.runs_dir), config.run_tag(), config=config.to_dict(),
                                         fixed_noise=checkpoints.load_fixed_noise(folder))
    checkpoints.copy_history(folder, run_dir, epoch, metrics)
    return run_dir
