"""Turn any folder of pictures into a clean training set of 64×64 RGB PNGs.

Defective items hurt generator training (point 4), so every source file is
either converted or dropped with a stated reason, and ``manifest.csv`` in the
output folder records the decision for each one. The source folder is only
ever read. ``python -m gan_helpers prepare SRC DST`` runs it from a shell.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import os
import shutil
import stat
import unicodedata
import warnings
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageColor, ImageOps, UnidentifiedImageError
from tqdm.auto import tqdm

from gan_helpers.errors import UserError
from gan_helpers.paths import PROJECT_ROOT

HELP = "clean any folder of images into 64x64 RGB PNGs, with a manifest of what was dropped and why"

IMAGE_SIZE = 64
MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("source", "status", "reason", "detail", "output")
CACHE_ROOT = PROJECT_ROOT / "data" / ".cache" / "prepared"
# Bump when the conversion changes, so cached prepared sets are rebuilt.
RECIPE_VERSION = 1
# A 64×64 image counts as greyscale when 99 % of its pixels have channels
# within this many levels (of 255) of each other: the percentile ignores a
# few coloured stars or compression artefacts on an otherwise grey plate.
GREY_TOLERANCE = 12
# Near duplicates: perceptual hashes (64 bits) at most this many bits apart
# nominate a pair. Hashes of smooth or dark-sky pictures (a bright blob on
# black) collide often, so a pair only counts when the two 64×64 images also
# differ by at most NEAR_DUPLICATE_DIFFERENCE relative RMS: re-encoded or
# rescaled copies measure below 0.1, different objects above 0.4.
NEAR_DUPLICATE_BITS = 10
NEAR_DUPLICATE_DIFFERENCE = 0.25
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


class Dropped(Exception):
    """A source file that does not make it into the set: `reason` is a short code."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class ManifestRow:
    """The decision about one source file (a row of ``manifest.csv``)."""

    source: str  # path relative to the source folder, with forward slashes
    status: str  # "kept" or "dropped"
    reason: str = ""  # short code for a drop, e.g. "near-duplicate"
    detail: str = ""  # the specifics, e.g. which file it duplicates
    output: str = ""  # file name in the output folder for kept images


@dataclass
class PrepareSummary:
    """What a preparation did: one row per source file, plus counts."""

    src: Path
    dst: Path
    rows: list[ManifestRow] = field(default_factory=list)

    @property
    def kept(self) -> int:
        return sum(row.status == "kept" for row in self.rows)

    @property
    def dropped(self) -> int:
        return len(self.rows) - self.kept

    @property
    def dropped_by_reason(self) -> dict[str, int]:
        """Drop counts per reason code, most frequent first."""
        return dict(Counter(row.reason for row in self.rows if row.status == "dropped").most_common())

    def examples(self, reason: str, limit: int = 3) -> list[ManifestRow]:
        """A few dropped rows with this reason, for showing what was removed."""
        return [row for row in self.rows if row.reason == reason][:limit]

    def describe(self) -> str:
        """A short human summary: kept, dropped by reason, where the manifest is."""
        lines = [f"Kept {self.kept} of {len(self.rows)} files as {IMAGE_SIZE}x{IMAGE_SIZE} PNGs in {self.dst}."]
        if self.dropped:
            reasons = ", ".join(f"{reason} {count}" for reason, count in self.dropped_by_reason.items())
            lines.append(f"Dropped {self.dropped}: {reasons} (details in {self.dst / MANIFEST}).")
        return "\n".join(lines)


# ---------------------------------------------------------------- conversion
def to_rgb(image: Image.Image, background: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """Any Pillow mode as 8-bit RGB; transparency is flattened onto `background`.

    Pillow's own conversion clips 16-bit greyscale to white instead of
    scaling it, so those modes are rescaled by hand first.
    """
    if image.mode in _SIXTEEN_BIT or image.mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        if image.mode in _SIXTEEN_BIT or values.max(initial=0) > 255:
            values = values / 257.0  # 0..65535 -> 0..255
        elif image.mode == "F" and values.max(initial=0) <= 1.0:
            values = values * 255.0  # floats in [0, 1]
        image = Image.fromarray(np.clip(values.round(), 0, 255).astype(np.uint8), mode="L")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info
    if not has_alpha:
        return image.convert("RGB")
    rgba = image.convert("RGBA")
    canvas = Image.new("RGBA", rgba.size, (*background, 255))
    return Image.alpha_composite(canvas, rgba).convert("RGB")


def center_square(image: Image.Image, size: int = IMAGE_SIZE) -> Image.Image:
    """The largest centred square of `image`, resized to size×size with Lanczos."""
    return ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS, centering=(0.5, 0.5))


def is_greyscale(image: Image.Image, tolerance: int = GREY_TOLERANCE) -> bool:
    """Whether an RGB image carries no real colour (see GREY_TOLERANCE)."""
    pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    spread = pixels.max(axis=2) - pixels.min(axis=2)
    return float(np.percentile(spread, 99)) <= tolerance


def open_image(path: Path, *, min_size: int, max_aspect: float | None, draft_size: int) -> Image.Image:
    """Decode the first frame of an image file, or raise :class:`Dropped` saying why not."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's chatter about odd files is not a decision
        # A decompression-bomb warning means "suspiciously large": drop it like the error.
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            opened = Image.open(path)  # opens the file read-only
        except UnidentifiedImageError:
            raise Dropped("not-an-image", "no image format recognised") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
            raise Dropped("too-large", f"decompression bomb guard: {error}") from None
        except OSError as error:
            raise Dropped("undecodable", str(error)) from None
        with opened as image:  # closes the file even for animations, which Pillow keeps open
            width, height = image.size
            if min(width, height) < min_size:
                raise Dropped("too-small", f"{width}x{height} is below {min_size} px")
            if max_aspect is not None and max(width, height) > max_aspect * min(width, height):
                raise Dropped("aspect", f"{width}x{height} is more elongated than {max_aspect:g}:1")
            try:
                image.seek(0)  # the first frame of an animation
                image.draft(None, (draft_size, draft_size))  # JPEG only: decode at reduced scale, much faster
                image.load()
                return ImageOps.exif_transpose(image) or image.copy()
            except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
                raise Dropped("too-large", f"decompression bomb guard: {error}") from None
            except Exception as error:  # noqa: BLE001 - any decoder failure means a defective file
                raise Dropped("undecodable", f"{type(error).__name__}: {error}") from None


def convert_file(path: Path, *, size: int = IMAGE_SIZE, min_size: int = IMAGE_SIZE,
                 max_aspect: float | None = 2.0, background: tuple[int, int, int] = (0, 0, 0)) -> Image.Image:
    """One source file as a size×size RGB image, or :class:`Dropped`."""
    image = open_image(path, min_size=min_size, max_aspect=max_aspect, draft_size=2 * size)
    return center_square(to_rgb(image, background), size)


# ------------------------------------------------------------- folder walking
def output_name(relative: str) -> str:
    """A stable, unique, filesystem-safe PNG name for a source path."""
    ascii_path = unicodedata.normalize("NFKD", relative).encode("ascii", "ignore").decode()
    stem = "__".join(Path(ascii_path).with_suffix("").parts)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._")[:80] or "image"
    tag = hashlib.sha1(relative.encode()).hexdigest()[:8]  # keeps names unique after sanitising
    return f"{stem}-{tag}.png"


def list_files(src: Path) -> list[str]:
    """Every file under `src` as sorted relative POSIX paths (symlinked folders are not followed)."""
    found = []
    for folder, dirs, files in os.walk(src):
        dirs.sort()
        base = Path(folder).relative_to(src)
        found.extend((base / name).as_posix() for name in files)
    return sorted(found)


def _digest(path: Path) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _hash_bits(image: Image.Image) -> np.uint64:
    bits = imagehash.phash(image).hash.flatten()
    return np.uint64(int("".join("1" if b else "0" for b in bits), 2))


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """RMS difference of two images relative to their RMS brightness (0: identical)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    scale = ((a**2).sum() + (b**2).sum()) / 2
    return float(np.sqrt(((a - b) ** 2).sum() / scale)) if scale else 0.0


class _NearDuplicates:
    """The kept images so far, for finding near duplicates of a new one."""

    def __init__(self, max_distance: int | None) -> None:
        self.max_distance = max_distance
        self.hashes: list[np.uint64] = []
        self.pixels: list[np.ndarray] = []  # uint8, 12 KB each at 64×64
        self.sources: list[str] = []

    def check(self, image: Image.Image, source: str) -> None:
        """Raise :class:`Dropped` if `image` nearly repeats a kept one, else remember it."""
        bits, pixels = _hash_bits(image), np.asarray(image)
        if self.max_distance is not None and self.hashes:
            differing = np.array(self.hashes, dtype=np.uint64) ^ bits
            distances = np.unpackbits(differing.view(np.uint8)).reshape(-1, 64).sum(axis=1)
            for index in np.flatnonzero(distances <= self.max_distance):
                difference = relative_difference(pixels, self.pixels[index])
                if difference <= NEAR_DUPLICATE_DIFFERENCE:
                    raise Dropped("near-duplicate", f"looks like {self.sources[index]} (hash distance "
                                  f"{distances[index]}, pixel difference {difference:.2f})")
        self.hashes.append(bits)
        self.pixels.append(pixels)
        self.sources.append(source)


def _check_folders(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise UserError(f"Image folder {src} does not exist; pass a folder that holds your pictures.")
    if dst == src or src in dst.parents:
        raise UserError(f"Output folder {dst} lies inside the source folder {src}; choose an output folder outside it.")
    if dst.exists() and not dst.is_dir():
        raise UserError(f"Output path {dst} is a file; choose a folder name for the prepared images.")
    if dst.is_dir() and any(dst.iterdir()) and not (dst / MANIFEST).is_file():
        raise UserError(f"Output folder {dst} already holds files that prepare did not write; choose a new or empty folder.")


def read_manifest(folder: Path) -> list[ManifestRow]:
    """The rows of ``folder/manifest.csv`` (empty when there is none)."""
    path = folder / MANIFEST
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [ManifestRow(**{k: row.get(k) or "" for k in MANIFEST_FIELDS}) for row in csv.DictReader(handle)]


def write_manifest(folder: Path, rows: Iterable[ManifestRow]) -> None:
    """Write ``folder/manifest.csv``, one row per source file."""
    with (folder / MANIFEST).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(MANIFEST_FIELDS)
        writer.writerows((r.source, r.status, r.reason, r.detail, r.output) for r in rows)


def prepare_files(src: Path, files: list[str], dst: Path, *, size: int = IMAGE_SIZE, min_size: int = IMAGE_SIZE,
                  background: tuple[int, int, int] = (0, 0, 0), drop_greyscale: bool = True,
                  grey_tolerance: int = GREY_TOLERANCE, max_aspect: float | None = 2.0,
                  near_duplicate_distance: int | None = NEAR_DUPLICATE_BITS, progress: bool = True) -> PrepareSummary:
    """Convert the listed files (relative to `src`) into `dst`; see :func:`prepare_folder`."""
    dst.mkdir(parents=True, exist_ok=True)
    previous = {row.output for row in read_manifest(dst) if row.output}
    summary = PrepareSummary(src, dst)
    first_with_digest: dict[str, str] = {}
    kept = _NearDuplicates(near_duplicate_distance)
    for relative in tqdm(files, desc=f"prepare {src.name}", unit="file", disable=not progress):
        path = src / relative
        try:
            info = path.stat()
            if not stat.S_ISREG(info.st_mode):
                raise Dropped("not-a-file", "not a regular file")
            if info.st_size == 0:
                raise Dropped("empty", "0 bytes")
            digest = _digest(path)
            if digest in first_with_digest:
                raise Dropped("duplicate", f"same bytes as {first_with_digest[digest]}")
            first_with_digest[digest] = relative
            image = convert_file(path, size=size, min_size=min_size, max_aspect=max_aspect, background=background)
            if drop_greyscale and is_greyscale(image, grey_tolerance):
                raise Dropped("greyscale", "no colour in a colour set")
            kept.check(image, relative)
        except Dropped as drop:
            summary.rows.append(ManifestRow(relative, "dropped", drop.reason, drop.detail))
            continue
        except OSError as error:  # unreadable (permissions, vanished while walking)
            summary.rows.append(ManifestRow(relative, "dropped", "unreadable", str(error)))
            continue
        name = output_name(relative)
        image.save(dst / name, format="PNG")
        summary.rows.append(ManifestRow(relative, "kept", output=name))
    current = {row.output for row in summary.rows if row.output}
    for stale in previous - current:  # outputs of an earlier run whose source is gone
        (dst / stale).unlink(missing_ok=True)
    write_manifest(dst, summary.rows)
    return summary


def prepare_folder(src: str | Path, dst: str | Path, *, size: int = IMAGE_SIZE, min_size: int = IMAGE_SIZE,
                   background: tuple[int, int, int] = (0, 0, 0), drop_greyscale: bool = True,
                   grey_tolerance: int = GREY_TOLERANCE, max_aspect: float | None = 2.0,
                   near_duplicate_distance: int | None = NEAR_DUPLICATE_BITS, progress: bool = True) -> PrepareSummary:
    """Clean every file under `src` into size×size RGB PNGs in `dst`, never touching `src`.

    Dropped (each with a reason in ``dst/manifest.csv``): empty, non-image,
    undecodable or truncated files, decompression bombs, images whose
    shorter side is below `min_size`, ones more elongated than `max_aspect`
    (None: any), exact duplicates, near duplicates (perceptual hashes at most
    `near_duplicate_distance` bits apart and nearly equal pixels, see
    NEAR_DUPLICATE_DIFFERENCE; None: off) and, with
    `drop_greyscale`, greyscale images. Re-running rewrites the same names.
    """
    if size < 1 or min_size < 0:
        raise UserError(f"Sizes must be positive (size {size}, min_size {min_size}); use e.g. size 64, min_size 64.")
    if max_aspect is not None and max_aspect < 1:
        raise UserError(f"max_aspect {max_aspect} is below 1, which no image satisfies; use e.g. 2 or None.")
    src, dst = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    _check_folders(src, dst)
    files = list_files(src)
    if not files:
        raise UserError(f"Image folder {src} is empty; put some pictures in it.")
    summary = prepare_files(src, files, dst, size=size, min_size=min_size, background=background,
                            drop_greyscale=drop_greyscale, grey_tolerance=grey_tolerance, max_aspect=max_aspect,
                            near_duplicate_distance=near_duplicate_distance, progress=progress)
    if not summary.kept:
        reasons = ", ".join(f"{reason} {count}" for reason, count in summary.dropped_by_reason.items())
        raise UserError(f"None of the {len(files)} files in {src} is a usable image ({reasons}); "
                        f"see {dst / MANIFEST} and add pictures of at least {min_size} px.")
    return summary


def cache_key(src: Path, **options: object) -> str:
    """A key that changes when any file under `src` (name, size, mtime) or an option changes."""
    sha = hashlib.sha256(f"recipe {RECIPE_VERSION} {sorted(options.items())}".encode())
    for relative in list_files(src):
        info = (src / relative).stat()
        sha.update(f"{relative}\0{info.st_size}\0{info.st_mtime_ns}\n".encode())
    return sha.hexdigest()[:16]


def prepare_cached(src: str | Path, *, cache_root: Path | None = None, progress: bool = True,
                   **options: object) -> Path:
    """A prepared copy of `src` in ``cache_root/<key>/``, built once and reused while `src` is unchanged.

    `cache_root` defaults to ``data/.cache/prepared``; `options` are those of :func:`prepare_folder`.
    """
    src = Path(src).expanduser().resolve()
    cache_root = CACHE_ROOT if cache_root is None else Path(cache_root)
    if not src.is_dir():
        raise UserError(f"Image folder {src} does not exist; pass a folder that holds your pictures.")
    target = cache_root / cache_key(src, **options)
    if (target / MANIFEST).is_file():  # the manifest is written last, so its presence means complete
        return target
    # Build beside the target and rename at the end, so an interrupted build is never mistaken for a cache.
    building = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    try:
        summary = prepare_folder(src, building, progress=progress, **options)
        building.rename(target)
        summary.dst = target
        print(summary.describe())
    except OSError:
        if not (target / MANIFEST).is_file():  # anything but a concurrent build that finished first
            raise
    finally:
        shutil.rmtree(building, ignore_errors=True)
    return target


# ----------------------------------------------------------------------- CLI
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
    parser.add_argument("--near-duplicate-distance", type=int, default=NEAR_DUPLICATE_BITS,
                        help="perceptual-hash bits within which two images count as duplicates; -1 turns it off")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    distance = None if args.near_duplicate_distance < 0 else args.near_duplicate_distance
    summary = prepare_folder(args.src, args.dst, size=args.size, min_size=args.min_size,
                             background=parse_color(args.background), drop_greyscale=not args.keep_greyscale,
                             max_aspect=args.max_aspect, near_duplicate_distance=distance,
                             progress=not args.no_progress)
    print(summary.describe())
    return 0
