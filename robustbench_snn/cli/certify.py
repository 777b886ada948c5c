"""``rsc-bench certify``: certified robustness by randomized smoothing."""

from __future__ import annotations

import click

from robustbench_snn.cli import options
from robustbench_snn.cli.app import main


@main.command()
@options.model
@options.checkpoint
@click.option(
    "--sigma",
    type=options.FiniteFloat(min=0, min_open=True),
    help="RSC models: their noise level [default: the card's]; models without noise: certify them smoothed with N(0, sigma^2).",
)
@click.option("--n0", default=100, show_default=True, type=click.IntRange(min=1), help="Draws that select the predicted class.")
@click.option(
    "--draws",
    "draws",
    default=10000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Noise draws that bound its probability (not -n, the number of images).",
)
@click.option(
    "--alpha",
    default=0.001,
    show_default=True,
    type=click.FloatRange(0, 0.5, min_open=True, max_open=True),
    help="Failure probability of each certificate.",
)
@click.option("-n", "--n-examples", default=500, show_default=True, type=click.IntRange(min=1), help="Certify the first N test images.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(min=1), help="Images sampled together.")
@options.seed
@click.option("--compile", "compile_lif", is_flag=True, help="Run LIF layers through the compiled kernel.")
@options.data_dir
@options.device
@options.storing_results
@click.option("--no-store", is_flag=True, help="Do not store the result row.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary (with per-image results) as JSON.")
@options.quiet
def certify(
    model_name,
    checkpoint,
    sigma,
    n0,
    draws,
    alpha,
    n_examples,
    batch_size,
    seed,
    compile_lif,
    data_dir,
    device,
    results_dir,
    no_store,
    as_json,
    quiet,
):
    """Certified robustness by randomized smoothing: a provable radius per test image.

    RSC-I models get the L2 certificate of Gaussian smoothing (Cohen et al. 2019), RSC-II the
    same divided by sqrt(T), Poisson-coded models the L1 certificate of rate coding (Mukhoty et
    al. 2024); models without noise are certified smoothed with --sigma. Prints certified
    accuracy at a grid of radii and the mean radius; stores one row (protocol certify). The
    progress bar shows the images certified so far. Each batch's noise is seeded by its index: a
    stored run resumes after a kill from its last finished batch, and launched by torchrun
    (``torchrun --nproc-per-node N -m robustbench_snn certify ...``) the ranks share the batches
    and give the single process's row.
    """
    from robustbench_snn.certify import certify_images
    from robustbench_snn.evaluation.distributed import is_main_process
    from robustbench_snn.registry import load_model
    from robustbench_snn.store import ensure_writable
    from robustbench_snn.store import results_dir as results_store_dir

    if not no_store:
        ensure_writable(results_store_dir(results_dir))
    model = load_model(model_name, checkpoint=checkpoint, device=device, seed=seed).compile_lif(compile_lif)
    summary, row = certify_images(
        model,
        sigma=sigma,
        n0=n0,
        draws=draws,
        alpha=alpha,
        n_examples=n_examples,
        batch_size=batch_size,
        seed=seed,
        data_dir=data_dir,
        device=device,
        store=not no_store,
        results_dir=results_dir,
        progress=not quiet,
    )
    if not is_main_process():
        return  # rank 0 of a torchrun launch prints
    if as_json:
        options.print_json({**row, "samples": summary.samples})
        return
    click.echo(f"{'model':<18} {summary.model}")
    click.echo(
        f"{'certificate':<18} {summary.certificate}: {summary.norm}"
        + (f", sigma {summary.sigma:g}" if summary.sigma is not None else "")
        + f", T={summary.timesteps}"
    )
    click.echo(f"{'sampling':<18} n0={n0}, n={draws}, alpha={alpha:g}, {summary.n_examples} test images, seed {seed}")
    click.echo(f"{'smoothed accuracy':<18} {100 * summary.smoothed_accuracy:.2f}% (abstained {100 * summary.abstained:.1f}%)")
    click.echo(f"{'mean radius':<18} {summary.mean_radius:.4f} ({summary.norm})")
    click.echo(f"{'certified accuracy':<18} " + ", ".join(f"r={radius}: {100 * value:.1f}%" for radius, value in summary.curve.items()))
    click.echo(f"{'run time':<18} {summary.runtime_s:.1f} s ({summary.draws_per_second:.0f} draws/s)")
    if not no_store:
        click.echo(f"{'stored in':<18} {results_store_dir(results_dir) / (summary.dataset + '.jsonl')}")
