"""Run bookkeeping: run folders, checkpoints, records, resume, experiments and parameter sets, shipped results."""
