"""The commands of ``python -m gan_helpers COMMAND`` that neither the notebooks nor training load: building and
cleaning data sets (data, prepare, crawl), training (train), following a run (watch), measuring speed (bench) and
scoring a run's checkpoints (evaluate). They import ``gan_helpers``, never the reverse; export, notebooks and report
live in ``report/``."""
