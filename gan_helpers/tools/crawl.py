"""python -m gan_helpers crawl: download images for a query."""

from __future__ import annotations
import argparse
from pathlib import Path
from gan_helpers.datasets import crawl


HELP = "download images for a search query into a folder, with their addresses in sources.csv (needs internet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help='what to search for, e.g. "carrot cake"')
    parser.add_argument("dst", type=Path, help="folder for the downloads and sources.csv")
    parser.add_argument("--max", type=int, default=100, dest="max_images", help="images to ask for (default 100)")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds between downloads (default 1)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds before a download gives up")
    parser.add_argument("--max-kb", type=int, default=crawl.MAX_BYTES // 1024, help="largest file to download, in KB")


def run(args: argparse.Namespace) -> int:
    def fetch(url: str) -> bytes:
        return crawl.http_fetch(url, timeout=args.timeout, max_bytes=args.max_kb * 1024)

    dst = Path.cwd() / args.dst.expanduser()  # a typed path means the current folder
    summary = crawl.crawl(args.query, dst, max_images=args.max_images, fetch=fetch, delay=args.delay)
    print(summary.describe())
    print(f"Next: python -m gan_helpers prepare {dst} <clean folder>, or train with --data {dst}.")
    return 0
