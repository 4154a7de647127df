"""Readers check what they read: a bad record is one sentence naming the file and the line, a value that is not a
finite number is never plotted, and a link or special file is refused without waiting (tests/README.md,
"Hostile inputs, round three")."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import matplotlib
import pytest

from gan_helpers.errors import UserError
from gan_helpers.runs.quality_records import read_quality, record_model
from gan_helpers.formatting import finite_number

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend

GOOD = {"epoch": 1, "model": "G", "swd": 10.0, "near_copies": 0, "label": "epoch 1"}


@pytest.mark.parametrize("line, problem", [
    (b"{not json", "is not a JSON record"),
    (b"[1, 2]", "holds a JSON list, not a record"),
    (b'{"swd": 1.0}', "has no integer epoch"),
    (b'{"epoch": "3"}', "has no integer epoch"),
    (b'{"epoch": true}', "has no integer epoch"),
    (b'{"epoch": 3, "model": "D"}', 'names a model other than "G" or "G_ema"'),
    (b'{"epoch": 3, "label": ["x"]}', "has a label that is not text"),
    (b'{"epoch": 3, "swd": "low"}', 'has swd "low", which is not a number'),
    (b'{"epoch": 3, "near_copies": {"a": 1}}', "has near_copies {\"a\": 1}, which is not a number"),
    (b'{"epoch": 3, "swd": 1' + b"0" * 400 + b"}", "has swd 1000000"),
    (b'{"epoch": 3, "label": "caf\xe9"}', "is not UTF-8 text"),
], ids=["not-json", "list", "no-epoch", "text-epoch", "bool-epoch", "model", "label", "text-number", "object",
        "huge", "latin-1"])
def test_a_bad_quality_record_is_one_sentence_naming_the_file_and_line(tmp_path, line, problem):
    path = tmp_path / "quality.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + line + b"\n")
    with pytest.raises(UserError) as caught:
        read_quality(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path} line 2 {problem}"), message
    assert message.endswith("run `python -m gan_helpers evaluate` again.") and "\n" not in message


def test_good_quality_records_keep_their_model_and_order(tmp_path):
    records = [{**GOOD, "epoch": 2}, {**GOOD, "model": "G_ema"}, GOOD, {"epoch": 3, "swd": float("nan"), "seed": None}]
    (tmp_path / "quality.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    assert [r["epoch"] for r in read_quality(tmp_path)] == [1, 2, 3]
    assert [(r["epoch"], record_model(r)) for r in read_quality(tmp_path, "G_ema")] == [(1, "G_ema")]
    assert len(read_quality(tmp_path, None)) == 4
    assert read_quality(tmp_path / "missing") == []


def test_a_quality_file_that_is_a_link_or_a_fifo_is_refused_without_waiting(tmp_path):
    outside = tmp_path / "outside.jsonl"
    outside.write_text(json.dumps(GOOD) + "\n")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / "quality.jsonl").symlink_to(outside)
    with pytest.raises(UserError, match="quality.jsonl is a symbolic link, and the lab never reads or writes a file"):
        read_quality(tmp_path / "linked")
    (tmp_path / "piped").mkdir()
    os.mkfifo(tmp_path / "piped" / "quality.jsonl")
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("error", _raised(read_quality, tmp_path / "piped")),
                              daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():
        os.close(os.open(tmp_path / "piped" / "quality.jsonl", os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("read_quality waited on a FIFO")
    assert "quality.jsonl is a FIFO (named pipe), not a regular file" in str(outcome["error"])


def _raised(call, *args) -> BaseException | None:
    try:
        call(*args)
    except BaseException as error:  # noqa: BLE001 - handed to the test thread
        return error
    return None


def test_finite_number_takes_only_finite_numbers():
    assert finite_number(2) == 2.0 and finite_number(0.5) == 0.5
    for value in (float("inf"), float("-inf"), float("nan"), True, "1", None, [1], 10 ** 400):
        assert finite_number(value) is None, value


def test_the_loss_figure_plots_only_finite_numbers(tmp_path):
    from gan_helpers.runs.run_plots import plot_losses

    run_dir = tmp_path / "00001-x"
    run_dir.mkdir()
    lines = [{"epoch": 1, "loss_D": 0.5, "loss_G": 1.0}, {"epoch": 2, "loss_D": float("inf"), "loss_G": 1e308 * 10},
             {"epoch": 3, "loss_D": "high", "loss_G": 1.2}, {"epoch": 4, "loss_G": 0.9}, {"epoch": 5, "loss_D": 0.4,
                                                                                          "loss_G": 10 ** 400}]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(m) + "\n" for m in lines))
    assert "Infinity" in (run_dir / "metrics.jsonl").read_text()
    fig, ax = plt.subplots()
    try:
        plot_losses(run_dir, ax=ax)
        fig.canvas.draw()  # matplotlib raised OverflowError here on Infinity
        loss_D, loss_G = ax.get_lines()
        assert list(loss_D.get_xdata()) == [1, 5] and list(loss_D.get_ydata()) == [0.5, 0.4]
        assert list(loss_G.get_xdata()) == [1, 3, 4]
    finally:
        plt.close(fig)


# ---- metrics.jsonl and config.json (gan_helpers.runs.run_folders) ----------------------------------------------------

EPOCH = {"epoch": 1, "loss_D": 0.5, "loss_G": 1.0, "D_x": 0.6, "D_G_z": 0.4, "seconds": 2.0}


@pytest.mark.parametrize("line, problem", [
    (b"{not json", "is not a JSON object with an integer epoch"),
    (b"[1, 2]", "is not a JSON object with an integer epoch"),
    (b'{"loss_D": 1.0}', "is not a JSON object with an integer epoch"),
    (b'{"epoch": "2"}', "is not a JSON object with an integer epoch"),
    (b'{"epoch": 2, "loss_D": "high"}', 'has loss_D "high", which is not a number'),
    (b'{"epoch": 2, "D_x": true}', "has D_x true, which is not a number"),
    (b'{"epoch": 2, "seconds": [1]}', "has seconds [1], which is not a number"),
    (b'{"epoch": 2, "loss_G": 1.0, "device": "caf\xe9"}', "is not UTF-8 text"),
    (b"[" * 100_000, "is not a JSON object with an integer epoch"),
], ids=["not-json", "list", "no-epoch", "text-epoch", "text-loss", "bool", "list-number", "latin-1", "deep"])
def test_a_bad_metrics_line_is_skipped_with_a_warning_or_refused_when_rewriting(tmp_path, line, problem):
    from gan_helpers.runs import run_folders

    path = tmp_path / "metrics.jsonl"
    path.write_bytes(json.dumps(EPOCH).encode() + b"\n" + line + b"\n" + json.dumps({**EPOCH, "epoch": 3}).encode() + b"\n")
    kept = problem.startswith("has ")  # a record with one mistyped number keeps its epoch and other numbers
    with pytest.warns(UserWarning) as caught:
        records = run_folders.read_metrics(tmp_path)
    assert [r["epoch"] for r in records] == ([1, 2, 3] if kept else [1, 3])
    assert [str(w.message) for w in caught] == [f"{path} line 2 {problem}; {'that value' if kept else 'it'} is ignored."]
    if kept:
        assert problem.split()[1] not in records[1] and all(isinstance(v, (int, float)) for v in records[1].values())
    with pytest.raises(UserError) as refused:
        run_folders.truncate_metrics(tmp_path, 1)
    assert str(refused.value) == f"{path} line 2 {problem}; repair or delete that line, then try again."
    assert path.read_bytes().split(b"\n")[1] == line  # nothing rewritten away


@pytest.mark.parametrize("text, problem", [
    (b"[1, 2]", "holds a JSON list, not an object of settings; repair it or delete the run folder."),
    (b'{"epochs": "ten"}', 'gives epochs as "ten", which is not a whole number; repair it, or copy the settings'),
    (b'{"epochs": 10.5}', "gives epochs as 10.5, which is not a whole number; repair it"),
    (b'{"generator": "gan"}', 'gives generator as "gan", which is not one of transposed, upsampling; repair it'),
    (b'{"lr_d": "fast"}', 'gives lr_d as "fast", which is not a number; repair it'),
    (b'{"augment": 1}', "gives augment as 1, which is not true or false; repair it"),
    (b'{"lr_g": Infinity}', "gives lr_g as Infinity, which is not a finite number; repair it"),
    (b'{\n  "data": "caf\xe9"\n}', "line 2 is not UTF-8 text; repair it, or copy the settings from a checkpoint's"),
    (b"[" * 100_000, "is not valid JSON (its nesting); repair it"),
], ids=["list", "text-epochs", "float-epochs", "choice", "text-rate", "int-bool", "infinite", "latin-1", "deep"])
def test_a_bad_config_is_one_sentence_naming_the_file(tmp_path, text, problem):
    from gan_helpers.runs import run_folders

    (tmp_path / "config.json").write_bytes(text)
    with pytest.raises(UserError) as caught:
        run_folders.read_config(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'config.json'} {problem}"), message
    assert "\n" not in message and message.endswith(".")


def test_a_good_config_keeps_its_settings_and_gains_those_added_since(tmp_path):
    from gan_helpers.runs import run_folders
    from gan_helpers.runs.config import TrainConfig

    saved = {k: v for k, v in TrainConfig(epochs=7).to_dict().items() if k != "ema_half_life"}
    run_folders.write_config(tmp_path, {**saved, "max_images": None})
    config = run_folders.read_config(tmp_path)
    assert config["epochs"] == 7 and config["max_images"] is None and config["ema_half_life"] == 0.0


@pytest.mark.parametrize("name", ["config.json", "metrics.jsonl"])
def test_a_run_file_that_is_a_link_or_a_fifo_is_refused_without_waiting(tmp_path, name):
    from gan_helpers.runs import run_folders

    read = run_folders.read_config if name == "config.json" else run_folders.read_metrics
    outside = tmp_path / "outside"
    outside.write_text(json.dumps(EPOCH) + "\n")
    (tmp_path / "linked").mkdir()
    (tmp_path / "linked" / name).symlink_to(outside)
    with pytest.raises(UserError, match=f"linked/{name} is a symbolic link, and the lab never reads or writes a file"):
        read(tmp_path / "linked")
    (tmp_path / "piped").mkdir()
    os.mkfifo(tmp_path / "piped" / name)
    error = _in_thread(read, tmp_path / "piped", tmp_path / "piped" / name)
    assert f"piped/{name} is a FIFO (named pipe), not a regular file" in str(error)


def _in_thread(call, argument, fifo: Path) -> BaseException | None:
    """What `call(argument)` raised, run in a thread that may not wait more than 20 s (a FIFO blocks a plain open)."""
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("error", _raised(call, argument)), daemon=True)
    thread.start()
    thread.join(20)
    if thread.is_alive():
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail(f"{call.__name__} waited on a FIFO")
    return outcome["error"]


# ---- sample grids (gan_helpers.runs.run_plots.read_png) ---------------------------------------------------------------------

def _png_header(width: int, height: int) -> bytes:
    """A few hundred bytes of PNG whose header claims width x height pixels: a decompression bomb's first look."""
    from test_prepare import png_chunks

    return png_chunks(width, height, 8, 2, b"\x00" * 64)


@pytest.fixture
def grid_run(tmp_path) -> Path:
    """A run folder with two good 3x3-tile grids at epochs 1 and 2."""
    from gan_helpers.runs.run_plots import save_grid

    run_dir = tmp_path / "00001-x"
    (run_dir / "samples").mkdir(parents=True)
    for epoch in (1, 2):
        save_grid(__import__("torch").rand(9, 3, 64, 64), run_dir / "samples" / f"epoch-00000{epoch}.png", label=f"epoch {epoch}")
    return run_dir


def _readers():
    from gan_helpers.runs.run_plots import grid_tiles, show_png
    from commands.evaluate import save_evolution

    def shown(path):
        fig, ax = plt.subplots()
        try:
            show_png(path, title="epoch 2", ax=ax)
        finally:
            plt.close(fig)

    return {"show_png": shown, "grid_tiles": grid_tiles, "save_evolution": lambda path: save_evolution(path.parent.parent)}


@pytest.mark.parametrize("reader", ["show_png", "grid_tiles", "save_evolution"])
@pytest.mark.parametrize("content, problem", [
    (_png_header(6000, 6000), "claims 6000×6000 pixels, more than a sample grid ever has (25,000,000 at most), so it "
                              "is not decoded (a decompression bomb); delete it, or the run folder it came with."),
    (_png_header(40000, 40000), "claims hundreds of millions of pixels, more than a sample grid ever has"),
    (b"GIF89a not a png", "is not a PNG picture that can be decoded"),
    (_png_header(64, 64)[:-30], "is not a PNG picture that can be decoded"),
], ids=["bomb", "huge-bomb", "not-png", "truncated"])
def test_a_hostile_grid_is_one_sentence_naming_it_before_it_is_decoded(grid_run, reader, content, problem):
    from gan_helpers.paths import shown

    grid = grid_run / "samples" / "epoch-000002.png"
    grid.write_bytes(content)
    with pytest.raises(UserError) as caught:
        _readers()[reader](grid)
    assert str(caught.value).startswith(f"{shown(grid)} {problem}"), str(caught.value)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("reader", ["show_png", "grid_tiles", "save_evolution"])
def test_a_grid_that_is_a_link_or_a_fifo_is_refused_without_waiting(grid_run, reader):
    grid = grid_run / "samples" / "epoch-000002.png"
    outside = grid_run.parent / "outside.png"
    grid.rename(outside)
    grid.symlink_to(outside)
    with pytest.raises(UserError, match="epoch-000002.png is a symbolic link, and the lab never reads or writes a file"):
        _readers()[reader](grid)
    grid.unlink()
    os.mkfifo(grid)
    error = _in_thread(_readers()[reader], grid, grid)
    assert "epoch-000002.png is a FIFO (named pipe), not a regular file" in str(error)


def test_good_grids_still_read_as_their_tiles_and_animation(grid_run):
    from gan_helpers.runs.run_plots import grid_tiles, read_png
    from commands.evaluate import save_evolution

    pixels, labelled = read_png(grid_run / "samples" / "epoch-000001.png")
    assert labelled and pixels.dtype.name == "uint8" and pixels.shape[1] == 3 * 66 + 2
    assert grid_tiles(grid_run / "samples" / "epoch-000001.png").shape == (9, 3, 64, 64)
    assert save_evolution(grid_run).stat().st_size > 0


# ---- a data file whose name is not UTF-8 (gan_helpers.datasets) ---------------------------------------------------

def test_a_file_name_that_is_not_utf8_is_a_manifest_row_and_a_rerun_works(tmp_path):
    from test_prepare import colour_image

    from gan_helpers.datasets.manifest import read_manifest
    from gan_helpers.datasets.prepare import prepare_folder

    src = tmp_path / "src"
    src.mkdir()
    for seed, name in enumerate([b"a.png", b"z\xe9.png", b"m.png"]):  # the bad name sorts after a kept one
        colour_image(seed).save(os.path.join(bytes(src), name), format="PNG")
    os.mkdir(os.path.join(bytes(src), b"d\xff"))
    colour_image(7).save(os.path.join(bytes(src), b"d\xff", b"inner.png"), format="PNG")
    for _ in range(2):  # a re-run into the same folder is not refused
        summary = prepare_folder(src, tmp_path / "dst", progress=False)
        rows = {row.source: row for row in read_manifest(tmp_path / "dst")}
        assert summary.kept == 2 and sorted(rows) == ["a.png", "d%FF/", "m.png", "z%E9.png"]
        assert rows["z%E9.png"].status == "dropped" and rows["z%E9.png"].reason == "name-not-utf8"
        assert rows["z%E9.png"].detail == "its name is not UTF-8 text (each such byte shown as %XX); rename it to use it"
        assert rows["d%FF/"].reason == "name-not-utf8" and not any("inner" in source for source in rows)
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == sorted(
        ["manifest.csv", rows["a.png"].output, rows["m.png"].output])
