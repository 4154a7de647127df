"""python -m gan_helpers train: a new run, or --resume RUN_DIR|CHECKPOINT."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from gan_helpers.errors import UserError
from gan_helpers.paths import shown
from gan_helpers.runs import experiment
from gan_helpers.runs.config import TrainConfig
from gan_helpers.runs.warm_start import warm_start


_FLAG_TYPES = {"int": int, "float": float, "str": str}

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
