"""Cleaning an arbitrary folder: every awkward or broken file is converted or dropped for a stated reason.

The builders here (colour_image, make_awkward_folder, read_rows ...) serve the other data tests too."""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gan_helpers.datasets import prepare
from commands import prepare as prepare_command
from gan_helpers.errors import UserError
from gan_helpers.datasets.manifest import PrepareSummary
from gan_helpers.datasets.prepare import output_name, prepare_cached, prepare_folder


# ----------------------------------------------------------------- builders
def colour_image(seed: int, width: int = 160, height: int = 120) -> Image.Image:
    """Smooth, strongly coloured blobs: like a photo at low resolution, different for every seed."""
    coarse = np.random.default_rng(seed).integers(0, 256, size=(4, 4, 3), dtype=np.uint8)
    return Image.fromarray(coarse, "RGB").resize((width, height), Image.Resampling.BICUBIC)


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def png_chunks(width: int, height: int, bit_depth: int, colour_type: int, raw: bytes) -> bytes:
    """A PNG file written by hand, for what Pillow cannot write (16-bit RGB, absurd sizes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def rgb16_png(seed: int, width: int = 96, height: int = 96) -> bytes:
    pixels = (np.asarray(colour_image(seed, width, height), dtype=np.uint16) * 257).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)
    return png_chunks(width, height, 16, 2, raw)


def save(image: Image.Image, path: Path, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)


# source -> (status, reason) for everything make_awkward_folder writes
EXPECTED = {
    "plain.jpg": ("kept", ""),
    "z_copy_of_plain.jpg": ("dropped", "duplicate"),
    "holiday/beach.jpg": ("kept", ""),
    "holiday/beach_small.jpg": ("dropped", "near-duplicate"),
    "Sub Folder/nested/Ünïcødé photo.JPEG": ("kept", ""),
    "cmyk.jpg": ("kept", ""),
    "deep16.png": ("kept", ""),
    "deep16_grey.png": ("dropped", "greyscale"),
    "palette_alpha.png": ("kept", ""),
    "la.png": ("dropped", "greyscale"),
    "anim.gif": ("kept", ""),
    "photo.webp": ("kept", ""),
    "scan.BMP": ("kept", ""),
    "grey.jpg": ("dropped", "greyscale"),
    "empty.png": ("dropped", "empty"),
    "notes.jpg": ("dropped", "not-an-image"),
    "README.txt": ("dropped", "not-an-image"),
    "hidden/.DS_Store": ("dropped", "not-an-image"),
    "truncated.jpg": ("dropped", "undecodable"),
    "tiny.png": ("dropped", "too-small"),
    "banner.png": ("dropped", "aspect"),
    "bomb.png": ("dropped", "too-large"),
}


def make_awkward_folder(root: Path) -> Path:
    """A folder with one file for every case prepare must handle (see EXPECTED)."""
    root.mkdir(parents=True, exist_ok=True)
    plain = jpeg_bytes(colour_image(1))
    (root / "plain.jpg").write_bytes(plain)
    (root / "z_copy_of_plain.jpg").write_bytes(plain)
    beach = colour_image(2, 200, 150)
    save(beach, root / "holiday" / "beach.jpg", quality=92)
    save(beach.resize((150, 112), Image.Resampling.BILINEAR), root / "holiday" / "beach_small.jpg", quality=70)
    save(colour_image(3, 120, 90), root / "Sub Folder" / "nested" / "Ünïcødé photo.JPEG", format="JPEG")
    save(colour_image(4).convert("CMYK"), root / "cmyk.jpg")
    (root / "deep16.png").write_bytes(rgb16_png(5))
    ramp = np.linspace(0, 65535, 96 * 96).reshape(96, 96).astype(np.uint16)
    save(Image.fromarray(ramp), root / "deep16_grey.png")
    palette = colour_image(6, 100, 100).quantize(colors=64)
    indices = np.asarray(palette).copy()
    indices[:, :30] = 63  # a transparent left strip
    transparent = Image.fromarray(indices, "P")
    transparent.putpalette(palette.getpalette())
    save(transparent, root / "palette_alpha.png", transparency=63)
    grey = colour_image(7).convert("L")
    save(Image.merge("LA", (grey, Image.new("L", grey.size, 200))), root / "la.png")
    frames = [colour_image(8, 100, 100), colour_image(9, 100, 100)]
    save(frames[0], root / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    save(colour_image(10), root / "photo.webp", quality=90)
    save(colour_image(11), root / "scan.BMP", format="BMP")
    save(colour_image(12).convert("L").convert("RGB"), root / "grey.jpg")
    (root / "empty.png").write_bytes(b"")
    (root / "notes.jpg").write_text("shopping list: flour, carrots\n")
    (root / "README.txt").write_text("photos from the trip\n")
    (root / "hidden").mkdir()
    (root / "hidden" / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(64))
    whole = jpeg_bytes(colour_image(13, 256, 256), quality=95)
    (root / "truncated.jpg").write_bytes(whole[: len(whole) // 2])
    save(colour_image(14, 16, 16), root / "tiny.png")
    save(colour_image(15, 640, 64), root / "banner.png")
    # Only the header matters: Pillow's bomb guard looks at the size before decoding anything.
    (root / "bomb.png").write_bytes(png_chunks(10_000, 9_000, 1, 0, b""))
    return root


def tree_digest(root: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and a marker for every folder) under root."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
            for p in sorted(root.rglob("*"))}


def read_rows(dst: Path) -> dict[str, dict[str, str]]:
    with (dst / "manifest.csv").open(newline="", encoding="utf-8") as handle:
        return {row["source"]: row for row in csv.DictReader(handle)}


@pytest.fixture(scope="module")
def awkward(tmp_path_factory) -> Path:
    return make_awkward_folder(tmp_path_factory.mktemp("awkward") / "src")


@pytest.fixture(scope="module")
def prepared(awkward, tmp_path_factory) -> tuple[Path, PrepareSummary, dict[str, str]]:
    before = tree_digest(awkward)
    dst = tmp_path_factory.mktemp("out") / "dst"
    summary = prepare_folder(awkward, dst, progress=False)
    return dst, summary, before


# ------------------------------------------------------------ folder tests
def test_manifest_has_one_row_per_file_with_the_right_decision(prepared):
    dst, summary, _ = prepared
    rows = read_rows(dst)
    assert set(rows) == set(EXPECTED)
    got = {source: (row["status"], row["reason"]) for source, row in rows.items()}
    assert got == EXPECTED
    assert "plain.jpg" in rows["z_copy_of_plain.jpg"]["detail"]
    assert "holiday/beach.jpg" in rows["holiday/beach_small.jpg"]["detail"]
    assert all(row["detail"] for row in rows.values() if row["status"] == "dropped")
    assert summary.kept == 9 and summary.dropped == len(EXPECTED) - 9


def test_outputs_are_64px_rgb_pngs_one_per_kept_row(prepared):
    dst, _, _ = prepared
    rows = read_rows(dst)
    outputs = sorted(row["output"] for row in rows.values() if row["status"] == "kept")
    assert sorted(p.name for p in dst.glob("*.png")) == outputs
    assert all(row["output"] == "" for row in rows.values() if row["status"] == "dropped")
    for name in outputs:
        assert name.isascii() and " " not in name
        with Image.open(dst / name) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (64, 64))


def test_source_folder_is_untouched(prepared, awkward):
    _, _, before = prepared
    assert tree_digest(awkward) == before


def test_summary_counts_drops_by_reason(prepared):
    _, summary, _ = prepared
    assert summary.dropped_by_reason["greyscale"] == 3
    assert summary.dropped_by_reason["not-an-image"] == 3
    text = summary.describe()
    assert "Kept 9 of 22" in text and "greyscale 3" in text and "manifest.csv" in text
    assert [row.source for row in summary.rows if row.reason == "greyscale"] == ["deep16_grey.png", "grey.jpg", "la.png"]


def test_rerun_is_deterministic_and_removes_stale_outputs(awkward, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("plain.jpg", "cmyk.jpg", "photo.webp"):
        (src / name).write_bytes((awkward / name).read_bytes())
    dst = tmp_path / "dst"
    prepare_folder(src, dst, progress=False)
    first = tree_digest(dst)
    prepare_folder(src, dst, progress=False)
    assert tree_digest(dst) == first  # same names, same bytes
    (src / "cmyk.jpg").unlink()
    prepare_folder(src, dst, progress=False)
    assert len(list(dst.glob("*.png"))) == 2
    assert output_name("cmyk.jpg") not in {p.name for p in dst.iterdir()}


def test_refuses_output_inside_source(awkward):
    before = tree_digest(awkward)
    with pytest.raises(UserError, match="inside the source folder"):
        prepare_folder(awkward, awkward / "prepared", progress=False)
    with pytest.raises(UserError, match="inside the source folder"):
        prepare_folder(awkward, awkward, progress=False)
    assert tree_digest(awkward) == before


def test_refuses_output_folder_with_foreign_files(awkward, tmp_path):
    dst = tmp_path / "dst"
    dst.mkdir()
    (dst / "my_thesis.txt").write_text("precious")
    with pytest.raises(UserError, match="did not write"):
        prepare_folder(awkward, dst, progress=False)
    assert (dst / "my_thesis.txt").read_text() == "precious"


def test_missing_empty_or_useless_source_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        prepare_folder(tmp_path / "nope", tmp_path / "dst", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="is empty"):
        prepare_folder(tmp_path / "empty", tmp_path / "dst", progress=False)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "a.jpg").write_text("not a picture")
    (junk / "b.png").write_bytes(b"")
    with pytest.raises(UserError, match=r"None of the 2 files .* usable") as error:
        prepare_folder(junk, tmp_path / "dst2", progress=False)
    assert "\n" not in str(error.value)
    assert read_rows(tmp_path / "dst2")["a.jpg"]["reason"] == "not-an-image"  # the manifest says why


def test_options_change_decisions(awkward, tmp_path):
    summary = prepare_folder(awkward, tmp_path / "dst", drop_greyscale=False, max_aspect=None, min_size=8,
                             near_duplicate_limit=None, progress=False)
    kept = {row.source for row in summary.rows if row.status == "kept"}
    assert {"grey.jpg", "la.png", "deep16_grey.png", "banner.png", "tiny.png", "holiday/beach_small.jpg"} <= kept
    assert "z_copy_of_plain.jpg" not in kept  # exact duplicates always go


def test_decompression_bomb_error_level_is_dropped_too(tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    save(colour_image(20, 300, 300), src / "big.png")  # 90 000 px: over twice the patched limit -> error
    save(colour_image(21, 200, 200), src / "medium.png")  # 40 000 px: over the limit -> warning
    save(colour_image(22, 100, 100), src / "fine.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 30_000)
    rows = prepare_folder(src, tmp_path / "dst", progress=False).rows
    assert {row.source: row.reason for row in rows} == {"big.png": "too-large", "fine.png": "", "medium.png": "too-large"}


def test_cli_prints_summary(awkward, tmp_path, capsys):
    parser = argparse.ArgumentParser()
    prepare_command.add_arguments(parser)
    args = parser.parse_args([str(awkward), str(tmp_path / "dst"), "--no-progress", "--background", "white"])
    assert prepare_command.run(args) == 0
    out = capsys.readouterr().out
    assert "Kept 9 of 22" in out and "too-large 1" in out


def test_command_line_works_from_another_folder(tmp_path):
    """`python -m gan_helpers prepare|data|crawl --help` anywhere, and relative paths mean the current folder."""
    (tmp_path / "pics").mkdir()
    colour_image(1).save(tmp_path / "pics" / "a.jpg")
    script = ("import runpy, sys\n"
              "for argv in (['prepare', '--help'], ['data', '--help'], ['crawl', '--help'],\n"
              "             ['prepare', 'pics', 'out', '--no-progress']):\n"
              "    sys.argv = ['gan_helpers', *argv]\n"
              "    try:\n"
              "        runpy.run_module('gan_helpers', run_name='__main__', alter_sys=True)\n"
              "    except SystemExit as stop:\n"
              "        print('exit', stop.code)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.count("exit 0") == 4, result.stdout + result.stderr
    assert result.stdout.count("usage: python -m gan_helpers") == 3
    assert read_rows(tmp_path / "out")["a.jpg"]["status"] == "kept"


def test_cli_turns_user_errors_into_one_line(tmp_path, capsys, monkeypatch):
    from gan_helpers import __main__ as cli

    monkeypatch.setattr(cli, "COMMANDS", {"prepare": "commands.prepare"})  # only the command under test
    assert cli.main(["prepare", str(tmp_path / "missing"), str(tmp_path / "dst")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Image folder") and err.count("\n") == 1 and "Traceback" not in err


def test_output_names_are_stable_unique_and_safe():
    names = [output_name(p) for p in ("a b.jpg", "a_b.jpg", "A B.jpg", "x/Ünï.png", "x/Ünï.jpg")]
    assert len(set(names)) == len(names)
    assert all(n.isascii() and n.endswith(".png") and "/" not in n for n in names)
    assert output_name("x/Ünï.png") == output_name("x/Ünï.png")
    assert output_name("x/Ünï.png").startswith("x__Uni-")


# ------------------------------------------------------------------ cache
def test_prepare_cached_reuses_until_the_source_changes(awkward, tmp_path, monkeypatch):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("plain.jpg", "photo.webp"):
        (src / name).write_bytes((awkward / name).read_bytes())
    calls = []
    real = prepare.prepare_folder
    monkeypatch.setattr(prepare, "prepare_folder", lambda *a, **k: calls.append(a) or real(*a, **k))
    cache = tmp_path / "cache"
    first = prepare_cached(src, cache_root=cache, progress=False)
    assert first.parent == cache and len(list(first.glob("*.png"))) == 2
    assert prepare_cached(src, cache_root=cache, progress=False) == first
    assert len(calls) == 1  # the second call reused the cache
    (src / "scan.bmp").write_bytes((awkward / "scan.BMP").read_bytes())
    second = prepare_cached(src, cache_root=cache, progress=False)
    assert second != first and len(list(second.glob("*.png"))) == 3
    assert not list(cache.glob("*.partial-*"))  # no half-built leftovers


def test_impossible_options_are_user_errors(awkward, tmp_path):
    with pytest.raises(UserError, match="Sizes must be positive"):
        prepare_folder(awkward, tmp_path / "a", size=0, progress=False)
    with pytest.raises(UserError, match="max_aspect 0.5 is below 1"):
        prepare_folder(awkward, tmp_path / "b", max_aspect=0.5, progress=False)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
