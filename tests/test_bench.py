"""The speed benchmark command: its flags, its JSON lines, and that it runs on a machine without Jupyter."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest
import torch

from commands import bench
from gan_helpers import speed
from gan_helpers.errors import UserError


@pytest.fixture(autouse=True)
def restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def parse(argv):
    parser = argparse.ArgumentParser()
    bench.add_arguments(parser)
    return parser.parse_args(argv)


def test_help_runs_without_notebook_tools():
    """The GPU machine has torch, torchvision, tqdm, pillow, numpy, matplotlib, pyyaml and pytest only."""
    blocked = ["IPython", "ipywidgets", "jupyter", "jupyterlab", "nbformat", "nbconvert", "nbclient", "papermill",
               "nbval", "imagehash", "ddgs"]
    code = (f"import sys; sys.modules.update(dict.fromkeys({blocked!r})); "
            "from gan_helpers.__main__ import main; sys.exit(main(['bench', '--help']))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for flag in ("--device", "--steps", "--threads", "--json", "--rounds", "--breakdown"):
        assert flag in done.stdout


def test_json_lines_per_generator(capsys):
    args = parse(["--device", "cpu", "--steps", "1", "--rounds", "1", "--warmup", "0", "--batch-size", "1",
                  "--threads", "1", "--json"])
    assert bench.run(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    results = [json.loads(line) for line in lines]
    assert [r["generator"] for r in results] == ["transposed", "upsampling"]
    for r in results:
        assert r["device"] == "cpu" and r["threads"] == 1 and r["fast_precision"] == speed.choose_precision("cpu")
        assert r["reference_images_per_s"] > 0 and r["fast_images_per_s"] > 0
        assert r["ratio"] == pytest.approx(r["fast_images_per_s"] / r["reference_images_per_s"], rel=0.02)
        # 506 images x 2000 epochs at the measured rate; G steps in 30 minutes at batch 1
        assert r["fast_full_profile_hours"] == pytest.approx(506 * 2000 / r["fast_images_per_s"] / 3600, rel=0.01)
        assert r["fast_g_steps_in_30_min"] == pytest.approx(1800 * r["fast_images_per_s"], rel=0.01)
    table = bench.table(results).splitlines()
    assert len(table) == 3 and "ratio" in table[0] and table[1].split()[0] == "transposed"


def test_breakdown_variants():
    names = [v.name for v in bench.variants(torch.device("cpu"), breakdown=True)]
    assert names == ["reference", "fast", "reference+memory", "fast-memory"]
    reference, fast = bench.variants(torch.device("cuda"), breakdown=False)
    assert (reference.precision, reference.graphs) == ("fp32", False) and (fast.precision, fast.graphs) == ("bf16", True)


def test_without_native_bf16_the_fast_path_stays_in_fp32():
    reference, fast = bench.variants(torch.device("cuda"), breakdown=False, precision="fp32")
    assert (fast.precision, fast.graphs, fast.batched_augment) == ("fp32", False, True)
    reference, fast = bench.variants(torch.device("cpu"), breakdown=False, precision="fp32")
    assert (fast.precision, fast.keep_memory) == ("fp32", True)


@pytest.mark.parametrize("flag, value", [("--rounds", "0"), ("--steps", "-1"), ("--batch-size", "0")])
def test_rejects_bad_numbers(flag, value):
    with pytest.raises(UserError, match=flag):
        bench.run(parse([flag, value]))
