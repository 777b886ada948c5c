"""Evaluation: run a protocol over the first n test examples and return one tidy benchmark record.

In stages, one module each: `plan` (protocol, members, sources, images, identity), `batches`
(the runner on one batch; `robustbench_snn.engine` runs every batch, resumable and sharded, as it
does audits and certificates), `assess` (flags and checks) and `record` (the row and its
provenance). Batches are seeded from ``seed`` and their index, so a run is reproducible and an
interrupted run resumes from its last finished batch with the same outcome. With
``store=True`` the record is appended to the results store and an identical configuration
already stored is reused.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

from robustbench_snn import energy
from robustbench_snn import store as store_
from robustbench_snn.attacks import Protocol, attack_batch
from robustbench_snn.data import dataset_info
from robustbench_snn.devices import resolve_device
from robustbench_snn.evaluation import distributed
from robustbench_snn.evaluation.assess import assess
from robustbench_snn.evaluation.batches import BatchResult, evaluation_work
from robustbench_snn.evaluation.calibrate import calibrated_members
from robustbench_snn.evaluation.inputs import check_images, check_labels, check_model
from robustbench_snn.evaluation.plan import (
    Plan,
    Twin,
    check_run,
    logit_margin,
    model_hash,
    plan_evaluation,
    plan_members,
    prepare,
    preset_unmodified,
    resolve_protocol,
)
from robustbench_snn.evaluation.record import EvaluationRecord, build_record
from robustbench_snn.evaluation.stored_run import StoredRun
from robustbench_snn.models.nir_graphs import as_model
from robustbench_snn.seeds import batch_seed

logger = logging.getLogger(__name__)

__all__ = [
    "AttackResult",
    "EvaluationRecord",
    "Plan",
    "attack",
    "benchmark",
    "model_hash",
    "plan_evaluation",
    "plan_members",
    "preset_unmodified",
]


@dataclass
class AttackResult:
    """What `attack` returns, per sample in the order given."""

    adversarial: torch.Tensor  # the input that fooled the model, else the clean input
    clean: torch.Tensor  # correct on the clean input (under the decision rule)
    robust: torch.Tensor  # correct, and every member failed
    fooled_by: list[str | None]  # the member that fooled the sample
    attacks: list[str]  # the members that ran
    skipped: list[str]  # members that could not run on this model, and why

    @property
    def robust_accuracy(self) -> float:
        return float(self.robust.float().mean())


def attack(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    dataset: str,
    attack: str | Protocol = "pgd",
    overrides: dict | None = None,
    seed: int = 0,
    batch_size: int = 128,
    device: str = "cpu",
    twin: Twin = None,
) -> AttackResult:
    """Attack ``images`` (in [0, 1]) with a protocol and return the adversarial examples.

    The same runner as `benchmark` (every member on the samples still robust, EOT and the
    decision rule for stochastic models), on your own tensors, with nothing stored and no checks.
    A protocol that searches attack settings chooses them on the last test images of ``dataset``
    (`evaluation.calibrate`), loaded for it: attack other images than those.
    ``dataset`` sets the default threat model (eps) and is not loaded; ``twin`` as in `benchmark`.
    """
    check_run(seed, batch_size)
    model = as_model(model)
    info = dataset_info(dataset)
    check_labels(labels, len(check_images(images, info)), info)
    device = resolve_device(device)
    check_model(model, images[:8].to(device), info)
    protocol = resolve_protocol(attack, overrides, dataset)
    model, protocol, members, sources, skipped = prepare(model, protocol, images[:8].to(device), device, seed, dataset, twin)
    logit_margin(model, members, images[:8].to(device))
    members, _ = calibrated_members(model, members, dataset, None, 0, protocol, seed, sources)
    parts = []
    for index, start in enumerate(range(0, len(images), batch_size)):
        batch = images[start : start + batch_size].to(device), labels[start : start + batch_size].to(device)
        parts.append(
            attack_batch(model, protocol, members, *batch, batch_seed(seed, index), sources, count_gradients=False, keep_adversarial=True)
        )
    return AttackResult(
        adversarial=torch.cat([part.adversarial for part in parts]).cpu(),
        clean=torch.tensor([flag for part in parts for flag in part.clean]),
        robust=torch.tensor([flag for part in parts for flag in part.robust]),
        fooled_by=[who for part in parts for who in part.fooled_by],
        attacks=[member.label() for member in members],
        skipped=skipped,
    )


def benchmark(
    model: nn.Module,
    *,
    dataset: str | None = None,
    attack: str | Protocol = "none",
    n_examples: int | None = 1000,
    seed: int = 0,
    batch_size: int = 128,
    data_dir: str | None = None,
    device: str = "cpu",
    overrides: dict | None = None,
    store: bool = False,
    force: bool = False,
    results_dir: str | None = None,
    save_samples: bool = False,
    progress: bool = False,
    compile_lif: bool | None = None,
    model_name: str | None = None,
    twin: Twin = None,
) -> EvaluationRecord:
    """Evaluate ``model`` (from `load_model`, a NIR graph, or any module mapping [0, 1] images to logits).

    ``attack`` is a preset name, an attack name, ``none`` (clean accuracy only) or a `Protocol`;
    ``overrides`` replaces protocol fields (eps, steps, grad, surrogate, eot, eval_draws, ...).
    A `SmoothedClassifier` is also certified on every batch, and its record's protocol is
    ``<name>-smoothed``, with the ``below_certified`` check. ``compile_lif`` runs the LIF layers
    through the compiled kernel (same spikes); by default it does when the attack work pays for
    the compilation (`compile_pays`). ``model_name`` names an unregistered model's rows (default:
    its class name); a registered model is always named by its card. ``twin`` is the ANN that
    transfer members (``source: twin``) craft on: your own module or a registered name; by default
    the registered twin of a registered model, and the dataset's reference ANN for yours.
    """
    ranks = distributed.join(str(device))
    plan = plan_evaluation(
        as_model(model),
        dataset=dataset,
        attack=attack,
        n_examples=n_examples,
        seed=seed,
        batch_size=batch_size,
        data_dir=data_dir,
        device=ranks.device(str(device)),
        overrides=overrides,
        compile_lif=compile_lif,
        model_name=model_name,
        twin=twin,
    )
    run = StoredRun(ranks, keep=store, results_dir=results_dir)
    if store and not force:
        row = run.stored_row(plan.dataset, plan.config_hash)
        if row is not None:
            logger.info("reusing stored result %s (pass force=True to recompute)", plan.config_hash)
            return EvaluationRecord.from_row(row)
    run.check_folder()
    if store:
        store_.regular_or_absent(store_.results_dir(results_dir) / f"{plan.dataset}.jsonl")
    # The row's run time counts the searches and the checks as well as the batches: they are the protocol's cost too.
    started = time.perf_counter()
    plan = plan.calibrated(data_dir)
    calibration_seconds = time.perf_counter() - started
    batches, seconds, gather_seconds = run.run(plan.config_hash, evaluation_work(plan), progress)
    record = None
    if ranks.is_main:
        outcomes = [BatchResult.from_dict(part) for part in batches.in_order()]
        started = time.perf_counter()
        flags, details = assess(plan, outcomes, progress)
        assessment_seconds = time.perf_counter() - started
        record = build_record(plan, outcomes, flags, details, calibration_seconds + seconds + assessment_seconds)
        record.ranks, record.gather_s = ranks.world, round(gather_seconds, 3)
        run.finish(lambda: store_.append_row(record.as_dict(), results_dir, replace=force))
        if save_samples:
            save_sample_outcomes(record, outcomes, results_dir)
        logger.info(
            "%s on %s under %s: clean %.4f robust %s flags %s",
            record.model,
            record.dataset,
            record.protocol,
            record.clean_accuracy,
            record.robust_accuracy,
            flags or "none",
        )
    return ranks.share(record)


def save_sample_outcomes(record: EvaluationRecord, outcomes: list[BatchResult], results_dir: str | None) -> None:
    """Per-sample outcomes (label, clean, robust, fooling member; spikes, SynOps, MACs and energy of
    the clean and the final adversarial input) beside the results, named by the row's identity."""
    columns = {
        "index": range(record.n_examples),
        "label": [label for part in outcomes for label in part.labels],
        "clean_correct": [flag for part in outcomes for flag in part.clean],
        "robust": [flag for part in outcomes for flag in part.robust],
        "fooled_by": [who for part in outcomes for who in part.fooled_by],
    }
    for inputs in ("clean", "adversarial"):
        parts = [part.energy[inputs] for part in outcomes]
        if any(part is None for part in parts):
            continue
        for count in ("spikes", "synops", "macs"):
            columns[f"{count}_{inputs}"] = [value for part in parts for value in part[count]]
        columns[f"energy_pj_{inputs}"] = [value for part in parts for value in energy.per_image_energy(part)]
    store_.save_samples(pd.DataFrame(columns), record.config_hash, results_dir)
