"""The command line (one module per command), bench, notebook execution and the report build."""
