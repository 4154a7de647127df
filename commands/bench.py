"""``python -m gan_helpers bench``: training speed of the fast path against the fp32 reference.

For each generator, one process trains the spec's networks at the spec's
batch size on a small synthetic data set of 64x64 colour images, once per
*variant*, the variants interleaved round by round after warm-up rounds so
that a change in machine load hits them alike; each variant's time is the
median of its rounds. A round is one epoch of ``--steps`` batches through
:func:`gan_helpers.training.train_epoch`, augmentation included, timed up to
the epoch's single read of its losses (so GPU work is finished).

- ``reference``: the code as it was: float32, eager, per-image torchvision
  augmentation, glibc's usual memory handling;
- ``fast``: the default path: batched augmentation, freed memory kept for
  reuse (CPU), and where the device computes bfloat16 natively bf16
  autocast, channels_last, CUDA graphs and TF32 (GPU); where it does not
  (a CPU without AVX-512 bf16 or AMX), float32 as in the reference
  (:func:`gan_helpers.speed.choose_precision`).

``--breakdown`` adds ``reference+memory`` (the reference with freed memory
kept) and ``fast-eager``/``fast-memory`` (the fast path without CUDA graphs
or without the memory setting). Only torch, torchvision, tqdm and numpy are
needed, so it runs on a bare GPU machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass

import torch

from gan_helpers import speed
from gan_helpers.augment import Augment, BatchAugment
from gan_helpers.runs.config import GENERATOR_KINDS, TrainConfig
from gan_helpers.models import Discriminator, build_generator
from gan_helpers.training import prepare_training, train_epoch
from gan_helpers.errors import UserError

HELP = ("Measure training speed per generator: the default fast path (bf16, channels_last, graphs where the device "
        "computes bfloat16 natively) against the fp32 reference.")

# The spec's full run, for the projections: the default data set's images, epochs, batch size.
FULL_IMAGES, FULL_EPOCHS, FULL_BATCH = 506, 2000, 8
BUDGET_SECONDS = 30 * 60


@dataclass(frozen=True)
class Variant:
    """One way of training: precision, augmentation, memory setting, CUDA graphs."""

    name: str
    precision: str
    batched_augment: bool
    keep_memory: bool
    graphs: bool


def variants(device: torch.device, breakdown: bool, precision: str = "bf16") -> list[Variant]:
    """The variants to time on `device`: reference and fast, and with `breakdown` the steps between.

    `precision` is the fast path's ("bf16", or "fp32" where the device has no native bfloat16).
    """
    cuda = device.type == "cuda"
    graphs = cuda and precision == "bf16"
    chosen = [Variant("reference", "fp32", False, False, False), Variant("fast", precision, True, not cuda, graphs)]
    if breakdown:
        chosen.append(Variant("reference+memory", "fp32", False, True, False))
        chosen.append(Variant("fast-eager", precision, True, False, False) if cuda
                      else Variant("fast-memory", precision, True, False, False))
    return chosen


def _trainer(variant: Variant, generator: str, images: torch.Tensor, batch_size: int, seed: int = 0):
    """Fresh networks and optimizers for `variant` and a function that trains one epoch and returns its seconds."""
    torch.manual_seed(seed)
    G, D = build_generator(generator).to(images.device), Discriminator().to(images.device)
    spec = TrainConfig()  # the lab's learning rates (speed does not depend on them)
    opt_G = torch.optim.Adam(G.parameters(), lr=spec.lr_g, betas=(spec.beta1, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=spec.lr_d, betas=(spec.beta1, 0.999))
    augment = (BatchAugment if variant.batched_augment else Augment)()
    data, step = prepare_training(D, G, opt_D, opt_G, images, batch_size, augment=augment,
                                  precision=variant.precision, graphs=variant.graphs)

    def epoch() -> tuple[float, float]:
        if images.device.type == "cpu":
            speed.keep_freed_memory(variant.keep_memory)
        else:
            speed.set_tf32(variant.precision == "bf16")
            torch.cuda.synchronize()
        started, cpu_started = time.perf_counter(), time.process_time()
        train_epoch(D, G, opt_D, opt_G, data, batch_size, step=step)  # ends by reading the losses: synchronised
        return time.perf_counter() - started, time.process_time() - cpu_started

    return epoch


def time_variants(generator: str, device: torch.device, *, steps: int, rounds: int, warmup: int,
            batch_size: int = FULL_BATCH, breakdown: bool = False) -> dict:
    """Time every variant for one generator; returns the numbers of one result line (see the module docstring)."""
    images = torch.rand(steps * batch_size, 3, 64, 64, generator=torch.Generator().manual_seed(0)).to(device)
    precision = speed.choose_precision(device)
    chosen = variants(device, breakdown, precision)
    trainers = {v.name: _trainer(v, generator, images, batch_size) for v in chosen}
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in trainers}
    load_before = os.getloadavg()[0]
    for round_index in range(warmup + rounds):
        for name, epoch in trainers.items():
            seconds = epoch()
            if round_index >= warmup:
                times[name].append(seconds)
    if device.type == "cpu":
        speed.keep_freed_memory(True)  # leave the process as setup() left it
    result = {"generator": generator, "device": str(device), "fast_precision": precision, "threads": torch.get_num_threads(),
              "batch_size": batch_size, "steps": steps, "rounds": rounds,
              "load_average_before": round(load_before, 2), "load_average_after": round(os.getloadavg()[0], 2)}
    for name, measured in times.items():
        seconds = [wall for wall, _ in measured]
        median = statistics.median(seconds)
        key = name.replace("+", "_plus_").replace("-", "_minus_")
        result[f"{key}_images_per_s"] = round(steps * batch_size / median, 2)
        result[f"{key}_ms_per_step"] = round(1000 * median / steps, 2)
        result[f"{key}_spread"] = round((max(seconds) - min(seconds)) / median, 3)
        # CPU time of the whole process; with one thread it shows the work done, whatever else the machine ran
        result[f"{key}_cpu_ms_per_step"] = round(1000 * statistics.median(cpu for _, cpu in measured) / steps, 2)
    result["ratio"] = round(result["fast_images_per_s"] / result["reference_images_per_s"], 2)
    for key in ("reference", "fast"):
        per_s = result[f"{key}_images_per_s"]
        result[f"{key}_full_profile_hours"] = round(FULL_IMAGES * FULL_EPOCHS / per_s / 3600, 2)
        result[f"{key}_g_steps_in_30_min"] = int(BUDGET_SECONDS * per_s / batch_size)
    return result


def table(results: list[dict]) -> str:
    """The results as a plain-text table, one generator per row."""
    columns = [("generator", "generator", "{}"), ("threads", "threads", "{}"),
               ("reference_images_per_s", "ref img/s", "{:.1f}"), ("fast_images_per_s", "fast img/s", "{:.1f}"),
               ("reference_ms_per_step", "ref ms/step", "{:.1f}"), ("fast_ms_per_step", "fast ms/step", "{:.1f}"),
               ("ratio", "ratio", "{:.2f}x"), ("fast_full_profile_hours", "full run (h)", "{:.2f}"),
               ("fast_g_steps_in_30_min", "G steps/30 min", "{:,}")]
    rows = [[title for _, title, _ in columns]]
    rows += [[fmt.format(result[key]) for key, _, fmt in columns] for result in results]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    return "\n".join("  ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in rows)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="where to train (default: auto)")
    parser.add_argument("--steps", type=int, default=0,
                        help="D + G steps per round; 0: 6 on the CPU, 100 on a GPU (default: 0)")
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds per variant; the median counts (default: 5)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds per variant first (default: 1)")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads; 0 keeps torch's default (default: 0)")
    parser.add_argument("--batch-size", type=int, default=FULL_BATCH, help=f"real images per step (default: {FULL_BATCH}, the spec's)")
    parser.add_argument("--generator", choices=[*GENERATOR_KINDS, "both"], default="both", help="which generator (default: both)")
    parser.add_argument("--breakdown", action="store_true", help="also time the variants between reference and fast")
    parser.add_argument("--json", action="store_true", help="print one JSON object per generator instead of a table")


def run(args: argparse.Namespace) -> int:
    for name in ("steps", "threads"):
        if getattr(args, name) < 0:
            raise UserError(f"--{name} must be 0 or more, not {getattr(args, name)}.")
    for name in ("rounds", "batch_size"):
        if getattr(args, name) < 1:
            raise UserError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}.")
    if args.warmup < 0:
        raise UserError(f"--warmup must be 0 or more, not {args.warmup}.")
    device = speed.pick_device(args.device)
    speed.setup(device, threads=args.threads)
    steps = args.steps or (100 if device.type == "cuda" else 6)
    results = []
    for generator in (GENERATOR_KINDS if args.generator == "both" else (args.generator,)):
        result = time_variants(generator, device, steps=steps, rounds=args.rounds, warmup=args.warmup,
                         batch_size=args.batch_size, breakdown=args.breakdown)
        results.append(result)
        if args.json:
            print(json.dumps(result), flush=True)
    if not args.json:
        print(f"device {device}, fast path in {results[0]['fast_precision']}, batch {args.batch_size}, "
              f"{steps} steps x {args.rounds} rounds (median), "
              f"load average {results[0]['load_average_before']} -> {results[-1]['load_average_after']}")
        print(table(results))
        print(f"full run: {FULL_IMAGES} images x {FULL_EPOCHS} epochs on the fast path; "
              f"G steps/30 min: fast path, batch {args.batch_size}")
    return 0

