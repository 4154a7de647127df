"""Odd things in a data folder: FIFOs, broken links, link loops, unreadable sub-folders.

Each must be reported or skipped, never hang a run, raise a bare OSError
or vanish from the manifest without a word.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from gan_helpers.datasets import loading, folders, prepare
from gan_helpers.errors import UserError
from gan_helpers.datasets.folders import walk
from gan_helpers.datasets.prepare import prepare_cached, prepare_folder
from gan_helpers.storage.regular import NotRegular, open_regular_file
from test_data import flat_set
from test_prepare import read_rows


def finishes(call: Callable[[], object], fifos: list[Path], seconds: float = 20.0) -> object:
    """`call()`'s result, or a test failure if it is still waiting after `seconds` (a reader blocked
    on one of `fifos` is then released by opening it for writing, so the test run can go on)."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["value"] = call()
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        for fifo in fifos:
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        pytest.fail(f"still waiting after {seconds} s: something opened a FIFO")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(prepare, "CACHE_ROOT", tmp_path / "cache")
    return tmp_path / "cache"


needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo (POSIX)")


@needs_fifo
def test_fifo_named_png_in_a_flat_set_does_not_hang_loading(tmp_path):
    folder = flat_set(tmp_path / "set", 3)
    os.mkfifo(folder / "zz.png")
    images = finishes(lambda: loading.load_dataset(folder), [folder / "zz.png"])
    assert images.shape[0] == 3
    manifest = read_rows(loading.resolve_dataset(folder))  # prepared through the cache, which says why
    assert manifest["zz.png"]["reason"] == "not-a-file"


@needs_fifo
def test_fifo_in_place_of_a_prepared_image_is_a_user_error(tmp_path):
    src, dst = flat_set(tmp_path / "src", 2), tmp_path / "dst"
    prepare_folder(src, dst, progress=False)
    victim = sorted(dst.glob("*.png"))[0]
    victim.unlink()
    os.mkfifo(victim)
    with pytest.raises(UserError, match="prepare it again"):
        finishes(lambda: loading.load_dataset(dst), [victim])


@needs_fifo
def test_open_regular_refuses_a_fifo_without_waiting(tmp_path):
    os.mkfifo(tmp_path / "pipe.png")
    with pytest.raises(NotRegular, match="FIFO"):
        finishes(lambda: open_regular_file(tmp_path / "pipe.png", follow_links=True), [tmp_path / "pipe.png"])


def test_a_link_to_a_photo_is_read_only_where_links_are_followed(tmp_path):
    (tmp_path / "photo.png").write_bytes(b"pixels")
    (tmp_path / "link.png").symlink_to(tmp_path / "photo.png")
    with open_regular_file(tmp_path / "link.png", follow_links=True) as handle:
        assert handle.read() == b"pixels"
    with pytest.raises(NotRegular, match="is a symbolic link"):
        open_regular_file(tmp_path / "link.png")


def test_links_that_lead_nowhere_are_reported_not_raised(tmp_path):
    src = flat_set(tmp_path / "raw", 2)
    (src / "loop").symlink_to("loop")  # a link to itself
    (src / "dangling.jpg").symlink_to(tmp_path / "gone.jpg")
    elsewhere = flat_set(tmp_path / "elsewhere", 1)
    (src / "more").symlink_to(elsewhere, target_is_directory=True)
    (src / "tiny.png").write_bytes(b"")
    target = prepare_cached(src, progress=False)  # the cache key walked all of it without an OSError
    rows = read_rows(target)
    assert {name: rows[name]["reason"] for name in ("loop", "dangling.jpg", "more/")} == {
        "loop": "broken-link", "dangling.jpg": "broken-link", "more/": "folder-link"}
    assert all(rows[name]["detail"] for name in ("loop", "dangling.jpg", "more/"))
    assert sum(row["status"] == "kept" for row in rows.values()) == 2


def test_unreadable_subfolder_gets_a_manifest_row(tmp_path, monkeypatch):
    src = flat_set(tmp_path / "raw", 2)
    flat_set(src / "private", 1)
    real = os.scandir

    def scandir(path="."):
        if Path(path).name == "private":
            raise PermissionError(13, "Permission denied", str(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)  # as chmod 000 would, even when the tests run as root
    summary = prepare_folder(src, tmp_path / "dst", progress=False)
    rows = {row.source: row for row in summary.rows}
    assert rows["private/"].status == "dropped" and rows["private/"].reason == "unreadable-folder"
    assert "Permission denied" in rows["private/"].detail
    assert "unreadable-folder 1" in summary.describe()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root reads a chmod 000 folder anyway; the monkeypatched test covers this case")
def test_chmod_000_subfolder_gets_a_manifest_row(tmp_path):
    src = flat_set(tmp_path / "raw", 2)
    flat_set(src / "private", 1)
    (src / "private").chmod(0)
    try:
        rows = read_rows(prepare_cached(src, progress=False))
    finally:
        (src / "private").chmod(0o755)
    assert rows["private/"]["reason"] == "unreadable-folder"


def test_unreadable_source_folder_is_one_sentence(tmp_path, monkeypatch):
    src = flat_set(tmp_path / "raw", 1)
    monkeypatch.setattr(os, "scandir", lambda path=".": (_ for _ in ()).throw(PermissionError(13, "Permission denied")))
    with pytest.raises(UserError, match="cannot be read .*Permission denied"):
        prepare_folder(src, tmp_path / "dst", progress=False)


def test_walk_lists_every_kind_in_sorted_order(tmp_path):
    root = flat_set(tmp_path / "root", 1)
    (root / "sub").mkdir()
    (root / "sub" / "a.txt").write_text("x")
    (root / "link.png").symlink_to(root / "img00.png")  # a link to a photo is a photo
    (root / "broken").symlink_to(tmp_path / "nothing")
    kinds = {entry.relative: entry.kind for entry in walk(root)}
    assert kinds == {"broken": folders.BROKEN_LINK, "img00.png": folders.FILE, "link.png": folders.FILE,
                     "sub/a.txt": folders.FILE}
    assert [entry.relative for entry in walk(root)] == sorted(kinds)
    assert "sub/a.txt" not in {entry.relative for entry in walk(root, recursive=False)}
