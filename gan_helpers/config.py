"""Every training knob in one dataclass (STYLE.md: configuration flows one way).

The notebooks' ``parameters`` cells use the same names as plain literals and
the command line takes them as flags, so a value means the same thing
wherever it is set. Unknown or invalid keys are errors, never ignored.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields

from gan_helpers.errors import UserError
from gan_helpers.models import GENERATORS


@dataclass
class TrainConfig:
    data: str = "data/galaxies64"  # folder of images: the prepared default set, or any folder (prepared on the fly)
    generator: str = "transposed"  # 'transposed' (point 2) or 'upsampling' (point 11)
    epochs: int = 100  # train until this many epochs in total (a resumed run continues up to it)
    batch_size: int = 8  # real images per discriminator step; as many fakes join them (point 7)
    save_every: int = 10  # checkpoint and sample grid every this many epochs (and at the last epoch)
    lr_d: float = 1e-5  # discriminator Adam learning rate; very low on purpose (point 7)
    lr_g: float = 1e-4  # generator Adam learning rate
    beta1: float = 0.5  # Adam's first-moment decay for both networks (0.5 is the DCGAN paper's value)
    label_noise: float = 0.05  # labels are jittered by uniform +-label_noise, folded back into [0, 1]
    dropout: float = 0.2  # dropout before the discriminator's linear layer (point 1)
    augment: bool = True  # random flip, zoom and rotation of every real image at every use (point 5)
    flip: bool = True  # horizontal mirror with probability 0.5
    zoom: float = 0.1  # up to this much extra zoom (0.1 = 10 %)
    rotate_degrees: float = 3.0  # rotation by at most this angle
    max_images: int | None = None  # use only the first N images of the data set (tiny runs, tests)
    fixed_noise: int = 36  # latent vectors drawn once and sampled at every save (point 9)
    seed: int = 0  # seeds every random number the run draws
    device: str = "auto"  # 'auto' (CUDA when available), 'cpu' or 'cuda'
    runs_dir: str = "runs"  # where run folders are created
    name: str = ""  # optional tag in the run folder's name; default: data set and generator
    progress: bool = True  # show progress bars

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise a UserError naming the first invalid value."""
        if self.generator not in GENERATORS:
            raise UserError(f"generator must be one of {', '.join(sorted(GENERATORS))}, not {self.generator!r}.")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UserError(f"device must be auto, cpu or cuda, not {self.device!r}.")
        for name in ("epochs", "batch_size", "save_every", "fixed_noise"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise UserError(f"{name} must be a whole number of at least 1, not {value!r}.")
        for name in ("lr_d", "lr_g"):
            if not getattr(self, name) > 0:
                raise UserError(f"{name} must be a positive learning rate, not {getattr(self, name)!r}.")
        if not 0 <= self.beta1 < 1:
            raise UserError(f"beta1 must lie in [0, 1), not {self.beta1!r}.")
        if not 0 <= self.label_noise < 0.5:
            raise UserError(f"label_noise must lie in [0, 0.5), not {self.label_noise!r}.")
        if not 0 <= self.dropout < 1:
            raise UserError(f"dropout must lie in [0, 1), not {self.dropout!r}.")
        if self.zoom < 0 or self.rotate_degrees < 0:
            raise UserError("zoom and rotate_degrees must not be negative.")
        if self.max_images is not None and self.max_images < 1:
            raise UserError(f"max_images must be at least 1 or None, not {self.max_images!r}.")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Build a config from a mapping; unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"unknown training setting(s) {', '.join(unknown)}; known settings are {', '.join(sorted(known))}.")
        return cls(**values)

    def replace(self, **changes) -> "TrainConfig":
        """A copy with some values changed (validated like a new config)."""
        return self.from_dict({**self.to_dict(), **changes})


# Settings a resumed run may change (point 10: lower a learning rate when one
# network wins too fast); everything else must match the checkpoint.
RESUMABLE_CHANGES = ("epochs", "save_every", "lr_d", "lr_g", "device", "progress")


def field_help() -> dict[str, str]:
    """Each field's one-line comment, for ``--help`` (read from this file's source)."""
    import inspect

    helps = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        stripped = line.strip()
        if ":" in stripped and "#" in stripped and not stripped.startswith(("#", "def", "raise", "if", "for")):
            name = stripped.split(":", 1)[0]
            helps[name] = stripped.split("#", 1)[1].strip()
    return helps

