"""A run's quality numbers per epoch: computed during training or afterwards, kept in ``quality.jsonl``.

Training and a later ``python -m gan_helpers evaluate RUN_DIR`` sample the
same latent vectors (:func:`quality_noise`). Each record names the generator
it scored in ``model``: ``"G"``, or ``"G_ema"``, the average of its weights
(:mod:`gan_helpers.averaging`); a record without the field is G's.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from pathlib import Path

import torch
from torch import nn

from gan_helpers.runs import run_folders
from gan_helpers.storage.atomic import atomic_write_text
from gan_helpers.storage.json_lines import read_json_lines, write_json_lines
from gan_helpers.errors import UserError
from gan_helpers.models import generate
from gan_helpers.runs.markdown import table_cell
from gan_helpers.runs.quality import SWD_LEVELS, measure, calibration
from gan_helpers.formatting import finite_number

QUALITY_FILE = "quality.jsonl"
QUALITY_SAMPLES = 256  # samples per record: SWD within a few % between equally good sets; ~10 s of G on a 2-core CPU
SWD_MARGIN = 0.05  # epochs within 5 % of the lowest SWD tie: equally good sample sets differ by 3-4 % (relative std)
_NOISE_SEED_OFFSET = 1_000_003  # quality latents differ from the fixed-noise latents the same seed draws


def quality_noise(count: int = QUALITY_SAMPLES, *, seed: int = 0, latent_dim: int = 128) -> torch.Tensor:
    """The latent vectors quality records sample from, on the CPU: the same for a seed on every device."""
    generator = torch.Generator().manual_seed(seed + _NOISE_SEED_OFFSET)
    return torch.randn(count, latent_dim, generator=generator)


def quality_record(G: nn.Module, reals: torch.Tensor, *, epoch: int, seed: int = 0,
                   samples: int = QUALITY_SAMPLES, model: str = "G", **options) -> dict:
    """The quality numbers of one epoch's generator against the training images, JSON-ready.

    G samples :func:`quality_noise` in eval mode, float32, without gradients
    (its mode is restored); the measures run on the reals' device. `options`
    go to :func:`gan_helpers.runs.quality.measure` (e.g. fewer neighbourhoods in tests).
    """
    started = time.perf_counter()
    device = next(G.parameters()).device
    with torch.autocast(device.type, enabled=False):  # float32 even when called inside an autocast region
        images = generate(G, quality_noise(samples, seed=seed, latent_dim=G.latent_dim))
    numbers = measure(images, reals.float(), seed=seed, **options)
    return {"epoch": epoch, "model": model, "seed": seed, **numbers, "seconds": round(time.perf_counter() - started, 3)}


def record_model(record: dict) -> str:
    """Which generator a quality record scored: "G" or "G_ema"."""
    return record.get("model", "G")


def read_quality(path: str | Path, model: str | None = "G", *, strict: bool = True) -> list[dict]:
    """The records of a run folder's quality.jsonl (or of a given .jsonl file) for `model`, in epoch order.

    `model` "G" (the default) or "G_ema" picks one generator's records; None returns every record. A bad
    record is one sentence naming the file and line; with ``strict=False`` (a reader that follows a run
    being written, like ``watch``) it is skipped with a warning, and a cut-off last line silently.
    """
    path = quality_path(path)
    records = read_json_lines(path, _checked_record, not_json="is not a JSON record", strict=strict,
                              fix="delete that line (or the file) and run `python -m gan_helpers evaluate` again",
                              drop_cut_off=False)
    return sorted((r for r in records if model is None or record_model(r) == model), key=lambda r: r["epoch"])


def quality_path(path: str | Path) -> Path:
    """The quality file of a run folder, or `path` itself when it names a file."""
    path = Path(path)
    return path / QUALITY_FILE if path.is_dir() else path


_TEXT_FIELDS = ("label", "model")  # every other field of a record is a number (or null)


def _checked_record(record) -> tuple[dict | None, str]:
    """One parsed line of a quality file as (record, "") or (None, a clause saying what is wrong with it)."""
    if not isinstance(record, dict):
        return None, f"holds a JSON {type(record).__name__}, not a record"
    if type(record.get("epoch")) is not int:
        return None, "has no integer epoch"
    if record.get("model", "G") not in ("G", "G_ema"):
        return None, 'names a model other than "G" or "G_ema"'
    if not isinstance(record.get("label", ""), str):
        return None, "has a label that is not text"
    for key, value in record.items():  # NaN or infinity: a measure that could not be taken
        if key not in _TEXT_FIELDS and value is not None and not isinstance(value, float) and finite_number(value) is None:
            return None, f"has {key} {json.dumps(value)[:40]}, which is not a number"
    return record, ""


def append_quality(path: str | Path, record: dict) -> Path:
    """Add a record to a run folder's quality.jsonl (or a given .jsonl file), replacing one of the same epoch and model.

    The small file is rewritten whole and atomically, so a resumed run that
    repeats an epoch leaves one record per epoch and a crash leaves the old file.
    """
    path = quality_path(path)
    same = (record["epoch"], record_model(record))
    kept = [r for r in read_quality(path, model=None) if (r["epoch"], record_model(r)) != same]
    records = sorted([*kept, record], key=lambda r: r["epoch"])
    write_json_lines(path, records)
    return path


def truncate_quality(path: str | Path, last_epoch: int) -> None:
    """Keep only records up to `last_epoch` (a resumed or forked run computes what follows again)."""
    path = quality_path(path)
    if path.is_file():
        kept = [r for r in read_quality(path, model=None) if r["epoch"] <= last_epoch]
        write_json_lines(path, kept)


def cached_calibration(reals: torch.Tensor, path: str | Path, *, seed: int = 0, **options) -> list[dict]:
    """:func:`gan_helpers.runs.quality.calibration` of `reals`, kept in a JSON file next to the runs.

    The file records a fingerprint of the images and the settings; it is
    reused only when both match, so a changed data set is calibrated afresh.
    """
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
    for r in rows:  # a label comes from a quality.jsonl anyone may have written: each cell is literal text
        name = r.get("label") or f"epoch {r['epoch']}"
        cells = [name, f"{r['swd']:.1f}", *(f"{r[f'swd_{s}']:.1f}" for s in SWD_LEVELS), f"{r['diversity_ratio']:.2f}",
                 f"{r['distinct_nearest']}/{r['samples']}", f"{r['nn_ratio_median']:.2f}", r["near_copies"]]
        lines.append("| " + " | ".join(table_cell(c) for c in cells) + " |")
    return "\n".join(lines)


def is_new_best(run_dir: str | Path, epoch: int) -> bool:
    """Whether G or G_ema scored a lower SWD at `epoch` than at every earlier epoch of the run."""
    for model in ("G", "G_ema"):
        swd = {r["epoch"]: r.get("swd", math.nan) for r in read_quality(run_dir, model) if r["epoch"] <= epoch}
        earlier = [v for e, v in swd.items() if e < epoch and math.isfinite(v)]
        if epoch in swd and math.isfinite(swd[epoch]) and all(swd[epoch] < v for v in earlier):
            return True
    return False


def favoured_model(run_dir: str | Path) -> str:
    """"G_ema" when the run's records of G's average reach a lower SWD at an epoch with kept weights than G's, else "G"."""
    lowest = {}
    for model in ("G", "G_ema"):
        try:
            lowest[model] = best_epoch(run_dir, model=model)[1]["lowest_swd"]
        except UserError:
            continue
    return min(lowest, key=lambda m: (lowest[m], m != "G_ema"), default="G")


def best_epoch(run_dir: str | Path, *, model: str = "G", margin: float = SWD_MARGIN,
               records: list[dict] | None = None) -> tuple[int, dict]:
    """The epoch with kept weights (run_folders.generator_files) where `model` ("G" or "G_ema") scored the
    lowest SWD, and the numbers behind the choice.

    Epochs whose SWD lies within `margin` (relative) of the lowest count as
    tied, since differences that small are within SWD's own sampling spread;
    among them the one with fewest near copies wins, then the lower SWD.
    """
    run_dir = Path(run_dir)
    saved = run_folders.generator_files(run_dir)
    records = read_quality(run_dir, model) if records is None else records
    usable = [r for r in records if r["epoch"] in saved and math.isfinite(r.get("swd", math.nan))]
    if not usable:
        raise UserError(f"{run_dir} has no quality record of {model} for any checkpoint epoch; run "
                        f"`python -m gan_helpers evaluate {run_dir}` first.")
    lowest = min(r["swd"] for r in usable)
    tied = [r for r in usable if r["swd"] <= lowest * (1 + margin)]
    best = min(tied, key=lambda r: (r["near_copies"], r["swd"], r["epoch"]))
    return best["epoch"], {
        "model": model,
        "swd": best["swd"],
        "near_copies": best["near_copies"],
        "lowest_swd": lowest,
        "lowest_swd_epoch": min(usable, key=lambda r: (r["swd"], r["epoch"]))["epoch"],
        "margin": margin,
        "tied_epochs": [r["epoch"] for r in tied],
        "epochs_compared": len(usable),
    }
