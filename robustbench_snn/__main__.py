"""``python -m robustbench_snn`` runs the rsc-bench command line."""

from robustbench_snn.cli import main

main()
