"""The fast path's mechanics: precision choice, the allocator, layout, snapshots, CUDA graphs.

The bf16 numerics against the fp32 reference are in test_bf16.py.
"""

from __future__ import annotations

import ctypes
import warnings

import pytest
import torch
from training_twins import assert_same_state, make, smooth_images, state

from gan_helpers import speed
from gan_helpers.augment import BatchAugment
from gan_helpers.training import fit, train_step

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

# test_bf16.py asks for bf16 by name. Tests of mechanics that work the same
# in either precision (snapshots, the capture fallback) train on the machine's own
# path ("auto": bf16 where the CPU computes it natively, fp32 elsewhere), because
# emulated bf16 costs tens of seconds per step of the spec's networks.


def test_setup_sets_threads_and_keeps_freed_memory():
    applied = speed.setup("cpu", threads=1)  # the fixture puts the thread count back
    assert torch.get_num_threads() == 1 and applied["threads"] == 1
    assert applied["keep_freed_memory"] is (speed._glibc() is not None)


@pytest.mark.parametrize("native, path", [(True, "bf16"), (False, "fp32")])
def test_auto_takes_bf16_only_where_the_cpu_computes_it_natively(monkeypatch, native, path):
    monkeypatch.setattr(speed, "cpu_has_bf16", lambda: native)
    assert speed.choose_precision("cpu") == path
    assert speed.setup("cpu", threads=1)["precision"] == path
    assert speed.choose_precision("cpu", "bf16") == "bf16" and speed.choose_precision("cpu", "fp32") == "fp32"
    with speed.autocast(torch.device("cpu"), "auto"):  # the step functions' default
        assert torch.nn.Linear(4, 4)(torch.rand(2, 4)).dtype == (torch.bfloat16 if native else torch.float32)


def test_bf16_asked_for_on_a_cpu_without_it_warns(monkeypatch):
    monkeypatch.setattr(speed, "cpu_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="emulation"):
        assert speed.setup("cpu", threads=1, precision="bf16")["precision"] == "bf16"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        speed.setup("cpu", threads=1, precision="auto")


def test_choose_precision_rejects_an_unknown_setting():
    with pytest.raises(ValueError, match="fp16"):
        speed.choose_precision("cpu", "fp16")


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


def has_mallinfo2() -> bool:
    try:
        return hasattr(ctypes.CDLL(None), "mallinfo2")
    except (OSError, TypeError):
        return False


@pytest.mark.skipif(not has_mallinfo2(), reason="needs glibc 2.33 or later")
def test_large_blocks_come_from_the_reusable_heap_not_fresh_mappings():
    libc = ctypes.CDLL(None)
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    libc.mallinfo2.restype = MallInfo2
    size = 2 << 30  # larger than any free heap block; never touched, so it costs no memory

    def mapped_bytes_while_holding_a_large_block():
        block = libc.malloc(size)
        try:
            return libc.mallinfo2().hblkhd
        finally:
            libc.free(block)

    try:
        speed.keep_freed_memory(False)
        assert mapped_bytes_while_holding_a_large_block() >= size  # glibc's usual way: a fresh mapping
        speed.keep_freed_memory(True)
        assert mapped_bytes_while_holding_a_large_block() < size  # from the heap, kept for reuse
    finally:
        speed.keep_freed_memory(True)


def test_prepare_changes_layout_only():
    D, G, opt_D, opt_G = make("upsampling")
    train_step(D, G, opt_D, opt_G, smooth_images(1), precision="fp32")  # optimizer state exists
    before = state(D, G, opt_D, opt_G)
    images = smooth_images(3)
    same = speed.prepare((D, G), (opt_D, opt_G), images, "fp32")
    assert same is images and not G.to_rgb[0].weight.is_contiguous(memory_format=torch.channels_last)
    prepared = speed.prepare((D, G), (opt_D, opt_G), images, "bf16")
    assert prepared.is_contiguous(memory_format=torch.channels_last) and torch.equal(prepared, images)
    for model in (D, G):
        for param in model.parameters():
            if param.dim() == 4:
                assert param.is_contiguous(memory_format=torch.channels_last)
                for value in (opt_D.state.get(param) or opt_G.state[param]).values():
                    if value.shape == param.shape:
                        assert value.stride() == param.stride()
    after = state(D, G, opt_D, opt_G)
    assert_same_state(before, after)  # same values, same shapes
    fresh_D, fresh_G, fresh_opt_D, fresh_opt_G = make("upsampling", seed=1)
    fresh_D.load_state_dict(after["D"])
    fresh_G.load_state_dict(after["G"])
    fresh_opt_G.load_state_dict(after["opt_G"])
    assert torch.equal(fresh_G.to_rgb[0].weight, G.to_rgb[0].weight)


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_optimizer_state_from_a_graphed_run_trains_on_the_cpu(precision):
    """A CUDA-graph run saves capturable Adam groups; prepare() sets the flags of the path that loads them."""
    D, G, opt_D, opt_G = make()
    train_step(D, G, opt_D, opt_G, smooth_images(1), precision="fp32")
    for group in opt_D.param_groups + opt_G.param_groups:
        group["capturable"], group["foreach"] = True, True  # as saved by a graphed run
    saved = state(D, G, opt_D, opt_G)
    D, G, opt_D, opt_G = make(seed=1)
    for obj, key in ((D, "D"), (G, "G"), (opt_D, "opt_D"), (opt_G, "opt_G")):
        obj.load_state_dict(saved[key])
    speed.prepare((D, G), (opt_D, opt_G), smooth_images(1), precision)
    assert not any(group["capturable"] for group in opt_D.param_groups + opt_G.param_groups)
    train_step(D, G, opt_D, opt_G, smooth_images(1), precision=precision)  # capturable Adam would refuse CPU tensors


@pytest.mark.parametrize("stepped", [False, True])
def test_warm_up_then_restore_leaves_no_trace(stepped):
    """What GraphedStep does before capturing: warm-up steps, then everything back exactly, Adam state included."""
    real = smooth_images(1)
    twins = [make(), make()]
    if stepped:  # optimizer state exists before the warm-up, as after a resume
        for twin in twins:
            torch.manual_seed(1)
            train_step(*twin, real)

    def two_steps(twin):
        return torch.stack([train_step(*twin, real, augment=BatchAugment()) for _ in range(2)])

    torch.manual_seed(2)
    expected = two_steps(twins[0])
    torch.manual_seed(2)
    models, optimizers = twins[1][:2], twins[1][2:]
    saved = speed.copy_state(models, optimizers)
    two_steps(twins[1])  # the warm-up
    speed.restore(saved, models, optimizers)
    outputs = [expected, two_steps(twins[1])]
    assert torch.equal(outputs[0], outputs[1])
    assert_same_state(state(*twins[0]), state(*twins[1]))


def test_graphed_step_runs_eagerly_without_capture():
    calls = []

    def step_fn(real):
        calls.append(real.shape[0])
        return real.sum()

    step = speed.GraphedStep(step_fn, 2, [], [], capture=False)
    assert step(torch.ones(2, 3)) == 6 and step(torch.ones(1, 3)) == 3
    assert calls == [2, 1] and step.graph is None


def test_failed_capture_falls_back_to_the_same_eager_training():
    """Asked for graphs where none can be captured (here: batches on the CPU), the step warns and trains as eagerly."""
    results = []
    for capture in (False, True):
        D, G, opt_D, opt_G = make()
        step = speed.GraphedStep(lambda real: train_step(D, G, opt_D, opt_G, real),
                                 1, (D, G), (opt_D, opt_G), capture=capture)
        torch.manual_seed(4)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            outputs = torch.stack([step(smooth_images(1)) for _ in range(2)])
        assert any("graph capture failed" in str(w.message) for w in caught) == capture
        results.append((outputs, state(D, G, opt_D, opt_G)))
    assert torch.equal(results[0][0], results[1][0])
    assert_same_state(results[0][1], results[1][1])


@CUDA
def test_cuda_graphs_match_eager_and_resume_exactly():
    images = smooth_images(5, "cuda")  # batches of 2, 2 and a short 1 (eager)
    speed.setup("cuda")

    def train(graphs, epochs, start=None):
        D, G, opt_D, opt_G = make("upsampling", "cuda")
        if start is not None:
            for obj, key in ((D, "D"), (G, "G"), (opt_D, "opt_D"), (opt_G, "opt_G")):
                obj.load_state_dict(start[key])
            torch.cuda.set_rng_state(start["rng"])
        else:
            torch.manual_seed(5)
        history = fit(D, G, opt_D, opt_G, images, epochs=epochs, start_epoch=0 if start is None else 1, batch_size=2,
                      augment=BatchAugment(), progress=False, precision="bf16", graphs=graphs)
        return history, {**state(D, G, opt_D, opt_G), "rng": torch.cuda.get_rng_state()}

    eager, _ = train(False, 2)
    graphed, graphed_state = train(True, 2)
    for a, b in zip(eager, graphed):
        for name in ("loss_D", "loss_G", "D_x", "D_G_z"):
            assert b[name] == pytest.approx(a[name], abs=0.01)
    first, checkpoint = train(True, 1)
    second, resumed_state = train(True, 2, start=checkpoint)
    assert [h["loss_D"] for h in graphed] == [first[0]["loss_D"], second[0]["loss_D"]]
    assert_same_state(graphed_state, resumed_state)


@CUDA
def test_a_step_never_waits_for_the_gpu():
    D, G, opt_D, opt_G = make("upsampling", "cuda")
    real = smooth_images(2, "cuda")
    train_step(D, G, opt_D, opt_G, real, augment=BatchAugment())  # lazy initialisation may synchronise once
    torch.cuda.set_sync_debug_mode("error")
    try:
        train_step(D, G, opt_D, opt_G, real, augment=BatchAugment())
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("flags, isa, native", [
    ("fpu avx512f avx512bw avx512_bf16 amx_bf16 amx_tile", "", True),
    ("fpu avx2 avx512f avx512bw avx512vl", "", False),  # AVX-512 without bf16: oneDNN would convert, 2.8x slower
    ("fpu avx512f avx512_bf16", "AVX512_CORE", False),  # oneDNN held below bf16
    ("fpu avx512f avx512_bf16", "avx512_core_bf16", True),
])
def test_cpu_bf16_is_native_bf16_from_the_cpu_flags(monkeypatch, flags, isa, native):
    import io

    monkeypatch.setattr(speed, "open", lambda *a, **k: io.StringIO(f"processor\t: 0\nflags\t\t: {flags}\n"), raising=False)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", isa)
    speed.cpu_has_bf16.cache_clear()
    try:
        assert speed.cpu_has_bf16() is native
    finally:
        speed.cpu_has_bf16.cache_clear()
