"""What the notebooks' live panel costs per epoch, measured in one training run.

One run of the full profile's settings (all images, batch 8) trains
``--epochs`` epochs in a temporary runs folder; the live panel's hook runs
after every other epoch (odd epochs) and is skipped after the others, so
epochs with and without it alternate under the same machine load. The
panel redraws as in JupyterLab (ipywidgets, interactive), and the full
profile samples every epoch of the first 20, so each of its calls also
replaces the grid: the most a call costs. Printed: each epoch's wall time
(training, the run's own hooks, the panel when on), the panel's own time
per call, and the panel's share of the mean epoch and of the training
steps alone (an epoch after the 20th that neither samples nor saves).

    .venv/bin/python tools/panel_cost.py --epochs 4
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gan_helpers.errors import UserError  # noqa: E402
from gan_helpers.runs.experiment import experiment_config, train  # noqa: E402
from gan_helpers.runs.live import LivePanel  # noqa: E402


class EveryOtherEpoch:
    """A ``watch=`` that calls the real panel after odd epochs only, timing everything."""

    def __init__(self) -> None:
        self.panel = LivePanel(interactive=True)
        self.calls: list[float] = []  # seconds of each panel call
        self.ends: list[tuple[int, float]] = []  # (epoch, time its last hook returned)
        self.training: dict[int, float] = {}  # epoch: seconds of its training steps alone (fit's "seconds")

    def follow(self, run_dir, epochs, history):
        hook = self.panel.follow(run_dir, epochs, history)
        self.ends.append((0, time.perf_counter()))

        class Alternating:
            def __call__(inner, epoch: int, stats: dict) -> None:
                self.training[epoch] = stats["seconds"]
                if epoch % 2:
                    started = time.perf_counter()
                    hook(epoch, stats)
                    self.calls.append(time.perf_counter() - started)
                self.ends.append((epoch, time.perf_counter()))

            def close(inner) -> None:
                hook.close()

        return Alternating()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4, help="epochs to train (even: as many with as without)")
    parser.add_argument("--generator", default="transposed", choices=("transposed", "upsampling"))
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch's default)")
    parser.add_argument("--max-images", type=int, default=0, help="train on this many images only (0: all; for a quick try)")
    args = parser.parse_args()
    if args.epochs < 3:
        parser.error("--epochs must be at least 3: the first epoch is left out, then epochs with and without the panel alternate")
    watch = EveryOtherEpoch()
    with tempfile.TemporaryDirectory() as runs:
        try:
            config = experiment_config("full", generator=args.generator, epochs=args.epochs, runs_dir=runs,
                                       threads=args.threads, progress=False,
                                       **({"max_images": args.max_images} if args.max_images else {}))
            train(config, watch=watch)
        except UserError as error:
            raise SystemExit(f"error: {error}") from None
    walls = {epoch: end - watch.ends[i][1] for i, (epoch, end) in enumerate(watch.ends[1:])}
    for epoch, wall in walls.items():
        print(f"epoch {epoch}: {wall:.1f} s {'with' if epoch % 2 else 'without'} the panel")
    # The first epoch carries warm-up (allocation, the panel's first figure): compared from epoch 2 on.
    timed = {epoch: wall for epoch, wall in walls.items() if epoch >= 2}
    with_panel = [w for e, w in timed.items() if e % 2]
    without = [w for e, w in timed.items() if not e % 2]
    panel = statistics.mean(watch.calls[1:] or watch.calls)
    mean_epoch = statistics.mean(timed.values())
    print(f"panel call: {', '.join(f'{c * 1000:.0f}' for c in watch.calls)} ms; mean after the first {panel * 1000:.0f} ms")
    if with_panel and without:
        print(f"mean epoch with the panel {statistics.mean(with_panel):.1f} s, without {statistics.mean(without):.1f} s")
    steps = statistics.mean(s for e, s in watch.training.items() if e >= 2)
    print(f"the panel's share of a mean epoch ({mean_epoch:.1f} s): {100 * panel / mean_epoch:.2f} %; of its training "
          f"steps alone ({steps:.1f} s, an epoch that samples nothing): {100 * panel / steps:.2f} %")


if __name__ == "__main__":
    main()
