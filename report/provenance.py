"""Where a shipped result came from (machine, software, commit, commands and their wall times), and whether it is sound.

A result folder (gan_helpers.runs.results) carries ``provenance.json``, built by
:func:`build_provenance` at export (:mod:`report.export`); :func:`check_result` lists where a result
disagrees with it or with itself. :func:`environment` describes the
exporting machine (GPU model, driver, CUDA, torch): export where training
ran, or give that machine's description in a provenance file. The commands
that produced the result, each with its wall time, come from a provenance
file (:func:`read_provenance_input`) or the export's options.

A provenance file is either lines as GNU time writes them with
``/usr/bin/time -a -o FILE -f '%e %C' COMMAND`` (seconds, then the command
line; ``#`` starts a comment), or a JSON object with ``commands`` (a list
of ``{"command", "seconds"}``, each optionally with ``machine``: where that
command ran, for a run resumed on several machines) and optionally
``environment`` and ``commit``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import subprocess
import warnings
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import torch

from gan_helpers.datasets.loading import image_paths, is_prepared
from gan_helpers.errors import UserError
from gan_helpers.paths import PROJECT_ROOT, from_root, shown
from gan_helpers.runs import checkpoints, run_folders
from gan_helpers.runs.config import TrainConfig
from gan_helpers.runs.quality_records import QUALITY_FILE, read_quality
from gan_helpers.runs.results import PROVENANCE_FILE, file_manifest, links_inside, read_provenance

FORMAT = 2  # bumped when the layout of a result folder changes (2: a pruned run folder, checkpoints/ with dicts)
INPUT_KEYS = ("commands", "environment", "commit")
ENVIRONMENT_KEYS = ("device", "device_name", "driver", "cuda", "torch", "python", "platform")
REQUIRED = ("format", "name", "generator", "source_run", "exported_at", "commit", "environment", "training",
            "commands", "commands_seconds", "epochs", "grids", "weights", "files")
_KINDS = {"commit": dict, "environment": dict, "training": dict, "commands": list, "commands_seconds": (int, float),
          "epochs": dict, "grids": dict, "weights": dict, "files": dict}
REQUIRED_FILES = ("config.json", "metrics.jsonl", QUALITY_FILE, "fixed_noise.pt", "reals.png")


def _output(*command: str, cwd: Path | None = None) -> str | None:
    """A command's stripped output, or None when it is missing or fails."""
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def _nvidia_driver() -> str | None:
    found = _output("nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader")
    if found:
        return found.splitlines()[0].strip()
    try:  # without nvidia-smi, the kernel module says it: "NVRM version: NVIDIA UNIX ... Kernel Module  550.54.15 ..."
        return Path("/proc/driver/nvidia/version").read_text().split("Kernel Module")[1].split()[0]
    except (OSError, IndexError):
        return None


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    """This machine as training sees it: device kind and model, NVIDIA driver, CUDA, cuDNN, torch, Python."""
    cuda = torch.cuda.is_available()
    return {
        "device": "cuda" if cuda else "cpu",
        "device_name": torch.cuda.get_device_name(0) if cuda else cpu_name(),
        "driver": _nvidia_driver() if cuda else None,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def git_commit(root: str | Path = PROJECT_ROOT) -> dict:
    """The project's commit and whether the working tree differs from it; None values without git."""
    commit = _output("git", "rev-parse", "HEAD", cwd=Path(root))
    status = _output("git", "status", "--porcelain", "--untracked-files=no", cwd=Path(root)) if commit else None
    return {"commit": commit or None, "dirty": None if status is None else bool(status)}


def command_entry(seconds: object, command: object, where: str | None = None, machine: object = None) -> dict:
    """One command run to produce a result with its wall time in seconds (and the machine it ran on), checked.

    `where` names the command in errors.
    """
    try:
        seconds = float(seconds)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (isinstance(command, str) and command.strip() and math.isfinite(seconds) and seconds >= 0):
        raise UserError(f"{where or repr(command)} is not a command with its wall time in seconds; write it as e.g. 3600 'make report'.")
    if machine is not None and not (isinstance(machine, str) and machine.strip()):
        raise UserError(f"{where or repr(command)} has a 'machine' that is not a description; write it as e.g. \"AMD EPYC, 2 cores\".")
    entry = {"command": command.strip(), "seconds": round(seconds, 3)}
    return {**entry, "machine": machine.strip()} if machine is not None else entry


def read_provenance_input(path: str | Path) -> dict:
    """Commands (and optionally environment and commit) from a provenance file; see the module docstring."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        raise UserError(f"the provenance file {path} cannot be read as text; pass a file of 'SECONDS COMMAND' lines.") from None
    if text.lstrip().startswith("{"):
        try:
            given = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(f"{path} is not valid JSON (line {error.lineno}); repair it or write 'SECONDS COMMAND' lines.") from None
        unknown = sorted(set(given) - set(INPUT_KEYS))
        if unknown:
            raise UserError(f"{path} has unknown key(s) {', '.join(unknown)}; known keys are {', '.join(INPUT_KEYS)}.")
        if not isinstance(given.get("commands", []), list):
            raise UserError(f"{path}: 'commands' must be a list of {{\"command\", \"seconds\"}} objects.")
        if not isinstance(given.get("environment", {}), dict) or not isinstance(given.get("commit", ""), str):
            raise UserError(f"{path}: 'environment' must be an object and 'commit' a string.")
        commands = [command_entry(c.get("seconds"), c.get("command"), f"{path} command {n}", c.get("machine")) if isinstance(c, dict)
                    else command_entry(None, None, f"{path} command {n}") for n, c in enumerate(given.get("commands", []), 1)]
        return {**given, "commands": commands}
    commands = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        seconds, command = (line.split(None, 1) + [""])[:2]
        commands.append(command_entry(seconds, command, f"{path} line {number}"))
    return {"commands": commands}



def data_record(config: dict) -> dict:
    """The training images' folder, count and content hash (None where the folder cannot be read here)."""
    given = Path(config["data"])  # relative to the project when inside it, so machines compare
    record = {"path": (given.relative_to(PROJECT_ROOT) if given.is_relative_to(PROJECT_ROOT) else given).as_posix(),
              "images": None, "sha256": None}
    folder = from_root(config["data"])
    try:
        if not (folder.is_dir() and is_prepared(folder)):
            return record
        paths = image_paths(folder)[: config.get("max_images")]
        digest = hashlib.sha256()
        for path in paths:
            digest.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    except (OSError, UserError):
        return record
    return {**record, "images": len(paths), "sha256": digest.hexdigest()}



def build_provenance(run_dir: Path, config: dict, metrics: list[dict], given: dict, *, name: str,
                     commit: str | None = None) -> dict:
    """Provenance of a result exported from `run_dir`: who, where, with what, from which commands.

    `given` is :func:`read_provenance_input`'s answer (its ``commands`` may
    hold more); its environment and commit, or `commit`, replace what this
    machine reports.
    """
    if commit is not None:
        recorded_commit = {"commit": commit, "dirty": None, "source": "--commit"}
    elif "commit" in given:
        recorded_commit = {"commit": given["commit"], "dirty": None, "source": "provenance file"}
    else:
        recorded_commit = {**git_commit(), "source": "git"}
    resumes = run_dir / "resumes.txt"
    return {
        "format": FORMAT,
        "name": name,
        "generator": config["generator"],
        "source_run": run_dir.resolve().name,
        "project_root": str(PROJECT_ROOT),
        "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": recorded_commit,
        "environment": {**given["environment"], "source": "provenance file"} if "environment" in given
        else {**environment(), "source": "export machine"},
        "training": {  # what the metrics say: epochs, summed epoch wall time, devices; and the resume log
            "epochs": max((m["epoch"] for m in metrics), default=0),
            "seconds": round(sum(m.get("seconds", 0.0) for m in metrics), 3),
            "devices": dict(Counter(str(m.get("device", "unknown")) for m in metrics)),
            "resumes": resumes.read_text(encoding="utf-8").splitlines() if resumes.is_file() else [],
        },
        "data": data_record(config),
        "commands": given["commands"],
        "commands_seconds": round(sum(c["seconds"] for c in given["commands"]), 3),
    }



def trained_on(provenance: dict) -> str:
    """The machine(s) a result was trained on: those its commands name, in order, else the recorded environment's."""
    commands = provenance.get("commands")
    named = dict.fromkeys(c["machine"] for c in commands if isinstance(c, dict) and isinstance(c.get("machine"), str)
                          and c["machine"]) if isinstance(commands, list) else {}
    env = provenance.get("environment")
    env = env if isinstance(env, dict) else {}
    recorded = [value for value in (env.get("device_name"), env.get("device")) if isinstance(value, str) and value]
    return " and ".join(named) or (recorded[0] if recorded else "an unrecorded machine")


def provenance_problems(result_dir: str | Path, provenance: dict, metrics: list[dict]) -> list[str]:
    """What is missing or contradicts the folder in a result's provenance, one sentence each."""
    where = Path(result_dir) / PROVENANCE_FILE
    missing = [key for key in REQUIRED if key not in provenance]
    garbled = [key for key, kind in _KINDS.items() if key in provenance and not isinstance(provenance[key], kind)]
    if missing or garbled:
        return [f"{where} lacks or garbles {', '.join(missing + garbled)}; export the run again."]
    problems = []
    if not provenance["commit"].get("commit"):
        problems.append(f"{where} names no git commit of the project; export again with --commit SHA.")
    env = provenance["environment"]
    absent = [key for key in ENVIRONMENT_KEYS if key not in env or (env[key] is None and key not in ("driver", "cuda"))]
    if env.get("device") == "cuda" and not env.get("driver"):
        absent.append("driver")
    if absent:
        problems.append(f"{where} lacks the machine's {', '.join(absent)}.")
    devices = Counter(str(m.get("device", "unknown")) for m in metrics)
    if devices and env.get("device") not in devices:
        problems.append(f"{where} describes a {env.get('device')} machine while metrics.jsonl says training ran on "
                        f"{', '.join(sorted(devices))}; export on the training machine or give its environment in a provenance file.")
    commands = provenance["commands"]
    if not commands:
        problems.append(f"{where} lists no commands; export again with --commands FILE or --command SECONDS COMMAND.")
    elif not all(isinstance(c, dict) and isinstance(c.get("command"), str) and isinstance(c.get("seconds"), (int, float))
                 for c in commands):
        problems.append(f"{where} lists a command without its text or wall time.")
    elif not math.isclose(provenance["commands_seconds"], sum(c["seconds"] for c in commands), abs_tol=0.01):
        problems.append(f"{where}: commands_seconds {provenance['commands_seconds']} is not the sum of the commands' wall times.")
    recorded, present = provenance["files"], file_manifest(result_dir)
    changed = sorted(name for name in recorded.keys() & present.keys() if recorded[name] != present[name])
    for names, what in ((sorted(recorded.keys() - present.keys()), "are missing"),
                        (sorted(present.keys() - recorded.keys()), "are not listed in it"), (changed, "changed since export")):
        if names:
            problems.append(f"files {', '.join(names)} {what} ({where}).")
    return problems


def epoch_problems(provenance: dict, config: TrainConfig, metrics: list[dict], quality: list[dict], grids: list[int],
                   weights: list[int]) -> list[str]:
    """Where a result's epochs disagree: metrics 1..N once each, grids and quality records of the sample
    epochs (one per epoch and generator, up to the last epoch at which `config` samples), checkpoints of
    the best and last epoch (as `provenance` names them)."""
    problems = []
    epochs = [m["epoch"] for m in metrics]
    last = max(epochs, default=0)
    scored = [(r["epoch"], r.get("model", "G")) for r in quality]
    for what, found in (("metrics.jsonl", epochs), ("quality.jsonl", scored)):
        if repeated := sorted(e for e, n in Counter(found).items() if n > 1):
            problems.append(f"{what} has epoch(s) {repeated} more than once.")
    if missing := sorted(set(range(1, last + 1)) - set(epochs)):
        problems.append(f"metrics.jsonl lacks epoch(s) {missing[:10]} of 1..{last}.")
    if epochs != sorted(epochs):
        problems.append("metrics.jsonl is not in epoch order.")
    chosen, recorded = provenance.get("epochs", {}), provenance.get("grids", {})
    best, sampled = chosen.get("best"), recorded.get("sample_epochs", [])
    if chosen.get("last") != last:
        problems.append(f"metrics.jsonl ends at epoch {last} but provenance.json names {chosen.get('last')} as the last epoch.")
    if lacking := sorted({best, chosen.get("last")} - set(weights) - {None}):
        problems.append(f"checkpoints/ lacks epoch(s) {lacking}, the best ({best}) and last ({chosen.get('last')}) that provenance.json names.")
    if grids != recorded.get("shipped"):
        problems.append(f"samples/ holds the grids of epochs {grids}, provenance.json lists {recorded.get('shipped')}.")
    if foreign := sorted(set(grids) - set(sampled)):
        problems.append(f"samples/ holds grids of epochs {foreign} at which the run saved no grid.")
    if lacking := sorted({min(sampled, default=0), max(sampled, default=0), best} - set(grids) - {None}):
        problems.append(f"samples/ lacks the grid of epoch(s) {lacking} (first, best or last).")
    # a run stopped between sample epochs (SIGTERM ends after any epoch) ends after its last grid
    if due := [e for e in range(max(sampled, default=0) + 1, last + 1) if config.samples_at(e)]:
        problems.append(f"the last sample grid is of epoch {max(sampled, default=None)}, though the run samples at epoch {due[0]}.")
    if len(grids) < min(len(sampled), recorded.get("max_grids", len(sampled))):
        problems.append(f"samples/ holds {len(grids)} of {len(sampled)} grids, fewer than the export's limit allows.")
    quality_epochs = {r["epoch"] for r in quality}
    if quality and (unrecorded := sorted(set(grids) - quality_epochs)):
        problems.append(f"the grids of epoch(s) {unrecorded} have no record in quality.jsonl.")
    if stray := sorted(quality_epochs - set(sampled)):
        problems.append(f"quality.jsonl has records for epoch(s) {stray} without a sample grid.")
    return problems


def check_result(result_dir: str | Path) -> list[str]:
    """Consistency problems of a result folder, one sentence each; an empty list when it is sound."""
    result_dir = Path(result_dir)
    if links := links_inside(result_dir):
        return [f"{shown(link)} is a symbolic link, and a shipped result holds none." for link in links]
    try:
        provenance = read_provenance(result_dir)
        config = TrainConfig.from_dict(run_folders.read_config(result_dir), complete=True)
    except UserError as error:
        return [str(error)]
    problems = [f"{result_dir} lacks {name}." for name in REQUIRED_FILES if not (result_dir / name).is_file()]
    with warnings.catch_warnings(record=True) as skipped:  # a line the lab's readers skip is a problem of the result
        warnings.simplefilter("always")
        metrics, quality = run_folders.read_metrics(result_dir), read_quality(result_dir, model=None, strict=False)
    problems += [str(warning.message) for warning in skipped]
    saved = run_folders.checkpoint_files(result_dir)
    problems += [reason for path in saved.values() if (reason := _checkpoint_problem(path))]
    problems += epoch_problems(provenance, config, metrics, quality, list(run_folders.samples(result_dir)), list(saved))
    try:
        checkpoints.load_fixed_noise(result_dir)
    except UserError as error:
        problems.append(str(error))
    return problems + provenance_problems(result_dir, provenance, metrics)


def _checkpoint_problem(path: Path) -> str | None:
    """Why a shipped checkpoint is unsound (not a generator's checkpoint, or weights wider than float16), or None."""
    try:
        state = checkpoints.load_generator(path, average="G" not in checkpoints.load_checkpoint(path))[1]
    except UserError as error:
        return str(error)
    for part in ("G", "G_ema", "D"):
        wide = sorted(k for k, v in state.get(part, {}).items() if v.is_floating_point() and v.dtype != torch.float16)
        if wide:
            return f"checkpoints/{path.name} holds {part} {wide[0]} as {state[part][wide[0]].dtype}, not float16."
    return None
