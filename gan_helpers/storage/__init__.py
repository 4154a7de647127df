"""Generic file handling below everything that writes or reads a run: atomic writes and appends, run-folder locks,
regular files only, checked JSON-lines records."""
