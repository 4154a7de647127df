"""python -m gan_helpers prepare: clean a folder of images."""

from __future__ import annotations
import argparse
from pathlib import Path

from PIL import ImageColor

from gan_helpers.datasets import prepare
from gan_helpers.datasets.convert import IMAGE_SIZE
from gan_helpers.datasets.dedupe import NEAR_DUPLICATE_LIMIT
from gan_helpers.errors import UserError


HELP = "clean any folder of images into 64x64 RGB PNGs, with a manifest of what was dropped and why"


def parse_color(text: str) -> tuple[int, int, int]:
    """A colour from a name, #hex or "r,g,b"."""
    try:
        if "," in text:
            rgb = tuple(int(part) for part in text.split(","))
            if len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb):
                raise ValueError(text)
            return rgb  # type: ignore[return-value]
        return ImageColor.getrgb(text)[:3]
    except ValueError:
        raise UserError(f"Background colour {text!r} is not a colour; use a name, #rrggbb or r,g,b.") from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("src", type=Path, help="folder of pictures (read only; searched recursively)")
    parser.add_argument("dst", type=Path, help="output folder for the PNGs and manifest.csv")
    parser.add_argument("--size", type=int, default=IMAGE_SIZE, help="output side in pixels (default 64)")
    parser.add_argument("--min-size", type=int, default=IMAGE_SIZE, help="drop images whose shorter side is smaller")
    parser.add_argument("--background", default="black", help="colour behind transparent pixels (default black)")
    parser.add_argument("--keep-greyscale", action="store_true", help="keep greyscale images (dropped by default)")
    parser.add_argument("--max-aspect", type=float, default=2.0, help="drop images more elongated than this (default 2)")
    parser.add_argument("--near-duplicate-limit", type=float, default=NEAR_DUPLICATE_LIMIT,
                        help=f"largest local difference (levels of 255) at which two images count as the same "
                             f"picture (default {NEAR_DUPLICATE_LIMIT:g}); -1 turns near-duplicate detection off")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # Paths typed on the command line mean the current folder, wherever the project lives.
    src, dst = Path.cwd() / args.src.expanduser(), Path.cwd() / args.dst.expanduser()
    limit = None if args.near_duplicate_limit < 0 else args.near_duplicate_limit
    summary = prepare.prepare_folder(src, dst, size=args.size, min_size=args.min_size,
                             background=parse_color(args.background), drop_greyscale=not args.keep_greyscale,
                             max_aspect=args.max_aspect, near_duplicate_limit=limit,
                             progress=not args.no_progress)
    print(summary.describe())
    return 0
