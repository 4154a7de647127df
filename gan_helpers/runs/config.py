"""Every training knob in one dataclass (STYLE.md: configuration flows one way).

A profile's ``train:`` block, a notebook's parameters and the command line's
flags all use these names, so a value means the same thing wherever it is
set. Each field carries its help text, its choices where it has a fixed set,
and its *role*, the one definition of which settings make two runs the same:

- ``identity``: shapes what is trained; runs that differ here are different runs;
- ``tunable``: shapes training but may change when a run is resumed (point 10:
  lower a learning rate when one network wins too fast); still part of identity;
- ``schedule``: how long, how often and where; never part of identity.

A setting added after runs were saved without it carries ``absent``: the
value that describes how those runs trained (a rule that did not exist yet
was off), so their saved settings stay complete.

Paths (``path`` in the metadata) given as defaults or in profiles are
relative to the project; on the command line, to the current folder.
Unknown, mistyped or invalid values are errors, never ignored.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from gan_helpers.errors import UserError
from gan_helpers.models import GENERATORS

GENERATOR_KINDS = tuple(GENERATORS)  # the generator kinds, as models names them
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "bf16", "fp32")


_REQUIRED = object()  # no `absent` value: a saved config must hold the setting


def _knob(default: Any, help: str, role: str = "identity", choices: tuple | None = None, path: bool = False,
          absent: Any = _REQUIRED):
    return field(default=default, metadata={"help": help, "role": role, "choices": choices, "path": path, "absent": absent})


@dataclass
class TrainConfig:
    data: str = _knob("data/galaxies64", "folder of images: the prepared default set, or any folder (prepared on the fly)", path=True)
    generator: str = _knob("transposed", "transposed (point 2) or upsampling (point 11)", choices=GENERATOR_KINDS)
    epochs: int = _knob(100, "train until this many epochs in total (a resumed run continues up to it)", "schedule")
    batch_size: int = _knob(8, "real images per discriminator step; as many fakes join them (point 7)")
    sample_every: int = _knob(10, "sample grid and quality numbers every this many epochs (and at every checkpoint)", "schedule")
    sample_all_first: int = _knob(0, "also a sample grid and quality numbers at every epoch up to this one (point 10: watch "
                                  "every epoch at first); 0: only every sample_every", "schedule", absent=0)
    save_every: int = _knob(50, "full checkpoint every this many epochs (and at the last); never overwritten", "schedule")
    lr_d: float = _knob(1e-5, "discriminator Adam learning rate; very low on purpose (point 7)", "tunable")
    lr_g: float = _knob(2e-4, "generator Adam learning rate (the DCGAN paper's; see report/departures.yaml)", "tunable")
    lower_lr_d_below: float = _knob(0.0, "point 10 as a rule: once an epoch's mean D(G(z)) falls below this, the discriminator "
                                    "is winning and lr_d is halved for the rest of the run; 0: never", "tunable", absent=0.0)
    beta1: float = _knob(0.5, "Adam first-moment decay for both networks (0.5 is the DCGAN paper value)")
    label_noise: float = _knob(0.05, "labels are jittered by uniform +-label_noise, folded back into [0, 1]")
    dropout: float = _knob(0.2, "dropout before the discriminator's linear layer (point 1)")
    augment: bool = _knob(True, "random flip, zoom and rotation of every real image at every use (point 5)")
    flip: bool = _knob(True, "horizontal mirror with probability 0.5")
    zoom: float = _knob(0.1, "up to this much extra zoom (0.1 means 10 percent)")
    rotate_degrees: float = _knob(3.0, "rotation by at most this angle")
    max_images: int | None = _knob(None, "use only the first N images of the data set (tiny runs, tests)")
    ema_half_life: float = _knob(10.0, "G_ema, an average of G's weights sampled and scored beside G (training unchanged): "
                                 "the half-life of its weights in epochs; 0: no average", "schedule", absent=0.0)
    fixed_noise: int = _knob(36, "latent vectors drawn once and sampled at every sample epoch (point 9)")
    quality_samples: int = _knob(256, "samples behind the quality numbers at every sample epoch (gan_helpers.runs.quality_records); 0: none", "schedule")
    seed: int = _knob(0, "seeds every random number the run draws")
    precision: str = _knob("auto", "bf16: the fast path (bf16 autocast, channels_last); fp32: the plain reference path; "
                           "auto: bf16 where the device computes bfloat16 natively, else fp32", choices=PRECISIONS)
    device: str = _knob("auto", "auto (CUDA when available), cpu or cuda", "schedule", choices=DEVICES)
    threads: int = _knob(0, "CPU threads for training; 0 keeps torch's default (1 can beat 2 on a busy machine)", "schedule")
    runs_dir: str = _knob("runs", "where run folders are created", "schedule", path=True)
    name: str = _knob("", "optional tag in the run folder's name; default: data set and generator", "schedule")
    progress: bool = _knob(True, "show progress bars", "schedule")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise a UserError naming the first invalid value."""
        for f in fields(self):
            problem = setting_problem(f.name, getattr(self, f.name))
            if problem:
                raise UserError(f"{f.name} must be {problem}, not {getattr(self, f.name)!r}.")
        for name, fits, must in _LIMITS:
            if not fits(getattr(self, name)):
                raise UserError(f"{name} must be {must}, not {getattr(self, name)!r}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, *, complete: bool = False) -> "TrainConfig":
        """Build a config from a mapping; unknown keys are an error.

        ``complete=True`` also requires every setting (a saved run's config:
        a missing key must not silently become today's default), except those
        with an ``absent`` value, which a run saved before they existed lacks.
        """
        if not isinstance(values, dict):
            raise UserError(f"training settings must be a mapping of names to values, not {type(values).__name__}.")
        known = [f.name for f in fields(cls)]
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise UserError(f"unknown training setting(s) {', '.join(unknown)}; known settings are {', '.join(known)}.")
        if complete:
            values = with_absent(values)
        missing = [name for name in known if name not in values]
        if complete and missing:
            raise UserError(f"the saved settings lack {', '.join(missing)}; they were not written by this lab's training.")
        return cls(**values)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some values changed (validated like a new config)."""
        return self.from_dict({**self.to_dict(), **changes})

    def continued(self, changes: dict, epoch: int) -> "TrainConfig":
        """These saved settings with `changes`, to train on from a checkpoint of `epoch`: a UserError names a change
        that would make another run (a setting not :func:`resumable`) or ``epochs`` not past `epoch`."""
        fixed = sorted(k for k, v in changes.items() if v != getattr(self, k, v) and not resumable(k))
        if fixed:
            raise UserError(f"{', '.join(fixed)} cannot change when training continues; start a new run instead.")
        config = self.replace(**changes)
        if config.epochs <= epoch:
            raise UserError(f"the checkpoint is already at epoch {epoch}; pass --epochs larger than {epoch} to continue.")
        return config

    def samples_at(self, epoch: int) -> bool:
        """Whether training saves a sample grid, and scores it, after `epoch`."""
        return (epoch % self.sample_every == 0 or epoch <= self.sample_all_first or epoch % self.save_every == 0
                or epoch == self.epochs)

    def run_tag(self) -> str:
        """The tag in its run folder's name: `name`, else the data set's folder and the generator."""
        return self.name or f"{Path(self.data).name}-{self.generator}"

    def identity(self) -> dict:
        """The settings that make two runs the same run (roles identity and tunable)."""
        return {k: v for k, v in self.to_dict().items() if role(k) != "schedule"}


# The range of each number setting, as (name, test, what the value must be).
_LIMITS = (
    *((name, lambda v: v >= 1, "a whole number of at least 1") for name in ("epochs", "batch_size", "save_every",
                                                                              "sample_every", "fixed_noise")),
    *((name, lambda v: v > 0, "a positive learning rate") for name in ("lr_d", "lr_g")),
    ("beta1", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("lower_lr_d_below", lambda v: 0 <= v < 0.5, "in [0, 0.5) (0: never lower lr_d)"),
    ("label_noise", lambda v: 0 <= v < 0.5, "in [0, 0.5)"),
    ("dropout", lambda v: 0 <= v < 1, "in [0, 1)"),
    ("zoom", lambda v: v >= 0, "0 or more"),
    ("rotate_degrees", lambda v: 0 <= v < 45, "at least 0 and below 45 (the spec asks for a very small angle)"),
    ("max_images", lambda v: v is None or v >= 1, "at least 1 or None"),
    ("quality_samples", lambda v: v == 0 or v >= 2, "0 (no quality numbers) or at least 2"),
    ("sample_all_first", lambda v: v >= 0, "0 (off) or a positive epoch"),
    ("ema_half_life", lambda v: v >= 0, "0 (no average) or a positive number of epochs"),
    ("threads", lambda v: v >= 0, "0 (torch's default) or more"),
)
_TYPES = {"str": str, "int": int, "float": (int, float), "bool": bool}
_TYPE_WORDS = {str: "text", int: "a whole number", (int, float): "a number", bool: "true or false"}


def setting_problem(name: str, value: Any) -> str:
    """What setting `name` must be when `value` is of the wrong type or not one of its choices (e.g. "a whole
    number"), else "" (also for a name that is no setting); ranges are :meth:`TrainConfig.validate`'s."""
    f = next((f for f in fields(TrainConfig) if f.name == name), None)
    if f is None:
        return ""
    choices = f.metadata["choices"]
    if choices and value not in choices:
        return f"one of {', '.join(choices)}"
    if value is None and str(f.type).endswith(" | None"):
        return ""
    expected = _TYPES[str(f.type).removesuffix(" | None")]
    if isinstance(value, bool) != (expected is bool) or not isinstance(value, expected):
        return _TYPE_WORDS[expected]
    if isinstance(value, float) and not math.isfinite(value):
        return "a finite number"
    return ""


def with_absent(saved: dict) -> dict:
    """A saved run's settings with those added since filled in by their ``absent`` value (how that run trained)."""
    added = {f.name: f.metadata["absent"] for f in fields(TrainConfig) if f.metadata["absent"] is not _REQUIRED}
    return {**added, **saved}


def role(name: str) -> str:
    """The role of setting `name`: identity, tunable or schedule (see the module docstring)."""
    return {f.name: f.metadata["role"] for f in fields(TrainConfig)}[name]


def resumable(name: str) -> bool:
    """Whether a resumed run may change setting `name`."""
    return role(name) in ("tunable", "schedule")
