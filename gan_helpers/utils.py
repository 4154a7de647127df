"""Seeding and device choice: explicit calls, never import-time side effects."""

from __future__ import annotations

import contextlib
import random
import sys
from collections.abc import Iterator

import torch

from gan_helpers.errors import UserError
import math


def seed_everything(seed: int) -> None:
    """Seed every random number generator the lab draws from (torch on all devices, Python)."""
    random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str = "auto") -> torch.device:
    """'auto' gives CUDA when available and the CPU otherwise; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is available; use --device auto or cpu.")
    if name not in ("cpu", "cuda"):
        raise UserError(f"device must be auto, cpu or cuda, not {name!r}.")
    return torch.device(name)


def rng_state() -> dict:
    """Every RNG state a training run depends on, as plain tensors and tuples."""
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what :func:`rng_state` captured (CUDA states only where a GPU is present)."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def rng_state_problem(state: object) -> str | None:
    """Why :func:`set_rng_state` could not restore `state` (a clause), or None when it can.

    Checked on throwaway generators, so the running process's RNGs are untouched.
    """
    if not isinstance(state, dict) or not {"torch", "python"} <= state.keys():
        return "it lacks the torch or Python generator state"
    try:
        torch.Generator().set_state(state["torch"])
        random.Random().setstate(state["python"])
    except (TypeError, ValueError, RuntimeError) as error:
        return str(error)
    cuda = state.get("cuda", [])
    if not (isinstance(cuda, (list, tuple)) and all(isinstance(s, torch.Tensor) and s.dtype == torch.uint8 for s in cuda)):
        return "its CUDA generator states are not byte tensors"
    return None


def finite_number(value) -> float | None:
    """`value` as a float when it is a finite number (a record read from a file may hold anything), else None.

    True and false are not numbers here, and an integer too large for a float is not finite.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


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


@contextlib.contextmanager
def progress_messages() -> Iterator[None]:
    """What the calls inside print goes to stderr: which folder a run is in, that a run is reused or resumed,
    how the data were cleaned on first use. A notebook shows it to whoever runs the cell; the report, which
    leaves stderr out, says the results in words instead."""
    with contextlib.redirect_stdout(sys.stderr):
        yield
