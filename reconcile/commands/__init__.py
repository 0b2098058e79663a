"""Extra `reconcile` subcommands, one module each, discovered by reconcile.cli: a module defines `command`, a
click.Command. Keep module imports light (no torch/tensorflow at import time)."""
