"""An example plug-in package for rsc-bench (see its pyproject.toml for the entry points)."""
