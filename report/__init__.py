"""The lab report's build (``python -m gan_helpers report``): execute notebooks 01–06, merge them, render report/lab_report.pdf.

It sits beside the ``gan_helpers`` package and imports it, never the reverse:
no notebook loads it. The modules: :mod:`report.reading` (title page
settings, notebooks, point headings), :mod:`report.cleaning` (what the PDF
leaves out), :mod:`report.front` (front matter), :mod:`report.tables`,
:mod:`report.merge`, :mod:`report.observations` (a shipped result's written
observations), :mod:`report.layout` (print checks), :mod:`report.render`
(xelatex or Chromium), :mod:`report.pdfcheck` (what a grader sees) and
:mod:`report.build` (the whole job). The code the PDF prints and where each
point's code is: :mod:`gan_helpers.listing`.
"""
