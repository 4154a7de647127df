"""What a training run did, in numbers (point 18): read from its folder, never remembered.

:func:`run_summary` condenses a run folder (config.json, metrics.jsonl,
checkpoints) into one flat dict; :func:`summary_table` lays several side
by side as Markdown. The reflections notebook builds its sentences from
these values, so its prose stays true for whichever runs the report shows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from gan_helpers import runs
from gan_helpers.paths import from_root

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif"}


def count_images(folder: str | Path) -> int | None:
    """Images training reads from `folder`: those of the prepared set (or its cached prepared copy),
    else the image files in it; None when the folder is not there."""
    folder = from_root(folder)
    if not folder.is_dir():
        return None
    try:
        from gan_helpers import data, prepare

        if data.is_prepared(folder):
            return len(data.image_paths(folder))
        cached = prepare.CACHE_ROOT / prepare.cache_key(folder.resolve())
        if (cached / prepare.MANIFEST).is_file():
            return len(data.image_paths(cached))
    except Exception:  # an odd folder: fall back to counting files
        pass
    return sum(1 for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def device_used(run_dir: Path, config: dict) -> str:
    """The device a run trained on: its setting, resolved for 'auto' from its newest checkpoint.

    A checkpoint carries CUDA random-number states exactly when CUDA was
    available, and 'auto' picks CUDA exactly then.
    """
    setting = config.get("device", "?")
    if setting != "auto":
        return setting
    saved = runs.checkpoints(run_dir)
    if not saved:
        return "auto"
    try:
        import torch

        state = torch.load(saved[max(saved)], map_location="cpu", weights_only=True)
        return "cuda (auto)" if "cuda" in state.get("rng", {}) else "cpu (auto)"
    except Exception:  # unreadable checkpoint: say what is known
        return "auto"


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]


def _mean(values: Sequence[float]) -> float:
    values = _finite(values)
    return sum(values) / len(values) if values else math.nan


def run_summary(run_dir: str | Path, tail: float = 0.1) -> dict:
    """One run in numbers: settings, time, losses, balance and anything that went wrong.

    "End" values are means over the last `tail` fraction of the epochs (at
    least one epoch), so one noisy epoch does not decide them. Balance is
    the mean of |loss_D - loss_G| and of loss_G / loss_D over the same epochs.
    """
    run_dir = Path(run_dir)
    config = runs.read_config(run_dir)
    metrics = runs.read_metrics(run_dir)
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
    if last_epoch < config.get("epochs", 0):
        problems.append(f"stopped at epoch {last_epoch} of {config['epochs']}")
    if (run_dir / "FORKED_FROM").is_file():
        source = Path((run_dir / "FORKED_FROM").read_text().strip())
        problems.append(f"continued from an earlier run's checkpoint ({source.parent.parent.name}, {source.stem})")
    saved = runs.checkpoints(run_dir)
    if metrics and not saved:
        problems.append("no checkpoint saved")

    tail_n = max(1, math.ceil(len(metrics) * tail)) if metrics else 0
    end = metrics[-tail_n:] if metrics else []
    loss_D = [m.get("loss_D", math.nan) for m in metrics]
    loss_G = [m.get("loss_G", math.nan) for m in metrics]

    def best(values: list[float]) -> tuple[float, int | None]:
        pairs = [(v, e) for v, e in zip(values, epochs) if math.isfinite(v)]
        return min(pairs) if pairs else (math.nan, None)

    best_D, best_D_epoch = best(loss_D)
    best_G, best_G_epoch = best(loss_G)
    end_D = [m.get("loss_D", math.nan) for m in end]
    end_G = [m.get("loss_G", math.nan) for m in end]
    data = config.get("data", "")
    images = count_images(data) if data else None
    if images is not None and config.get("max_images"):
        images = min(images, config["max_images"])
    return {
        "run": run_dir.name,
        "generator": config.get("generator", "?"),
        "epochs": last_epoch,
        "planned_epochs": config.get("epochs"),
        "seconds": sum(_finite([m.get("seconds", math.nan) for m in metrics])),
        "seconds_per_epoch": _mean([m.get("seconds", math.nan) for m in metrics]),
        "device": device_used(run_dir, config),
        "data": data,
        "images": images,
        "batch_size": config.get("batch_size"),
        "lr_d": config.get("lr_d"),
        "lr_g": config.get("lr_g"),
        "checkpoints": len(saved),
        "final_loss_D": loss_D[-1] if metrics else math.nan,
        "final_loss_G": loss_G[-1] if metrics else math.nan,
        "best_loss_D": best_D,
        "best_loss_D_epoch": best_D_epoch,
        "best_loss_G": best_G,
        "best_loss_G_epoch": best_G_epoch,
        "tail_epochs": tail_n,
        "end_gap": _mean([abs(d - g) for d, g in zip(end_D, end_G)]),
        "end_ratio": _mean([g / d for d, g in zip(end_D, end_G) if d]),
        "end_D_x": _mean([m.get("D_x", math.nan) for m in end]),
        "end_D_G_z": _mean([m.get("D_G_z", math.nan) for m in end]),
        "problems": problems,
    }


def fmt(value, digits: int = 3) -> str:
    """A number for prose and tables: '–' when missing or not finite."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def duration(seconds: float) -> str:
    """Seconds as '42 s', '3.5 min' or '2.1 h'."""
    if not math.isfinite(seconds):
        return "–"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def summary_table(summaries: Sequence[dict]) -> str:
    """A Markdown table with one column per run."""
    rows = [
        ("run folder", lambda s: f"`{s['run']}`"),
        ("generator", lambda s: s["generator"]),
        ("epochs trained (planned)", lambda s: f"{s['epochs']} ({fmt(s['planned_epochs'])})"),
        ("training time", lambda s: f"{duration(s['seconds'])} ({fmt(s['seconds_per_epoch'])} s/epoch)"),
        ("device", lambda s: s["device"]),
        ("data (images)", lambda s: f"`{s['data']}` ({fmt(s['images'])})"),
        ("batch size; lr_d, lr_g", lambda s: f"{fmt(s['batch_size'])}; {fmt(s['lr_d'])}, {fmt(s['lr_g'])}"),
        ("final loss_D / loss_G", lambda s: f"{fmt(s['final_loss_D'])} / {fmt(s['final_loss_G'])}"),
        ("best loss_D (epoch)", lambda s: f"{fmt(s['best_loss_D'])} ({fmt(s['best_loss_D_epoch'])})"),
        ("best loss_G (epoch)", lambda s: f"{fmt(s['best_loss_G'])} ({fmt(s['best_loss_G_epoch'])})"),
        ("last 10 %: mean abs(loss_D - loss_G)", lambda s: fmt(s["end_gap"])),
        ("last 10 %: mean loss_G / loss_D", lambda s: fmt(s["end_ratio"])),
        ("last 10 %: mean D(x), D(G(z))", lambda s: f"{fmt(s['end_D_x'])}, {fmt(s['end_D_G_z'])}"),
        ("checkpoints kept", lambda s: fmt(s["checkpoints"])),
        ("what went wrong", lambda s: "; ".join(s["problems"]) or "nothing recorded"),
    ]
    header = "| | " + " | ".join(s["generator"] for s in summaries) + " |"
    lines = [header, "|---|" + "---|" * len(summaries)]
    lines += [f"| {name} | " + " | ".join(str(get(s)) for s in summaries) + " |" for name, get in rows]
    return "\n".join(lines)


def balance_sentence(s: dict) -> str:
    """How the two losses of one run related at the end, with the numbers."""
    ratio, n = s["end_ratio"], s["tail_epochs"]
    probs = f"D(x) = {fmt(s['end_D_x'], 2)} for real images and D(G(z)) = {fmt(s['end_D_G_z'], 2)} for fakes"
    where = f"over its last {n} epoch{'s' if n != 1 else ''}"
    if not math.isfinite(ratio):
        return f"The {s['generator']} run has no finite losses to compare {where}."
    if 0.5 <= ratio <= 2:
        verdict = f"the losses stayed in balance (loss_G / loss_D = {fmt(ratio)}, mean gap {fmt(s['end_gap'], 2)})"
    elif ratio > 2:
        verdict = f"the discriminator was winning (loss_G was {fmt(ratio)} times loss_D)"
    else:
        verdict = f"the generator was fooling the discriminator (loss_G was only {fmt(ratio)} times loss_D)"
    gap = s["end_D_x"] - s["end_D_G_z"] if math.isfinite(s["end_D_x"]) and math.isfinite(s["end_D_G_z"]) else math.nan
    if not math.isfinite(gap):
        told = ""
    elif gap < 0.1:
        told = ", so it barely told them apart"
    elif gap > 0.5:
        told = ", so it separated them clearly"
    else:
        told = ", so it told them apart only partly"
    return f"In the {s['generator']} run, {where}, {verdict}; the discriminator gave {probs}{told}."


def reflections(summaries: Sequence[dict], converge_epochs: int = 3000) -> dict[str, str]:
    """Paragraphs for point 18 built from run summaries, so every number in them is true of these runs.

    Keys: 'runs' (what each run did), 'balance', 'problems', 'time', 'length'.
    """
    out = {}
    out["runs"] = " ".join(
        f"The {s['generator']} run (`{s['run']}`) trained {s['epochs']} epoch{'s' if s['epochs'] != 1 else ''} "
        f"on {fmt(s['images'])} images in {duration(s['seconds'])} of training time "
        f"({fmt(s['seconds_per_epoch'])} s per epoch on {s['device'].split()[0]}), "
        f"ending at loss_D = {fmt(s['final_loss_D'])} and loss_G = {fmt(s['final_loss_G'])}."
        for s in summaries
    )
    out["balance"] = " ".join(balance_sentence(s) for s in summaries)
    troubled = [s for s in summaries if s["problems"]]
    if troubled:
        out["problems"] = " ".join(f"The {s['generator']} run: {'; '.join(s['problems'])}." for s in troubled)
    else:
        out["problems"] = ("Nothing went wrong that the run folders record: every loss is finite, no epoch is "
                           "missing or repeated, every run reached its planned epochs and none was continued "
                           "from an older run's checkpoint.")
    total = sum(s["seconds"] for s in summaries)
    parts = [f"Training is what takes time: together the runs took {duration(total)} of training time."]
    by_name = {s["generator"]: s for s in summaries}
    if {"transposed", "upsampling"} <= set(by_name):
        a, b = by_name["transposed"]["seconds_per_epoch"], by_name["upsampling"]["seconds_per_epoch"]
        if math.isfinite(a) and math.isfinite(b) and a > 0:
            ratio = b / a
            if ratio > 1.15:
                parts.append(f"An epoch of the upsampling generator took {ratio:.1f} times as long as one of the "
                             f"transposed-convolution generator ({fmt(b)} s against {fmt(a)} s): it runs two 3×3 "
                             f"convolutions with batch normalisation in every block, the last two at full 64×64 resolution.")
            elif ratio < 1 / 1.15:
                parts.append(f"An epoch of the upsampling generator took only {ratio:.2f} times as long as one of the "
                             f"transposed-convolution generator ({fmt(b)} s against {fmt(a)} s).")
            else:
                parts.append(f"Both generators cost about the same per epoch ({fmt(b)} s and {fmt(a)} s).")
    slowest = max(summaries, key=lambda s: s["seconds_per_epoch"] if math.isfinite(s["seconds_per_epoch"]) else -1)
    if math.isfinite(slowest["seconds_per_epoch"]):
        parts.append(f"At {fmt(slowest['seconds_per_epoch'])} s per epoch, the roughly {converge_epochs} epochs after which "
                     f"the original run of this lab converged would take the {slowest['generator']} generator about "
                     f"{duration(slowest['seconds_per_epoch'] * converge_epochs)} with the same {fmt(slowest['images'])} images on the same device.")
    out["time"] = " ".join(parts)
    shortest = min(s["epochs"] for s in summaries)
    if shortest < 100:
        out["length"] = (f"With {shortest} epochs the shorter run is far from the hundreds to thousands of epochs after "
                         "which the lab expects samples to resemble the data; runs this short test that the machinery "
                         "works end to end (steps, checkpoints, sample grids, resumption, inversion), not what the GAN "
                         "can learn. The full parameter set on a GPU gives the runs to judge the images by.")
    elif shortest < 1000:
        out["length"] = (f"With {shortest} epochs the shorter run is in the range where, in the original run of this lab, "
                         "samples had started to look like the data but had not converged (that took about "
                         f"{converge_epochs} epochs); its samples show the direction, not the end point.")
    else:
        out["length"] = (f"With {shortest} epochs or more both runs come near the roughly {converge_epochs} epochs "
                         "after which the original run of this lab converged, so their last samples are a fair "
                         "picture of what this architecture can do on this data.")
    return out
