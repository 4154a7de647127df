"""`python -m gan_helpers …`: the command line (see gan_helpers.cli)."""

from gan_helpers.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
