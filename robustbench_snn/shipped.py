"""Where the data that ships with the package lives: model cards and checkpoints, attack presets,
and the official results.

In the repository they are the top-level folders ``models/``, ``attacks/`` and ``results/``, where
contributors edit them. A built wheel carries the same folders inside the package, under
``robustbench_snn/zoo/`` (mapped in pyproject.toml), so an installed copy finds them without a
checkout. Nothing is ever written there: user runs go to the user's results folder.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
CHECKOUT = PACKAGE.parent
SHIPPED_FOLDERS = ("models", "attacks", "results")
# The environment variables that list a user's own folders of model cards and attack presets.
USER_FOLDERS_VARIABLE = {"models": "RSC_BENCH_MODELS", "attacks": "RSC_BENCH_ATTACKS"}


def shipped_folder(name: str) -> Path:
    """The shipped folder ``name`` (models, attacks or results) of this installation."""
    if name not in SHIPPED_FOLDERS:
        raise ValueError(f"no shipped folder {name!r}; one of {', '.join(SHIPPED_FOLDERS)}")
    installed = PACKAGE / "zoo" / name
    return installed if installed.is_dir() else CHECKOUT / name


def in_checkout() -> bool:
    """Whether the package runs from a git checkout of the repository (an editable install)."""
    return not (PACKAGE / "zoo").is_dir() and (CHECKOUT / ".git").exists()


def search_path(kind: str, override: str | os.PathLike | None = None) -> list[Path]:
    """Folders of ``kind`` (models or attacks) to look in, first match first: ``override`` alone if
    given, else the user's folders listed in the kind's environment variable (separated by the OS
    path separator), then the shipped one."""
    if override is not None:
        return [Path(override)]
    listed = os.environ.get(USER_FOLDERS_VARIABLE[kind], "").split(os.pathsep)
    return [*(Path(entry) for entry in listed if entry), shipped_folder(kind)]
