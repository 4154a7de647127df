"""The device (:func:`pick_device`), backend settings and the fast training path: explicit calls, never import-time side effects.

Two training paths share the step functions of :mod:`gan_helpers.training`
and are chosen by one ``precision`` setting:

- ``"fp32"``, the reference: plain float32, eager, models and optimizers
  exactly as built;
- ``"bf16"``, the fast path: weights and batches in the channels_last
  layout, bfloat16 autocast around each step's forward pass and loss
  (losses themselves in float32), and on a CUDA GPU the whole training step
  replayed as a CUDA graph with TF32 wherever float32 remains.

The default setting, ``"auto"``, takes the fast path where the device
computes bfloat16 natively (a CUDA GPU that supports it, a CPU with AVX-512
bf16 or AMX) and the fp32 path elsewhere: on a CPU without them, oneDNN
emulates bfloat16 and a training step takes 15 to 35 times as long as in
float32 (measured on a 2-core AMD EPYC with AVX2 only, batch 8).

The networks, the batch size and the update rules are the same on both paths.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import os
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

from gan_helpers.errors import UserError

PRECISIONS = ("bf16", "fp32")

# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4
_KEEP_FREED_BYTES = 1 << 30


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    """The running C library when it is glibc (the only one with these mallopt settings), else None."""
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded into this process, the C library's among them
        libc.gnu_get_libc_version  # only glibc has it
        return libc
    except (OSError, AttributeError, TypeError):
        return None


def keep_freed_memory(enabled: bool = True) -> bool:
    """Let glibc keep freed large blocks for reuse instead of returning them to the system.

    By default every large tensor gets fresh pages from the kernel (mmap) and
    gives them back when freed, so each training step pays hundreds of
    thousands of page faults; with mmap off and a high trim threshold the
    blocks are reused. ``enabled=False`` restores glibc's usual behaviour at
    its steady state (the adaptive mmap threshold tops out at 32 MiB).
    Returns whether the setting took effect (False where the C library is not glibc).
    """
    libc = _glibc()
    if libc is None:
        return False
    if enabled:
        settings = ((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES))
    else:
        settings = ((_M_MMAP_MAX, 65536), (_M_MMAP_THRESHOLD, 32 << 20), (_M_TRIM_THRESHOLD, 64 << 20))
    return all(libc.mallopt(option, value) == 1 for option, value in settings)


def set_tf32(enabled: bool) -> None:
    """Allow TensorFloat-32 in CUDA matrix products and convolutions that stay in float32 (or forbid it)."""
    mode = "tf32" if enabled else "ieee"
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        torch.backends.cuda.matmul.fp32_precision = mode
        torch.backends.cudnn.conv.fp32_precision = mode
    else:  # older torch: the legacy switches
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


# CPU flags of native bfloat16 arithmetic, and ONEDNN_MAX_CPU_ISA values that keep oneDNN from using them
NATIVE_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}
NO_BF16_ISAS = {"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX512_CORE", "AVX512_CORE_VNNI"}


@functools.cache
def cpu_has_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX-512 bf16 or AMX) and oneDNN may use it.

    oneDNN also runs bfloat16 on plain AVX-512 (``_is_mkldnn_bf16_supported``
    says True there), but by conversion: a D + G step of the transposed
    generator took 3.6 s in bf16 against 1.3 s in fp32 with oneDNN held to
    AVX-512 without bf16, so the CPU's own flags decide (Linux's /proc/cpuinfo;
    oneDNN's answer where that cannot be read).
    """
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper() in NO_BF16_ISAS:
        return False
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), None)
    except OSError:
        flags = None
    if flags is not None:
        return bool(NATIVE_BF16_FLAGS & set(flags))
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return True


def native_bf16(device: torch.device | str) -> bool:
    """Whether `device` computes bfloat16 natively (CUDA: the GPU supports it; CPU: :func:`cpu_has_bf16`)."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def pick_device(name: str = "auto") -> torch.device:
    """'auto' gives CUDA when available and the CPU otherwise; 'cuda' without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("device 'cuda' was asked for but no CUDA GPU is available; use --device auto or cpu.")
    if name not in ("cpu", "cuda"):
        raise UserError(f"device must be auto, cpu or cuda, not {name!r}.")
    return torch.device(name)



def choose_precision(device: torch.device | str, precision: str = "auto") -> str:
    """The training path that the setting `precision` means on `device`: "bf16" or "fp32"."""
    if precision == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be auto or one of {PRECISIONS}, not {precision!r}")
    return precision


def setup(device: torch.device | str, threads: int = 0, precision: str = "auto") -> dict:
    """Apply the process-wide settings training runs under; call once before building the models.

    ``threads`` > 0 sets torch's CPU thread count (on a busy machine 1 can
    beat 2). On the CPU, freed memory is kept for reuse
    (:func:`keep_freed_memory`). On CUDA, TF32 is allowed on the fast path and
    forbidden on the fp32 reference, and cuDNN picks deterministic algorithms
    so that a resumed run repeats an uninterrupted one bit for bit.
    Returns what was applied; its ``"precision"`` is the path to train on,
    "auto" resolved by :func:`choose_precision`.
    """
    device = torch.device(device)
    asked, precision = precision, choose_precision(device, precision)
    if threads > 0:
        torch.set_num_threads(threads)
    applied = {"device": str(device), "precision": precision, "threads": torch.get_num_threads(),
               "keep_freed_memory": keep_freed_memory() if device.type == "cpu" else False}
    if asked == "bf16" and not native_bf16(device):
        warnings.warn(f"this {device.type.upper()} computes bfloat16 only by emulation, so precision fp32 (or auto) "
                      "is much faster here", stacklevel=2)
    if device.type == "cuda":
        set_tf32(precision == "bf16")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        applied["tf32"] = precision == "bf16"
    return applied


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on the fast path, nothing at all on the fp32 reference.

    Enter it inside each step, around forward pass and loss, never around
    the training loop. The cast cache is off: it would keep bf16 copies of
    the weights from before an optimizer step, and each weight is used once
    per step anyway.
    """
    if choose_precision(device, precision) == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=False)


def _layout(tensor: torch.Tensor) -> torch.memory_format:
    return torch.channels_last if tensor.dim() == 4 else torch.contiguous_format


def prepare(models: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer],
            images: torch.Tensor, precision: str, graphs: bool = False) -> torch.Tensor:
    """Put models, optimizer state and data in the form the chosen path needs; returns the images to train on.

    The fast path stores every 4-d weight and the images channels_last (the
    layout oneDNN and cuDNN compute in); optimizer state follows its weight's
    layout. Layout changes only where values sit in memory: state dict shapes
    and values stay the same. A loaded optimizer state dict brings the flags
    of the path that saved it, so the Adam flags are set here for this path:
    capturable (step counts on the device) with ``graphs``, torch's defaults
    otherwise. Checkpoints thus load on either path and device; call this
    after loading them. The fp32 path keeps the weights' layout.
    """
    fast = precision != "fp32"
    if fast:
        for model in models:
            model.to(memory_format=torch.channels_last)  # in place: the optimizers keep their parameters
    for optimizer in optimizers:
        for group in optimizer.param_groups:
            group["capturable"], group["foreach"] = graphs, (True if graphs else None)
            for param in group["params"]:
                state = optimizer.state.get(param, {})
                for key, value in state.items():
                    if key == "step" and torch.is_tensor(value):
                        state[key] = value.to(device=param.device if graphs else "cpu", dtype=torch.float32)
                    elif fast and torch.is_tensor(value) and value.shape == param.shape:
                        state[key] = value.contiguous(memory_format=_layout(param))
    return images.contiguous(memory_format=_layout(images)) if fast else images


def copy_state(models: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer]) -> dict:
    """Copies of everything a training step changes: weights, buffers, optimizer state, RNG states."""
    return {
        "models": [{k: v.clone() for k, v in m.state_dict().items()} for m in models],
        "optimizers": [{p: {k: v.clone() if torch.is_tensor(v) else v for k, v in o.state[p].items()}
                        for g in o.param_groups for p in g["params"] if o.state.get(p)} for o in optimizers],
        "cpu_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None,
    }


@torch.no_grad()
def restore(saved: dict, models: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer]) -> None:
    """Return to a :func:`copy_state` in place, so tensors a CUDA graph has captured stay where they are.

    Optimizer state created since the snapshot is zeroed, which for Adam is
    exactly its fresh state (zero moments, step 0).
    """
    for model, state in zip(models, saved["models"]):
        for key, value in model.state_dict().items():
            value.copy_(state[key])
    for optimizer, state in zip(optimizers, saved["optimizers"]):
        for group in optimizer.param_groups:
            for param in group["params"]:
                for key, value in optimizer.state.get(param, {}).items():
                    if not torch.is_tensor(value):
                        continue
                    if param in state:
                        value.copy_(state[param][key])
                    else:
                        value.zero_()
    torch.set_rng_state(saved["cpu_rng"])
    if saved["cuda_rng"] is not None:
        torch.cuda.set_rng_state_all(saved["cuda_rng"])


class GraphedStep:
    """A training step replayed as one CUDA graph for full batches, run eagerly otherwise.

    ``step(real)`` must return a tensor and change only the given models,
    optimizers and RNG states. The first full batch is run a few times to
    warm up (cuDNN and cuBLAS set-up, optimizer state), everything is then
    put back exactly as it was and the step is captured; each later full
    batch is copied into the captured input and replayed. A batch of another
    size (the last, short one of an epoch) runs the same step eagerly. With
    ``capture=False`` every batch runs eagerly: the CPU path. If capturing
    fails, a warning says why and every batch runs eagerly from the same state.
    Learning rates are baked into the graph: build a new one after changing them.
    """

    def __init__(self, step: Callable[[torch.Tensor], torch.Tensor], batch_size: int,
                 models: Sequence[nn.Module], optimizers: Sequence[torch.optim.Optimizer],
                 capture: bool = True, warmup: int = 2) -> None:
        self.step, self.batch_size, self.capture, self.warmup = step, batch_size, capture, warmup
        self.models, self.optimizers = list(models), list(optimizers)
        self.graph: torch.cuda.CUDAGraph | None = None
        self.static_real: torch.Tensor | None = None
        self.static_out: torch.Tensor | None = None

    def __call__(self, real: torch.Tensor) -> torch.Tensor:
        if not self.capture or real.shape[0] != self.batch_size:
            with warnings.catch_warnings():  # capturable Adam warns when it runs outside a graph
                warnings.filterwarnings("ignore", message=".*capturable=True.*")
                return self.step(real)
        if self.graph is None:
            saved = copy_state(self.models, self.optimizers)
            try:
                self._capture(real, saved)
            except (RuntimeError, AssertionError) as error:  # AssertionError: a torch built without CUDA
                warnings.warn(f"CUDA graph capture failed, training continues without graphs: {error}", stacklevel=2)
                restore(saved, self.models, self.optimizers)
                self.capture, self.graph = False, None
                return self(real)
        self.static_real.copy_(real)
        self.graph.replay()
        return self.static_out.clone()

    def _capture(self, real: torch.Tensor, saved: dict) -> None:
        """Warm up on a side stream, go back to `saved`, then record the step once."""
        if not real.is_cuda:
            raise RuntimeError("CUDA graphs need the batches on a CUDA device")
        self.static_real = real.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side), warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*capturable=True.*")
            for _ in range(self.warmup):
                self.step(self.static_real)
        torch.cuda.current_stream().wait_stream(side)
        restore(saved, self.models, self.optimizers)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.static_out = self.step(self.static_real)
        self.graph = graph
        restore(saved, self.models, self.optimizers)  # capturing runs nothing, but be sure of the RNG offsets
