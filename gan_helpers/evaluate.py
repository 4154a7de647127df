"""A run's quality numbers per epoch: computed during training or afterwards, kept in ``quality.jsonl``.

:func:`quality_record` samples a generator from a fixed set of latent
vectors (drawn from their own seeded CPU generator, so training and a later
``python -m gan_helpers evaluate RUN_DIR`` see the same ones) and measures
the samples against the training images with :func:`gan_helpers.quality.measure`.
:func:`best_epoch` picks the checkpoint to use for the latent-space
experiments (point 13) from those records.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from gan_helpers import runs
from gan_helpers.atomic import atomic_write_text
from gan_helpers.errors import UserError
from gan_helpers.models import generate
from gan_helpers.quality import SWD_LEVELS, measure

QUALITY_FILE = "quality.jsonl"
QUALITY_SAMPLES = 256  # samples per record: SWD within a few % between equally good sets; ~10 s of G on a 2-core CPU
SWD_MARGIN = 0.05  # epochs within 5 % of the lowest SWD tie: equally good sample sets differ by 3-4 % (relative std)
_NOISE_SEED_OFFSET = 1_000_003  # quality latents differ from the fixed-noise latents the same seed draws


def quality_noise(count: int = QUALITY_SAMPLES, *, seed: int = 0, latent_dim: int = 128) -> torch.Tensor:
    """The latent vectors quality records sample from, on the CPU: the same for a seed on every device."""
    generator = torch.Generator().manual_seed(seed + _NOISE_SEED_OFFSET)
    return torch.randn(count, latent_dim, generator=generator)


def quality_record(G: nn.Module, reals: torch.Tensor, *, epoch: int, seed: int = 0,
                   samples: int = QUALITY_SAMPLES, **options) -> dict:
    """The quality numbers of one epoch's generator against the training images, JSON-ready.

    G samples :func:`quality_noise` in eval mode, float32, without gradients
    (its mode is restored); the measures run on the reals' device. `options`
    go to :func:`gan_helpers.quality.measure` (e.g. fewer neighbourhoods in tests).
    """
    started = time.perf_counter()
    device = next(G.parameters()).device
    with torch.autocast(device.type, enabled=False):  # float32 even when called inside an autocast region
        images = generate(G, quality_noise(samples, seed=seed, latent_dim=G.latent_dim))
    numbers = measure(images, reals.float(), seed=seed, **options)
    return {"epoch": epoch, "seed": seed, **numbers, "seconds": round(time.perf_counter() - started, 3)}


def read_quality(path: str | Path) -> list[dict]:
    """The records of a run folder's quality.jsonl (or of a given .jsonl file), in epoch order."""
    path = Path(path)
    if path.is_dir():
        path = path / QUALITY_FILE
    if not path.is_file():
        return []
    try:
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError:
        raise UserError(f"{path} is not one JSON record per line; delete it and run `python -m gan_helpers evaluate` again.") from None
    return sorted(records, key=lambda r: r["epoch"])


def append_quality(path: str | Path, record: dict) -> Path:
    """Add a record to a run folder's quality.jsonl (or a given .jsonl file), replacing one of the same epoch.

    The small file is rewritten whole and atomically, so a resumed run that
    repeats an epoch leaves one record per epoch and a crash leaves the old file.
    """
    path = Path(path)
    if path.is_dir():
        path = path / QUALITY_FILE
    kept = [r for r in read_quality(path) if r["epoch"] != record["epoch"]]
    records = sorted([*kept, record], key=lambda r: r["epoch"])
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in records))
    return path


def truncate_quality(path: str | Path, last_epoch: int) -> None:
    """Keep only records up to `last_epoch` (a resumed or forked run computes what follows again)."""
    path = Path(path)
    if path.is_dir():
        path = path / QUALITY_FILE
    if path.is_file():
        kept = [r for r in read_quality(path) if r["epoch"] <= last_epoch]
        atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


def cached_calibration(reals: torch.Tensor, path: str | Path, *, seed: int = 0, **options) -> list[dict]:
    """:func:`gan_helpers.quality.calibration` of `reals`, kept in a JSON file next to the runs.

    The file records a fingerprint of the images and the settings; it is
    reused only when both match, so a changed data set is calibrated afresh.
    """
    import hashlib

    from gan_helpers.quality import calibration

    pixels = reals.detach().float().cpu().mul(255).round().to(torch.uint8).numpy().tobytes()
    key = {"images": hashlib.sha1(pixels).hexdigest(), "count": len(reals), "seed": seed, **options}
    path = Path(path)
    if path.is_file():
        saved = json.loads(path.read_text())
        if saved.get("key") == key:
            return saved["rows"]
    rows = calibration(reals, seed=seed, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps({"key": key, "rows": rows}, indent=1) + "\n")
    return rows


def quality_table(rows: list[dict]) -> str:
    """Quality records or calibration rows as a Markdown table (SWD ×10³ per level, diversity, memorisation)."""
    lines = ["| | SWD ×10³ | @64 | @32 | @16 | diversity vs reals | distinct nearest | median NN ratio | near copies |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        name = r.get("label") or f"epoch {r['epoch']}"
        levels = " | ".join(f"{r[f'swd_{s}']:.1f}" for s in SWD_LEVELS)
        lines.append(f"| {name} | {r['swd']:.1f} | {levels} | {r['diversity_ratio']:.2f} | "
                     f"{r['distinct_nearest']}/{r['samples']} | {r['nn_ratio_median']:.2f} | {r['near_copies']} |")
    return "\n".join(lines)


def run_reals(run_dir: str | Path, data: str | Path | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
    """The training images of a run (its data folder and max_images), as training saw them before augmentation."""
    from gan_helpers.data import load_dataset
    from gan_helpers.paths import from_root

    config = runs.read_config(run_dir)
    folder = from_root(data if data is not None else config["data"])
    return load_dataset(folder, max_images=config.get("max_images"), device=device)


def evaluate_run(run_dir: str | Path, *, epochs: list[int] | None = None, reals: torch.Tensor | None = None,
                 samples: int | None = None, device: str | torch.device = "cpu", output: str | Path | None = None,
                 write: bool = True, skip_existing: bool = False, on_record: Callable[[dict], None] | None = None,
                 **options) -> list[dict]:
    """Quality records for a run's checkpoints, written to its quality.jsonl (or `output`) as they finish.

    `samples` None uses the count of the run's existing records (what
    training used), else :data:`QUALITY_SAMPLES`; the seed is the run's. A
    checkpoint gives the same record here as the training-time call did on
    the same kind of device. `on_record` is called with each record as it is done.
    """
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    if runs.is_shipped(run_dir):
        from gan_helpers.results import require_intact

        require_intact(run_dir)
    saved = runs.checkpoints(run_dir)
    if not saved:
        raise UserError(f"{run_dir} has no checkpoints yet; train it for at least save_every epochs first.")
    target = Path(output) if output is not None else run_dir / QUALITY_FILE
    if write:
        check_output(target, run_dir)
    wanted = sorted(saved) if epochs is None else sorted(epochs)
    missing = [e for e in wanted if e not in saved]
    if missing:
        raise UserError(f"{run_dir} has no checkpoint for epoch(s) {missing}; pick from {sorted(saved) or 'none yet'}.")
    if skip_existing:
        done = {r["epoch"] for r in read_quality(target)}
        wanted = [e for e in wanted if e not in done]
    if samples is None:
        earlier = read_quality(run_dir)
        samples = earlier[-1]["samples"] if earlier else QUALITY_SAMPLES
    if samples < 2:
        raise UserError(f"--samples {samples} is too few to compare sets of images; use at least 2 (the default is {QUALITY_SAMPLES}).")
    if reals is None:
        reals = run_reals(run_dir, device=device)
    records = []
    with contextlib.ExitStack() as held:
        if write and target.resolve().parent == run_dir.resolve():  # one writer per run: not while it trains
            from gan_helpers.locks import hold

            held.enter_context(hold(run_dir, "evaluate"))
        for epoch in wanted:
            G, _ = runs.load_generator(saved[epoch], device=device)
            record = quality_record(G, reals, epoch=epoch, seed=config.get("seed", 0), samples=samples, **options)
            if write:
                append_quality(target, record)
            if on_record is not None:
                on_record(record)
            records.append(record)
    return records


def inside_shipped(path: str | Path) -> Path | None:
    """The shipped result or results folder that `path` lies in (``results/``, ``$LAB_RESULTS``), else None."""
    from gan_helpers.shipped import results_root

    path = Path(path).resolve()
    for folder in (path, *path.parents):
        if runs.is_shipped(folder):
            return folder
    root = results_root().resolve()
    return root if path == root or root in path.parents else None


def check_output(target: str | Path, run_dir: str | Path) -> None:
    """Refuse to write quality records to `target` inside a shipped result (they are read-only) or where no file
    can be written, in one sentence; create its folder otherwise."""
    from gan_helpers.paths import ensure_folder, shown

    target = Path(target)
    if (shipped := inside_shipped(target)) is not None:
        raise UserError(f"{shown(target)} lies in {shown(shipped)}, and nothing writes into shipped results; print the "
                        f"numbers (--print-only) or give --output a file outside it.")
    if target.is_dir():
        raise UserError(f"{shown(target)} is a folder; give --output a file name, e.g. {shown(target / QUALITY_FILE)}.")
    ensure_folder(target.parent, "output's folder")


def best_epoch(run_dir: str | Path, *, margin: float = SWD_MARGIN, records: list[dict] | None = None) -> tuple[int, dict]:
    """The checkpoint epoch with the lowest SWD, and the numbers behind the choice.

    Epochs whose SWD lies within `margin` (relative) of the lowest count as
    tied, since differences that small are within SWD's own sampling spread;
    among them the one with fewest near copies wins, then the lower SWD.
    """
    run_dir = Path(run_dir)
    saved = runs.checkpoints(run_dir)
    records = read_quality(run_dir) if records is None else records
    usable = [r for r in records if r["epoch"] in saved and math.isfinite(r.get("swd", math.nan))]
    if not usable:
        raise UserError(f"{run_dir} has no quality record for any checkpoint epoch; run "
                        f"`python -m gan_helpers evaluate {run_dir}` first.")
    lowest = min(r["swd"] for r in usable)
    tied = [r for r in usable if r["swd"] <= lowest * (1 + margin)]
    best = min(tied, key=lambda r: (r["near_copies"], r["swd"], r["epoch"]))
    return best["epoch"], {
        "swd": best["swd"],
        "near_copies": best["near_copies"],
        "lowest_swd": lowest,
        "lowest_swd_epoch": min(usable, key=lambda r: (r["swd"], r["epoch"]))["epoch"],
        "margin": margin,
        "tied_epochs": [r["epoch"] for r in tied],
        "epochs_compared": len(usable),
    }


# ---- command line -------------------------------------------------------------------------

HELP = "Quality numbers (SWD, diversity, memorisation) for a run's checkpoints, into its quality.jsonl."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder made by training")
    parser.add_argument("--epochs", metavar="E1,E2,...", help="only these checkpoint epochs (default: every checkpoint)")
    parser.add_argument("--output", metavar="FILE", help=f"write the records here instead of RUN_DIR/{QUALITY_FILE}")
    parser.add_argument("--print-only", action="store_true", help="print the numbers, write nothing")
    parser.add_argument("--skip-existing", action="store_true", help="leave epochs that already have a record alone")
    parser.add_argument("--samples", type=int, metavar="N", help=f"samples per record (default: as in the run's records, else {QUALITY_SAMPLES})")
    parser.add_argument("--data", metavar="FOLDER", help="the training images, if the run's data folder has moved")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to run (default: auto)")
    parser.add_argument("--evolution", action="store_true", help="also write RUN_DIR/evolution.gif from the sample grids")


def _epochs(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise UserError(f"--epochs {text!r} is not a comma-separated list of whole numbers; write e.g. --epochs 50,100.") from None


def _print_record(record: dict) -> None:
    levels = " ".join(f"{record[f'swd_{s}']:7.2f}" for s in SWD_LEVELS)
    print(f"{record['epoch']:>6} {record['swd']:8.2f} {levels} {record['diversity_ratio']:9.2f} "
          f"{record['distinct_nearest']:>8} {record['near_copies']:>6} {record['seconds']:6.1f}", flush=True)


def run(args: argparse.Namespace) -> int:
    from gan_helpers.utils import pick_device

    device = pick_device(args.device)
    target = Path(args.output) if args.output else Path(args.run_dir) / QUALITY_FILE
    if runs.is_shipped(args.run_dir) and not args.output and not args.print_only:
        print(f"{args.run_dir} is a shipped result, which nothing changes: the numbers are printed only "
              f"(--output FILE keeps them in a file outside results/).")
        args.print_only = True
    if args.evolution and inside_shipped(args.run_dir) is not None:
        raise UserError(f"{args.run_dir} is a shipped result, which already holds its evolution.gif and is never "
                        f"changed; drop --evolution.")
    if not args.print_only:
        check_output(target, args.run_dir)  # before the images are loaded: a wrong path costs no wait
    reals = run_reals(args.run_dir, args.data, device=device)
    levels = " ".join(f"{'@' + str(s):>7}" for s in SWD_LEVELS)
    print(f"{'epoch':>6} {'SWDx1e3':>8} {levels} {'diversity':>9} {'distinct':>8} {'copies':>6} {'s':>6}")
    records = evaluate_run(args.run_dir, epochs=_epochs(args.epochs), reals=reals, samples=args.samples,
                           device=device, output=target, write=not args.print_only,
                           skip_existing=args.skip_existing, on_record=_print_record)
    if not args.print_only:
        print(f"records: {target}")
    chosen_from = records if args.print_only else read_quality(target)
    if chosen_from:
        epoch, numbers = best_epoch(args.run_dir, records=chosen_from)
        print(f"best epoch: {epoch} {json.dumps(numbers)}")
    if args.evolution:
        from gan_helpers.animation import save_evolution

        print(f"animation: {save_evolution(args.run_dir)}")
    return 0
