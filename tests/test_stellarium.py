"""The default data set's recipe (``python -m gan_helpers data``): credits parsing, filtering, packaging, idempotence,
and life without apt."""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from commands import data
from commands.data import (
    CACHE, NEBULAE, Credit, build_default_dataset, build_from_folder, download_package, extract_nebulae, parse_textures,
)
from gan_helpers.datasets.manifest import RECIPE_VERSION, is_complete, source_folder
from gan_helpers.errors import UserError
from test_manifest import interrupted_after_header

# The quirks of the real file: a number written "-.9794", "Short" next to
# "short", a missing infoUrl, and (tolerated) a trailing comma.
TEXTURES = """{
\t"shortName": "Nebulae",
\t"subTiles" : [
\t{
\t\t"imageCredits": {"short" : "Stephane Dumont"},
\t\t"imageUrl" : "colour_a.png",
\t\t"worldCoords" : [[[323.4989,-.9794], [323.22,-.9794]]],
\t\t"minResolution" : 0.13
\t},
\t{
\t\t"imageCredits" : {"Short": "Starhopper", "infoUrl": "https://commons.wikimedia.org/wiki/File:Messier_3.jpg"},
\t\t"imageUrl" : "colour_b.png",
\t\t"worldCoords" : [[[205.8, 28.1], [205.2, .5]]],
\t},
\t{
\t\t"imageCredits" : {"short": "DSS"},
\t\t"imageUrl" : "plate.png"
\t}
\t]
}"""


def colour_photo(seed: int, size: int = 128, mode: str = "RGB") -> Image.Image:
    """A bright coloured blob on black, like a small deep-sky photo."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:size, :size] / size - 0.5
    blob = np.exp(-(x**2 + y**2) / 0.02)[..., None] * rng.uniform(80, 255, size=3)
    stars = (rng.random((size, size, 1)) > 0.995) * 255
    return Image.fromarray(np.clip(blob + stars, 0, 255).astype(np.uint8), "RGB").convert(mode)


def make_nebulae_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "textures.json").write_text(TEXTURES, encoding="utf-8")
    colour_photo(1).save(folder / "colour_a.png")
    colour_photo(2, mode="RGBA").save(folder / "colour_b.png")
    colour_photo(3).convert("L").save(folder / "plate.png")  # a monochrome survey plate
    colour_photo(4).save(folder / "uncredited.png")
    (folder / "catalog.dat").write_text("not a photo\n")
    return folder


def make_deb(tmp_path: Path) -> Path:
    """A tiny stellarium-data package with the real layout, built with dpkg-deb."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    root = tmp_path / "pkg"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text("Package: stellarium-data\nVersion: 9.9-1\nArchitecture: all\n"
                                             "Maintainer: test <test@example.org>\nDescription: test package\n")
    make_nebulae_folder(root / NEBULAE)
    other = root / "usr/share/stellarium/textures"
    other.mkdir(parents=True)
    colour_photo(9).save(other / "milkyway.png")  # must not be unpacked
    deb = tmp_path / "stellarium-data_9.9-1_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(deb)], check=True,
                   capture_output=True)
    return deb


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_parse_textures_copes_with_the_real_quirks():
    credits = parse_textures(TEXTURES)
    assert credits == {
        "colour_a.png": Credit("Stephane Dumont", ""),
        "colour_b.png": Credit("Starhopper", "https://commons.wikimedia.org/wiki/File:Messier_3.jpg"),
        "plate.png": Credit("DSS", ""),
    }


def test_build_from_folder_keeps_colour_photos_and_credits_them(tmp_path):
    nebulae = make_nebulae_folder(tmp_path / "nebulae")
    summary = build_from_folder(nebulae, tmp_path / "out", progress=False)
    decisions = {row.source: (row.status, row.reason) for row in summary.rows}
    assert decisions == {"colour_a.png": ("kept", ""), "colour_b.png": ("kept", ""),
                         "plate.png": ("dropped", "greyscale"), "uncredited.png": ("kept", "")}
    credits = {row["source"]: row for row in read_csv(tmp_path / "out" / "credits.csv")}
    assert set(credits) == {"colour_a.png", "colour_b.png", "uncredited.png"}  # one line per kept image
    assert credits["colour_b.png"]["credit"] == "Starhopper"
    assert credits["colour_b.png"]["info_url"].startswith("https://commons.wikimedia.org/")
    assert credits["uncredited.png"]["credit"].startswith("unknown")
    for row in credits.values():
        with Image.open(tmp_path / "out" / row["file"]) as image:
            assert (image.mode, image.size) == ("RGB", (64, 64))
    # RGBA photos are flattened onto black, not white.
    with Image.open(tmp_path / "out" / credits["colour_b.png"]["file"]) as image:
        assert max(image.getpixel((0, 0))) < 10


def test_build_from_package_is_idempotent(tmp_path, capsys):
    deb = make_deb(tmp_path)
    dst, cache = tmp_path / "galaxies64", tmp_path / "cache"
    assert build_default_dataset(dst, cache=cache, deb=deb, progress=False) == dst.resolve()
    assert is_complete(dst)
    assert len(list(dst.glob("*.png"))) == 3
    assert json.loads((dst / "build.json").read_text())["dropped"] == {"greyscale": 1}
    unpacked = {p.name for p in (cache / "nebulae" / deb.stem).iterdir()}
    assert "milkyway.png" not in unpacked and "colour_a.png" in unpacked  # only the nebula photos
    assert source_folder(dst, cache) == cache / "nebulae" / deb.stem
    assert source_folder(tmp_path, cache) is None  # not a built set
    before = {p.name: p.stat().st_mtime_ns for p in dst.iterdir()}
    capsys.readouterr()
    build_default_dataset(dst, cache=cache, deb=deb, progress=False)
    assert "nothing to do" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in dst.iterdir()} == before
    # An incomplete set (a file lost) is rebuilt, not trusted.
    next(dst.glob("*.png")).unlink()
    assert not is_complete(dst)
    build_default_dataset(dst, cache=cache, deb=deb, progress=False)
    assert is_complete(dst) and len(list(dst.glob("*.png"))) == 3
    assert not list(tmp_path.glob("galaxies64.*"))  # no partial or old folders left behind


def test_refuses_to_overwrite_a_foreign_folder(tmp_path):
    dst = tmp_path / "mine"
    dst.mkdir()
    (dst / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(UserError, match="not a default data set"):
        build_default_dataset(dst, cache=tmp_path / "cache", deb=tmp_path / "unused.deb", progress=False)
    assert (dst / "holiday.jpg").read_bytes() == b"precious"


def test_damaged_package_is_removed_with_a_clear_message(tmp_path):
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is not installed")
    deb = tmp_path / "stellarium-data_1.0_all.deb"
    deb.write_bytes(b"!<arch>\nthis is not a package")
    with pytest.raises(UserError, match="could not be unpacked .* run the command again"):
        extract_nebulae(deb, tmp_path / "cache")
    assert not deb.exists()


def fake_apt(tmp_path: Path, deb: Path | None) -> Path:
    """A fake apt-get on PATH: 'download' copies `deb` into the working folder (or fails)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "apt-get"
    action = f'cp "{deb}" .' if deb else 'echo "E: Unable to locate package stellarium-data" >&2; exit 100'
    script.write_text(f'#!/bin/sh\necho "$@" >> "{tmp_path}/apt-calls"\n'
                      f'if [ "$1" = download ]; then {action}; fi\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def test_download_uses_apt_get_download_and_caches(tmp_path, monkeypatch):
    deb = make_deb(tmp_path)
    monkeypatch.setenv("PATH", f"{fake_apt(tmp_path, deb)}{os.pathsep}{os.environ['PATH']}")
    cache = tmp_path / "cache"
    cache.mkdir()
    got = download_package(cache)
    assert got == cache / deb.name and got.read_bytes() == deb.read_bytes()
    assert download_package(cache) == got  # second time: from the cache, no apt call
    assert (tmp_path / "apt-calls").read_text().splitlines() == ["download stellarium-data"]


def test_download_failure_names_the_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{fake_apt(tmp_path, None)}{os.pathsep}{os.environ['PATH']}")
    with pytest.raises(UserError, match=r"apt-get could not download stellarium-data .*--data path/to/folder") as e:
        download_package(tmp_path / "cache")
    assert "\n" not in str(e.value)
    calls = (tmp_path / "apt-calls").read_text().splitlines()
    if os.geteuid() == 0:  # as root it refreshes empty package lists and tries again
        assert calls == ["download stellarium-data", "update -qq", "download stellarium-data"]


def test_without_apt_the_error_says_how_to_use_any_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(data.shutil, "which", lambda name: None)
    with pytest.raises(UserError) as error:
        build_default_dataset(tmp_path / "galaxies64", cache=tmp_path / "cache", progress=False)
    message = str(error.value)
    assert "apt-get" in message and "--data path/to/folder" in message and "DATA=path/to/folder" in message
    assert "\n" not in message and message.count(". ") == 0  # one sentence


def test_cli_rejects_a_missing_deb(tmp_path):
    parser = argparse.ArgumentParser()
    data.add_arguments(parser)
    args = parser.parse_args(["--dst", str(tmp_path / "out"), "--deb", str(tmp_path / "nope.deb")])
    with pytest.raises(UserError, match="does not exist"):
        data.run(args)


# ------------------------------------------------------- the real package
REAL_SAMPLE = {  # file -> expected decision, chosen to cover the package's kinds of image
    "m1dumont.png": "kept",  # RGB colour, credit without infoUrl
    "m3.png": "kept",  # palette image, "Short" credit key with infoUrl
    "n134.png": "kept",  # RGBA
    "m49.png": "dropped",  # 8-bit greyscale file
    "n5634-dss.png": "dropped",  # greyscale survey plate
    "n147.png": "dropped",  # greyscale stored as RGB
}


@pytest.fixture(scope="module")
def real_nebulae() -> Path:
    """Stellarium's photo folder from the project cache, downloading the package once if apt can."""
    unpacked = sorted(CACHE.glob("nebulae/*/textures.json"))
    if unpacked:
        return unpacked[-1].parent
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        pytest.skip("the stellarium-data package is not cached and apt-get/dpkg-deb are unavailable")
    CACHE.mkdir(parents=True, exist_ok=True)
    try:
        return extract_nebulae(download_package(CACHE), CACHE)
    except UserError as error:
        pytest.skip(f"could not fetch stellarium-data: {error}")


def test_real_photos_are_filtered_and_credited(real_nebulae, tmp_path):
    sample = tmp_path / "sample"
    sample.mkdir()
    shutil.copy(real_nebulae / "textures.json", sample)
    for name in REAL_SAMPLE:
        shutil.copy(real_nebulae / name, sample)
    summary = build_from_folder(sample, tmp_path / "out", progress=False)
    assert {row.source: row.status for row in summary.rows} == REAL_SAMPLE
    assert {row.reason for row in summary.rows if row.status == "dropped"} == {"greyscale"}
    credits = {row["source"]: row for row in read_csv(tmp_path / "out" / "credits.csv")}
    assert credits["m1dumont.png"]["credit"] == "Stephane Dumont"
    assert credits["m3.png"]["credit"] == "Starhopper"
    assert credits["m3.png"]["info_url"] == "https://commons.wikimedia.org/wiki/File:Messier_3.jpg"
    assert len(parse_textures((real_nebulae / "textures.json").read_text(encoding="utf-8"))) >= 500


def test_cli_paths_mean_the_current_folder(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(data, "build_default_dataset", lambda dst, **kwargs: calls.append((dst, kwargs["deb"])))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pkg.deb").write_bytes(b"")
    parser = argparse.ArgumentParser()
    data.add_arguments(parser)
    assert data.run(parser.parse_args(["--dst", "mine", "--deb", "pkg.deb"])) == 0
    assert calls == [(tmp_path / "mine", tmp_path / "pkg.deb")]


def test_a_crafted_manifest_does_not_make_a_set_complete(tmp_path):
    (tmp_path / "victim.png").write_bytes(b"precious")
    dst = tmp_path / "galaxies64"
    dst.mkdir()
    (dst / "build.json").write_text(json.dumps({"recipe": RECIPE_VERSION, "package": "x"}))
    (dst / "manifest.csv").write_text("source,status,reason,detail,output\na.png,kept,,,../victim.png\n")
    assert not is_complete(dst)
    assert (tmp_path / "victim.png").read_bytes() == b"precious"


def test_credits_are_written_whole_or_not_at_all(tmp_path, monkeypatch):
    nebulae = make_nebulae_folder(tmp_path / "nebulae")
    out = tmp_path / "out"
    out.mkdir()
    (out / "credits.csv").write_text("file,source,credit,info_url\nold.png,old.png,someone,\n")
    monkeypatch.setattr(csv, "writer", interrupted_after_header("file"))  # the credits header
    with pytest.raises(KeyboardInterrupt):
        build_from_folder(nebulae, out, progress=False)
    assert (out / "credits.csv").read_text().startswith("file,source,credit,info_url\nold.png")
