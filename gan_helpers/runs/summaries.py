"""What a training run did, in numbers: read from its folder, never remembered.

The judgement of what the numbers mean is written by a person, in the
notebooks' observation cells.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from gan_helpers.runs import run_folders, checkpoints
from gan_helpers.runs.markdown import table_cell
from gan_helpers.runs.quality_records import read_quality, record_model
from gan_helpers.storage.regular import open_regular_file
from gan_helpers.formatting import duration, finite_number, fmt
from gan_helpers.models import generate
from gan_helpers.plots import pick_epochs


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if finite_number(v) is not None]


def _mean(values: Sequence[float]) -> float:
    values = _finite(values)
    return sum(values) / len(values) if values else math.nan


TAIL = 0.1  # "the end of a run": its last 10 % of epochs, at least one


def tail(metrics: Sequence[dict]) -> list[dict]:
    """The last :data:`TAIL` of the epochs (rounded up, at least one): one noisy epoch does not decide."""
    return list(metrics[-max(1, math.ceil(len(metrics) * TAIL)):]) if metrics else []


def samples_at(run_dir: str | Path, epoch: int) -> "torch.Tensor":
    """The fixed-noise samples of G saved at `epoch` (eval mode, CPU, fp32), of a run or a shipped result."""
    G, _ = checkpoints.load_generator(run_folders.checkpoint_for_epoch(run_dir, epoch)[1])
    return generate(G, checkpoints.load_fixed_noise(run_dir))


def checkpoint_samples(run_dir: str | Path, count: int) -> list[tuple[int, str, "torch.Tensor"]]:
    """(epoch, generator, fixed-noise samples) at up to `count` checkpoint epochs spread over the run: G where the
    checkpoint holds it, else G_ema (a shipped result's best epoch holds only the generator the report samples)."""
    saved = run_folders.checkpoint_files(run_dir)
    z = checkpoints.load_fixed_noise(run_dir)
    rows = []
    for epoch in pick_epochs(list(saved), count):
        G, state = checkpoints.load_generator(saved[epoch], average=None)
        rows.append((epoch, "G" if "G" in state else "G_ema", generate(G, z)))
    return rows


def run_summary(run_dir: str | Path) -> dict:
    """One run (or shipped result) in numbers: settings, time, losses, balance and anything that went wrong.

    "End" values are means over the :func:`tail` of the epochs. Balance is the mean of |loss_D - loss_G|
    and of loss_G / loss_D over the same epochs.
    """
    run_dir = Path(run_dir)
    config = run_folders.read_config(run_dir)
    metrics = run_folders.read_metrics(run_dir)
    problems = []
    epochs = [m.get("epoch") for m in metrics]
    if not metrics:
        problems.append("no finished epoch recorded")
    elif epochs != list(range(epochs[0], epochs[0] + len(epochs))) or epochs[0] != 1:
        problems.append("epochs missing or repeated in metrics.jsonl")
    bad = [m["epoch"] for m in metrics if not all(math.isfinite(m.get(k, math.nan)) for k in ("loss_D", "loss_G"))]
    if bad:
        problems.append(f"non-finite losses in {len(bad)} epoch(s), first at epoch {bad[0]}")
    last_epoch = max(_finite(epochs), default=0)
    if isinstance(config.get("epochs"), int) and last_epoch < config["epochs"]:
        problems.append(f"stopped at epoch {last_epoch} of {config['epochs']}")
    if (run_dir / "FORKED_FROM").is_file():
        with open_regular_file(run_dir / "FORKED_FROM", "rb") as f:  # never through a link, never blocked on a FIFO
            source = Path(f.read(4096).decode("utf-8", errors="replace").strip())
        problems.append(f"continued from an earlier run's checkpoint ({source.parent.parent.name}, {source.stem})")
    saved = run_folders.checkpoint_files(run_dir)
    if metrics and not saved:
        problems.append("no checkpoint saved")

    end = tail(metrics)
    end_D, end_G = ([m.get(key, math.nan) for m in end] for key in ("loss_D", "loss_G"))
    return {
        "run": run_dir.name,
        "generator": config.get("generator", "?"),
        "epochs": last_epoch,
        "planned_epochs": config.get("epochs"),
        "seconds": sum(_finite([m.get("seconds", math.nan) for m in metrics])),
        "seconds_per_epoch": _mean([m.get("seconds", math.nan) for m in metrics]),
        "batch_size": config.get("batch_size"),
        "lr_d": config.get("lr_d"),
        "lr_g": config.get("lr_g"),
        "checkpoints": len(saved),
        "final_loss_D": metrics[-1].get("loss_D", math.nan) if metrics else math.nan,
        "final_loss_G": metrics[-1].get("loss_G", math.nan) if metrics else math.nan,
        "tail_epochs": len(end),
        "end_gap": _mean([abs(d - g) for d, g in zip(end_D, end_G)]),
        "end_ratio": _mean([g / d for d, g in zip(end_D, end_G) if d]),
        "end_D_x": _mean([m.get("D_x", math.nan) for m in end]),
        "end_D_G_z": _mean([m.get("D_G_z", math.nan) for m in end]),
        "problems": problems,
    }


def summary_table(summaries: Sequence[dict]) -> str:
    """A Markdown table with one column per run; every cell is literal text (:func:`~gan_helpers.runs.markdown.table_cell`),
    since names, devices and settings come from run folders and shipped results that anyone may have written.

    It states results, not where files are or what the title page says (the machine, the data set): no folder
    names or paths; a run that stopped before its planned length says so in the "epochs trained (planned)"
    row, and only other problems get a row of their own.
    """
    rows = [
        ("epochs trained (planned)", lambda s: f"{fmt(s['epochs'])} ({fmt(s['planned_epochs'])})"),
        ("training time", lambda s: f"{duration(s['seconds'])} ({fmt(s['seconds_per_epoch'])} s/epoch)"),
        ("batch size; lr_d, lr_g", lambda s: f"{fmt(s['batch_size'])}; {fmt(s['lr_d'])}, {fmt(s['lr_g'])}"),
        ("final loss_D / loss_G", lambda s: f"{fmt(s['final_loss_D'])} / {fmt(s['final_loss_G'])}"),
        ("last 10 %: mean abs(loss_D - loss_G)", lambda s: fmt(s["end_gap"])),
        ("last 10 %: mean loss_G / loss_D", lambda s: fmt(s["end_ratio"])),
        ("last 10 %: mean D(x), D(G(z))", lambda s: f"{fmt(s['end_D_x'])}, {fmt(s['end_D_G_z'])}"),
        ("checkpoints kept", lambda s: fmt(s["checkpoints"])),
    ]
    if any(_other_problems(s) for s in summaries):
        rows.append(("problems recorded", lambda s: "; ".join(_other_problems(s)) or "none"))
    header = "| | " + " | ".join(table_cell(s["generator"]) for s in summaries) + " |"
    lines = [header, "|---|" + "---|" * len(summaries)]
    lines += [f"| {name} | " + " | ".join(table_cell(get(s)) for s in summaries) + " |" for name, get in rows]
    return "\n".join(lines)


def _other_problems(summary: dict) -> list[str]:
    """The run's problems besides stopping early, which the epochs row already states."""
    return [str(p) for p in summary["problems"] if not str(p).startswith("stopped at epoch")]


def epoch_table(run_dir: str | Path, epochs: Sequence[int], blocks: int = 2) -> str:
    """The run at `epochs` in numbers, as printed text under a title line, a row per epoch: the discriminator's
    mean verdicts on reals and fakes over the epoch (metrics.jsonl) and the SWD ×10³ of G, and of G_ema where the
    run keeps it, scored at that epoch; the rows in `blocks` side by side, so a long list takes a few lines.

    Plain text rather than a Markdown table: the PDF keeps it on one page beside a figure (a LaTeX longtable
    under a figure at the top of a page runs past the page's foot)."""
    metrics = {m["epoch"]: m for m in run_folders.read_metrics(run_dir)}
    scores = {(r["epoch"], record_model(r)): r["swd"] for r in read_quality(Path(run_dir) / "quality.jsonl", model=None)}
    averaged = any(model == "G_ema" for _, model in scores)
    header = ["epoch", "D(x)", "D(G(z))", "SWD G"] + (["G_ema"] if averaged else [])
    rows = []
    for epoch in epochs:
        m = metrics.get(epoch, {})
        rows.append([str(epoch), fmt(m.get("D_x")), fmt(m.get("D_G_z")), fmt(scores.get((epoch, "G")))]
                    + ([fmt(scores.get((epoch, "G_ema")))] if averaged else []))
    height = max(1, -(-len(rows) // blocks))  # rows per block, the last block may be shorter
    columns = [rows[start:start + height] for start in range(0, len(rows), height)] or [[]]
    widths = [max(len(cell) for cell in [name] + [row[k] for row in rows]) for k, name in enumerate(header)]

    def line(cells_per_block):
        return "  |  ".join("  ".join(cell.rjust(width) for cell, width in zip(cells, widths)) for cells in cells_per_block)

    lines = ["the same epochs: mean D(x), D(G(z)) over the epoch; SWD ×10³, lower is closer",
             line([header] * len(columns))]
    for number in range(len(columns[0])):
        lines.append(line([column[number] if number < len(column) else [""] * len(header) for column in columns]).rstrip())
    return "\n".join(lines)
