"""``python -m gan_helpers crawl``: collect a folder of web images for one class, with where each came from (needs internet).

``python -m gan_helpers crawl "carrot cake" data/cakes-raw --max 300`` asks
an image search (the ``ddgs`` package) for addresses, downloads them one at
a time with a pause in between, a timeout and a size cap, and records every
address in ``sources.csv``. The folder then goes through
:mod:`gan_helpers.datasets.prepare` like any other (``--data data/cakes-raw`` does
that on the fly). The search and the download are parameters, so tests run
against a fake search and a local server instead of the web.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from gan_helpers.storage.atomic import atomic_open, atomic_write_bytes
from gan_helpers.datasets.dedupe import file_digest
from gan_helpers.errors import UserError
from gan_helpers.paths import ensure_folder
from gan_helpers.datasets.folders import is_plain_name, is_regular_file
from gan_helpers.storage.regular import open_regular_file


SOURCES = "sources.csv"
SOURCE_FIELDS = ("file", "image_url", "page_url", "title", "status")
USER_AGENT = "gan-helpers-crawl/0.1 (DCGAN teaching lab; one request at a time)"
MAX_BYTES = 10 * 1024 * 1024  # a photo worth training on at 64x64 is far smaller
_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif", "BMP": ".bmp", "TIFF": ".tif"}

Search = Callable[[str, int], list[dict]]
Fetch = Callable[[str], bytes]


class FetchError(Exception):
    """One address could not be downloaded; the message says why in a few words."""


def ddgs_search(query: str, max_results: int) -> list[dict]:
    """Image search results (dicts with ``image``, ``url``, ``title``) from DuckDuckGo via ddgs."""
    from ddgs import DDGS

    try:
        return list(DDGS().images(query, max_results=max_results))
    except Exception as error:  # noqa: BLE001 - ddgs raises many kinds; all mean "no results from the web"
        raise UserError(f"The image search for {query!r} failed ({type(error).__name__}: {error}); "
                        f"check the internet connection, or try again later if the search is rate limited.") from None


def http_fetch(url: str, *, timeout: float = 15.0, max_bytes: int = MAX_BYTES) -> bytes:
    """The body at an http(s) `url`, refusing anything over `max_bytes`."""
    if urlparse(url).scheme not in ("http", "https"):
        raise FetchError("not an http(s) address")
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise FetchError(f"larger than {max_bytes // 1024} KB")
            body = response.read(max_bytes + 1)
    except urllib.error.HTTPError as error:
        raise FetchError(f"HTTP {error.code}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        raise FetchError(f"network error: {getattr(error, 'reason', error)}") from None
    if len(body) > max_bytes:
        raise FetchError(f"larger than {max_bytes // 1024} KB")
    return body


@dataclass
class CrawlSummary:
    """What a crawl did: rows as written to sources.csv."""

    dst: Path
    rows: list[dict[str, str]] = field(default_factory=list)

    @property
    def saved(self) -> int:
        return sum(row["status"] == "saved" for row in self.rows)

    def describe(self) -> str:
        failed = len(self.rows) - self.saved
        return (f"Saved {self.saved} new images to {self.dst} ({failed} addresses skipped or failed; "
                f"all listed in {self.dst / SOURCES}).")


def _read_sources(dst: Path) -> list[dict[str, str]]:
    """The rows of an earlier crawl's sources.csv; each file it names must be a plain name inside `dst`."""
    path = dst / SOURCES
    if not path.is_file():
        return []
    fix = f"delete {path} (the downloads stay) or choose another folder"
    try:
        with open_regular_file(path, follow_links=True) as raw, io.TextIOWrapper(raw, encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            rows = []
            for row in reader:
                row = {key: row.get(key) or "" for key in SOURCE_FIELDS}
                if row["file"] and not is_plain_name(dst, row["file"]):
                    raise UserError(f"{path} line {reader.line_num} names file {row['file']!r}, which is not a "
                                    f"file name inside {dst}; {fix}.")
                rows.append(row)
            return rows
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path} cannot be read as a list of downloads ({error}); {fix}.") from None


def _image_extension(body: bytes) -> str:
    """The file extension for downloaded bytes, or FetchError when they are no image."""
    try:
        with Image.open(io.BytesIO(body)) as image:
            return _EXTENSIONS.get(image.format or "", ".img")
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError):
        raise FetchError("not an image") from None


def crawl(query: str, dst: str | Path, *, max_images: int = 100, search: Search = ddgs_search,
          fetch: Fetch = http_fetch, delay: float = 1.0, sleep: Callable[[float], None] = time.sleep,
          progress: bool = True) -> CrawlSummary:
    """Download up to `max_images` search results for `query` into `dst`, pausing `delay` s between downloads.

    A second run into the same folder skips addresses it has already
    tried, so an interrupted crawl can simply be restarted.
    """
    if max_images < 1:
        raise UserError(f"--max is {max_images}; ask for at least one image.")
    dst = ensure_folder(Path(dst).expanduser(), "output folder")  # a file in the way, a read-only folder: one sentence
    previous = _read_sources(dst)
    tried = {row["image_url"] for row in previous}
    seen_bodies = {file_digest(dst / row["file"]) for row in previous
                   if row["file"] and is_regular_file(dst / row["file"])}
    results = search(query, max_images)
    if not results:
        raise UserError(f"The image search found nothing for {query!r}; try a broader query.")
    summary = CrawlSummary(dst)
    number = len(previous)
    first_download = True
    for result in tqdm(results[:max_images], desc="crawl", unit="image", disable=not progress):
        url = str(result.get("image") or "")
        if not url or url in tried:
            continue
        tried.add(url)
        row = {"file": "", "image_url": url, "page_url": str(result.get("url") or ""),
               "title": str(result.get("title") or "")[:200], "status": ""}
        if not first_download:
            sleep(delay)  # one request at a time, with a pause: be polite to the hosts
        first_download = False
        try:
            body = fetch(url)
            extension = _image_extension(body)
            digest = hashlib.sha256(body).hexdigest()
            if digest in seen_bodies:
                raise FetchError("same image as an earlier download")
            seen_bodies.add(digest)
            number += 1
            row["file"] = f"{number:05d}-{digest[:10]}{extension}"
            atomic_write_bytes(dst / row["file"], body)
            row["status"] = "saved"
        except FetchError as error:
            row["status"] = f"skipped: {error}"
        summary.rows.append(row)
    with atomic_open(dst / SOURCES, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=SOURCE_FIELDS)
        writer.writeheader()
        writer.writerows(previous + summary.rows)
    if summary.rows and not summary.saved and not any(row["status"] == "saved" for row in previous):
        reason = summary.rows[0]["status"].removeprefix("skipped: ")
        raise UserError(f"None of the {len(summary.rows)} images found for {query!r} could be downloaded "
                        f"(first: {reason}); check the internet connection.")
    return summary


HELP = "download images for a search query into a folder, with their addresses in sources.csv (needs internet)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", help='what to search for, e.g. "carrot cake"')
    parser.add_argument("dst", type=Path, help="folder for the downloads and sources.csv")
    parser.add_argument("--max", type=int, default=100, dest="max_images", help="images to ask for (default 100)")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds between downloads (default 1)")
    parser.add_argument("--timeout", type=float, default=15.0, help="seconds before a download gives up")
    parser.add_argument("--max-kb", type=int, default=MAX_BYTES // 1024, help="largest file to download, in KB")


def run(args: argparse.Namespace) -> int:
    def fetch(url: str) -> bytes:
        return http_fetch(url, timeout=args.timeout, max_bytes=args.max_kb * 1024)

    dst = Path.cwd() / args.dst.expanduser()  # a typed path means the current folder
    summary = crawl(args.query, dst, max_images=args.max_images, fetch=fetch, delay=args.delay)
    print(summary.describe())
    print(f"Next: python -m gan_helpers prepare {dst} <clean folder>, or train with --data {dst}.")
    return 0
