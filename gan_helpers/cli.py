"""The command line: one subcommand per job, each living in its own module.

Every command module exposes ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``; this file only wires them together and turns a
:class:`~gan_helpers.errors.UserError` into one printed sentence.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gan_helpers.errors import UserError

# subcommand -> module implementing it
COMMANDS = {
    "data": "gan_helpers.stellarium",
    "prepare": "gan_helpers.prepare",
    "crawl": "gan_helpers.crawl",
    "train": "gan_helpers.experiment",
    "report": "gan_helpers.report",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gan_helpers", description="DCGAN lab helpers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def guarded(run, args: argparse.Namespace) -> int:
    """Call ``run(args)``; a UserError becomes one printed sentence and exit status 2."""
    try:
        return run(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return guarded(args._run, args)
