"""The lab report (``python -m gan_helpers report``): execute notebooks 01–06, merge them, render report/lab_report.pdf.

    python -m gan_helpers report [--profile smoke|quick|full] [--data DIR] [--render-only] [--source auto|shipped|train]

The executed notebooks land in ``build/<profile>/``; the merged notebook and
the files of the rendering in ``build/<profile>/report/``. With the full
profile, a shipped result in ``results/reference/`` stands in for training
when it fits (:mod:`gan_helpers.runs.shipped`). The modules:
:mod:`~report.reading` (title page settings, notebooks, point
headings), :mod:`~report.cleaning` (what the PDF leaves out),
:mod:`~gan_helpers.listing` (the code the PDF prints, where each
point's code is), :mod:`~report.front` (front matter),
:mod:`~report.tables`, :mod:`~report.merge`,
:mod:`~report.observations` (a shipped result's written observations),
:mod:`~report.layout` (print checks),
:mod:`~report.render` (xelatex or Chromium) and
:mod:`~report.build` (the whole job).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from gan_helpers.runs.parameter_sets import data_argument
from gan_helpers.runs.profiles import resolve_profile
from gan_helpers.paths import ensure_folder

HELP = "Execute notebooks 01-06 with a parameter set and render the lab report (report/lab_report.pdf)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="", help="parameter set: smoke, quick or full (default: $PROFILE, else full on a GPU or when the shipped result fits it, quick otherwise)")
    parser.add_argument("--data", default=None, help="image folder replacing the experiment's data set (default: the parameter set's)")
    parser.add_argument("--render-only", action="store_true", help="skip execution; render from the executed notebooks in build/PROFILE/")
    parser.add_argument("--renderer", choices=["auto", "latex", "html"], default="auto", help="latex (xelatex), html (Chromium) or auto: latex when installed")
    parser.add_argument("--pdf", default=None, help="where to write the PDF (default: report/lab_report.pdf)")
    parser.add_argument("--runs-source", default="", help="the title page's line on where the training figures come from (default: computed)")
    parser.add_argument("--source", choices=["auto", "shipped", "train"], default=None,
                        help="the shipped result results/reference instead of training (shipped), never (train), or for the "
                             "full profile when it fits (auto; default: $LAB_SOURCE, else auto)")


def run(args: argparse.Namespace) -> int:
    from report.build import PDF, build

    profile = resolve_profile(args.profile, args.data)
    data = data_argument(args.data) if args.data else None
    pdf = Path(args.pdf).expanduser().resolve() if args.pdf else PDF
    if args.pdf:  # a wrong path costs no wait: one sentence before any notebook runs

        ensure_folder(pdf.parent, "PDF's folder")
    build(profile, data, render_only=args.render_only, renderer=args.renderer, pdf=pdf, runs_source=args.runs_source,
          source=args.source or "")
    return 0
