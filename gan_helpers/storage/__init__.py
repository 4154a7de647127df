"""Generic file handling below everything that writes: atomic writes and appends, run-folder locks."""
