"""``manifest.csv``: the decision about every source file of a prepared folder, kept or dropped and why.

The manifest is also what later steps trust to find the images (training
reads the kept outputs, a re-run deletes outputs whose source is gone), so
a manifest from an earlier run, or one someone edited, is checked row by
row: an output must be a plain ``.png`` file name inside the folder, never a
path, and a source a relative path that stays below the source folder. Any
other row is a :class:`~gan_helpers.errors.UserError` naming its line.

The default set, built by ``python -m gan_helpers data`` (``commands/data.py``)
from Debian's stellarium-data, adds ``build.json``: written last, it marks the
set complete (:func:`is_complete`) and names the package the photos came from.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from gan_helpers.storage.atomic import atomic_open
from gan_helpers.datasets.convert import IMAGE_SIZE
from gan_helpers.errors import UserError
from gan_helpers.datasets.folders import is_plain_name
from gan_helpers.paths import DEFAULT_DATA, PROJECT_ROOT
from gan_helpers.storage.regular import NotRegular, open_regular_file

MANIFEST = "manifest.csv"
MANIFEST_FIELDS = ("source", "status", "reason", "detail", "output")
STATUSES = ("kept", "dropped")
STELLARIUM_CACHE = PROJECT_ROOT / "data" / ".cache" / "stellarium"  # the default set's download and unpacked photos
BUILD_INFO = "build.json"
RECIPE_VERSION = 1  # bump when the default set's recipe changes, so old sets are rebuilt


@dataclass
class ManifestRow:
    """The decision about one source file (a row of ``manifest.csv``)."""

    source: str  # path relative to the source folder, with forward slashes ("x/" for a folder)
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

    def describe(self) -> str:
        """A short human summary: kept, dropped by reason, where the manifest is."""
        lines = [f"Kept {self.kept} of {len(self.rows)} files as {IMAGE_SIZE}x{IMAGE_SIZE} PNGs in {self.dst}."]
        if self.dropped:
            reasons = ", ".join(f"{reason} {count}" for reason, count in self.dropped_by_reason.items())
            lines.append(f"Dropped {self.dropped}: {reasons} (details in {self.dst / MANIFEST}).")
        return "\n".join(lines)


def is_source_path(name: str) -> bool:
    """Whether `name` is a relative path that stays below the source folder."""
    path = PurePosixPath(name)
    return bool(name) and not path.is_absolute() and ".." not in path.parts and "\\" not in name \
        and not any(ord(c) < 32 for c in name)


def read_manifest(folder: str | Path) -> list[ManifestRow]:
    """The rows of ``folder/manifest.csv`` (empty when there is none), each checked (see the module)."""
    folder = Path(folder)
    path = folder / MANIFEST
    try:
        handle = open_regular_file(path, follow_links=True)
    except (FileNotFoundError, NotADirectoryError, NotRegular):
        return []
    except OSError as error:
        raise UserError(f"Manifest {path} cannot be read ({error.strerror or error}); check its permissions.") from None
    fix = f"delete {path} (or the whole folder) and prepare it again"
    rows = []
    try:
        with io.TextIOWrapper(handle, encoding="utf-8", newline="") as text:
            reader = csv.DictReader(text)
            if not set(MANIFEST_FIELDS) <= set(reader.fieldnames or ()):
                raise UserError(f"{path} lacks the columns {', '.join(MANIFEST_FIELDS)}, so prepare did not "
                                f"write it; {fix}.")
            for row in reader:
                values = {key: row.get(key) or "" for key in MANIFEST_FIELDS}
                problem = _problem(folder, values)
                if problem:
                    raise UserError(f"{path} line {reader.line_num} {problem}; {fix}.")
                rows.append(ManifestRow(**values))
    except (UnicodeDecodeError, csv.Error) as error:
        raise UserError(f"{path} is not a readable CSV file ({error}); {fix}.") from None
    return rows


def _problem(folder: Path, values: dict[str, str]) -> str:
    """What is wrong with one manifest row, or "" when nothing is."""
    if values["status"] not in STATUSES:
        return f"has status {values['status']!r}, not one of {', '.join(STATUSES)}"
    if not is_source_path(values["source"]):
        return f"names source {values['source']!r}, which is not a path inside the source folder"
    if values["output"] and not (values["output"].lower().endswith(".png") and is_plain_name(folder, values["output"])):
        return f"names output {values['output']!r}, which is not a .png file name inside {folder}"
    if values["status"] == "kept" and not values["output"]:
        return "keeps an image without naming its output file"
    return ""


def write_manifest(folder: Path, rows: Iterable[ManifestRow]) -> None:
    """Write ``folder/manifest.csv`` atomically, one row per source file."""
    with atomic_open(Path(folder) / MANIFEST, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(MANIFEST_FIELDS)
        writer.writerows((r.source, r.status, r.reason, r.detail, r.output) for r in rows)


def is_complete(dst: Path) -> bool:
    """Whether `dst` holds a finished default set of the current recipe."""
    try:
        info = json.loads((dst / BUILD_INFO).read_text())
    except (OSError, ValueError):
        return False
    try:
        outputs = [row.output for row in read_manifest(dst) if row.status == "kept"]
    except UserError:  # a damaged manifest: the set is rebuilt (and replaced whole, never read)
        return False
    return info.get("recipe") == RECIPE_VERSION and bool(outputs) and all((dst / name).is_file() for name in outputs)


def source_folder(dst: Path = DEFAULT_DATA, cache: Path = STELLARIUM_CACHE) -> Path | None:
    """The unpacked photos a built default set came from (to show what was dropped), if still cached."""
    try:
        package = json.loads((Path(dst) / BUILD_INFO).read_text())["package"]
    except (OSError, ValueError, KeyError):
        return None
    folder = cache / "nebulae" / package
    return folder if folder.is_dir() else None
