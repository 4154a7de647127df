"""manifest.csv is trusted only as far as it is checked: it can name nothing outside its folder,
and it is written whole or not at all."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from gan_helpers.datasets import loading
from gan_helpers.errors import UserError
from gan_helpers.datasets.manifest import MANIFEST_FIELDS, ManifestRow, read_manifest, write_manifest
from gan_helpers.datasets.prepare import prepare_folder
from test_prepare import colour_image


def one_photo(folder: Path) -> Path:
    folder.mkdir(parents=True)
    colour_image(1).save(folder / "photo.png")
    return folder


def crafted(dst: Path, *rows: str) -> None:
    """A manifest.csv in `dst` with these lines after the header, as an attacker would leave it."""
    dst.mkdir(parents=True, exist_ok=True)
    (dst / "manifest.csv").write_text(",".join(MANIFEST_FIELDS) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")


@pytest.mark.parametrize("output", ["../victim.png", "ABSOLUTE", "sub/../../victim.png", "..", "out.png"])
def test_prepare_never_deletes_what_a_crafted_manifest_names_outside(tmp_path, output):
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"precious")
    dst = tmp_path / "dst"
    if output == "out.png":  # a link inside dst that leads outside it
        dst.mkdir()
        (dst / "out.png").symlink_to(victim)
    output = str(victim) if output == "ABSOLUTE" else output
    crafted(dst, f"old.png,kept,,,{output}")
    with pytest.raises(UserError, match=r"manifest.csv line 2 names output .*not a \.png file name inside"):
        prepare_folder(one_photo(tmp_path / "src"), dst, progress=False)
    assert victim.read_bytes() == b"precious"


def test_training_never_reads_what_a_crafted_manifest_names_outside(tmp_path):
    outside = tmp_path / "secret.png"
    colour_image(2, 64, 64).save(outside)
    crafted(tmp_path / "set", f"a.png,kept,,,{outside}")
    with pytest.raises(UserError, match="line 2"):
        loading.image_paths(tmp_path / "set")
    with pytest.raises(UserError, match="line 2"):
        loading.load_dataset(tmp_path / "set")


@pytest.mark.parametrize("line, problem", [
    ("a.png,maybe,,,a-1.png", "status 'maybe'"),
    ("/etc/a.png,kept,,,a-1.png", "source '/etc/a.png'"),
    ("../a.png,dropped,empty,0 bytes,", "source '../a.png'"),
    ("a.png,kept,,,", "without naming its output"),
    ("a.png,kept,,,.hidden.png", "output '.hidden.png'"),
    ("a.png,dropped,empty,,notes.txt", "output 'notes.txt'"),
])
def test_each_bad_row_is_named_by_its_line(tmp_path, line, problem):
    crafted(tmp_path, "fine.png,kept,,,fine-1.png", line)
    with pytest.raises(UserError, match=f"line 3 .*{problem}.*prepare it again") as error:
        read_manifest(tmp_path)
    assert "\n" not in str(error.value)


def test_unreadable_manifests_are_user_errors(tmp_path):
    (tmp_path / "manifest.csv").write_bytes(b"\xff\xfe binary")
    with pytest.raises(UserError, match="not a readable CSV"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.csv").write_text("name,size\nx,1\n")
    with pytest.raises(UserError, match="lacks the columns"):
        read_manifest(tmp_path)
    assert read_manifest(tmp_path / "nowhere") == []


def test_a_good_manifest_round_trips(tmp_path):
    rows = [ManifestRow("sub/ä b.jpg", "kept", output="sub__a_b-1234abcd.png"),
            ManifestRow("private/", "dropped", "unreadable-folder", "Permission denied, \"quoted\"")]
    write_manifest(tmp_path, rows)
    assert read_manifest(tmp_path) == rows


def interrupted_after_header(first_cell: str) -> type:
    """A stand-in for ``csv.writer`` that raises KeyboardInterrupt right after writing a header row
    starting with `first_cell`, as Ctrl-C half way through a file would."""
    real_writer = csv.writer

    class Writer:
        def __init__(self, handle, *args, **kwargs):
            self.inner = real_writer(handle, *args, **kwargs)

        def writerow(self, row):
            self.inner.writerow(row)
            if row[0] == first_cell:
                raise KeyboardInterrupt

        def writerows(self, rows):
            self.inner.writerows(rows)

    return Writer


def test_manifest_is_written_whole_or_not_at_all(tmp_path, monkeypatch):
    src, dst = one_photo(tmp_path / "src"), tmp_path / "dst"
    prepare_folder(src, dst, progress=False)
    before = (dst / "manifest.csv").read_bytes()
    monkeypatch.setattr(csv, "writer", interrupted_after_header("source"))
    colour_image(3).save(src / "second.png")
    with pytest.raises(KeyboardInterrupt):
        prepare_folder(src, dst, progress=False)
    assert (dst / "manifest.csv").read_bytes() == before
    assert not [p for p in dst.iterdir() if p.name.startswith(".")]  # no temporary files left behind
