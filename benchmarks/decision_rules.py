"""`reliable` on the same images under its own decision rule (every one of eval_draws draws) and
under a sequential test with a stated error (`attacks.decision`), in one process.

For each: robust accuracy, the kills that hold when each fooling input is decided again on fresh
draws by the same rule, and the wall time. On a deterministic model both rules are one forward.

    python benchmarks/decision_rules.py --model fmnist_snn_poisson -n 200 [--right-at 0.1 --wrong-at 0.25] [--json]
"""

from __future__ import annotations

import json

import click

from robustbench_snn import benchmark
from robustbench_snn.attacks import build_protocol
from robustbench_snn.registry import load_model


@click.command()
@click.option("--model", "name", default="fmnist_snn_poisson", show_default=True)
@click.option("-n", "--n-examples", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True)
@click.option("--right-at", default=0.1, show_default=True, type=float)
@click.option("--wrong-at", default=0.25, show_default=True, type=float)
@click.option("--alpha", default=1e-4, show_default=True, type=float)
@click.option("--beta", default=0.01, show_default=True, type=float)
@click.option("--json", "as_json", is_flag=True)
def main(name, n_examples, seed, right_at, wrong_at, alpha, beta, as_json):
    model = load_model(name, seed=seed)
    test = {"right_at": right_at, "wrong_at": wrong_at, "alpha": alpha, "beta": beta}
    results = {}
    reliable = build_protocol("reliable")
    by_rule = {
        "draws": reliable.model_copy(update={"sequential": None}),  # the preset may decide by a test of its own
        "sequential": build_protocol("reliable", {"sequential": test}),
    }
    for rule, protocol in by_rule.items():
        record = benchmark(model, attack=protocol, n_examples=n_examples, seed=seed, progress=not as_json)
        kills, holding = sum(record.member_kills.values()), sum(record.member_kills_holding.values())
        results[rule] = {
            "robust_accuracy": record.robust_accuracy,
            "robust_accuracy_redecided": record.robust_accuracy_redecided,
            "clean_accuracy": record.clean_accuracy,
            "kills": kills,
            "kills_holding": holding,
            "runtime_s": record.runtime_s,
        }
    summary = {
        "model": name,
        "n_examples": n_examples,
        "seed": seed,
        "eval_draws": reliable.eval_draws,
        "sequential": test,
        "rules": results,
    }
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    click.echo(f"{name}, {n_examples} images, seed {seed}")
    for rule, row in results.items():
        click.echo(
            f"  {rule:10s} clean {100 * row['clean_accuracy']:.1f}%  robust {100 * row['robust_accuracy']:.1f}%  "
            f"re-decided {100 * row['robust_accuracy_redecided']:.1f}%  kills {row['kills']} (hold {row['kills_holding']})  "
            f"{row['runtime_s']:.0f} s"
        )


if __name__ == "__main__":
    main()
