"""Training runs of the lab's experiment: start one, resume one, find the lab's two (points 9, 10).

:func:`train` builds the networks and optimizers from a :class:`TrainConfig`,
creates a run folder (or continues one) and trains it with the end-of-epoch
hooks of :func:`gan_helpers.runs.run_loop.fit_run`. :func:`lab_runs` is how
notebooks 03–06 find their runs: by the settings that make runs the same
(:meth:`TrainConfig.identity`), never by "the newest run", so every notebook
of one profile sees the same two folders: runs in its runs folder, else a
shipped result trained with the same settings (gan_helpers.runs.results).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import torch

from gan_helpers.runs import run_folders, checkpoints
from gan_helpers.storage import locks
from gan_helpers import speed
from gan_helpers.runs.config import GENERATOR_KINDS, TrainConfig, resumable
from gan_helpers.errors import UserError
from gan_helpers.runs.quality_records import cached_calibration, truncate_quality
from gan_helpers.models import Discriminator, build_generator
from gan_helpers.paths import from_root, shown
from gan_helpers.runs.run_plots import save_grid
from gan_helpers.seeding import seed_everything, set_rng_state
from gan_helpers.runs.run_loop import fit_run, sample_epoch
from gan_helpers.averaging import averaged_copy
from gan_helpers.runs.parameter_sets import data_argument, profile_experiment, profile_names
from gan_helpers.runs.results import REFERENCE, inside_results, inside_shipped, require_intact, results_root
from gan_helpers.datasets.loading import load_dataset


def build_models(config: TrainConfig, device: torch.device):
    """G, D and their Adam optimizers, initialised from ``config.seed`` (identically on any device)."""
    seed_everything(config.seed)
    G = build_generator(config.generator).to(device)
    D = Discriminator(dropout=config.dropout).to(device)
    opt_G = torch.optim.Adam(G.parameters(), lr=config.lr_g, betas=(config.beta1, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=config.lr_d, betas=(config.beta1, 0.999))
    return G, D, opt_G, opt_D


def prepare_training(config: TrainConfig, state: dict | None = None) -> tuple:
    """What a run trains with: its device and precision, the training images, and G, D, opt_G and opt_D built as
    :func:`build_models` does, then given a checkpoint `state`'s parts (G and D, and opt_G and opt_D where it holds
    them) and `config`'s learning rates. Returns (device, precision, images, G, D, opt_G, opt_D)."""
    device = speed.pick_device(config.device)
    precision = speed.setup(device, threads=config.threads, precision=config.precision)["precision"]
    images = training_images(config, device)
    G, D, opt_G, opt_D = build_models(config, device)
    for part, module in {"G": G, "D": D, "opt_G": opt_G, "opt_D": opt_D}.items():
        if part in (state or {}):
            module.load_state_dict(state[part])  # float16 weights are copied into the float32 parameters
    for opt, lr in ((opt_G, config.lr_g), (opt_D, config.lr_d)):
        for group in opt.param_groups:
            group["lr"] = lr
    return device, precision, images, G, D, opt_G, opt_D


def draw_fixed_noise(config: TrainConfig) -> torch.Tensor:
    """The fixed latent vectors, drawn from their own CPU generator: the same on every device."""
    generator = torch.Generator().manual_seed(config.seed)
    return torch.randn(config.fixed_noise, build_generator(config.generator).latent_dim, generator=generator)


def train(config: TrainConfig | None = None, *, resume: str | Path | None = None, note: str = "", watch=None,
          **overrides) -> Path:
    """Run training and return the run folder.

    A new run: ``train(TrainConfig(...))`` or ``train(epochs=5, data=...)``.
    Resuming: ``train(resume=run_dir_or_checkpoint, epochs=N)`` continues up
    to N epochs in total, restoring both networks, both optimizers and every
    RNG state, so the result is the same as a run that never stopped. A run
    folder resumes from its newest checkpoint; an older checkpoint starts a
    new run folder that carries the history up to that epoch, so nothing
    saved later is ever overwritten. `note` (one line) is kept with the
    resume in the run's ``resumes.txt``: point 10's record of what was seen
    and why the run was resumed as it was.

    `watch` shows the training as it goes: an object whose ``follow(run_dir, epochs, history)`` returns
    an epoch hook with a ``close()`` (:class:`gan_helpers.runs.live.LivePanel`, the notebooks' live panel);
    None (the command line) shows only the progress bars and point 10's warning lines.
    """
    if resume is not None:
        if config is not None:
            raise UserError("pass either a config or resume=…, not both; changes to a resumed run go as keyword arguments.")
        return _resume(Path(resume), overrides, watch, resume_note(note))
    if note:
        raise UserError("a note is kept with a resume; a new run has none (drop the note, or resume a run).")
    config = (config or TrainConfig()).replace(**overrides)
    device, precision, images, G, D, opt_G, opt_D = prepare_training(config)
    fixed_z = draw_fixed_noise(config)

    run_dir = run_folders.create_run_dir(from_root(config.runs_dir), config.run_tag(), config=config.to_dict(),
                                         fixed_noise=fixed_z)
    with locks.hold(run_dir, "training"), _removed_unless_trained(run_dir):
        G_ema = averaged_copy(G) if config.ema_half_life else None
        save_grid(images[: config.fixed_noise], run_dir / "reals.png")
        sample_epoch(run_dir, config, G, fixed_z, images, 0, G_ema)
        print(f"Run folder: {shown(run_dir)}")
        fit_run(run_dir, config, G, D, opt_G, opt_D, images, fixed_z, start_epoch=0, precision=precision, watch=watch,
                G_ema=G_ema)
    return run_dir


def resume_note(note: str) -> str:
    """`note` as a line of a run's resumes.txt, stripped; a UserError for line breaks or bytes that are not UTF-8."""
    if "\n" in note or "\r" in note:
        raise UserError("a resume note is one line of the run's resumes.txt; write it without line breaks.")
    try:
        note.encode("utf-8")
    except UnicodeEncodeError:  # a byte that is not UTF-8 on the command line arrives as a lone surrogate
        raise UserError("the resume note holds a byte that is not UTF-8 text; write the note as plain text "
                        "(UTF-8).") from None
    return note.strip()


@contextlib.contextmanager
def _removed_unless_trained(run_dir: Path):
    """Delete the new run folder `run_dir` when training fails before its first epoch is finished and saved:
    such a folder holds nothing to resume or read, and a run that never started should leave nothing behind."""
    try:
        yield
    except BaseException as error:
        if run_folders.checkpoint_files(run_dir) or run_folders.read_metrics(run_dir):
            raise
        shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(error, UserError):
            raise UserError(f"{str(error).rstrip('.')} (the new run folder {shown(run_dir)} was removed, as it held "
                            f"no finished epoch).") from None
        raise


def find_run(config: TrainConfig) -> Path | None:
    """The folder the lab reads for `config`: the newest run in ``config.runs_dir`` with the same identity
    (:meth:`TrainConfig.identity`) and a checkpoint, else the shipped result with that identity
    (``results/reference/<generator>``, checked intact: :mod:`gan_helpers.runs.results`), else None."""
    wanted = config.identity()
    shipped = results_root() / REFERENCE / config.generator
    for run_dir in [*reversed(run_folders.find_runs(from_root(config.runs_dir), config.generator)), shipped]:
        if not (run_dir / "config.json").is_file():
            continue
        saved = run_folders.read_config(run_dir)
        if {k: saved.get(k) for k in wanted} == wanted and run_folders.checkpoint_files(run_dir):
            return require_intact(run_dir) if run_dir == shipped else run_dir
    return None


def lab_run(config: TrainConfig, generator: str, *, watch=None) -> Path:
    """The experiment's run of one generator: a run or shipped result reused, a run continued, or one started.

    The folder is :func:`find_run`'s: a finished run with the same identity
    (every setting but the schedule: epochs, sample/save intervals, device, …)
    or a shipped result is returned untouched; an unfinished run is resumed up
    to ``config.epochs``; without either a new run starts. An interrupted
    notebook or report build therefore picks up where it stopped, and two runs
    differing in one training setting are never confused. `watch` as in
    :func:`train` (only training shows in it).
    """
    config = config.replace(generator=generator)
    run_dir = find_run(config)
    if run_dir is None:
        return train(config, watch=watch)
    if inside_results(run_dir) is not None:
        return run_dir  # a shipped result is read as it is, never trained into
    last = max(run_folders.checkpoint_files(run_dir))
    if last >= config.epochs:
        print(f"Reusing {shown(run_dir)} (trained to epoch {last})")
        return run_dir
    schedule = {k: v for k, v in config.to_dict().items() if k not in config.identity()}
    return train(resume=run_dir, watch=watch, **schedule)


def lab_runs(config: TrainConfig, generators=GENERATOR_KINDS, *, watch=None) -> dict[str, Path]:
    """The experiment's runs (or shipped results), one per generator kind: ``{"transposed": Path, "upsampling": Path}``."""
    return {kind: lab_run(config, kind, watch=watch) for kind in generators}


def _resume(target: Path, overrides: dict, watch=None, note: str = "") -> Path:
    target = from_root(target)
    run_dir = target if target.is_dir() else target.parent.parent
    if inside_shipped(run_dir) is not None:
        raise UserError(f"{shown(run_dir)} is a shipped result, which is never trained into; continue its training in a "
                        f"new run with `python -m gan_helpers train --warm-start {shown(run_dir)}`.")
    if not ((run_dir / "config.json").is_file() and (run_dir / "checkpoints").is_dir()):
        checkpoints.load_training_state(target)  # not a run folder's: its one sentence, and no lock file is made there
    with contextlib.ExitStack() as held:  # a second resume of the run stops here, before it reads or changes anything
        held.enter_context(locks.hold(run_dir, "resuming"))
        state = checkpoints.load_training_state(target)  # every key, shape and setting checked; one sentence otherwise
        saved = TrainConfig.from_dict(state["config"])
        run_folders.check_subfolders(run_dir)  # before anything is changed
        written = run_folders.read_config(run_dir)  # a hand edit of a fixed setting would be overwritten in silence
        for key, value in saved.to_dict().items():
            if not resumable(key) and key in written and written[key] != value:
                raise UserError(f"{shown(run_dir / 'config.json')} says {key} {written[key]!r}, but the run's checkpoints "
                                f"were trained with {key} {value!r}, which a resume cannot change; put {value!r} back, "
                                f"or start a new run with the settings you want.")
        epoch = state["epoch"]
        config = saved.continued(overrides, epoch)

        run_folders.remove_partials(run_dir)
        if max(run_folders.checkpoint_files(run_dir)) > epoch:
            run_dir = checkpoints.fork_run(run_dir, epoch, config=config.to_dict())  # its history ends at `epoch`
            held.enter_context(locks.hold(run_dir, "resuming"))
            print(f"Epoch {epoch} is not the newest checkpoint, so training continues in a new run folder: {shown(run_dir)}")
        else:
            run_folders.truncate_metrics(run_dir, epoch)
            truncate_quality(run_dir, epoch)

        device, precision, images, G, D, opt_G, opt_D = prepare_training(config, state)
        set_rng_state(state["rng"])
        G_ema, started = None, ""
        if config.ema_half_life:
            G_ema = averaged_copy(G)
            if "G_ema" in state:
                G_ema.load_state_dict(state["G_ema"])
            else:
                started = f"; G_ema started from G at epoch {epoch}"
        run_folders.write_config(run_dir, config.to_dict())
        fixed_z = checkpoints.load_fixed_noise(run_dir)
        print(f"Resuming {shown(run_dir)} from epoch {epoch}")
        kept = {**config.identity(), "ema_half_life": config.ema_half_life}  # point 10's interventions, not the schedule
        changes = "".join(f"; {k} {getattr(saved, k)!r} -> {v!r}" for k, v in kept.items() if getattr(saved, k) != v)
        run_folders.note_resume(run_dir, f"resumed from epoch {epoch} on {device}{changes}{started}"
                                         f"{f'; note: {note}' if note else ''}")
        fit_run(run_dir, config, G, D, opt_G, opt_D, images, fixed_z, start_epoch=epoch, precision=precision, watch=watch,
                G_ema=G_ema)
    return run_dir


def device_and_precision(config: TrainConfig) -> tuple[torch.device, str]:
    """Where the experiment trains and in what precision ('bf16' or 'fp32'), as training resolves 'auto'."""
    device = speed.pick_device(config.device)
    return device, speed.choose_precision(device, config.precision)


def training_images(config: TrainConfig, device: str | torch.device = "cpu") -> torch.Tensor:
    """The experiment's training images as training loads them: notebooks analyse exactly what was trained on."""
    return load_dataset(from_root(config.data), max_images=config.max_images, min_images=config.batch_size, device=device)


def quality_calibration(config: TrainConfig, images: torch.Tensor) -> list[dict]:
    """The quality measure's calibration on the experiment's images (notebook 03), cached in its runs folder."""
    return cached_calibration(images, from_root(config.runs_dir) / "calibration.json", seed=config.seed)


def experiment_config(profile: str, *, data: str = "", **overrides) -> TrainConfig:
    """The experiment of the parameter set `profile` (:func:`resolve_profile`): its ``train:`` block over
    TrainConfig's defaults (:mod:`gan_helpers.runs.parameter_sets`).

    `data` (when not empty) replaces the data folder, as ``DATA=`` does;
    `overrides` change settings that do not make a different run (e.g.
    ``progress``), and anything else on purpose.
    """
    config = profile_experiment(resolve_profile(profile))
    if data:
        overrides["data"] = data
    return config.replace(**overrides)


def resolve_profile(name: str | None = None, data: str | Path | None = None) -> str:
    """The profile to use: `name`, else the PROFILE environment variable, else :func:`default_profile` for `data`.

    An empty string counts as not given (the Makefile passes ``--profile ""``).
    """
    name = (name or "").strip() or os.environ.get("PROFILE", "").strip() or default_profile(data)
    if name not in profile_names():
        raise UserError(f"there is no parameter set {name!r} (notebooks/params/{name}.yaml); use one of: {', '.join(profile_names()) or 'none'}.")
    return name


def default_profile(data: str | Path | None = None) -> str:
    """'full' where a CUDA GPU is available or the shipped result (``results/reference``) is what :func:`find_run`
    finds for the full profile's experiment on `data`, for both generators; 'quick' otherwise."""
    if torch.cuda.is_available():
        return "full"
    config = experiment_config("full", data=data_argument(data) if data else "")
    found = [find_run(config.replace(generator=kind)) for kind in GENERATOR_KINDS]
    return "full" if all(run_dir and inside_results(run_dir) for run_dir in found) else "quick"
