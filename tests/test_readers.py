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
from gan_helpers.utils import finite_number

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
