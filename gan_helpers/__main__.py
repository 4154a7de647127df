"""`python -m gan_helpers …`: the command line (see gan_helpers.tools.cli)."""

from gan_helpers.tools.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
