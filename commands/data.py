"""python -m gan_helpers data: build the default data set, colour deep-sky photographs from Debian's ``stellarium-data``.

The planetarium program Stellarium ships a few hundred small photos of
galaxies, nebulae and star clusters, each with its photographer's credit.
They make a homogeneous, freely redistributable class for the GAN: dark sky,
a bright object in the middle. This command downloads the package with apt,
unpacks only those photos, and runs them through the same cleaning as any
other folder (:mod:`gan_helpers.datasets.prepare`), dropping the monochrome
survey plates, into ``data/galaxies64`` with ``credits.csv``. Loading only
checks the finished set (:func:`gan_helpers.datasets.manifest.is_complete`).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path

from gan_helpers.datasets.folders import FILE, walk
from gan_helpers.datasets.manifest import (
    BUILD_INFO, MANIFEST, RECIPE_VERSION, STELLARIUM_CACHE as CACHE, PrepareSummary, is_complete,
)
from gan_helpers.datasets.prepare import prepare_files
from gan_helpers.errors import UserError
from gan_helpers.paths import DEFAULT_DATA, ensure_folder
from gan_helpers.storage.atomic import atomic_open, atomic_write_text

HELP = "build the default data set (colour deep-sky photos from Debian's stellarium-data) in data/galaxies64"
PACKAGE = "stellarium-data"
NEBULAE = "usr/share/stellarium/nebulae/default"  # inside the package
CREDITS = "credits.csv"
NO_APT = ("Building the default data set needs apt-get and dpkg-deb (Debian or Ubuntu), which this machine lacks; "
          "train on any folder of images instead with --data path/to/folder (or make <target> DATA=path/to/folder).")


@dataclass(frozen=True)
class Credit:
    """Who took a photo, and where to read more about it."""

    credit: str
    info_url: str = ""


def parse_textures(text: str) -> dict[str, Credit]:
    """Image file name -> credit, from Stellarium's ``textures.json``.

    The file is not strict JSON (numbers like ``-.9794``) and its keys vary
    in case (``short``/``Short``), so it is repaired and read leniently.
    """
    repaired = re.sub(r"(?<=[\[,:\s])(-?)\.(\d)", r"\g<1>0.\2", text)  # -.97 -> -0.97
    repaired = re.sub(r",(\s*[\]}])", r"\1", repaired)  # trailing commas
    tiles = json.loads(repaired).get("subTiles", [])
    credits = {}
    for tile in tiles:
        credit = {key.lower(): str(value).strip() for key, value in (tile.get("imageCredits") or {}).items()}
        if "imageUrl" in tile:
            credits[tile["imageUrl"]] = Credit(credit.get("short", ""), credit.get("infourl", ""))
    return credits


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise UserError(NO_APT)
    return path


def download_package(cache: Path = CACHE) -> Path:
    """The package's .deb in `cache`, downloaded with ``apt-get download`` unless already there."""
    cached = sorted(cache.glob(f"{PACKAGE}_*.deb"))
    if cached:
        return cached[-1]
    apt = _tool("apt-get")
    partial = cache / f"download.partial-{os.getpid()}"  # per process: two builds never share one
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)

    def download() -> subprocess.CompletedProcess:
        return subprocess.run([apt, "download", PACKAGE], cwd=partial, capture_output=True, text=True)

    print(f"Downloading {PACKAGE} (about 250 MB) with apt-get ...", flush=True)
    result = download()
    if result.returncode != 0 and hasattr(os, "geteuid") and os.geteuid() == 0:
        # A fresh machine may have empty package lists; as root we can fill them.
        subprocess.run([apt, "update", "-qq"], capture_output=True, text=True)
        result = download()
    debs = sorted(partial.glob(f"{PACKAGE}_*.deb"))
    if result.returncode != 0 or not debs:
        shutil.rmtree(partial, ignore_errors=True)
        last = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise UserError(f"apt-get could not download {PACKAGE} ({last}); run 'sudo apt-get update' and check the "
                        f"network, or train on any folder of images with --data path/to/folder.")
    deb = cache / debs[-1].name
    debs[-1].rename(deb)
    shutil.rmtree(partial, ignore_errors=True)
    return deb


def extract_nebulae(deb: Path, cache: Path = CACHE) -> Path:
    """The package's nebula photos and ``textures.json``, unpacked once into `cache`."""
    target = cache / "nebulae" / deb.stem
    if (target / "textures.json").is_file():
        return target
    dpkg_deb = _tool("dpkg-deb")
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    prefix = f"./{NEBULAE}/"
    # Stream the package's file tree and keep only the photos: a full
    # `dpkg-deb -x` would also write a few hundred MB of sky textures.
    with subprocess.Popen([dpkg_deb, "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE) as process:
        try:
            with tarfile.open(fileobj=process.stdout, mode="r|") as archive:
                for member in archive:
                    if member.isfile() and member.name.startswith(prefix) and "/" not in member.name[len(prefix):]:
                        member.name = member.name[len(prefix):]
                        archive.extract(member, partial, filter="data")
        except tarfile.TarError:
            pass  # reported below from dpkg-deb's exit status or the missing index
        process.stdout.close()
        error = process.stderr.read().decode(errors="replace").strip()
    if process.returncode != 0 or not (partial / "textures.json").is_file():
        shutil.rmtree(partial, ignore_errors=True)
        deb.unlink(missing_ok=True)
        raise UserError(f"The downloaded package {deb.name} could not be unpacked ({error or 'no photos inside'}) "
                        f"and was removed; run the command again to download it afresh.")
    try:
        partial.rename(target)
    except OSError:  # another process unpacked it first
        shutil.rmtree(partial, ignore_errors=True)
    return target


def build_from_folder(nebulae: Path, dst: Path, *, progress: bool = True) -> PrepareSummary:
    """Clean Stellarium's photo folder into `dst` and write the credits of the kept ones."""
    credits = parse_textures((nebulae / "textures.json").read_text(encoding="utf-8"))
    photos = [entry.relative for entry in walk(nebulae, recursive=False)
              if entry.kind == FILE and entry.relative.lower().endswith(".png")]
    summary = prepare_files(nebulae, photos, dst, drop_greyscale=True, progress=progress)
    with atomic_open(dst / CREDITS, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(("file", "source", "credit", "info_url"))
        for row in summary.rows:
            if row.status == "kept":
                credit = credits.get(row.source, Credit("unknown (see the package's copyright file)"))
                writer.writerow((row.output, row.source, credit.credit, credit.info_url))
    return summary


def build_default_dataset(dst: Path = DEFAULT_DATA, *, cache: Path = CACHE, deb: Path | None = None,
                          force: bool = False, progress: bool = True) -> Path:
    """Build the default set in `dst` (idempotent: a complete set is left alone) and return `dst`.

    `deb` names an already downloaded ``stellarium-data`` package; by
    default it is fetched with apt into `cache`, which keeps the download
    and the unpacked photos for later rebuilds.
    """
    dst = Path(dst).expanduser().resolve()
    ensure_folder(dst.parent, "data set's folder")  # a path through a file, a read-only folder: one sentence
    if dst.exists() and not dst.is_dir():
        raise UserError(f"the data set's folder {dst} is a file, not a folder; give a path to a folder (or move that file away).")
    if not force and is_complete(dst):
        print(f"{dst} is already complete ({len(list(dst.glob('*.png')))} images); nothing to do.")
        return dst
    if dst.exists() and any(dst.iterdir()) and not (dst / MANIFEST).is_file():
        raise UserError(f"{dst} holds files that are not a default data set; move them away or choose another folder.")
    cache.mkdir(parents=True, exist_ok=True)
    nebulae = extract_nebulae(Path(deb) if deb else download_package(cache), cache)
    building = dst.with_name(f"{dst.name}.partial-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    summary = build_from_folder(nebulae, building, progress=progress)
    if not force and is_complete(dst):  # another process finished the same build meanwhile
        shutil.rmtree(building)
        return dst
    info = {"recipe": RECIPE_VERSION, "package": nebulae.name, "kept": summary.kept,
            "dropped": summary.dropped_by_reason}
    atomic_write_text(building / BUILD_INFO, json.dumps(info, indent=2) + "\n")
    old = dst.with_name(f"{dst.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if dst.exists():
        dst.rename(old)
    building.rename(dst)
    shutil.rmtree(old, ignore_errors=True)
    summary.dst = dst
    print(summary.describe())
    print(f"Photo credits: {dst / CREDITS}")
    return dst


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dst", type=Path, default=DEFAULT_DATA, help="output folder (default data/galaxies64)")
    parser.add_argument("--deb", type=Path, help="use this stellarium-data .deb instead of downloading it")
    parser.add_argument("--force", action="store_true", help="rebuild even if the set is complete")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    # Paths typed on the command line mean the current folder; only the default lives in the project.
    dst = Path.cwd() / args.dst.expanduser()
    deb = None if args.deb is None else Path.cwd() / args.deb.expanduser()
    if deb is not None and not deb.is_file():
        raise UserError(f"Package file {deb} does not exist; pass the path of a stellarium-data .deb.")
    build_default_dataset(dst, deb=deb, force=args.force, progress=not args.no_progress)
    return 0
