"""What the report prints: excerpts exactly as the code runs, table widths from content, evolution figures' epochs and tiles."""

from __future__ import annotations

import ast
import inspect
import textwrap

import torch

from gan_helpers import latent, training
from gan_helpers.listing import source_excerpt
from report.tables import content_widths


def test_excerpts_print_the_lines_that_run_and_stay_python():
    for fn, first, last in ((training.train_epoch, "if step is None", "return dict("), (training.fit, "history = []", "return history"),
                            (latent.invert, "z = z0.clone()", "optimizer.step()")):
        source = textwrap.dedent(inspect.getsource(fn))
        code = source_excerpt(fn, source, first, last)
        lines = [line for line in code.splitlines()[1:] if not line.strip().startswith("...  #")]
        assert "\n".join(lines) in source, f"{fn.__name__}: printed as it runs"
        ast.parse(code.replace("...  #", "pass  #"))  # still valid Python
    fit = source_excerpt(training.fit, textwrap.dedent(inspect.getsource(training.fit)), "history = []", "return history")
    assert "try:" not in fit and "tqdm" not in fit and "    for epoch in range(" in fit and "hook(epoch, stats)" in fit


def test_table_widths_follow_the_content():
    header = ("Point", "Text", "Code")
    rows = [("1", "a long sentence " * 12, "`module.function_name_that_is_long`"), ("13–17", "short", "`x`")]
    point, text, code = content_widths(header, rows, 84)
    assert abs(point + text + code - 1) < 1e-9
    assert text > code > point and point * 84 >= len("Point") + 2  # the header fits; the prose takes the room
    narrow = content_widths(("a", "b"), [("1", "22")], 84)  # everything fits on a line: each column its longest cell
    assert narrow == (3 / 7, 4 / 7)


def test_evolution_epochs_are_the_milestones_and_the_last():
    from gan_helpers.plots import milestone_epochs

    full = list(range(21)) + list(range(30, 2001, 10))  # every epoch to 20, then every 10 (the full profile)
    assert milestone_epochs(full, 7) == [1, 3, 10, 100, 300, 1000, 2000]
    stopped = [e for e in full if e <= 330]
    assert milestone_epochs(stopped, 7) == [1, 3, 10, 30, 100, 300, 330]
    assert milestone_epochs(stopped, 4) == [1, 10, 100, 330]  # the milestones before the early fill-ins
    every_tenth = list(range(0, 331, 10))  # a result without the early grids: the nearest saved epochs
    assert milestone_epochs(every_tenth, 5) == [0, 10, 100, 300, 330]
    assert milestone_epochs([0, 1, 2], 6) == [0, 1, 2]


def test_grid_tiles_cut_a_saved_grid_back_into_its_images(tmp_path):
    from gan_helpers.runs.run_plots import grid_tiles
    from gan_helpers.runs.run_plots import save_grid

    images = torch.rand(10, 3, 64, 64).mul(255).round().div(255)
    save_grid(images, tmp_path / "plain.png")
    save_grid(images, tmp_path / "labelled.png", label="epoch 3")
    for name in ("plain.png", "labelled.png"):
        tiles = grid_tiles(tmp_path / name, 7)
        assert tiles.shape == (7, 3, 64, 64) and torch.allclose(tiles, images[:7], atol=1 / 255), name


def test_the_results_figure_shows_the_reference_epochs_large(tmp_path):
    """Point 10 and 12's result: the reference epochs (10, 300, 900, 2000 or the last reached) and the chosen one,
    G_ema's rows where the run keeps its grids, the whole text width, every tile at 1.5 cm or more."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from gan_helpers.runs.run_plots import reference_epochs, results_rows, save_grid, show_results

    assert reference_epochs([0, 1, 10, 11, 240, 250, 300]) == [10, 300]
    assert reference_epochs(list(range(0, 2001, 10))) == [10, 300, 900, 2000]
    assert reference_epochs([0, 5, 12, 290]) == [12, 290] and reference_epochs([]) == []
    run = tmp_path / "run"
    for folder, epochs in ((run / "samples", (0, 10, 240, 300)), (run / "samples" / "ema", (10, 300))):
        folder.mkdir(parents=True)
        for epoch in epochs:
            save_grid(torch.rand(16, 3, 64, 64), folder / f"epoch-{epoch:06d}.png", nrow=4)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "epoch-000240.pt").write_bytes(b"")
    (run / "quality.jsonl").write_text(json.dumps({"epoch": 240, "model": "G", "swd": 40.0, "near_copies": 0}) + "\n")
    rows = results_rows(run)
    assert [label for label, _ in rows] == ["epoch 10\nG", "epoch 240\nG, chosen", "epoch 300\nG, last",
                                             "epoch 10\nG_ema", "epoch 300\nG_ema, last"]
    assert all(images.shape == (8, 3, 64, 64) for _, images in rows)
    (run / "checkpoints" / "epoch-000300.pt").write_bytes(b"")
    with (run / "quality.jsonl").open("a") as records:  # G_ema scores lower: points 13-17 use it, and only its epoch is "chosen"
        records.write(json.dumps({"epoch": 300, "model": "G_ema", "swd": 20.0, "near_copies": 0}) + "\n")
    assert [label for label, _ in results_rows(run)] == ["epoch 10\nG", "epoch 300\nG, last",
                                                         "epoch 10\nG_ema", "epoch 300\nG_ema, chosen"]
    fig = show_results(run)
    width, height = fig.get_size_inches()
    assert width == 6.5 and height < 9.2, "the whole text width, never scaled down"
    fig.canvas.draw()
    for ax in fig.axes:  # a row of 8 tiles of 64 px, 2 px apart: the drawn image's width over 8 tiles
        box = ax.get_window_extent()
        tile_cm = min(box.width, box.height * 8) / fig.dpi / 8 * 64 / 66 * 2.54
        assert tile_cm >= 1.5, tile_cm
    plt.close(fig)


def test_a_long_history_strip_shows_39_epochs_spread_over_the_run_with_the_milestones(tmp_path):
    from gan_helpers.runs.run_plots import history_epochs

    (tmp_path / "samples").mkdir()
    epochs = [*range(0, 21), *range(30, 501, 10)]  # the full profile's sample epochs of a run at 500
    for epoch in epochs:
        (tmp_path / "samples" / f"epoch-{epoch:06d}.png").write_bytes(b"")
    shown = history_epochs(tmp_path)
    assert len(shown) == 39 and {1, 10, 100, 300, 500} <= set(shown) and 0 not in shown
    later = [epoch for epoch in shown if epoch > 100]
    assert max(b - a for a, b in zip(later, later[1:])) <= 30, "the long stretch is shown, not only its milestones"
    assert history_epochs(tmp_path, limit=100) == epochs[1:], "a short history: every epoch"
