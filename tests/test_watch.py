"""`python -m gan_helpers watch RUN_DIR`: a finished run's summary, a run being appended to, a shipped result; reading only."""

from __future__ import annotations

import hashlib
import json
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from image_folders import write_image_folder

from gan_helpers.__main__ import main
from gan_helpers.runs.config import TrainConfig
from gan_helpers.runs.experiment import train
from gan_helpers.paths import PROJECT_ROOT

LANDS_WITHIN = 5.0  # seconds from a record landing to its line (the command looks every second)
START_LIMIT = 120  # seconds for the command to start (torch's import on a loaded 2-core machine)
STOP_LIMIT = 60  # seconds for it to end after Ctrl-C on that machine


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished 2-epoch run of 8 images with quality numbers at both epochs."""
    folder = tmp_path_factory.mktemp("watch")
    data = write_image_folder(folder / "tiny", 8)
    return train(TrainConfig(data=str(data), runs_dir=str(folder / "runs"), epochs=2, sample_every=1, save_every=2,
                             quality_samples=8, fixed_noise=4, progress=False, threads=1))


def fingerprint(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under `folder`: its SHA-256 and modification time."""
    return {str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def copy_run(run_dir: Path, target: Path, *, keep_epochs: int, epochs: int) -> Path:
    """A copy of `run_dir` cut back to its first `keep_epochs` epochs, set to train `epochs`: a run still in progress."""
    shutil.copytree(run_dir, target)
    lines = (target / "metrics.jsonl").read_text().splitlines(keepends=True)
    (target / "metrics.jsonl").write_text("".join(lines[:keep_epochs]))
    config = json.loads((target / "config.json").read_text())
    (target / "config.json").write_text(json.dumps({**config, "epochs": epochs}))
    return target


class Watcher:
    """`python -m gan_helpers watch` in its own process, its output lines read by a thread."""

    def __init__(self, run_dir: Path, *args: str) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "gan_helpers", "watch", str(run_dir), *args], cwd=PROJECT_ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        # ^ a suite started in the background (`cmd &` in a script) ignores SIGINT, and an ignored SIGINT is inherited:
        # Python then installs no KeyboardInterrupt handler, so Ctrl-C, as the test sends it, would not reach the command.
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.process.stdout], daemon=True).start()

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            if text in line:
                return line
        raise AssertionError(f"no line with {text!r} within {timeout} s")

    def stop(self) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(timeout=STOP_LIMIT), self.process.stderr.read()
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise AssertionError(f"still running {STOP_LIMIT} s after Ctrl-C; its stderr: {self.process.stderr.read()!r}") from None


def test_once_prints_every_epoch_of_a_finished_run_and_changes_nothing(finished_run, capsys):
    before = fingerprint(finished_run)
    assert main(["watch", str(finished_run), "--once"]) == 0
    out = capsys.readouterr().out
    metrics = [json.loads(line) for line in (finished_run / "metrics.jsonl").read_text().splitlines()]
    for record in metrics:
        assert (f"epoch {record['epoch']:>5}  loss_D {record['loss_D']:.3f}  loss_G {record['loss_G']:.3f}  "
                f"D(x) {record['D_x']:.3f}  D(G(z)) {record['D_G_z']:.3f}") in out
    assert "epoch 2 of 2" in out and "lowest SWD" in out and "samples/epoch-000002.png" in out
    assert fingerprint(finished_run) == before  # no file changed, none added


def test_without_once_a_finished_run_is_summarised_and_the_command_ends(finished_run, capsys):
    assert main(["watch", str(finished_run)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "the run is finished: epoch 2 of 2"


def test_a_new_epoch_is_printed_within_seconds_of_landing_and_ctrl_c_ends_quietly(finished_run, tmp_path):
    run_dir = copy_run(finished_run, tmp_path / "run", keep_epochs=1, epochs=3)
    records = (finished_run / "metrics.jsonl").read_text().splitlines(keepends=True)
    before = fingerprint(run_dir)
    watcher = Watcher(run_dir)
    try:
        watcher.wait_for("epoch     1  loss_D", START_LIMIT)  # the summary of the run so far
        watcher.wait_for("point 10:", 10)  # the summary's last line: the command now only waits
        assert fingerprint(run_dir) == before
        with (run_dir / "metrics.jsonl").open("a") as metrics:
            metrics.write(records[1][:20])  # an append cut off halfway: nothing yet, and no warning about it
            metrics.flush()
            time.sleep(2)
            metrics.write(records[1][20:])
        landed = time.monotonic()
        watcher.wait_for("epoch     2  loss_D", LANDS_WITHIN)
        assert time.monotonic() - landed < LANDS_WITHIN
    finally:
        code, errors = watcher.stop()
    assert code == 0 and "Traceback" not in errors and "warn" not in errors.lower(), errors


def test_a_shipped_result_is_watched_like_a_finished_run(finished_run, tmp_path, capsys):
    shipped = tmp_path / "results" / "test" / "transposed"
    shutil.copytree(finished_run, shipped, ignore=shutil.ignore_patterns("checkpoints"))  # a pruned run folder:
    (shipped / "checkpoints").mkdir()  # results/README.md, the newest checkpoint only
    shutil.copy(finished_run / "checkpoints" / "epoch-000002.pt", shipped / "checkpoints" / "epoch-000002.pt")
    (shipped / "provenance.json").write_text("{}")
    before = fingerprint(shipped)
    assert main(["watch", str(shipped)]) == 0
    out = capsys.readouterr().out
    assert "epoch     2  loss_D" in out and out.splitlines()[-1] == "the run is finished: epoch 2 of 2"
    assert fingerprint(shipped) == before


def test_training_prints_point_10s_warning_when_it_starts(finished_run, tmp_path, capsys):
    """The tiny run's samples are nearly one grey picture (diversity far below 0.2): a collapse, said once."""
    run_dir = shutil.copytree(finished_run, tmp_path / "run")
    train(resume=run_dir, epochs=4)
    out = capsys.readouterr().out
    assert out.count("point 10: the samples have collapsed since epoch") == 1, out
    assert "look for bugs" in out


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing", "is not a folder"),
    (lambda tmp: tmp, "holds no config.json or metrics.jsonl"),
])
def test_a_folder_that_is_no_run_is_one_sentence(tmp_path, capsys, make, message):
    assert main(["watch", str(make(tmp_path))]) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1


# ---- hostile inputs, round three: damaged records, a run that goes away ------------------------------------------------

RECORD = {"epoch": 1, "loss_D": 0.5, "loss_G": 1.0, "D_x": 0.6, "D_G_z": 0.4, "seconds": 2.0}


def small_run(folder: Path, epochs: int = 5) -> Path:
    """A run folder still training (epoch 1 of `epochs`), without checkpoints: enough for watch, no training needed."""
    from gan_helpers.runs.config import TrainConfig
    from gan_helpers.runs.run_folders import write_config

    (folder / "samples").mkdir(parents=True)
    write_config(folder, TrainConfig(epochs=epochs).to_dict())
    (folder / "metrics.jsonl").write_text(json.dumps(RECORD) + "\n")
    return folder


def test_damaged_records_are_skipped_with_a_warning_once_and_no_traceback(tmp_path, capsys):
    run_dir = small_run(tmp_path / "00001-x")
    with (run_dir / "metrics.jsonl").open("a") as metrics:
        metrics.write(json.dumps({**RECORD, "epoch": 2, "D_x": "high"}) + "\n")
        metrics.write(json.dumps({"epoch": 3, "loss_D": 0.1}) + "\n")
        metrics.write(json.dumps({**RECORD, "epoch": 4, "seconds": None}) + "\n")
    (run_dir / "quality.jsonl").write_bytes(b'{"epoch": 1, "swd": 12.5}\n{"epoch": 2, "label": "caf\xe9"}\n'
                                            b'{"epoch": 4, "swd": null}\n{"epoch": 5, "sw')  # the last: an append in progress
    assert main(["watch", str(run_dir), "--once"]) == 0
    out, err = capsys.readouterr()
    metrics_file, quality_file = run_dir / "metrics.jsonl", run_dir / "quality.jsonl"
    assert err.splitlines() == [
        f'warning: {metrics_file} line 2 has D_x "high", which is not a number; that value is ignored.',
        f"warning: {metrics_file} epoch 2 has no number for D_x; it is ignored.",
        f"warning: {metrics_file} epoch 3 has no number for loss_G, D_x, D_G_z; it is ignored.",
        f"warning: {quality_file} line 2 is not UTF-8 text; it is ignored.",
    ]
    assert "epoch     1  loss_D 0.500" in out and "epoch     4  loss_D 0.500" in out and "nan s/epoch" in out
    assert "epoch     2  loss_D" not in out and "lowest SWD 12.5 at epoch 1" in out


def _watched(run_dir: Path, change, timeout: float = 30) -> tuple[list[str], BaseException | None]:
    """follow()'s lines and how it ended when `change` is done to the run while it polls; a failure, never a hang."""
    from commands.watch import follow

    lines: list[str] = []
    ended: dict[str, BaseException | None] = {}

    def watch() -> None:
        try:
            for line in follow(run_dir, poll=0.05):
                lines.append(line)
        except BaseException as error:  # noqa: BLE001 - handed to the test
            ended["error"] = error
        else:
            ended["error"] = None

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not any(line.startswith("point 10:") for line in lines):  # the summary is out: watch now polls
        assert time.monotonic() < deadline and thread.is_alive(), (lines, ended)
        time.sleep(0.05)
    time.sleep(0.3)
    change(run_dir)
    thread.join(timeout)
    assert not thread.is_alive(), f"watch still polls {timeout} s after the run went"
    return lines, ended["error"]


def test_watch_ends_with_one_sentence_when_its_run_is_deleted(tmp_path):
    from gan_helpers.errors import UserError

    run_dir = small_run(tmp_path / "00001-x")
    lines, error = _watched(run_dir, shutil.rmtree)
    assert isinstance(error, UserError), error
    assert str(error) == (f"{run_dir} disappeared while it was being watched (deleted or moved); "
                          f"watch it again where it is now.")


def test_watch_ends_with_one_sentence_when_its_run_stops_being_one(tmp_path):
    from gan_helpers.errors import UserError

    run_dir = small_run(tmp_path / "00001-x")
    lines, error = _watched(run_dir, lambda folder: (folder / "config.json").unlink())
    assert isinstance(error, UserError), error
    assert str(error) == (f"{run_dir} stopped being a run while it was being watched (its config.json is gone); "
                          f"watch a run folder (runs/NNNNN-…) or a shipped result (results/NAME/GENERATOR).")


def test_the_command_ends_with_status_2_and_one_line_when_its_run_is_deleted(tmp_path):
    run_dir = small_run(tmp_path / "00001-x")
    watcher = Watcher(run_dir)
    try:
        watcher.wait_for("point 10:", START_LIMIT)
        shutil.rmtree(run_dir)
        code = watcher.process.wait(timeout=STOP_LIMIT)
    finally:
        if watcher.process.poll() is None:
            watcher.process.kill()
    errors = watcher.process.stderr.read()
    assert code == 2 and errors == f"error: {run_dir} disappeared while it was being watched (deleted or moved); " \
                                   f"watch it again where it is now.\n", errors
