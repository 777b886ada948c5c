"""Provenance of a stored number: the code, the versions and the commit that made it, and when.

Every stored row (an evaluation, a certificate) carries `stamp()`; a result is reused only
while `code_version()` is unchanged.
"""

from __future__ import annotations

import functools
import hashlib
import platform
import subprocess
from datetime import datetime, timezone
from importlib import metadata

from robustbench_snn.shipped import CHECKOUT, PACKAGE, in_checkout

# Parts of the package that only present or locate numbers: a change there changes no result.
PRESENTATION = frozenset(
    {
        "cli",
        "plots.py",
        "tables.py",
        "leaderboard",
        "__main__.py",
        "shipped.py",
        "zoo",
        "robustbench.py",
        "provenance.py",
    }
)


@functools.cache
def code_version() -> str:
    """A hash of the package's code that computes numbers (everything but its presentation), so a
    stored result is never reused after that code changed."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] not in PRESENTATION:
            digest.update(str(relative).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def versions() -> dict[str, str]:
    """Versions that a result depends on."""
    found = {"python": platform.python_version()}
    for package in ("robustbench-snn", "torch", "spikingjelly", "pyautoattack"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "unknown"
    return found


def git_commit() -> str:
    """The checkout's commit, or "unknown" for an installed package (whatever repository it sits in)."""
    if not in_checkout():
        return "unknown"
    try:
        result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=CHECKOUT, capture_output=True, text=True, timeout=10)
    except OSError:
        return "unknown"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def stamp() -> dict:
    """The provenance fields of a stored row: code version, package versions, commit, UTC time."""
    return {
        "code_version": code_version(),
        "versions": versions(),
        "git_commit": git_commit(),
        "timestamp": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
