"""python -m gan_helpers evaluate: quality numbers for an existing run's checkpoints, and its samples' evolution as a GIF."""

from __future__ import annotations
import argparse
import contextlib
import io
import json
import torch
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from gan_helpers.runs.quality import SWD_LEVELS
from gan_helpers.errors import UserError
from gan_helpers.runs import checkpoints, run_folders, quality_records
from gan_helpers.runs.quality_records import record_model
from gan_helpers.runs.results import PROVENANCE_FILE, inside_shipped, require_intact
from gan_helpers.storage.locks import hold
from gan_helpers.datasets.loading import load_dataset
from gan_helpers.paths import ensure_folder, from_root, shown
from gan_helpers.speed import pick_device
from gan_helpers.plots import pick_epochs
from gan_helpers.runs.run_plots import read_png
from gan_helpers.runs.run_plots import label_image
from gan_helpers.storage.atomic import atomic_write_bytes

EVOLUTION_FILE = "evolution.gif"


def evaluate_run(run_dir: str | Path, *, epochs: list[int] | None = None, reals: torch.Tensor | None = None,
                 samples: int | None = None, device: str | torch.device = "cpu", output: str | Path | None = None,
                 write: bool = True, skip_existing: bool = False, on_record: Callable[[dict], None] | None = None,
                 **options) -> list[dict]:
    """Quality records for a run's checkpoints, written to its quality.jsonl (or `output`) as they finish: one for each
    generator a checkpoint holds (G, and G_ema where the run keeps the average of G's weights), marked which.

    `samples` None uses the count of the run's existing records (what
    training used), else :data:`QUALITY_SAMPLES`; the seed is the run's. A
    checkpoint gives the same record here as the training-time call did on
    the same kind of device. `on_record` is called with each record as it is done.
    """
    run_dir = Path(run_dir)
    config = run_folders.read_config(run_dir)
    if (run_dir / PROVENANCE_FILE).is_file():
        require_intact(run_dir)  # a shipped result is scored only as it was exported
    saved = run_folders.checkpoint_files(run_dir)
    if not saved:
        raise UserError(f"{run_dir} has no checkpoints yet; train it for at least save_every epochs first.")
    target = Path(output) if output is not None else run_dir / quality_records.QUALITY_FILE
    if write:
        check_output(target, run_dir)
    wanted = sorted(saved) if epochs is None else sorted(epochs)
    missing = [e for e in wanted if e not in saved]
    if missing:
        raise UserError(f"{run_dir} has no checkpoint for epoch(s) {missing}; pick from {sorted(saved) or 'none yet'}.")
    done = {(r["epoch"], record_model(r)) for r in quality_records.read_quality(target, None)} if skip_existing else set()
    if samples is None:
        earlier = quality_records.read_quality(run_dir)
        samples = earlier[-1]["samples"] if earlier else quality_records.QUALITY_SAMPLES
    if samples < 2:
        raise UserError(f"--samples {samples} is too few to compare sets of images; use at least 2 (the default is {quality_records.QUALITY_SAMPLES}).")
    if reals is None:
        reals = run_reals(run_dir, device=device)
    records = []
    with contextlib.ExitStack() as held:
        if write and target.resolve().parent == run_dir.resolve():  # one writer per run: not while it trains

            held.enter_context(hold(run_dir, "evaluate"))
        for epoch in wanted:
            held_models = [m for m in ("G", "G_ema") if m in checkpoints.load_checkpoint(saved[epoch])]
            for model in (m for m in held_models if (epoch, m) not in done):
                G, _ = checkpoints.load_generator(saved[epoch], device=device, average=model == "G_ema")
                record = quality_records.quality_record(G, reals, epoch=epoch, seed=config.get("seed", 0), samples=samples,
                                                        model=model, **options)
                if write:
                    quality_records.append_quality(target, record)
                if on_record is not None:
                    on_record(record)
                records.append(record)
    return records


def check_output(target: str | Path, run_dir: str | Path) -> None:
    """Refuse to write quality records to `target` inside a shipped result (they are read-only) or where no file
    can be written, in one sentence; create its folder otherwise."""
    target = Path(target)
    if (shipped := inside_shipped(target)) is not None:
        raise UserError(f"{shown(target)} lies in {shown(shipped)}, and nothing writes into shipped results; print the "
                        f"numbers (--print-only) or give --output a file outside it.")
    if target.is_dir():
        raise UserError(f"{shown(target)} is a folder; give --output a file name, e.g. {shown(target / quality_records.QUALITY_FILE)}.")
    ensure_folder(target.parent, "output's folder")


def _frame(path: Path, epoch: int, size: tuple[int, int] | None) -> Image.Image:
    pixels, labelled = read_png(path)  # a regular file of a sane size only: the run folder may come from anyone
    frame = Image.fromarray(pixels, "RGB")
    if not labelled:
        frame = label_image(frame, f"epoch {epoch}")
    if size is not None and frame.size != size:
        frame = frame.resize(size, Image.Resampling.NEAREST)
    return frame


def save_evolution(run_dir: str | Path, *, path: str | Path | None = None, frame_ms: int = 400,
                   last_frame_ms: int = 2500, max_frames: int = 100) -> Path:
    """Write the run's fixed-noise sample grids as an animated GIF (default RUN_DIR/evolution.gif).

    Frames are the saved epochs in order, at most `max_frames` spread
    evenly (always the first and last), each labelled with its epoch; the
    last frame stays longer so the end result can be looked at. Returns the path.
    """
    run_dir = Path(run_dir)
    saved = run_folders.samples(run_dir)
    if not saved:
        raise UserError(f"{run_dir} has no sample grids in samples/; train it for at least one sample epoch first.")
    frames: list[Image.Image] = []
    for epoch in pick_epochs(list(saved), max_frames):
        frames.append(_frame(saved[epoch], epoch, frames[0].size if frames else None))
    durations = [frame_ms] * (len(frames) - 1) + [last_frame_ms]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    target = Path(path) if path is not None else run_dir / EVOLUTION_FILE
    atomic_write_bytes(target, buffer.getvalue())
    return target


def run_reals(run_dir: str | Path, data: str | Path | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
    """The training images of a run (its data folder and max_images), as training saw them before augmentation."""
    config = run_folders.read_config(run_dir)
    folder = from_root(data if data is not None else config["data"])
    return load_dataset(folder, max_images=config.get("max_images"), device=device)

HELP = "Quality numbers (SWD, diversity, memorisation) for a run's checkpoints, into its quality.jsonl."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run folder made by training")
    parser.add_argument("--epochs", metavar="E1,E2,...", help="only these checkpoint epochs (default: every checkpoint)")
    parser.add_argument("--output", metavar="FILE", help=f"write the records here instead of RUN_DIR/{quality_records.QUALITY_FILE}")
    parser.add_argument("--print-only", action="store_true", help="print the numbers, write nothing")
    parser.add_argument("--skip-existing", action="store_true", help="leave epochs that already have a record alone")
    parser.add_argument("--samples", type=int, metavar="N", help=f"samples per record (default: as in the run's records, else {quality_records.QUALITY_SAMPLES})")
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
    print(f"{record['epoch']:>6} {record_model(record):>6} {record['swd']:8.2f} {levels} {record['diversity_ratio']:9.2f} "
          f"{record['distinct_nearest']:>8} {record['near_copies']:>6} {record['seconds']:6.1f}", flush=True)


def run(args: argparse.Namespace) -> int:
    device = pick_device(args.device)
    target = Path(args.output) if args.output else Path(args.run_dir) / quality_records.QUALITY_FILE
    if inside_shipped(args.run_dir) is not None and not args.output and not args.print_only:
        print(f"{args.run_dir} is a shipped result, which nothing changes: the numbers are printed only "
              f"(--output FILE keeps them in a file outside results/).")
        args.print_only = True
    if args.evolution and inside_shipped(args.run_dir) is not None:
        raise UserError(f"{args.run_dir} is a shipped result, which is never changed; drop --evolution.")
    if not args.print_only:
        check_output(target, args.run_dir)  # before the images are loaded: a wrong path costs no wait
    reals = run_reals(args.run_dir, args.data, device=device)
    levels = " ".join(f"{'@' + str(s):>7}" for s in SWD_LEVELS)
    print(f"{'epoch':>6} {'model':>6} {'SWDx1e3':>8} {levels} {'diversity':>9} {'distinct':>8} {'copies':>6} {'s':>6}")
    records = evaluate_run(args.run_dir, epochs=_epochs(args.epochs), reals=reals, samples=args.samples,
                           device=device, output=target, write=not args.print_only,
                           skip_existing=args.skip_existing, on_record=_print_record)
    if not args.print_only:
        print(f"records: {target}")
    model = quality_records.favoured_model(args.run_dir)
    chosen_from = [r for r in (records if args.print_only else quality_records.read_quality(target, None))
                   if record_model(r) == model]
    if chosen_from:
        epoch, numbers = quality_records.best_epoch(args.run_dir, model=model, records=chosen_from)
        print(f"best epoch: {epoch} {json.dumps(numbers)}")
    if args.evolution:
        print(f"animation: {save_evolution(args.run_dir)}")
    return 0
