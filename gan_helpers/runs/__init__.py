"""Run bookkeeping: run folders, checkpoints, records, resume, experiments and profiles, shipped results."""
