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
from gan_helpers.runs.config import TrainConfig
from gan_helpers.runs.experiment import prepare_training, resume_note
from gan_helpers.runs.run_loop import fit_run
from gan_helpers.storage import locks
from gan_helpers.seeding import seed_everything

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
    epoch = state["epoch"]
    config = TrainConfig.from_dict(state["config"], complete=True).continued(overrides, epoch)
    folder = source if source.is_dir() else source.parent.parent
    run_dir = checkpoints.fork_run(folder, epoch, config=config.to_dict(), runs_dir=from_root(config.runs_dir),
                                   tag=config.run_tag(), full=False)
    with locks.hold(run_dir, "training"):
        device, precision, images, G, D, opt_G, opt_D = prepare_training(config, {"G": state["G"], "D": state["D"]})
        seed_everything(config.seed + WARM_SEED_OFFSET + epoch)
        G_ema = averaged_copy(G) if config.ema_half_life else None
        run_folders.note_resume(run_dir, f"warm restart from {shown(source)} at epoch {epoch} on {device.type}: optimizer "
                                         f"moments re-initialised, G_ema restarted from G{f'; note: {note}' if note else ''}")
        print(f"Warm restart of {shown(folder)} at epoch {epoch} in {shown(run_dir)}")
        fit_run(run_dir, config, G, D, opt_G, opt_D, images, checkpoints.load_fixed_noise(run_dir), start_epoch=epoch,
                precision=precision, watch=watch, G_ema=G_ema)  # its first checkpoint: at `epoch`, Adam's moments zero
    return run_dir
