"""Hostile inputs, round three: no writer follows a link or writes through a special file.

The cases and their sentences are listed in tests/README.md ("Hostile inputs, round three").
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from gan_helpers.errors import UserError
from gan_helpers.runs import run_folders
from gan_helpers.runs.export import export_run
from gan_helpers.storage import locks
from gan_helpers.storage.atomic import append_line, atomic_copy, atomic_write_text, link_or_copy
from gan_helpers.tools.cli import main

LINKED = "is a symbolic link, and the lab never reads or writes a file through one"
SPECIAL = "not a regular file"


def finishes(call: Callable[[], object], seconds: float = 20.0) -> object:
    """`call()`'s result (or its exception), or a test failure if it is still waiting after `seconds`."""
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
        pytest.fail(f"still waiting after {seconds} s: something opened a FIFO")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]


@pytest.fixture
def victim(tmp_path) -> Path:
    """A file outside the folder under attack, which must keep every byte."""
    path = tmp_path / "outside" / "victim.txt"
    path.parent.mkdir()
    path.write_text("line one\nline two\n")
    return path


def fake_run(tmp_path: Path) -> Path:
    """Enough of a run folder for a resume to reach its lock."""
    run_dir = tmp_path / "runs" / "00001-x"
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.json").write_text("{}")
    return run_dir


def untouched(victim: Path) -> None:
    assert victim.read_text() == "line one\nline two\n", "the file behind the link was changed"


# ---- writers ------------------------------------------------------------------------------------


@pytest.mark.parametrize("write", [
    lambda p: append_line(p, "hostile"),
    lambda p: atomic_write_text(p, "hostile"),
    lambda p: atomic_copy(p.parent / "source.txt", p),
    lambda p: run_folders.note_resume(p.parent, "hostile"),
], ids=["append_line", "atomic_write", "atomic_copy target", "resumes.txt"])
def test_a_writer_refuses_a_link_in_place_of_its_file(tmp_path, victim, write):
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "source.txt").write_text("new\n")
    target = folder / "resumes.txt"
    target.symlink_to(victim)
    with pytest.raises(UserError, match=f"resumes.txt {LINKED}; delete the link"):
        write(target)
    untouched(victim)
    assert target.is_symlink(), "the link stays as evidence"
    assert sorted(p.name for p in folder.iterdir()) == ["resumes.txt", "source.txt"], "no temporary file left"


def test_a_dangling_link_is_refused_and_creates_nothing_where_it_points(tmp_path):
    target = tmp_path / "metrics.jsonl"
    target.symlink_to(tmp_path / "elsewhere.txt")
    with pytest.raises(UserError, match=LINKED):
        append_line(target, "{}")
    assert not (tmp_path / "elsewhere.txt").exists()


@pytest.mark.parametrize("write", [lambda p: append_line(p, "x"), lambda p: atomic_write_text(p, "x")],
                         ids=["append_line", "atomic_write"])
def test_a_writer_refuses_a_fifo_without_waiting(tmp_path, write):
    fifo = tmp_path / "metrics.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match=r"metrics.jsonl is a FIFO \(named pipe\), not a regular file"):
        finishes(lambda: write(fifo))


def test_a_copy_never_reads_through_a_link_or_a_fifo(tmp_path, victim):
    (tmp_path / "linked.png").symlink_to(victim)
    os.mkfifo(tmp_path / "pipe.png")
    for name in ("linked.png", "pipe.png"):
        with pytest.raises(UserError, match=f"{name} (is a symbolic link|is a FIFO)"):
            finishes(lambda: atomic_copy(tmp_path / name, tmp_path / "copy.png"))
        with pytest.raises(UserError, match=f"{name} (is a symbolic link|is a FIFO)"):
            link_or_copy(tmp_path / name, tmp_path / "copy.png")
    assert not (tmp_path / "copy.png").exists()


# ---- locks --------------------------------------------------------------------------------------


def test_a_resume_refuses_a_lock_file_that_is_a_link_and_leaves_its_target(tmp_path, victim, capsys):
    run_dir = fake_run(tmp_path)
    (run_dir / locks.LOCK_FILE).symlink_to(victim)
    assert main(["train", "--resume", str(run_dir), "--note", "seen"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert f".lock {LINKED}" in err and "(resuming changed nothing)." in err, err
    untouched(victim)
    assert not (run_dir / "resumes.txt").exists()


def test_a_lock_file_that_is_a_fifo_or_a_hard_link_is_refused(tmp_path, victim):
    folder = tmp_path / "run"
    folder.mkdir()
    os.mkfifo(folder / locks.LOCK_FILE)
    with pytest.raises(UserError, match=r"\.lock is a FIFO \(named pipe\), not a regular file.*\(evaluating changed nothing\)\."):
        finishes(lambda: locks.hold(folder, "evaluating").__enter__())
    (folder / locks.LOCK_FILE).unlink()
    os.link(victim, folder / locks.LOCK_FILE)
    with pytest.raises(UserError, match=r"\.lock has another name elsewhere \(a hard link\)"):
        with locks.hold(folder, "evaluating"):
            pass
    untouched(victim)


def test_an_export_refuses_a_linked_lock_beside_its_destination_and_keeps_the_link(tmp_path, victim):
    dest = tmp_path / "results" / "r" / "transposed"
    dest.parent.mkdir(parents=True)
    lock = locks.lock_path_beside(dest)
    lock.symlink_to(victim)
    with pytest.raises(UserError, match=rf"\.transposed\.lock {LINKED}.*\(this export changed nothing\)\."):
        export_run(fake_run(tmp_path), dest, commands=[(1.0, "train")], commit="abc")
    untouched(victim)
    assert lock.is_symlink() and not dest.exists()


def test_a_lock_file_swapped_for_a_link_while_held_is_not_removed(tmp_path, victim):
    dest = tmp_path / "out"
    lock = locks.lock_path_beside(dest)
    with locks.hold_destination(dest, "writing"):
        lock.unlink()
        lock.symlink_to(victim)
    assert lock.is_symlink(), "a link put in place of the lock file while it was held is left as evidence"
    untouched(victim)
    lock.unlink()
    with locks.hold_destination(dest, "writing"):
        assert lock.read_text().strip() == str(os.getpid())
    assert not lock.exists(), "an ordinary lock file beside a destination still goes when released"


def test_a_resume_note_that_is_not_utf8_is_one_sentence(tmp_path, capsys):
    run_dir = fake_run(tmp_path)
    note = b"seen \xff".decode("utf-8", "surrogateescape")  # what Python makes of the byte on the command line
    assert main(["train", "--resume", str(run_dir), "--note", note]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("the resume note holds a byte that is not UTF-8 text; write the note as plain text (UTF-8).")
    assert "Traceback" not in err and not (run_dir / "resumes.txt").exists() and not (run_dir / ".lock").exists()
    json.loads((run_dir / "config.json").read_text())
