"""The ``rsc-bench`` command line: the only place that prints.

One module per command group; each adds its commands to `main` (see `app` for the conventions
on errors and exit codes shared by all of them).
"""

from robustbench_snn.cli import audit, browse, certify, energy, evaluate, leaderboard, results, submit, sweep, train  # noqa: F401
from robustbench_snn.cli.app import main

__all__ = ["main"]
