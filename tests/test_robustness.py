"""Run folders and checkpoints lose nothing and trust nothing.

Crash tests run the operation in a forked child that dies (``os._exit(9)``)
at its 1st, 2nd, … write step (a file write, which first writes half its
data, or an os.replace / link / rename / fsync / mkdir / …), until one
attempt completes; after every death the folder must read as its old or its
new self. Disk-full tests make writes fail with ENOSPC. The rest feed
damaged and foreign files to the readers, which must answer in one sentence.
"""

from __future__ import annotations

import builtins
import errno
import io
import multiprocessing
import os
import shutil
import signal
import warnings
from pathlib import Path

import pytest
import torch

from gan_helpers.runs import run_folders, checkpoints
from gan_helpers.storage import atomic
from gan_helpers.runs.config import TrainConfig
from gan_helpers.errors import UserError
from gan_helpers.models import Discriminator, build_generator
from gan_helpers.seeding import rng_state

# ---- a run folder to damage ----------------------------------------------------------------


@pytest.fixture(scope="module")
def state() -> dict:
    """A valid full training state (upsampling generator: the smaller one), epoch 1."""
    torch.manual_seed(0)
    config = TrainConfig(data="data/tiny", generator="upsampling", epochs=3, batch_size=2, fixed_noise=4, save_every=1).to_dict()
    G, D = build_generator("upsampling"), Discriminator()
    opt_G, opt_D = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
    for p in D.parameters():  # one step, so opt_D holds Adam moments to check
        p.grad = torch.zeros_like(p)
    opt_D.step()
    return {"epoch": 1, "config": config, "G": G.state_dict(), "D": D.state_dict(),
            "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(), "rng": rng_state()}


@pytest.fixture(scope="module")
def template(state, tmp_path_factory) -> Path:
    """runs/00000-tiny-upsampling: checkpoints 1 and 2, samples 0-2, metrics of epochs 1-3."""
    runs_dir = tmp_path_factory.mktemp("template") / "runs"
    run_dir = run_folders.create_run_dir(runs_dir, "tiny-upsampling", config=state["config"], fixed_noise=torch.randn(4, 128))
    (run_dir / "reals.png").write_bytes(b"reals")
    for epoch in range(3):
        (run_dir / "samples" / run_folders.epoch_name(epoch, "png")).write_bytes(b"sample %d" % epoch)
    for epoch in (1, 2):
        checkpoints.save_checkpoint(run_dir, epoch, {**state, "epoch": epoch})
    for epoch in (1, 2, 3):  # epoch 3 ran, but the run stopped before its checkpoint
        run_folders.append_metrics(run_dir, {"epoch": epoch, "loss_D": 0.5})
    return run_dir


def clone(run_dir: Path, runs_dir: Path) -> Path:
    """A copy of a run folder; checkpoints hard-linked (never rewritten in place), the rest copied."""
    def copy(src, dst):
        return os.link(src, dst) if src.endswith(".pt") and "/checkpoints/" in src else shutil.copy2(src, dst)

    return Path(shutil.copytree(run_dir, runs_dir / run_dir.name, copy_function=copy))


@pytest.fixture
def run_dir(template, tmp_path) -> Path:
    return clone(template, tmp_path / "runs")


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file's bytes, by path inside `folder`."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def fingerprint(folder: Path) -> dict[str, object]:
    """Like snapshot, but checkpoints by inode, size and time (cheap to take after every kill)."""
    return {str(p.relative_to(folder)): (p.stat().st_ino, p.stat().st_size, p.stat().st_mtime_ns) if p.parent.name == "checkpoints" else p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- dying at the n-th write step ----------------------------------------------------------


def _install_killer(kill_at: int) -> None:
    """In a child: die at the `kill_at`-th write step; a dying write first writes half its data.

    Write steps: the first write to each file opened for writing, every
    os.write and os.sendfile, and every os call that changes a folder or syncs.
    """
    count = [0]

    def due() -> bool:
        count[0] += 1
        return count[0] == kill_at

    def before(function):
        def wrapper(*args, **kwargs):
            if due():
                os._exit(9)
            return function(*args, **kwargs)
        return wrapper

    for name in ("replace", "rename", "link", "unlink", "mkdir", "rmdir", "ftruncate"):
        setattr(os, name, before(getattr(os, name)))
    os.fsync = before(lambda fd: None)  # a kill point; the real sync only matters for power cuts, and is slow
    real_write, real_sendfile, real_open = os.write, os.sendfile, io.open

    def write(fd, data):
        if due():
            real_write(fd, data[: len(data) // 2])
            os._exit(9)
        return real_write(fd, data)

    def sendfile(out_fd, in_fd, offset, count_):
        if due():
            real_sendfile(out_fd, in_fd, offset, max(1, count_ // 2))
            os._exit(9)
        return real_sendfile(out_fd, in_fd, offset, count_)

    class DyingFile:
        def __init__(self, f):
            self._f, self._written = f, False

        def write(self, data):
            first, self._written = not self._written, True
            if first and due():  # later writes of the same file would add kill points, not cases
                self._f.write(data[: len(data) // 2])
                self._f.flush()
                os._exit(9)
            return self._f.write(data)

        def __getattr__(self, name):
            return getattr(self._f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return self._f.__exit__(*exc)

    def open_(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return DyingFile(f) if any(c in mode for c in "wax+") else f

    os.write, os.sendfile, io.open, builtins.open = write, sendfile, open_, open_


def killed_at(action, kill_at: int) -> bool:
    """Run `action` in a forked child that dies at its `kill_at`-th write step; whether it died."""
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            signal.alarm(30)  # a hung child fails the test instead of blocking it
            _install_killer(kill_at)
            action()
        except BaseException:
            code = 3
        os._exit(code)
    code = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    assert code in (0, 9), f"the child failed (exit status {code}) at write step {kill_at}"
    return code == 9


def kill_everywhere(prepare, action, check) -> int:
    """For n = 1, 2, …: prepare a fresh folder, kill `action` at step n, `check` the folder; until one attempt completes."""
    for n in range(1, 500):
        target = prepare(n)
        died = killed_at(lambda: action(target), n)
        check(target, died)
        if not died:
            return n
    raise AssertionError("the action never completed")


def quiet(function, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


# ---- defect 1: interrupted writes ----------------------------------------------------------


def test_killed_checkpoint_save_leaves_no_half_checkpoint(template, tmp_path):
    before = run_folders.checkpoint_files(template)[1].read_bytes()
    small = {"epoch": 3, "G": {"w": torch.arange(1000.0)}, "D": {"w": torch.ones(10)}}  # few writes: few kill points

    def check(run_dir, died):
        saved = run_folders.checkpoint_files(run_dir)
        assert saved[1].read_bytes() == before
        if 3 in saved or not died:
            assert torch.equal(torch.load(saved[3], weights_only=True)["G"]["w"], small["G"]["w"])  # complete, never half

    steps = kill_everywhere(lambda n: clone(template, tmp_path / f"try{n}"), lambda run_dir: checkpoints.save_checkpoint(run_dir, 3, small), check)
    assert steps > 5


def test_killed_fork_never_shows_a_half_run(template, tmp_path):
    source = fingerprint(template)
    assert checkpoints.load_training_state(template)["epoch"] == 2  # also builds the shape cache the children inherit

    def prepare(n):
        return clone(template, tmp_path / f"try{n}" / "runs")

    def check(source_dir, died):
        assert fingerprint(source_dir) == source  # the source is only read
        found = run_folders.find_runs(source_dir.parent)
        assert len(found) == (2 if not died else len(found))
        for run_dir in found[1:]:  # a fork that exists is complete
            assert fingerprint(run_dir / "checkpoints") == {"epoch-000001.pt": source["checkpoints/epoch-000001.pt"]}
            assert [m["epoch"] for m in run_folders.read_metrics(run_dir)] == [1]
            assert list(run_folders.samples(run_dir)) == [0, 1]
            assert checkpoints.load_fixed_noise(run_dir).shape == (4, 128)
            assert (run_dir / "FORKED_FROM").read_text().strip().endswith("epoch-000001.pt")

    kill_everywhere(prepare, lambda source_dir: checkpoints.fork_run(source_dir, 1), check)


def test_killed_metrics_truncation_keeps_old_or_new(run_dir, tmp_path):
    def check(folder, died):
        assert [m["epoch"] for m in run_folders.read_metrics(folder)] in ([1, 2, 3], [1, 2])

    kill_everywhere(lambda n: clone(run_dir, tmp_path / f"try{n}"), lambda folder: run_folders.truncate_metrics(folder, 2), check)


def test_killed_metrics_append_never_breaks_reading(run_dir, tmp_path):
    def check(folder, died):
        epochs = [m["epoch"] for m in quiet(run_folders.read_metrics, folder)]
        assert epochs in ([1, 2, 3], [1, 2, 3, 4])
        quiet(run_folders.append_metrics, folder, {"epoch": 5})  # the next append repairs a cut-off line
        assert [m["epoch"] for m in run_folders.read_metrics(folder)] == epochs + [5]

    kill_everywhere(lambda n: clone(run_dir, tmp_path / f"try{n}"), lambda folder: run_folders.append_metrics(folder, {"epoch": 4}), check)


def test_killed_config_write_keeps_old_or_new(run_dir, state, tmp_path):
    old, new = state["config"], {**state["config"], "lr_g": 5e-5}

    def check(folder, died):
        assert run_folders.read_config(folder) in (old, new)

    kill_everywhere(lambda n: clone(run_dir, tmp_path / f"try{n}"), lambda folder: run_folders.write_config(folder, new), check)


def test_killed_run_creation_never_shows_a_run_without_settings(state, tmp_path):
    def check(runs_dir, died):
        for run_dir in run_folders.find_runs(runs_dir):
            assert run_folders.read_config(run_dir) == state["config"]
            assert checkpoints.load_fixed_noise(run_dir).shape == (4, 128)
        assert all((p / "config.json").is_file() for p in runs_dir.glob("*-*")) if runs_dir.exists() else True

    kill_everywhere(lambda n: tmp_path / f"try{n}",
                    lambda runs_dir: run_folders.create_run_dir(runs_dir, "t", config=state["config"], fixed_noise=torch.zeros(4, 128)), check)


def test_state_files_are_fsynced_with_their_folder(run_dir, state, monkeypatch):
    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    run_folders.write_config(run_dir, state["config"])
    assert any(name.endswith(".partial") for name in synced) and str(run_dir) in synced
    synced.clear()
    run_folders.append_metrics(run_dir, {"epoch": 4})
    assert synced == [str(run_dir / "metrics.jsonl")]


def test_new_files_keep_ordinary_permissions(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    atomic.atomic_save(torch.zeros(1), tmp_path / "a.pt", overwrite=False)
    atomic.atomic_write_text(tmp_path / "b.json", "{}")
    for name in ("a.pt", "b.json"):  # as for any new file, not owner-only like a temporary file
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_fork_copies_history_up_to_the_epoch(run_dir, state):
    forked = checkpoints.fork_run(run_dir, 1, config={**state["config"], "lr_g": 5e-5})
    assert forked.name == "00001-tiny-upsampling"
    assert list(run_folders.checkpoint_files(forked)) == [1] and list(run_folders.samples(forked)) == [0, 1]
    assert run_folders.checkpoint_files(forked)[1].read_bytes() == run_folders.checkpoint_files(run_dir)[1].read_bytes()
    assert [m["epoch"] for m in run_folders.read_metrics(forked)] == [1]
    assert run_folders.read_config(forked)["lr_g"] == 5e-5
    assert torch.equal(checkpoints.load_fixed_noise(forked), checkpoints.load_fixed_noise(run_dir))
    assert checkpoints.fork_run(run_dir, 2).name == "00002-tiny-upsampling"  # default settings: the checkpoint's
    assert run_folders.read_config(run_folders.find_runs(run_dir.parent)[-1]) == state["config"]


def test_fork_copies_the_averaged_generators_grids_and_quality_records_too(run_dir):
    from gan_helpers.runs.quality_records import read_quality

    (run_dir / "samples" / "ema").mkdir()
    for epoch in (1, 2):
        (run_dir / "samples" / "ema" / run_folders.epoch_name(epoch, "png")).write_bytes(b"ema sample %d" % epoch)
    (run_dir / "quality.jsonl").write_text("".join(f'{{"epoch": {e}, "model": "{m}", "swd": 1.0}}\n'
                                                   for e in (1, 2) for m in ("G", "G_ema")))
    forked = checkpoints.fork_run(run_dir, 1)
    assert list(run_folders.samples(forked, average=True)) == [1]
    assert run_folders.samples(forked, average=True)[1].read_bytes() == b"ema sample 1"
    assert list(run_folders.samples(forked)) == [0, 1]
    assert [(r["epoch"], r["model"]) for r in read_quality(forked, model=None)] == [(1, "G"), (1, "G_ema")]


def test_stale_partials_are_removed_before_a_resume(run_dir):
    leftover = run_dir / "checkpoints" / ".epoch-000003.pt.1234abcd.partial"
    leftover.write_bytes(b"x" * 100)
    assert run_folders.remove_partials(run_dir) == [leftover] and not leftover.exists()
    assert list(run_folders.checkpoint_files(run_dir)) == [1, 2]


# ---- defect 2: a full disk -----------------------------------------------------------------


class FullDisk:
    """A file whose writes fail with ENOSPC once `room` bytes are written."""

    def __init__(self, f, room: int) -> None:
        self.f, self.room = f, room

    def write(self, data) -> int:
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)
        return self.f.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self.f.__exit__(*exc)

    def __getattr__(self, name):
        return getattr(self.f, name)


@pytest.fixture
def full_disk(monkeypatch):
    """Files opened by atomic writers fill the disk after 10 bytes."""
    real_fdopen = os.fdopen
    monkeypatch.setattr(os, "fdopen", lambda fd, mode="r", **kw: FullDisk(real_fdopen(fd, mode, **kw), 10))


def test_full_disk_while_saving_a_checkpoint_is_one_sentence(run_dir, state, full_disk):
    before = snapshot(run_dir)
    with pytest.raises(UserError) as caught:
        checkpoints.save_checkpoint(run_dir, 3, {**state, "epoch": 3})  # torch.save turns ENOSPC into RuntimeError
    assert str(caught.value) == (
        f"the disk is full while writing {run_dir / 'checkpoints' / 'epoch-000003.pt'}; the last complete checkpoint is "
        f"{run_dir / 'checkpoints' / 'epoch-000002.pt'} (free some space, then resume from it).")
    assert snapshot(run_dir) == before  # no partial file, earlier checkpoints untouched


def test_torch_wrapped_disk_full_error_is_recognised():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    except RuntimeError as error:
        assert atomic.is_disk_full(error)
    assert not atomic.is_disk_full(RuntimeError("unexpected pos 704 vs 598"))


def test_full_disk_while_resuming_leaves_files_as_they_were(run_dir, state, full_disk, monkeypatch):
    before = snapshot(run_dir)
    with pytest.raises(UserError, match="disk is full while writing .*metrics.jsonl"):
        run_folders.truncate_metrics(run_dir, 1)
    with pytest.raises(UserError, match="disk is full while writing .*config.json"):
        run_folders.write_config(run_dir, {**state["config"], "pad": "x" * 2000})
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: (real_write(fd, data[:5]), (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))[1])
    with pytest.raises(UserError, match="disk is full while writing .*resumes.txt"):
        run_folders.note_resume(run_dir, "resumed from epoch 2 on cpu")
    with pytest.raises(UserError, match="disk is full while writing .*metrics.jsonl"):
        run_folders.append_metrics(run_dir, {"epoch": 4})
    assert snapshot(run_dir) == {**before, "resumes.txt": b""}  # the failed appends were cut away again


def test_full_disk_while_creating_a_run_is_one_sentence(tmp_path, monkeypatch):
    real_mkdir = os.mkdir
    monkeypatch.setattr(os, "mkdir", lambda path, *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full"))
                        if Path(path).name == "samples" else real_mkdir(path, *a, **k))
    with pytest.raises(UserError, match=f"the disk is full while writing {tmp_path / 'runs'};"):
        run_folders.create_run_dir(tmp_path / "runs", "t")
    assert list((tmp_path / "runs").iterdir()) == []  # the claimed number folder is gone again


def test_file_systems_without_hard_links_still_never_overwrite(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "link", lambda *a, **k: (_ for _ in ()).throw(PermissionError(errno.EPERM, "no links here")))
    atomic.atomic_save(torch.ones(2), tmp_path / "a.pt", overwrite=False)
    with pytest.raises(FileExistsError):
        atomic.atomic_save(torch.zeros(2), tmp_path / "a.pt", overwrite=False)
    atomic.link_or_copy(tmp_path / "a.pt", tmp_path / "b.pt")
    assert torch.equal(torch.load(tmp_path / "b.pt", weights_only=True), torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "b.pt"]  # no temporary file left


def test_full_disk_while_forking_leaves_no_folder(run_dir, full_disk):
    with pytest.raises(UserError, match="disk is full"):
        checkpoints.fork_run(run_dir, 1)
    assert sorted(p.name for p in run_dir.parent.iterdir()) == [run_dir.name]


# ---- defect 3: damaged and foreign files ---------------------------------------------------


class Hostile:
    """Unpickling this runs a command: what a booby-trapped .pt file does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def _without(mapping: dict, key: str) -> dict:
    return {k: v for k, v in mapping.items() if k != key}


@pytest.mark.parametrize("damage, message", [
    (lambda s: {**s, "config": _without(s["config"], "threads")}, "settings are unusable .*lack threads"),
    (lambda s: {**s, "config": {**s["config"], "lr_g": "fast"}}, "lr_g must be a number, not 'fast'"),
    (lambda s: _without(s, "opt_G"), "lacks opt_G, so it is not a full training checkpoint"),
    (lambda s: {**s, "G": build_generator("transposed").state_dict()}, "those of the transposed generator while its settings say upsampling"),
    (lambda s: {**s, "D": _without(s["D"], "classifier.2.bias")}, "discriminator weights do not fit"),
    (lambda s: {**s, "opt_D": {**s["opt_D"], "param_groups": [{"params": [0, 1]}]}}, "opt_D does not fit the network"),
    (lambda s: {**s, "rng": {**s["rng"], "torch": torch.zeros(3, dtype=torch.uint8)}}, "RNG state cannot be restored"),
    (lambda s: {**s, "epoch": 7}, "holds epoch 7 under the name of epoch 2"),
    (lambda s: [1, 2], "holds a list, not a checkpoint"),
])
def test_unusable_newest_checkpoint_names_the_one_before(run_dir, state, damage, message):
    newest = run_folders.checkpoint_files(run_dir)[2]
    newest.unlink()
    torch.save(damage({**state, "epoch": 2}), newest)
    for target in (run_dir, newest):
        with pytest.raises(UserError, match=message) as caught:
            checkpoints.load_training_state(target)
        assert str(caught.value).endswith(f"the newest usable checkpoint before it is {run_folders.checkpoint_files(run_dir)[1]}: resume from that file.")


def test_truncated_or_hostile_checkpoint_is_refused_safely(run_dir, tmp_path):
    newest = run_folders.checkpoint_files(run_dir)[2]
    data = newest.read_bytes()
    newest.unlink()
    newest.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="truncated, damaged or not a checkpoint at all; the newest usable checkpoint before it is .*epoch-000001.pt"):
        checkpoints.load_training_state(run_dir)
    marker = tmp_path / "pwned"
    newest.unlink()
    torch.save({"epoch": 2, "G": Hostile(marker)}, newest)
    for load in (checkpoints.load_training_state, checkpoints.load_checkpoint, checkpoints.load_generator):
        with pytest.raises(UserError, match="objects other than tensors") as caught:
            load(newest)
        assert "weights_only=False" not in str(caught.value)
    assert not marker.exists()


def test_no_usable_checkpoint_at_all_says_start_anew(run_dir):
    for path in run_folders.checkpoint_files(run_dir).values():
        path.unlink()
        path.write_bytes(b"not a zip")
    with pytest.raises(UserError, match="no earlier checkpoint of its run can be used instead, so start a new run"):
        checkpoints.load_training_state(run_dir)


def test_checkpoint_outside_a_run_folder_is_refused(run_dir, tmp_path):
    loose = tmp_path / "epoch-000001.pt"
    shutil.copy(run_folders.checkpoint_files(run_dir)[1], loose)
    with pytest.raises(UserError, match="is not in a run folder's checkpoints/ folder"):
        checkpoints.load_training_state(loose)


def test_generator_of_the_wrong_kind_is_one_sentence(run_dir, state):
    newest = run_folders.checkpoint_files(run_dir)[2]
    newest.unlink()
    torch.save({**state, "epoch": 2, "G": build_generator("transposed").state_dict()}, newest)
    with pytest.raises(UserError, match="transposed generator while its settings say upsampling"):
        checkpoints.load_generator(newest)
    G, loaded = checkpoints.load_generator(run_folders.checkpoint_files(run_dir)[1])  # the earlier, intact checkpoint still loads
    assert not G.training and loaded["epoch"] == 1
    assert checkpoints.load_checkpoint(run_dir)["epoch"] == 2


def test_valid_state_loads_and_restores(run_dir, state):
    loaded = checkpoints.load_training_state(run_dir)
    assert loaded["epoch"] == 2 and loaded["config"] == state["config"]
    D = Discriminator()
    D.load_state_dict(loaded["D"])
    opt_D = torch.optim.Adam(D.parameters())
    opt_D.load_state_dict(loaded["opt_D"])


@pytest.mark.parametrize("content, message", [
    ("hostile", "not a file of plain tensors"),
    (torch.zeros(4, 64), r"holds a torch.float32 tensor of shape \(4, 64\), not 4 latent vectors of length 128"),
    (torch.zeros(4, 128, dtype=torch.int64), "holds a torch.int64 tensor"),
    (torch.full((4, 128), float("nan")), "not finite numbers"),
    ({"z": torch.zeros(4, 128)}, "holds a dict"),
    (None, "is missing"),
])
def test_foreign_fixed_noise_is_refused(run_dir, tmp_path, content, message):
    path = run_dir / "fixed_noise.pt"
    path.unlink()
    marker = tmp_path / "pwned"
    if content is not None:
        torch.save(Hostile(marker) if isinstance(content, str) else content, path)
    with pytest.raises(UserError, match=message) as caught:
        checkpoints.load_fixed_noise(run_dir)  # its settings: 4 vectors (fixed_noise=4)
    assert "weights_only=False" not in str(caught.value) and not marker.exists()


def test_invalid_config_json_is_one_sentence(run_dir):
    (run_dir / "config.json").write_text('{"epochs": 3,\n')
    with pytest.raises(UserError, match=r"config.json is not valid JSON \(line 2\)"):
        run_folders.read_config(run_dir)
    (run_dir / "config.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="holds a JSON list, not an object of settings"):
        run_folders.read_config(run_dir)


# ---- defect 4: two runs started at the same moment -----------------------------------------


def _start_run(runs_dir: Path, tag: str, barrier, names) -> None:
    barrier.wait()
    for _ in range(3):
        names.append(run_folders.create_run_dir(runs_dir, tag).name)


def test_concurrent_runs_get_distinct_numbers(tmp_path):
    context = multiprocessing.get_context("fork")
    runs_dir = tmp_path / "runs"
    workers = 12
    with context.Manager() as manager:
        barrier, names = manager.Barrier(workers), manager.list()
        processes = [context.Process(target=_start_run, args=(runs_dir, f"tag{i}", barrier, names)) for i in range(workers)]
        for p in processes:
            p.start()
        for p in processes:
            p.join(60)
        assert [p.exitcode for p in processes] == [0] * workers
        names = list(names)
    numbers = [name.split("-")[0] for name in names]
    assert len(names) == 3 * workers and len(set(numbers)) == len(numbers), sorted(names)
    assert sorted(p.name for p in runs_dir.iterdir()) == sorted(names)  # no claim left behind


# ---- defect 5: damaged metrics and settings while listing ----------------------------------


def test_read_metrics_skips_damaged_lines_with_a_warning(run_dir):
    path = run_dir / "metrics.jsonl"
    path.write_text('{"epoch": 1}\nnot json\n[3]\n{"loss": 1}\n{"epoch": 2}\n{"epoch": 3, "loss')
    with pytest.warns(UserWarning) as caught:
        assert run_folders.read_metrics(run_dir) == [{"epoch": 1}, {"epoch": 2}]
    messages = [str(w.message) for w in caught]
    assert len(messages) == 4 and sum("last line was cut off" in m for m in messages) == 1
    assert any(m.endswith("metrics.jsonl line 2 is not a JSON object with an integer epoch; it is ignored.") for m in messages)
    with pytest.raises(UserError, match="metrics.jsonl line 2 is not a JSON object with an integer epoch; repair or delete"):
        quiet(run_folders.truncate_metrics, run_dir, 1)
    assert path.read_text().startswith('{"epoch": 1}\nnot json')  # nothing rewritten away


def test_find_runs_skips_a_run_with_invalid_settings(template, tmp_path):
    good = clone(template, tmp_path / "runs")
    bad = shutil.copytree(good, tmp_path / "runs" / "00001-bad")
    (bad / "config.json").write_text("{oops")
    with pytest.warns(UserWarning, match="skipping a run folder: .*00001-bad/config.json is not valid JSON"):
        assert run_folders.find_runs(tmp_path / "runs") == [good]
