"""python -m gan_helpers train: a new run, --resume RUN_DIR|CHECKPOINT, or --warm-start RESULT|CHECKPOINT."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from gan_helpers.averaging import averaged_copy
from gan_helpers.errors import UserError
from gan_helpers.paths import from_root, shown
from gan_helpers.runs import checkpoints, experiment, run_folders
from gan_helpers.runs.config import TrainConfig
from gan_helpers.runs.run_loop import fit_run
from gan_helpers.seeding import seed_everything
from gan_helpers.storage import locks

_FLAG_TYPES = {"int": int, "float": float, "str": str}
WARM_SEED_OFFSET = 7_919  # the restarted run's random numbers: seed + this + epoch, unlike any run's own

HELP = "Train a DCGAN: a new run (from a profile's experiment and flags), or --resume RUN_DIR|CHECKPOINT to continue one."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="", help="start from this parameter set's experiment (notebooks/params/PROFILE.yaml, block train); flags override it")
    parser.add_argument("--resume", metavar="RUN_DIR|CHECKPOINT", help="continue a run from its newest checkpoint, or from a given checkpoint file")
    parser.add_argument("--warm-start", metavar="RESULT|CHECKPOINT",
                        help="continue in a new run from a checkpoint with G and D but no optimizer state (a shipped result's "
                             "newest): Adam moments re-initialised, G_ema restarted from G")
    parser.add_argument("--note", default="", metavar="TEXT",
                        help="with --resume or --warm-start: one line kept with the resume in the run's resumes.txt, e.g. what the grids showed and why a rate changed (point 10)")
    add_config_arguments(parser, TrainConfig)


def add_config_arguments(parser: argparse.ArgumentParser, cls) -> None:
    """One flag per field of the dataclass `cls`, typed, with its help text and choices from the field's metadata."""
    for f in dataclasses.fields(cls):
        flag = "--" + f.name.replace("_", "-")
        text = f"{f.metadata['help']} (default: {f.default})".replace("%", "%%")  # argparse formats help with %
        if str(f.type) == "bool":
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=text)
        elif f.metadata.get("choices"):
            parser.add_argument(flag, dest=f.name, choices=f.metadata["choices"], default=None, help=text)
        else:
            kind = _FLAG_TYPES[str(f.type).removesuffix(" | None")]  # None is the default, never typed on a command line
            parser.add_argument(flag, dest=f.name, type=kind, default=None, metavar=f.name.upper(), help=text)


def given_config_values(args: argparse.Namespace, cls) -> dict:
    """The fields of `cls` given on the command line; paths among them mean the current folder."""
    given = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if value is not None:
            given[f.name] = str(Path(value).expanduser().resolve()) if f.metadata.get("path") else value
    return given


def warm_start(source: str | Path, *, note: str = "", watch=None, **overrides) -> Path:
    """Continue training from `source` (a run folder or result: its newest checkpoint; or a checkpoint file) in a new
    run folder under ``runs_dir`` and return that folder. `overrides` change settings a resume may change (epochs,
    rates, runs_dir, …); `note` is kept with the restart in ``resumes.txt``.

    A shipped result keeps the newest epoch's G and D (in float16) so that its
    training survives the machine it ran on, but no optimizer state: the
    history up to that epoch is copied, both networks get their weights, the
    Adam moments start from zero, G_ema starts from G and the random numbers
    from the run's seed and the epoch. So it is not the run that never stopped
    (an exact resume needs the full checkpoint), and ``resumes.txt`` says so;
    a later export carries that line into its provenance.
    """
    note = experiment.resume_note(note)
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
        device, precision, images, G, D, opt_G, opt_D = experiment.prepare_training(config, {"G": state["G"], "D": state["D"]})
        seed_everything(config.seed + WARM_SEED_OFFSET + epoch)
        G_ema = averaged_copy(G) if config.ema_half_life else None
        run_folders.note_resume(run_dir, f"warm restart from {shown(source)} at epoch {epoch} on {device.type}: optimizer "
                                         f"moments re-initialised, G_ema restarted from G{f'; note: {note}' if note else ''}")
        print(f"Warm restart of {shown(folder)} at epoch {epoch} in {shown(run_dir)}")
        fit_run(run_dir, config, G, D, opt_G, opt_D, images, checkpoints.load_fixed_noise(run_dir), start_epoch=epoch,
                precision=precision, watch=watch, G_ema=G_ema)  # its first checkpoint: at `epoch`, Adam's moments zero
    return run_dir


def run(args: argparse.Namespace) -> int:
    given = given_config_values(args, TrainConfig)
    if args.resume and args.warm_start:
        raise UserError("--resume continues a run exactly and --warm-start from weights alone; give one of them.")
    if (args.resume or args.warm_start) and args.profile:
        raise UserError("--profile starts a new run; a resumed or warm-restarted run keeps its source's settings (drop --profile).")
    if args.warm_start:
        run_dir = warm_start(Path(args.warm_start).expanduser().resolve(), note=args.note, **given)
    elif args.resume:
        run_dir = experiment.train(resume=Path(args.resume).expanduser().resolve(), note=args.note, **given)
    elif args.note:
        raise UserError("--note is kept with a resume; use it with --resume RUN_DIR or --warm-start RESULT.")
    elif args.profile:
        run_dir = experiment.train(experiment.experiment_config(args.profile).replace(**given))
    else:
        run_dir = experiment.train(TrainConfig(**given))
    print(f"Done: {shown(run_dir)}")
    return 0
