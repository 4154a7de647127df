"""python -m gan_helpers export: a run as a shipped result."""

from __future__ import annotations
import argparse
from gan_helpers.paths import shown
from gan_helpers.runs import export, results


HELP = "Export a run as a shipped result (results/NAME/GENERATOR): metrics, grids, GIF, float16 generator weights, provenance."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder made by training")
    parser.add_argument("dest", metavar="DEST", help="the new result folder, e.g. results/reference/transposed (must not hold files)")
    parser.add_argument("--name", help="the result's name in provenance.json (default: DEST's parent folder, e.g. reference)")
    parser.add_argument("--commands", metavar="FILE", help="provenance file: 'SECONDS COMMAND' lines (GNU time -f '%%e %%C') or JSON")
    parser.add_argument("--command", nargs=2, action="append", default=[], metavar=("SECONDS", "COMMAND"),
                        help="a command that produced the run, with its wall time (repeatable)")
    parser.add_argument("--commit", metavar="SHA", help="the project's git commit, where the tree here has no git")
    parser.add_argument("--max-grids", type=int, default=export.MAX_GRIDS, metavar="N",
                        help=f"ship at most N sample grids, spread evenly (default: {export.MAX_GRIDS})")


def run(args: argparse.Namespace) -> int:
    dest = export.export_run(args.run_dir, args.dest, name=args.name, commands_file=args.commands,
                      commands=[tuple(pair) for pair in args.command], commit=args.commit, max_grids=args.max_grids)
    found = results.sizes(dest)
    grids = {k: v for k, v in found.items() if k.startswith("samples/")}
    for name, size in found.items():
        if name not in grids:
            print(f"{size / 1024:10.1f} KiB  {name}")
    print(f"{sum(grids.values()) / 1024:10.1f} KiB  samples/ ({len(grids)} grids)")
    print(f"{sum(found.values()) / 2**20:10.2f} MiB  in all: {shown(dest)}")
    for problem in results.check_result(dest):
        print(f"note: {problem}")
    return 0
