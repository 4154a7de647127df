"""The notebooks' live panel (gan_helpers.runs.live): one widget updated in place, or one static figure at the end."""

from __future__ import annotations

import IPython.display
import pytest
from matplotlib.figure import Figure

from gan_helpers.runs.config import TrainConfig
from gan_helpers.runs.experiment import train
from gan_helpers.runs.live import LivePanel


@pytest.fixture
def shown(monkeypatch) -> list:
    """Everything the panel hands to IPython's display, in order."""
    calls = []
    monkeypatch.setattr(IPython.display, "display", lambda *objects, **_: calls.extend(objects))
    return calls


def tiny_config(tiny_data, tmp_path, **changes) -> TrainConfig:
    return TrainConfig(data=str(tiny_data), runs_dir=str(tmp_path / "runs"), epochs=2, sample_every=2, save_every=2,
                       quality_samples=0, fixed_noise=4, progress=False, threads=1).replace(**changes)


def test_interactive_panel_is_one_widget_updated_every_epoch(tiny_data, tmp_path, shown):
    panel = LivePanel(interactive=True)
    updates = []
    original = panel.follow

    def follow(*args):
        run = original(*args)
        widget_image = run.curves_image
        widget_image.observe(lambda change: updates.append(run.records[-1]["epoch"]), names="value")
        return run

    panel.follow = follow
    run_dir = train(tiny_config(tiny_data, tmp_path), watch=panel)
    (run,) = panel.panels
    assert shown == [run.widget]  # displayed once: the output holds one panel, not a frame per epoch
    assert updates == [1, 2]  # the curves redrawn after each epoch
    assert "epoch 2 of 2" in run.status_html.value
    assert run.grid_image.value == (run_dir / "samples" / "epoch-000002.png").read_bytes()  # the newest grid


def test_not_interactive_it_shows_one_static_figure_when_the_run_ends(tiny_data, tmp_path, shown):
    panel = LivePanel(interactive=False)
    train(tiny_config(tiny_data, tmp_path), watch=panel)
    assert len(shown) == 1 and isinstance(shown[0], Figure)
    assert "epoch 2 of 2" in shown[0].get_suptitle()


def test_each_run_trained_gets_its_own_panel_and_a_reused_run_none(tiny_data, tmp_path, shown):
    from gan_helpers.runs.experiment import lab_runs

    config = tiny_config(tiny_data, tmp_path)
    panel = LivePanel(interactive=False)
    lab_runs(config, watch=panel)
    assert [run.run_dir.name.split("-")[-1] for run in panel.panels] == ["transposed", "upsampling"] and len(shown) == 2
    lab_runs(config, watch=panel)  # both reused: nothing trains, nothing more is shown
    assert len(panel.panels) == 2 and len(shown) == 2
