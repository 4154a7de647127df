"""Point 10's warning: is one network winning, or have the samples collapsed? A pure function of a run's records.

Point 10 says: watch every epoch at first; if one network starts to win too
fast, lower its learning rate or make it smaller; if results look alarming,
look for bugs. :func:`point10_warnings` reads what a run has written
(``metrics.jsonl`` records, ``quality.jsonl`` records) and returns the
warnings that hold at an epoch, each with the epoch it holds since, so the
training output (:mod:`gan_helpers.runs.experiment`), the notebooks' live panel
(:mod:`gan_helpers.runs.live`) and ``python -m gan_helpers watch`` say the same.

The defaults come from the two CPU reference runs (all 506 images, lr_d
1e-5, lr_g 5e-5, 190 epochs each, measured here):

- the transposed run's discriminator won in epochs 5-14: D(G(z)) 0.079 down
  to 0.040 and D(x) up to 0.957 (SWD 501-577 against 331 untrained); after
  epoch 14 its D(G(z)) fell below 0.1 in single epochs only (65, 93, 108)
  and D(x) stayed at or below 0.937, so 0.1, 0.95 and 3 epochs in a row fire
  at epoch 7 of the failure and never afterwards;
- the upsampling run's D(G(z)) stayed between 0.32 and 0.56 and its D(x)
  between 0.44 and 0.69: silent throughout;
- no run measured here had a winning generator (the highest epoch mean of
  D(G(z)) was 0.56; with a discriminator of half width 0.53-0.75, README),
  so 0.9 mirrors 0.1;
- the transposed run's quality samples had 0.007-0.123 of the training
  images' diversity in epochs 1-13 (one or two distinct nearest training
  images), and never less than 0.42 after epoch 14; the upsampling run's
  lowest was 0.30 (epoch 19): a ratio below 0.2 at a sample epoch is a collapse.

Epoch 0 (the untrained generator, which draws nearly one picture for every
vector: ratio 0.003) is never counted.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Sequence
from operator import itemgetter

from gan_helpers.formatting import finite_number


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """When point 10's warning fires; defaults measured on the reference runs (see the module docstring)."""

    d_g_z_low: float = 0.1  # epoch mean D(G(z)) below this: the discriminator rejects nearly every fake
    d_x_high: float = 0.95  # epoch mean D(x) above this: the discriminator is sure of every real
    d_g_z_high: float = 0.9  # epoch mean D(G(z)) above this: the generator fools the discriminator nearly always
    in_a_row: int = 3  # epochs in a row a network must be winning before the warning fires
    diversity_low: float = 0.2  # quality samples' diversity over the training images' below this: collapsed

    def __post_init__(self) -> None:
        if self.in_a_row < 1:
            raise ValueError(f"in_a_row must be at least 1, not {self.in_a_row!r}")


@dataclasses.dataclass(frozen=True)
class Alert:
    """One point-10 warning that holds at `epoch`: `kind` ("discriminator", "generator" or "collapse") since epoch `since`."""

    kind: str
    since: int
    epoch: int
    numbers: dict

    def line(self) -> str:
        """The one printed line: which, since which epoch, the numbers, and what point 10 suggests."""
        n = self.numbers
        if self.kind != "collapse":
            condition, net = ((f"D(G(z)) < {n['d_g_z_low']:g} or D(x) > {n['d_x_high']:g}", "d") if self.kind == "discriminator"
                              else (f"D(G(z)) > {n['d_g_z_high']:g}", "g"))
            return (f"point 10: the {self.kind} is winning since epoch {self.since} (epoch {self.epoch}: "
                    f"D(x) {n['D_x']:.3f}, D(G(z)) {n['D_G_z']:.3f}; {self.epoch - self.since + 1} epochs in a row with "
                    f"{condition}): lower lr_{net} or make {net.upper()} smaller.")
        return (f"point 10: the samples have collapsed since epoch {self.since} (epoch {n['sample_epoch']}: diversity "
                f"{n['diversity_ratio']:.3f} of the training images', below {n['diversity_low']:g}; "
                f"{n['distinct_nearest']} distinct nearest training images): results this alarming call for a look for bugs, "
                f"and a network that wins needs a lower learning rate.")


def _streak(records: Sequence[dict], end: int, holds, *, consecutive: bool) -> int | None:
    """The first epoch of the run of records ending at index `end` for which `holds` is true, or None.

    With `consecutive` the run also ends at a missing epoch: a streak of epochs never spans a gap.
    """
    since = None
    for index in range(end, -1, -1):
        record = records[index]
        if not holds(record) or (consecutive and since is not None and record["epoch"] != since - 1):
            break
        since = record["epoch"]
    return since


def _by_epoch(records: Sequence[dict]) -> list[dict]:
    """Records of epochs 1 and later, one per epoch (the last written wins), in epoch order."""
    kept = {r["epoch"]: r for r in records if isinstance(r.get("epoch"), int) and r["epoch"] >= 1}
    return [kept[e] for e in sorted(kept)]


def _ratio(record: dict) -> float | None:
    return finite_number(record.get("diversity_ratio"))

def _at(metrics: list[dict], samples: list[dict], epoch: int, t: Thresholds) -> list[Alert]:
    """The alerts at `epoch`, from records already through :func:`_by_epoch` (samples: with a diversity ratio)."""
    found = []
    end = bisect.bisect_right(metrics, epoch, key=itemgetter("epoch")) - 1  # the last record up to `epoch`; -1: none
    if end >= 0 and metrics[end]["epoch"] == epoch:
        last = metrics[end]
        numbers = {"D_x": last["D_x"], "D_G_z": last["D_G_z"], "d_g_z_low": t.d_g_z_low,
                   "d_x_high": t.d_x_high, "d_g_z_high": t.d_g_z_high}
        for kind, holds in (("discriminator", lambda r: r["D_G_z"] < t.d_g_z_low or r["D_x"] > t.d_x_high),
                            ("generator", lambda r: r["D_G_z"] > t.d_g_z_high)):
            since = _streak(metrics, end, holds, consecutive=True)
            if since is not None and epoch - since + 1 >= t.in_a_row:
                found.append(Alert(kind, since, epoch, numbers))
    end = bisect.bisect_right(samples, epoch, key=itemgetter("epoch")) - 1
    since = _streak(samples, end, lambda r: _ratio(r) < t.diversity_low, consecutive=False)
    if since is not None:
        newest = samples[end]
        found.append(Alert("collapse", since, epoch, {
            "sample_epoch": newest["epoch"], "diversity_ratio": _ratio(newest),
            "distinct_nearest": newest.get("distinct_nearest", "?"), "diversity_low": t.diversity_low}))
    return found


def point10_warnings(metrics: Sequence[dict], quality: Sequence[dict] = (), *, epoch: int | None = None,
                     thresholds: Thresholds = Thresholds()) -> list[Alert]:
    """The alerts that hold at `epoch` (default: the newest epoch of `metrics`), in a fixed order.

    A network wins when its condition held in each of the last ``thresholds.in_a_row`` epochs up to
    `epoch` (a missing epoch ends the streak); the samples have collapsed when the newest quality
    record up to `epoch` has a diversity ratio below ``thresholds.diversity_low``. Records of epoch 0
    (the untrained generator) and repeated epochs (the last one counts) are handled here.
    """
    metrics = _by_epoch(metrics)
    samples = [r for r in _by_epoch(quality) if _ratio(r) is not None]
    if epoch is None:
        epoch = metrics[-1]["epoch"] if metrics else 0
    return _at(metrics, samples, epoch, thresholds)


def warning_history(metrics: Sequence[dict], quality: Sequence[dict] = (), *,
                    thresholds: Thresholds = Thresholds()) -> list[Alert]:
    """Every spell of an alert in a run, each as it stood at its last epoch, in order of start."""
    metrics = _by_epoch(metrics)
    samples = [r for r in _by_epoch(quality) if _ratio(r) is not None]
    spells: dict[tuple[str, int], Alert] = {}
    for record in metrics:
        for alert in _at(metrics, samples, record["epoch"], thresholds):
            spells[(alert.kind, alert.since)] = alert
    return sorted(spells.values(), key=lambda alert: (alert.since, alert.kind))
