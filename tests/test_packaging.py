"""The product as a user gets it: a wheel installed into a fresh virtual environment, used from a
folder outside the repository, and a command line that answers at once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BUILT = {".git", "build", "dist", "leaderboard", ".hypothesis", ".pytest_cache"}


def _not_sources(folder: str, names: list[str]) -> set[str]:
    """What a source distribution leaves out: build outputs, caches and the built site."""
    top_level = Path(folder) == REPO
    return {name for name in names if name == "__pycache__" or name.endswith(".egg-info") or (top_level and name in BUILT)}


def test_every_subpackage_is_listed_for_the_wheel():
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(path.parent.relative_to(REPO).parts) for path in (REPO / "robustbench_snn").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"


def test_the_top_level_help_does_not_import_torch():
    code = (
        "import sys\nfrom click.testing import CliRunner\nfrom robustbench_snn.cli import main\n"
        "result = CliRunner().invoke(main, ['--help'])\nassert result.exit_code == 0, result.output\n"
        "assert 'evaluate' in result.output\nprint(sorted(name for name in sys.modules if name.split('.')[0] == 'torch'))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]", f"--help imported {output}"


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(path): (path.stat().st_size, path.stat().st_mtime_ns) for path in folder.rglob("*") if path.is_file()}


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """The wheel built from this checkout, installed without dependencies into a fresh virtual
    environment (torch and the rest come from the environment running the tests)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    shutil.copytree(REPO, source, ignore=_not_sources)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", str(source), "-w", str(base / "dist")],
        check=True,
        capture_output=True,
        cwd=base,
    )
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The dependencies come from the environment running the tests (its site-packages, added as
    # plain paths: its editable install of this checkout stays invisible), so nothing is downloaded.
    (site_packages,) = (venv / "lib").glob("python*/site-packages")
    outer = dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib"))
    (site_packages / "test_dependencies.pth").write_text("\n".join(outer) + "\n")
    (wheel,) = (base / "dist").glob("robustbench_snn-*.whl")
    subprocess.run([venv / "bin" / "python", "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True, capture_output=True)
    outside = base / "somewhere"
    outside.mkdir()
    environment = {key: value for key, value in os.environ.items() if not key.startswith("RSC_BENCH_")}
    environment.update(HOME=str(base / "home"), XDG_DATA_HOME=str(base / "data"), XDG_CACHE_HOME=str(base / "cache"), PYTHONNOUSERSITE="1")

    def run(*command: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(venv / "bin" / command[0]), *command[1:]], capture_output=True, text=True, cwd=outside, env=environment, timeout=600
        )

    package = Path(run("python", "-c", "import robustbench_snn; print(robustbench_snn.__file__)").stdout.strip()).parent
    assert package.is_relative_to(venv), f"imported {package}, not the installed wheel"
    return run, package, outside, base


@pytest.mark.slow
def test_an_installed_wheel_lists_evaluates_loads_and_builds_without_the_checkout(installed):
    run, package, outside, base = installed
    before = _snapshot(package)

    listed = run("rsc-bench", "models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    names = {card["name"] for card in json.loads(listed.stdout)}
    assert {"fmnist_ann", "fmnist_rsc1_s0.2", "fmnist_snn_poisson"} <= names and len(names) >= 13

    evaluated = run("rsc-bench", "evaluate", "--model", "fmnist_rsc1_s0.2", "--attack", "pgd", "-n", "20", "--json", "-q")
    assert evaluated.returncode == 0, evaluated.stderr
    record = json.loads(evaluated.stdout)
    assert record["n_examples"] == 20 and 0 <= record["robust_accuracy"] <= record["clean_accuracy"]
    assert record["git_commit"] == "unknown" and record["code_version"]
    assert (base / "data" / "rsc-bench" / "results" / "fashion-mnist.jsonl").is_file()

    loaded = run("python", "-c", "from robustbench_snn import load_model\nprint(load_model('fmnist_ann').card.name)")
    assert loaded.returncode == 0 and loaded.stdout.strip() == "fmnist_ann", loaded.stderr

    official = run("rsc-bench", "results", "--protocol", "reliable", "--json")
    assert official.returncode == 0, official.stderr
    assert {"fmnist_snn_poisson", "fmnist_ann_pgdat"} <= {row["model"] for row in json.loads(official.stdout)}

    built = run("rsc-bench", "leaderboard", "build", "--out", "site")
    assert built.returncode == 0, built.stderr
    assert (outside / "site" / "fashion-mnist.html").is_file()

    assert _snapshot(package) == before, "nothing may be written inside the installed package"
    assert {path.name for path in outside.iterdir()} == {"site"}, "only what the user asked for is written"
