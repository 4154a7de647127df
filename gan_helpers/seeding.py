"""Seeds and random-number states: explicit calls, never import-time side effects.

:func:`seed_everything` seeds a run or a demonstration; :func:`rng_state` and :func:`set_rng_state` carry every
state a run draws from through a checkpoint, so a resumed run draws the same numbers as one that never stopped.
"""

from __future__ import annotations

import random

import torch


def seed_everything(seed: int) -> None:
    """Seed every random number generator the lab draws from (torch on all devices, Python)."""
    random.seed(seed)
    torch.manual_seed(seed)


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
