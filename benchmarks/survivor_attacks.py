"""Attacks that a protocol does not contain, tried on the samples it counts robust.

`reliable` promises that no attack fools a sample it counts robust. This runs the protocol on the
first N test images, then each candidate below alone on its survivors (another seed, the same
decision rule), and prints how many each fooled: a candidate that fools more than re-seeding does
is a weakness of the protocol. The candidates are the families of the evaluation-strength issue:
gradient estimators through the sampling, more optimisation on the coding's expectation, and
transfer with momentum and input diversity from ensembles; and sharper surrogates, which the audit
of the PGD-trained SNN found.

    python benchmarks/survivor_attacks.py --model fmnist_snn_poisson -n 200 [--protocol reliable] [--only NAME ...] [--json]

(``--protocol none`` makes every correctly classified image a survivor.)
"""

from __future__ import annotations

import json
import time

import click

from robustbench_snn import attack, load_model, load_test_set
from robustbench_snn.attacks import Protocol
from robustbench_snn.attacks.protocol import AttackSpec

CANDIDATES = {
    **{
        f"relaxed@{temperature}-50x2-cw": {
            "attack": "pgd",
            "steps": 50,
            "restarts": 2,
            "eot": 8,
            "estimator": "relaxed",
            "temperature": temperature,
            "loss": "cw",
        }
        for temperature in (0.003, 0.01, 0.03, 0.1, 0.3)
    },
    **{
        f"relaxed-logit@{temperature}-50x2-cw": {
            "attack": "pgd",
            "steps": 50,
            "restarts": 2,
            "eot": 8,
            "estimator": "relaxed-logit",
            "temperature": temperature,
            "loss": "cw",
        }
        for temperature in (0.1, 0.5, 2.0)
    },
    "relaxed@0.03-20": {"attack": "pgd", "steps": 20, "eot": 8, "estimator": "relaxed", "temperature": 0.03},
    "relaxed-eot32-50-cw": {"attack": "pgd", "steps": 50, "eot": 32, "estimator": "relaxed", "loss": "cw"},
    "relaxed@0.01-apgd-dlr-100x2": {
        "attack": "apgd-dlr",
        "steps": 100,
        "restarts": 2,
        "eot": 8,
        "estimator": "relaxed",
        "temperature": 0.01,
    },
    "straight-through-50x2-cw": {"attack": "pgd", "steps": 50, "restarts": 2, "eot": 8, "loss": "cw"},
    "score-function": {"attack": "pgd", "steps": 20, "eot": 8, "estimator": "score-function"},
    "score-function-eot64-50-cw": {"attack": "pgd", "steps": 50, "eot": 64, "estimator": "score-function", "loss": "cw"},
    "straight-through-eot32-50-cw": {"attack": "pgd", "steps": 50, "eot": 32, "loss": "cw"},
    "expectation-apgd-ce-100x4": {"attack": "apgd-ce", "steps": 100, "restarts": 4, "source": "expectation"},
    "expectation-pgd-400-cw": {"attack": "pgd", "steps": 400, "source": "expectation", "loss": "cw"},
    "expectation-pgd-100x4-cw": {"attack": "pgd", "steps": 100, "restarts": 4, "source": "expectation", "loss": "cw"},
    "expectation-pgd-200x8-cw": {"attack": "pgd", "steps": 200, "restarts": 8, "source": "expectation", "loss": "cw"},
    "expectation-sapgd-100x4-cw": {"attack": "sapgd", "steps": 100, "restarts": 4, "source": "expectation", "loss": "cw"},
    "mi-di-expectation+twin-50x4-cw": {"attack": "mi-di-fgsm", "steps": 50, "restarts": 4, "source": "expectation+twin", "loss": "cw"},
    "sharp-atan@4-20": {"attack": "pgd", "steps": 20, "grad": "bptt", "surrogate": "atan", "surrogate_alpha": 4.0},
    "sharp-atan@8-20": {"attack": "pgd", "steps": 20, "grad": "bptt", "surrogate": "atan", "surrogate_alpha": 8.0},
    "sharp-atan@4-50x2-cw": {
        "attack": "pgd",
        "steps": 50,
        "restarts": 2,
        "grad": "bptt",
        "surrogate": "atan",
        "surrogate_alpha": 4.0,
        "loss": "cw",
    },
    "hart@0.5-20": {"attack": "pgd", "steps": 20, "grad": "hart", "surrogate_alpha": 0.5},
    "sharp-atan@3-50x2-cw": {"attack": "pgd", "steps": 50, "restarts": 2, "surrogate": "atan", "surrogate_alpha": 3.0, "loss": "cw"},
    "sharp-atan@8-50x2-cw": {"attack": "pgd", "steps": 50, "restarts": 2, "surrogate": "atan", "surrogate_alpha": 8.0, "loss": "cw"},
    "sharp-sigmoid@8-50x2-cw": {"attack": "pgd", "steps": 50, "restarts": 2, "surrogate": "sigmoid", "surrogate_alpha": 8.0, "loss": "cw"},
    "mi-di-ensemble-50-cw": {
        "attack": "mi-di-fgsm",
        "steps": 50,
        "source": "expectation+twin+fmnist_snn_direct+fmnist_ann_pgdat",
        "loss": "cw",
    },
}


@click.command()
@click.option("--model", "name", default="fmnist_snn_poisson", show_default=True)
@click.option("-n", "--n-examples", default=200, show_default=True, type=click.IntRange(min=1))
@click.option("--protocol", default="reliable", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--only", multiple=True, type=click.Choice(sorted(CANDIDATES)), help="Run only these candidates.")
@click.option("--compile/--no-compile", "compile_lif", default=True, show_default=True, help="The compiled LIF kernel (same spikes).")
@click.option("--chain", is_flag=True, help="Each candidate on the survivors of the ones before it (marginal kills).")
@click.option("--json", "as_json", is_flag=True)
def main(name, n_examples, protocol, seed, only, compile_lif, chain, as_json):
    model = load_model(name, seed=seed).compile_lif(compile_lif)
    images, labels = load_test_set("fashion-mnist", n_examples=n_examples)
    started = time.perf_counter()
    base = attack(model, images, labels, dataset="fashion-mnist", attack=protocol, seed=seed)
    survivors = base.robust
    result = {"model": name, "n_examples": n_examples, "protocol": protocol, "survivors": int(survivors.sum())}
    result["protocol_seconds"] = round(time.perf_counter() - started, 1)
    eval_draws = 4 if getattr(model, "stochastic", False) else 1
    for key in only or CANDIDATES:
        started = time.perf_counter()
        candidate = Protocol(name=key, members=[AttackSpec(eps=0.1, **CANDIDATES[key])], eval_draws=eval_draws)
        alone = attack(model, images[survivors], labels[survivors], dataset="fashion-mnist", attack=candidate, seed=seed + 1)
        result[key] = {"fooled": int((~alone.robust).sum()), "seconds": round(time.perf_counter() - started, 1)}
        if chain:
            survivors = survivors.clone()
            survivors[survivors.nonzero().flatten()] = alone.robust
        if not as_json:
            left = f" ({int(survivors.sum())} left)" if chain else ""
            click.echo(
                f"{key:<34} fooled {result[key]['fooled']:>4} of {result['survivors']} survivors{left}  {result[key]['seconds']:>6.0f} s"
            )
    if as_json:
        click.echo(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
