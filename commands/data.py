"""python -m gan_helpers data: build the default data set."""

from __future__ import annotations
import argparse
from gan_helpers.paths import DEFAULT_DATA
from pathlib import Path
from gan_helpers.errors import UserError
from gan_helpers.datasets import stellarium


HELP = "build the default data set (colour deep-sky photos from Debian's stellarium-data) in data/galaxies64"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dst", type=Path, default=DEFAULT_DATA, help="output folder (default data/galaxies64)")
    parser.add_argument("--deb", type=Path, help="use this stellarium-data .deb instead of downloading it")
    parser.add_argument("--force", action="store_true", help="rebuild even if the set is complete")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # Paths typed on the command line mean the current folder; only the default lives in the project.
    dst = Path.cwd() / args.dst.expanduser()
    deb = None if args.deb is None else Path.cwd() / args.deb.expanduser()
    if deb is not None and not deb.is_file():
        raise UserError(f"Package file {deb} does not exist; pass the path of a stellarium-data .deb.")
    stellarium.build_default_dataset(dst, deb=deb, force=args.force, progress=not args.no_progress)
    return 0
