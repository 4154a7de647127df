"""``python -m gan_helpers watch RUN_DIR``: follow a training run from another process (point 10: watch every epoch).

Started on a run with epochs, it prints a summary of the run so far; then
one line per epoch as its record lands in ``metrics.jsonl`` (losses, D(x),
D(G(z)), seconds), point 10's warning under it while one holds
(:mod:`gan_helpers.balance`), and at each sample epoch the newest grid's
path and SWD from ``quality.jsonl``. It only reads: no lock, no file
written, nothing of the run changed, so it can watch a run being trained,
a stopped one or a shipped result (``results/<name>/<generator>``).
A damaged record is skipped with a warning line, once. It ends when the
run's last epoch (its ``epochs`` setting) is checkpointed, on Ctrl-C, or
with one sentence when the folder is deleted or stops being a run
(its config.json gone) meanwhile.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

from gan_helpers.balance import Thresholds, point10_warnings, warning_history
from gan_helpers.errors import UserError
from gan_helpers.formatting import duration, finite_number
from gan_helpers.paths import shown
from gan_helpers.runs.live import PACE_EPOCHS, grid_path, pace
from gan_helpers.runs.quality_records import read_quality
from gan_helpers.runs.run_folders import checkpoint_files, read_config, read_metrics

POLL_SECONDS = 1.0  # between looks at the run's files: a new epoch shows within about a second of landing
DELETING_SECONDS = 1.0  # a run folder that lost its config.json and is gone this much later was deleted, not emptied
SUMMARY_EPOCHS = 10  # epoch lines in the summary of a run that already has epochs
METRICS_FILE, QUALITY_FILE, CONFIG_FILE = "metrics.jsonl", "quality.jsonl", "config.json"


# ---- lines ----------------------------------------------------------------------------------------

def _number(record: dict, key: str) -> float:
    """A record's number for printing: NaN when it is missing, null or not finite."""
    value = finite_number(record.get(key))
    return math.nan if value is None else value


def epoch_line(record: dict) -> str:
    """One epoch's record as one line."""
    loss_D, loss_G, D_x, D_G_z, seconds = (_number(record, key) for key in (*WATCHED_NUMBERS, "seconds"))
    return (f"epoch {record['epoch']:>5}  loss_D {loss_D:.3f}  loss_G {loss_G:.3f}  "
            f"D(x) {D_x:.3f}  D(G(z)) {D_G_z:.3f}  {seconds:.1f} s/epoch")


def sample_line(run_dir: Path, record: dict, quality: Sequence[dict]) -> str:
    """A sample epoch's grid and SWD, with the lowest SWD so far."""
    scored = [r for r in quality if 1 <= r["epoch"] <= record["epoch"] and finite_number(r.get("swd")) is not None]
    best = min(scored, key=lambda r: r["swd"]) if scored else record
    grid = grid_path(run_dir, record["epoch"])
    return (f"epoch {record['epoch']:>5}  grid {shown(grid) if grid else '(not kept)'}  SWD {_number(record, 'swd'):.1f} "
            f"(lowest {_number(best, 'swd'):.1f} at epoch {best['epoch']})  diversity {_number(record, 'diversity_ratio'):.3f}")


def run_overview(run_dir: Path, config: dict, metrics: Sequence[dict], quality: Sequence[dict],
            thresholds: Thresholds = Thresholds(), last: int = SUMMARY_EPOCHS) -> list[str]:
    """The run so far: where it stands, its newest epochs, its quality, and every point-10 warning it had."""
    epochs = int(config.get("epochs", 0))
    done = metrics[-1]["epoch"] if metrics else 0
    per_epoch, left = pace(metrics, epochs)
    trained = sum(finite_number(r.get("seconds")) or 0 for r in metrics)
    lines = [f"{shown(run_dir)}: {config.get('generator', '?')} generator, epoch {done} of {epochs}, "
             f"{duration(trained)} of training, {per_epoch:.1f} s/epoch (mean of the newest {min(len(metrics), PACE_EPOCHS)}), "
             f"{duration(left)} left"]
    if len(metrics) > last:
        lines.append(f"(the newest {last} of {len(metrics)} epochs)")
    lines += [epoch_line(r) for r in metrics[-last:]]
    scored = [r for r in quality if r["epoch"] >= 1 and finite_number(r.get("swd")) is not None]
    if scored:
        best = min(scored, key=lambda r: r["swd"])
        lines.append(f"quality: {len(scored)} sample epochs, lowest SWD {best['swd']:.1f} at epoch {best['epoch']}")
        lines.append(sample_line(run_dir, scored[-1], quality))
    spells = warning_history(metrics, quality, thresholds=thresholds)
    lines.append(f"point 10: {len(spells)} warning spells so far")
    lines += [f"  until epoch {alert.epoch}: {alert.line()}" for alert in spells]
    lines += [f"now: {alert.line()}" for alert in point10_warnings(metrics, quality, thresholds=thresholds)]
    return lines


# ---- reading a run that may be written to meanwhile -----------------------------------------------

def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except OSError:  # missing, or a link to nothing: read_run says which
        return None
    return info.st_size, info.st_mtime_ns


WATCHED_NUMBERS = ("loss_D", "loss_G", "D_x", "D_G_z")  # each epoch line and point 10 need these four


def _still_a_run(run_dir: Path, config_required: bool) -> None:
    """Nothing while `run_dir` is a run; the sentence that ends ``watch`` once it was deleted or lost its settings."""
    gone = not os.path.lexists(run_dir / CONFIG_FILE) and (config_required or not os.path.lexists(run_dir / METRICS_FILE))
    if gone and run_dir.is_dir():
        time.sleep(DELETING_SECONDS)  # a folder being deleted loses its files first
    if not run_dir.is_dir():
        raise UserError(f"{shown(run_dir)} disappeared while it was being watched (deleted or moved); "
                        f"watch it again where it is now.")
    if gone:
        raise UserError(f"{shown(run_dir)} stopped being a run while it was being watched (its config.json is "
                        f"gone); watch a run folder (runs/NNNNN-…) or a shipped result (results/NAME/GENERATOR).")


def read_run(run_dir: Path, *, config_required: bool = True) -> tuple[dict, list[dict], list[dict], list[str]]:
    """(config, metrics, quality, problems) as they are now: a record still being written is left for the next look,
    a damaged one is skipped and said in `problems`, a folder that is no longer a run is a UserError.
    `config_required` False: a folder with only metrics.jsonl counts as a run."""
    _still_a_run(run_dir, config_required)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            config = read_config(run_dir) if os.path.lexists(run_dir / CONFIG_FILE) else {}
            metrics = {}
            for record in read_metrics(run_dir):
                missing = [key for key in WATCHED_NUMBERS if not isinstance(record.get(key), (int, float))]
                if missing:
                    warnings.warn(f"{run_dir / METRICS_FILE} epoch {record['epoch']} has no number for "
                                  f"{', '.join(missing)}; it is ignored.")
                else:
                    metrics[record["epoch"]] = record
            quality = read_quality(run_dir, strict=False)
    except FileNotFoundError as error:  # a file went between looking and reading
        _still_a_run(run_dir, config_required)
        raise UserError(f"{shown(run_dir)} changed while it was being read ({error.filename} went); "
                        f"watch it again.") from None
    problems = [str(w.message) for w in caught if "was cut off" not in str(w.message)]  # a cut-off line: an append in progress
    return config, [metrics[e] for e in sorted(metrics)], quality, problems


def check_run_dir(run_dir: Path) -> Path:
    """`run_dir` if it is a run folder or shipped result; a UserError naming it otherwise."""
    if not run_dir.is_dir():
        raise UserError(f"{run_dir} is not a folder; pass a run folder (runs/NNNNN-…) or a shipped result (results/NAME/GENERATOR).")
    if not ((run_dir / CONFIG_FILE).is_file() or (run_dir / METRICS_FILE).is_file()):
        raise UserError(f"{run_dir} holds no config.json or metrics.jsonl, so it is not a run; pass a run folder "
                        f"(runs/NNNNN-…) or a shipped result (results/NAME/GENERATOR).")
    return run_dir


def _finished(run_dir: Path, config: dict) -> bool:
    """Whether the run's last epoch is checkpointed (saving is the last thing an epoch does)."""
    epochs = config.get("epochs")
    return isinstance(epochs, int) and max(checkpoint_files(run_dir), default=0) >= epochs


def follow(run_dir: Path, *, thresholds: Thresholds = Thresholds(), poll: float = POLL_SECONDS,
           once: bool = False) -> Iterator[str]:
    """The lines of ``watch``: a summary of what is there, then each new epoch and sample epoch as it lands."""
    config_required = os.path.lexists(run_dir / CONFIG_FILE)  # a run without one (metrics only) is watched as it is
    config, metrics, quality, problems = read_run(run_dir, config_required=config_required)
    said = set(problems)
    yield from (f"warning: {problem}" for problem in problems)
    if metrics or once:
        yield from run_overview(run_dir, config, metrics, quality, thresholds)
    if once:
        return
    seen_epoch = metrics[-1]["epoch"] if metrics else 0
    seen_sample = quality[-1]["epoch"] if quality else -1
    stamps = None
    while True:
        if seen_epoch >= config.get("epochs", seen_epoch + 1) and _finished(run_dir, config):
            yield f"the run is finished: epoch {seen_epoch} of {config['epochs']}"
            return
        now = (_stamp(run_dir / METRICS_FILE), _stamp(run_dir / QUALITY_FILE), _stamp(run_dir / CONFIG_FILE),
               run_dir.is_dir())
        if now == stamps:
            time.sleep(poll)
            continue
        stamps = now
        config, metrics, quality, problems = read_run(run_dir, config_required=config_required)
        yield from (f"warning: {problem}" for problem in problems if problem not in said)  # each damaged line once
        said.update(problems)
        if metrics and metrics[-1]["epoch"] < seen_epoch:
            yield f"metrics.jsonl now ends at epoch {metrics[-1]['epoch']} (the run was resumed from there)"
            seen_epoch = metrics[-1]["epoch"]
        for record in (r for r in metrics if r["epoch"] > seen_epoch):
            yield epoch_line(record)
            yield from (f"  {alert.line()}" for alert in point10_warnings(metrics, quality, epoch=record["epoch"], thresholds=thresholds))
            seen_epoch = record["epoch"]
        for record in (r for r in quality if r["epoch"] > seen_sample):
            yield sample_line(run_dir, record, quality)
            yield from (f"  {alert.line()}" for alert in point10_warnings(metrics, quality, epoch=record["epoch"], thresholds=thresholds)
                        if alert.kind == "collapse")
            seen_sample = record["epoch"]


# ---- command line ---------------------------------------------------------------------------------

HELP = "Follow a training run from another process: one line per epoch, the grids' SWD, point 10's warning (reads only)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (runs/NNNNN-…) or a shipped result (results/NAME/GENERATOR)")
    parser.add_argument("--once", action="store_true", help="print the summary of the run so far and exit")
    defaults = Thresholds()
    parser.add_argument("--d-g-z-low", type=float, default=defaults.d_g_z_low, help="D(G(z)) below this: the discriminator wins (default: %(default)s)")
    parser.add_argument("--d-x-high", type=float, default=defaults.d_x_high, help="D(x) above this: the discriminator wins (default: %(default)s)")
    parser.add_argument("--d-g-z-high", type=float, default=defaults.d_g_z_high, help="D(G(z)) above this: the generator wins (default: %(default)s)")
    parser.add_argument("--in-a-row", type=int, default=defaults.in_a_row, help="epochs in a row before a network counts as winning (default: %(default)s)")
    parser.add_argument("--diversity-low", type=float, default=defaults.diversity_low, help="samples' diversity over the training images' below this: collapsed (default: %(default)s)")


def run(args: argparse.Namespace) -> int:
    run_dir = check_run_dir(Path(args.run_dir).expanduser().resolve())
    if args.in_a_row < 1:
        raise UserError(f"--in-a-row must be at least 1, not {args.in_a_row}.")
    thresholds = Thresholds(d_g_z_low=args.d_g_z_low, d_x_high=args.d_x_high, d_g_z_high=args.d_g_z_high,
                            in_a_row=args.in_a_row, diversity_low=args.diversity_low)
    try:
        for line in follow(run_dir, thresholds=thresholds, once=args.once):
            print(line, file=sys.stderr if line.startswith("warning: ") else sys.stdout, flush=True)
    except KeyboardInterrupt:  # Ctrl-C is how watching ends: no traceback, a normal exit
        print()
    return 0
