"""Turn any folder of pictures into a clean training set of 64×64 RGB PNGs.

Defective items hurt generator training (point 4), so every source file is
either converted or dropped with a stated reason, and ``manifest.csv`` in the
output folder records the decision for each one, including what could not
be walked (an unreadable sub-folder, a broken link, a FIFO). The source
folder is only ever read. ``python -m gan_helpers prepare SRC DST`` runs it
from a shell. The pieces: :mod:`gan_helpers.datasets.convert` (one file),
:mod:`gan_helpers.datasets.dedupe` (duplicates), :mod:`gan_helpers.datasets.folders` (walking),
:mod:`gan_helpers.datasets.manifest` (the record).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import unicodedata
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from gan_helpers.datasets.convert import IMAGE_SIZE, Dropped, convert_file, is_greyscale
from gan_helpers.datasets.dedupe import NEAR_DUPLICATE_LIMIT, NearDuplicates, file_digest
from gan_helpers.errors import UserError
from gan_helpers.storage.locks import hold_destination
from gan_helpers.storage.regular import NotRegular
from gan_helpers.datasets.folders import FILE, walk
from gan_helpers.datasets.manifest import MANIFEST, ManifestRow, PrepareSummary, read_manifest, write_manifest
from gan_helpers.paths import PROJECT_ROOT, ensure_folder


CACHE_ROOT = PROJECT_ROOT / "data" / ".cache" / "prepared"
# Bump when the conversion changes, so cached prepared sets are rebuilt.
RECIPE_VERSION = 2
_EMPTY_DIGEST = hashlib.sha256().hexdigest()  # file_digest of a file of 0 bytes


def output_name(relative: str) -> str:
    """A stable, unique, filesystem-safe PNG name for a source path."""
    ascii_path = unicodedata.normalize("NFKD", relative).encode("ascii", "ignore").decode()
    stem = "__".join(Path(ascii_path).with_suffix("").parts)
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem).strip("._")[:80] or "image"
    tag = hashlib.sha1(relative.encode()).hexdigest()[:8]  # keeps names unique after sanitising
    return f"{stem}-{tag}.png"


def _check_folders(src: Path, dst: Path) -> None:
    if not src.is_dir():
        raise UserError(f"Image folder {src} does not exist; pass a folder that holds your pictures.")
    if dst == src or src in dst.parents:
        raise UserError(f"Output folder {dst} lies inside the source folder {src}; choose an output folder outside it.")
    if dst.exists() and not dst.is_dir():
        raise UserError(f"Output path {dst} is a file; choose a folder name for the prepared images.")
    if dst.is_dir() and any(dst.iterdir()) and not (dst / MANIFEST).is_file():
        raise UserError(f"Output folder {dst} already holds files that prepare did not write; choose a new or empty folder.")


def _decide(path: Path, relative: str, seen_bytes: dict[str, str], near: NearDuplicates | None, *,
            drop_greyscale: bool, **convert) -> Image.Image:
    """The converted image of one source file (`convert`: options of :func:`convert_file`), or :class:`Dropped`."""
    try:
        digest = file_digest(path)
    except NotRegular:  # swapped for a FIFO or a device since the walk
        raise Dropped("not-a-file", "not a regular file (a FIFO, socket or device)") from None
    except OSError as error:  # unreadable (permissions, vanished while walking)
        raise Dropped("unreadable", error.strerror or str(error)) from None
    if digest == _EMPTY_DIGEST:
        raise Dropped("empty", "0 bytes")
    if digest in seen_bytes:
        raise Dropped("duplicate", f"same bytes as {seen_bytes[digest]}")
    seen_bytes[digest] = relative
    image = convert_file(path, **convert)
    if drop_greyscale and is_greyscale(image):
        raise Dropped("greyscale", "no colour in a colour set")
    match = near.check(image, relative) if near is not None else None
    if match:
        raise Dropped("near-duplicate", f"looks like {match[0]} (difference {match[1]:.1f} of 255, "
                                        f"limit {near.limit:g})")
    return image


def prepare_files(src: Path, files: list[str], dst: Path, *, drop_greyscale: bool = True,
                  near_duplicate_limit: float | None = NEAR_DUPLICATE_LIMIT, progress: bool = True,
                  unwalked: Sequence[ManifestRow] = (), **convert) -> PrepareSummary:
    """Convert the listed files (relative to `src`) into `dst`; see :func:`prepare_folder`. `convert` holds the
    options of :func:`~gan_helpers.datasets.convert.convert_file` (size, min_size, max_aspect, background);
    `unwalked` are rows for what the listing could not enter; they go into the manifest as they are."""
    dst.mkdir(parents=True, exist_ok=True)
    previous = {row.output for row in read_manifest(dst) if row.output}  # checked names inside dst only
    summary = PrepareSummary(src, dst)
    seen_bytes: dict[str, str] = {}
    near = NearDuplicates(near_duplicate_limit) if near_duplicate_limit is not None else None
    for relative in tqdm(files, desc=f"prepare {src.name}", unit="file", disable=not progress):
        try:
            image = _decide(src / relative, relative, seen_bytes, near, drop_greyscale=drop_greyscale, **convert)
        except Dropped as drop:
            summary.rows.append(ManifestRow(relative, "dropped", drop.reason, drop.detail))
            continue
        name = output_name(relative)
        # A plain write: an fsync per image would add about a quarter to a build. The manifest,
        # written last and atomically, says which outputs count; an image cut short by a crash
        # during a re-run in place is reported when the set is loaded.
        image.save(dst / name, format="PNG")
        summary.rows.append(ManifestRow(relative, "kept", output=name))
    summary.rows = sorted([*summary.rows, *unwalked], key=lambda row: row.source)
    current = {row.output for row in summary.rows if row.output}
    for stale in previous - current:  # outputs of an earlier run whose source is gone
        target = dst / stale
        if target.is_symlink() or target.is_file():
            target.unlink()
    write_manifest(dst, summary.rows)
    return summary


def prepare_folder(src: str | Path, dst: str | Path, *, size: int = IMAGE_SIZE, min_size: int = IMAGE_SIZE,
                   background: tuple[int, int, int] = (0, 0, 0), drop_greyscale: bool = True,
                   max_aspect: float | None = 2.0, near_duplicate_limit: float | None = NEAR_DUPLICATE_LIMIT,
                   progress: bool = True) -> PrepareSummary:
    """Clean every file under `src` into size×size RGB PNGs in `dst`, never touching `src`.

    Dropped (each with a reason in ``dst/manifest.csv``): empty, non-image,
    undecodable or truncated files, decompression bombs, images whose
    shorter side is below `min_size`, ones more elongated than `max_aspect`
    (None: any), exact duplicates, near duplicates (the same picture
    re-encoded, resized, cropped or recoloured, see :mod:`gan_helpers.datasets.dedupe`;
    `near_duplicate_limit` None: off) and, with `drop_greyscale`, greyscale
    images. FIFOs, broken links, links to folders and unreadable sub-folders
    get a row too. Re-running rewrites the same names.
    """
    if size < 1 or min_size < 0:
        raise UserError(f"Sizes must be positive (size {size}, min_size {min_size}); use e.g. size 64, min_size 64.")
    if max_aspect is not None and max_aspect < 1:
        raise UserError(f"max_aspect {max_aspect} is below 1, which no image satisfies; use e.g. 2 or None.")
    src, dst = Path(src).expanduser().resolve(), Path(dst).expanduser().resolve()
    _check_folders(src, dst)
    entries = walk(src)
    if not entries:
        raise UserError(f"Image folder {src} is empty; put some pictures in it.")
    ensure_folder(dst.parent, "output folder's parent")  # a path through a file, a read-only folder: one sentence
    with hold_destination(dst, "this prepare"):  # one writer per output folder: a second prepare into it stops here
        _check_folders(src, dst)  # again, now that no other prepare can fill it
        ensure_folder(dst, "output folder")
        files = [entry.relative for entry in entries if entry.kind == FILE]
        unwalked = [ManifestRow(entry.relative, "dropped", entry.kind, entry.detail)
                    for entry in entries if entry.kind != FILE]
        summary = prepare_files(src, files, dst, size=size, min_size=min_size, background=background,
                                drop_greyscale=drop_greyscale, max_aspect=max_aspect,
                                near_duplicate_limit=near_duplicate_limit, progress=progress, unwalked=unwalked)
    if not summary.kept:
        reasons = ", ".join(f"{reason} {count}" for reason, count in summary.dropped_by_reason.items())
        raise UserError(f"None of the {len(summary.rows)} files in {src} is a usable image ({reasons}); "
                        f"see {dst / MANIFEST} and add pictures of at least {min_size} px.")
    return summary


def cache_key(src: Path, **options: object) -> str:
    """A key that changes when anything under `src` (name, kind, size, mtime) or an option changes."""
    sha = hashlib.sha256(f"recipe {RECIPE_VERSION} {sorted(options.items())}".encode())
    for entry in walk(src):
        sha.update(f"{entry.relative}\0{entry.kind}\0{entry.size}\0{entry.mtime_ns}\n".encode())
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
