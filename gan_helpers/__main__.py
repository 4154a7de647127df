"""``python -m gan_helpers COMMAND``: one subcommand per job, each living in its own module.

Every command module exposes ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``; this file wires them together and turns a
:class:`~gan_helpers.errors.UserError` into one printed sentence.

The commands sit beside the package, in ``commands/`` (data, prepare, crawl,
train, watch, bench, evaluate) and ``report/`` (export, notebooks, report),
and import the package, never the reverse: they are named here as text and
imported only when their command runs.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gan_helpers.errors import UserError

# subcommand -> module implementing it
COMMANDS = {
    "data": "commands.data",
    "prepare": "commands.prepare",
    "crawl": "commands.crawl",
    "train": "commands.train",
    "watch": "commands.watch",
    "bench": "commands.bench",
    "evaluate": "commands.evaluate",
    "export": "report.export",
    "notebooks": "report.notebooks",
    "report": "report.build",
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser of every subcommand; given `argv`, only the module of the command it names is imported.

    Importing a command module can take seconds (torch), so ``python -m
    gan_helpers train --help`` loads the train command alone; the other
    subcommands are still known by name. Without a command in `argv` every
    module is imported, for the list of commands with their help.
    """
    chosen = next((word for word in argv or () if word in COMMANDS), None)
    parser = argparse.ArgumentParser(prog="python -m gan_helpers", description="DCGAN lab helpers.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module_name in COMMANDS.items():
        if chosen is not None and name != chosen:
            sub.add_parser(name)
            continue
        module = importlib.import_module(module_name)
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command `argv` names; a UserError becomes one printed sentence and exit status 2."""
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    try:
        return args._run(args)
    except UserError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as interrupt:
        print(str(interrupt) or "interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
