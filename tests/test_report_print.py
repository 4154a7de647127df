"""What the report prints: excerpts without progress bars, table widths from content, evolution figures' epochs and tiles."""

from __future__ import annotations

import ast
import inspect
import textwrap

import torch

from gan_helpers import latent, training
from gan_helpers.listing import drop_plumbing, source_excerpt
from report.tables import content_widths


def test_excerpts_print_without_progress_bars_and_stay_python():
    for fn, first, last in ((training.train_epoch, "if step is None", "return dict("), (training.fit, "history = []", "return history"),
                            (latent.invert, "z = z0.clone()", "optimizer.step()")):
        code = drop_plumbing(source_excerpt(fn, textwrap.dedent(inspect.getsource(fn)), first, last))
        assert "tqdm" not in code and "bar." not in code and "bar:" not in code, fn.__name__
        assert "progress bars are left out" in code.splitlines()[1]
        ast.parse(code.replace("...  #", "pass  #"))  # still valid Python: no empty block, no orphan finally
    fit = drop_plumbing(source_excerpt(training.fit, textwrap.dedent(inspect.getsource(training.fit)), "history = []", "return history"))
    assert "try:" not in fit and "finally:" not in fit and "    for epoch in range(" in fit and "hook(epoch, stats)" in fit
    plain = "def f(x):\n    return x + 1"
    assert drop_plumbing(plain) == plain


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
    from gan_helpers.runs.animation import save_labelled_grid
    from gan_helpers.plots import grid_tiles
    from gan_helpers.runs.run_plots import save_grid

    images = torch.rand(10, 3, 64, 64).mul(255).round().div(255)
    save_grid(images, tmp_path / "plain.png")
    save_labelled_grid(images, tmp_path / "labelled.png", "epoch 3")
    for name in ("plain.png", "labelled.png"):
        tiles = grid_tiles(tmp_path / name, 7)
        assert tiles.shape == (7, 3, 64, 64) and torch.allclose(tiles, images[:7], atol=1 / 255), name
