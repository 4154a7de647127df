"""The notebooks' live panel: a training cell shows its run as it goes, one update per epoch (point 10: watch every epoch).

``lab_run(config, kind, watch=LivePanel())`` (or ``train``/``lab_runs``)
hands the panel to :func:`gan_helpers.runs.run_loop.fit_run`, which adds its hook
to ``fit``'s end-of-epoch hooks: the training loop stays the one in
:mod:`gan_helpers.training`. Each run trained gets its own panel: the loss
curves, D(x) and D(G(z)) with point 10's thresholds, seconds per epoch and
time left, the newest fixed-noise grid (replaced only at sample epochs) and
point 10's warning (:mod:`gan_helpers.balance`) while one holds.

Interactive (JupyterLab): ipywidgets updated in place, so the output holds
one panel, never a frame per epoch, and the widget state saved with the
notebook (``tools/lab-settings.json``) shows it again after a reopen.
Not interactive (papermill, nbconvert: the notebooks pass their
``progress`` flag, which the runner sets to False): nothing while training,
then one static figure of the finished panel.
"""

from __future__ import annotations

import html
import io
from collections.abc import Sequence
from pathlib import Path

from gan_helpers.balance import Thresholds, point10_warnings
from gan_helpers.formatting import duration, fmt
from gan_helpers.paths import shown
from gan_helpers.runs.run_plots import read_png
from gan_helpers.runs.quality_records import QUALITY_FILE, read_quality
from gan_helpers.runs.run_folders import epoch_name, samples

REPORT_HIDE = "report-hide"  # output metadata: the report leaves this output out (report.cleaning)
PACE_EPOCHS = 5  # seconds per epoch: the mean of this many newest epochs (one slow epoch does not decide)


def pace(metrics: Sequence[dict], epochs: int) -> tuple[float, float]:
    """(seconds per epoch over the newest :data:`PACE_EPOCHS` epochs, seconds left to epoch `epochs`); NaN without epochs."""
    recent = [r["seconds"] for r in metrics[-PACE_EPOCHS:] if isinstance(r.get("seconds"), (int, float))]
    if not recent:
        return float("nan"), float("nan")
    per_epoch = sum(recent) / len(recent)
    return per_epoch, per_epoch * max(epochs - metrics[-1]["epoch"], 0)


def grid_path(run_dir: Path, epoch: int) -> Path | None:
    """The fixed-noise grid of `epoch`, if the run (or shipped result) has one."""
    path = run_dir / "samples" / epoch_name(epoch, "png")
    return path if path.is_file() else None


CURVES_SIZE = (7.0, 2.8)  # inches of the curves figure: two plots side by side
CURVES_DPI = 80  # enough to read in the notebook; a redraw of the curves took 150 ms on the loaded 2-core CPU
GRID_WIDTH = "280px"  # the grid beside the curves


class LivePanel:
    """What a training cell passes as ``watch=``: one panel per run it trains, interactive or one figure at the end."""

    def __init__(self, *, interactive: bool = True) -> None:
        self.interactive = interactive
        self.panels: list[RunPanel] = []

    def follow(self, run_dir: Path, epochs: int, history: list[dict]) -> RunPanel:
        """The epoch hook of one run (called by run_loop.fit_run before training); `history` holds its earlier epochs."""
        panel = RunPanel(Path(run_dir), epochs, history, interactive=self.interactive)
        self.panels.append(panel)
        return panel


class RunPanel:
    """One run's panel; called as ``panel(epoch, stats)`` after every epoch, :meth:`close` after the last."""

    def __init__(self, run_dir: Path, epochs: int, history: list[dict], *, interactive: bool) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.run_dir, self.epochs, self.interactive = run_dir, epochs, interactive
        self.records = list(history)
        self.quality: list[dict] = []
        self._quality_stamp = None
        self._read_quality()
        self.grid: Path | None = next(reversed(samples(run_dir).values()), None)  # the newest grid, if any
        self.figure = Figure(figsize=CURVES_SIZE, dpi=CURVES_DPI)  # a fixed layout: half the redraw time of a constrained one
        self.figure.subplots_adjust(left=0.07, right=0.98, bottom=0.17, top=0.9, wspace=0.2)
        FigureCanvasAgg(self.figure)  # pyplot-free: nothing reaches the notebook unless this module shows it
        self.lines = _curves(self.figure)
        self.widget = None
        if interactive:
            self._build_widget()
            self._redraw(grid=True)
            from IPython.display import display

            display(self.widget)

    # ---- the hook ---------------------------------------------------------------------------------

    def __call__(self, epoch: int, stats: dict) -> None:
        self.records.append(stats)
        self._read_quality()
        grid = grid_path(self.run_dir, epoch)
        changed_grid = grid is not None and grid != self.grid
        if changed_grid:
            self.grid = grid
        if self.interactive:
            self._redraw(grid=changed_grid)

    def close(self) -> None:
        """After the last epoch: without a live widget, the whole panel once, as a static figure.

        The figure is marked for the notebook's readers only (:data:`REPORT_HIDE`): the report shows the
        finished run in its own captioned figures, not a monitor drawn for the screen."""
        if self.interactive or not self.records:
            return
        from IPython.display import display

        display(self.static_figure(), metadata={REPORT_HIDE: True})

    # ---- what it shows ----------------------------------------------------------------------------

    def status(self) -> str:
        """Where the run stands: epoch, seconds per epoch, time left, newest SWD."""
        done = self.records[-1]["epoch"] if self.records else 0
        per_epoch, left = pace(self.records, self.epochs)
        scored = [r for r in self.quality if r["epoch"] >= 1 and isinstance(r.get("swd"), (int, float))]
        swd = f", SWD {scored[-1]['swd']:.1f} at epoch {scored[-1]['epoch']}" if scored else ""
        return f"{shown(self.run_dir)}: epoch {done} of {self.epochs}, {fmt(per_epoch)} s/epoch, {duration(left)} left{swd}"

    def alerts(self) -> list[str]:
        return [a.line() for a in point10_warnings(self.records, self.quality)]

    def static_figure(self):
        """The finished panel as one matplotlib figure: the curves, the newest grid, the status and any warning."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=(11, 3.4), layout="constrained")
        left, right = figure.subfigures(1, 2, width_ratios=[2.2, 1])
        lines = _curves(left)
        _set_curves(lines, self.records)
        axis = right.subplots()
        axis.set_axis_off()
        if self.grid is not None:
            axis.imshow(read_png(self.grid)[0])  # a regular file of a sane size only
            axis.set_title(f"newest grid: {self.grid.name}", fontsize=9)
        figure.suptitle("\n".join([self.status(), *self.alerts()]), fontsize=9, ha="left", x=0.01,
                        color="firebrick" if self.alerts() else "black")
        return figure

    # ---- internals --------------------------------------------------------------------------------

    def _read_quality(self) -> None:
        path = self.run_dir / QUALITY_FILE
        stamp = path.stat().st_mtime_ns if path.is_file() else None
        if stamp != self._quality_stamp:  # the file changes only at sample epochs
            self._quality_stamp, self.quality = stamp, read_quality(path)

    def _build_widget(self) -> None:
        import ipywidgets as widgets

        self.status_html = widgets.HTML()
        self.alert_html = widgets.HTML()
        self.curves_image = widgets.Image(format="png")
        self.grid_image = widgets.Image(format="png", layout=widgets.Layout(width=GRID_WIDTH))
        self.widget = widgets.VBox([self.status_html, self.alert_html, widgets.HBox([self.curves_image, self.grid_image])])
        self.widget.add_class("gan-live-panel")

    def _redraw(self, *, grid: bool) -> None:
        """Update the widgets; the grid's image is replaced only when a new grid was written.

        The images go first and the status text last, so text naming an epoch means its pictures are there.
        """
        if self.records:
            _set_curves(self.lines, self.records)
            buffer = io.BytesIO()
            self.figure.savefig(buffer, format="png")
            self.curves_image.value = buffer.getvalue()
        if grid and self.grid is not None:
            self.grid_image.value = self.grid.read_bytes()
        self.alert_html.value = "".join(f"<div style='color:#b22222'>{html.escape(line)}</div>" for line in self.alerts())
        self.status_html.value = f"<b>training</b> {html.escape(self.status())}"


def _curves(figure, thresholds: Thresholds = Thresholds()) -> dict:
    """Two empty plots on `figure`: the losses, and D(x) and D(G(z)) with point 10's thresholds dashed."""
    from matplotlib.ticker import MaxNLocator

    losses, probabilities = figure.subplots(1, 2)
    style = {"marker": "o", "markersize": 2.5}  # a marker per epoch: the first epoch shows as a point
    lines = {name: losses.plot([], [], label=name, **style)[0] for name in ("loss_D", "loss_G")}
    lines |= {name: probabilities.plot([], [], label=label, **style)[0] for name, label in (("D_x", "D(x)"), ("D_G_z", "D(G(z))"))}
    for value in (thresholds.d_g_z_low, thresholds.d_x_high, thresholds.d_g_z_high):
        probabilities.axhline(value, color="grey", linestyle="--", linewidth=0.8)
    probabilities.set_ylim(0, 1)
    for axis, title in ((losses, "mean loss per epoch"), (probabilities, "mean D output per epoch")):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.set_xlabel("epoch")
        axis.set_title(title, fontsize=10)
        axis.legend(fontsize=8, loc="upper right")
    lines["axes"] = (losses, probabilities)
    return lines


def _set_curves(lines: dict, records: list[dict]) -> None:
    epochs = [r["epoch"] for r in records]
    for name in ("loss_D", "loss_G", "D_x", "D_G_z"):
        lines[name].set_data(epochs, [r[name] for r in records])
    losses, probabilities = lines["axes"]
    losses.relim()
    losses.autoscale_view()
    for axis in (losses, probabilities):
        axis.set_xlim(epochs[0] - 0.5, epochs[-1] + 0.5)
