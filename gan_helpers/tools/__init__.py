"""The command line: cli (the table of commands, flags built from TrainConfig) and train; the other commands live beside the package, in commands/ and report/."""
