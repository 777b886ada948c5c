"""``rsc-bench leaderboard build``: the static site from the official results and the registry."""

from __future__ import annotations

from pathlib import Path

import click

from robustbench_snn.cli import options
from robustbench_snn.cli.app import main


@main.group()
def leaderboard() -> None:
    """Build the static leaderboard site from the official results and the model registry."""


@leaderboard.command("build")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False),
    help="Folder to write the site into (the repository's committed one is leaderboard/).",
)
@click.option("--force", is_flag=True, help="Rewrite the repository's committed site (leaderboard/ of this checkout), on purpose.")
@options.site_results
@options.as_json
def leaderboard_build(out, force, results_dir, as_json):
    """Write the site: a ranked page per dataset, a page per model, the Pareto plot, the data as JSON.

    The pages open from file:// with no network. The committed site of this checkout is a tracked
    folder: rebuilding it takes --force.
    """
    from robustbench_snn.errors import UserError
    from robustbench_snn.leaderboard import build_site
    from robustbench_snn.shipped import CHECKOUT, in_checkout
    from robustbench_snn.store import ensure_writable, reading_dir

    if in_checkout() and Path(out).resolve() == (CHECKOUT / "leaderboard").resolve() and not force:
        raise UserError(f"{out} is this repository's committed leaderboard (tracked files); pass --force to rebuild it on purpose")
    reading_dir(results_dir)
    ensure_writable(Path(out))
    index = build_site(out, results_dir)
    if as_json:
        options.print_json({"index": str(index)})
    else:
        click.echo(f"wrote {index}")
