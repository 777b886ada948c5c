"""The audit: every attack family alone on the same images and seed, beside the protocol it tests.

`reliable` promises that no attack we know of fools a sample it counts robust. The audit checks
that promise on one model: it runs each member of the ``audit`` preset alone, and the protocol
(``reliable``) itself, batch by batch with the seeds an evaluation uses, so the protocol's
per-sample outcomes are those of its stored row. The noise of re-deciding a stochastic model is
measured in the same run: the protocol's first member again, with another seed, on the
protocol's survivors. If the audited attacks fool more of the survivors than that control by
more than `significant_count` of the images, the protocol is too weak on this model
(``audit_stronger``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from robustbench_snn import store as store_
from robustbench_snn.attacks import Protocol, attack_batch, build_protocol
from robustbench_snn.attacks.flags import fooled, significant_count
from robustbench_snn.attacks.protocol import AttackSpec
from robustbench_snn.data import dataset_info, first_examples, load_dataset
from robustbench_snn.engine import ImageBatches, Work
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation import distributed, plan_members
from robustbench_snn.evaluation.calibrate import calibrated_members
from robustbench_snn.evaluation.plan import components_used, model_hash
from robustbench_snn.evaluation.stored_run import StoredRun
from robustbench_snn.models.interface import row_name
from robustbench_snn.outside import outside_members
from robustbench_snn.provenance import stamp
from robustbench_snn.seeds import batch_seed

logger = logging.getLogger(__name__)

CONTROL_SEED_OFFSET = 104_729


@dataclass
class AuditEntry:
    """One attack alone: its robust accuracy, the samples only it broke, its run time."""

    attack: str
    robust_accuracy: float
    only_this: int
    fooled_protocol_survivors: int
    seconds: float


@dataclass
class AuditReport:
    """The audit of one model: each attack alone, their worst case, and the protocol against them."""

    model: str
    dataset: str
    protocol: str
    n_examples: int
    seed: int
    clean_accuracy: float
    protocol_accuracy: float
    worst_case_accuracy: float
    entries: list[AuditEntry]
    protocol_survivors: int
    broken_survivors: int
    control_kills: int
    flagged: bool
    protocol_attacks: list[str] = field(default_factory=list)
    runtime_s: float = 0.0
    protocol_version: int | None = None
    # provenance (`provenance.stamp`): the code's component versions, package versions, commit, time
    components: dict[str, int] = field(default_factory=dict)
    code_version: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str = "unknown"
    timestamp: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class AuditPlan:
    """What an audit runs on each batch: the protocol under audit, its control, and each attack of
    the suite alone, on the same images with the seeds an evaluation uses."""

    model: nn.Module
    tested: Protocol
    tested_members: list[AttackSpec]
    suite: Protocol
    suite_members: list[AttackSpec]
    sources: dict[str, nn.Module]
    images: ImageBatches
    seed: int

    @property
    def components(self) -> dict[str, int]:
        """The versions of the code the audit runs (`provenance.components`)."""
        return components_used(self.model, [*self.tested_members, *self.suite_members])

    @property
    def labels(self) -> list[str]:
        return [member.label() for member in self.suite_members]

    def run_batch(self, index: int, on_part: Callable[[int], None]) -> dict:
        """Batch ``index``'s per-sample outcomes: clean, kept by the protocol, broken by the
        control, and robust against each attack alone, with each attack's seconds."""
        started = time.perf_counter()
        images, labels = self.images[index]
        this_batch = batch_seed(self.seed, index)
        outcome = attack_batch(
            self.model, self.tested, self.tested_members, images, labels, this_batch, self.sources, count_gradients=False
        )
        on_part(0)
        survivors = torch.tensor(outcome.robust, dtype=torch.bool)
        control = torch.zeros(len(labels), dtype=torch.bool)
        on_device = survivors.to(images.device)
        control[survivors] = fooled(
            self.model,
            self.tested_members[0],
            images[on_device],
            labels[on_device],
            self.tested.rule(),
            this_batch + CONTROL_SEED_OFFSET,
            self.sources,
        ).cpu()
        on_part(1)
        alone, seconds = {}, {}
        for position, (member, label) in enumerate(zip(self.suite_members, self.labels)):
            begun = time.perf_counter()
            alone[label] = attack_batch(
                self.model, self.suite, [member], images, labels, this_batch, self.sources, count_gradients=False
            ).robust
            seconds[label] = time.perf_counter() - begun
            on_part(2 + position)
        return {
            "clean": outcome.clean,
            "kept": outcome.robust,
            "control": control.tolist(),
            "alone": alone,
            "member_seconds": seconds,
            "seconds": time.perf_counter() - started,
        }

    def work(self, protocol_name: str) -> Work:
        return Work(f"audit {protocol_name}", self.images.lengths(), len(self.suite_members) + 2, self.run_batch, audit_counts)

    def identity(self, dataset: str) -> str:
        """The audit's configuration as a hash: the same one resumes the same batches."""
        described = {
            "kind": "audit",
            "model": model_hash(self.model),
            "dataset": dataset,
            "tested": self.tested.model_dump(mode="json"),
            "suite": self.suite.model_dump(mode="json"),
            "members": [member.label() for member in (*self.tested_members, *self.suite_members)],
            "n_examples": len(self.images.examples),
            "batch_size": self.images.batch_size,
            "seed": self.seed,
            "components": self.components,
        }
        return "audit-" + store_.config_hash(described)


def audit_counts(outcomes: list[dict]) -> dict[str, int]:
    """The protocol's survivors so far, shown on the progress bar."""
    return {"clean": sum(sum(part["clean"]) for part in outcomes), "kept": sum(sum(part["kept"]) for part in outcomes)}


def plan_audit(
    model: nn.Module,
    dataset: str,
    protocol: str,
    attacks: str,
    n_examples: int,
    seed: int,
    batch_size: int,
    data_dir: str | None,
    device: str,
    results_dir: str | None = None,
) -> AuditPlan:
    """The audit's protocol, suite, members, sources and images, checked. The suite gains every
    stored outside attack of the dataset that lowered a number (`outside.outside_members`)."""
    info = dataset_info(dataset)
    examples = first_examples(load_dataset(dataset, "test", data_dir), n_examples)
    sample = examples[0][0].unsqueeze(0).to(device)
    tested = build_protocol(protocol).resolved(info)
    suite = build_protocol(attacks, {"eval_draws": tested.eval_draws, "sequential": tested.sequential}).resolved(info)
    if not tested.members:
        raise UserError(f"the protocol under audit must attack; {protocol!r} has no attack members")
    tested_members, sources, _ = plan_members(model, tested, sample, device, seed, dataset)
    suite_members, suite_sources, _ = plan_members(model, suite, sample, device, seed, dataset)
    submitted = outside_members(dataset, results_dir)
    if submitted:
        extra, extra_sources, _ = plan_members(
            model, Protocol(name="outside", members=submitted, eval_draws=suite.eval_draws), sample, device, seed, dataset
        )
        known = {member.label() for member in suite_members}
        suite_members += [member for member in extra if member.label() not in known]
        suite_sources = {**suite_sources, **extra_sources}
    tested_members, _ = calibrated_members(model, tested_members, dataset, data_dir, n_examples, tested, seed, sources)
    suite_members, _ = calibrated_members(model, suite_members, dataset, data_dir, n_examples, suite, seed, suite_sources)
    labels = [member.label() for member in suite_members]
    if len(set(labels)) != len(labels):
        raise UserError(f"the audit preset {attacks!r} names one attack twice")
    images = ImageBatches(examples, batch_size, device)
    return AuditPlan(model, tested, tested_members, suite, suite_members, {**sources, **suite_sources}, images, seed)


def summarise(plan: AuditPlan, outcomes: list[dict], name: str, dataset: str, runtime_s: float) -> AuditReport:
    """The report of an audit's batch outcomes."""
    clean = [flag for part in outcomes for flag in part["clean"]]
    kept = [flag for part in outcomes for flag in part["kept"]]
    control = [flag for part in outcomes for flag in part["control"]]
    labels_ = plan.labels
    alone = {label: [flag for part in outcomes for flag in part["alone"][label]] for label in labels_}
    seconds = {label: sum(part["member_seconds"][label] for part in outcomes) for label in labels_}
    n = len(clean)
    every = [all(values) for values in zip(kept, *alone.values())]
    entries = []
    for label in labels_:
        others = [alone[other] for other in labels_ if other != label]
        only = sum(not mine and all(rest) for mine, *rest in zip(alone[label], kept, *others))
        broke = sum(survived and not mine for survived, mine in zip(kept, alone[label]))
        entries.append(AuditEntry(label, sum(alone[label]) / n, only, broke, round(seconds[label], 1)))
    broken = sum(survived and not all_hold for survived, all_hold in zip(kept, every))
    control_kills = sum(control)
    return AuditReport(
        model=name,
        dataset=dataset,
        protocol=plan.tested.name,
        n_examples=n,
        seed=plan.seed,
        clean_accuracy=sum(clean) / n,
        protocol_accuracy=sum(kept) / n,
        worst_case_accuracy=sum(every) / n,
        entries=entries,
        protocol_survivors=sum(kept),
        broken_survivors=broken,
        control_kills=control_kills,
        flagged=broken - control_kills > significant_count(n),
        protocol_attacks=[member.label() for member in plan.tested_members],
        runtime_s=round(runtime_s, 1),
        protocol_version=plan.tested.version,
        **stamp(plan.components),
    )


def audit(
    model: nn.Module,
    *,
    dataset: str | None = None,
    protocol: str = "reliable",
    attacks: str = "audit",
    n_examples: int = 1000,
    seed: int = 0,
    batch_size: int = 128,
    data_dir: str | None = None,
    device: str = "cpu",
    progress: bool = False,
    store: bool = False,
    results_dir: str | None = None,
) -> AuditReport:
    """Audit ``protocol`` on ``model`` against every member of the ``attacks`` preset run alone.

    Run by the evaluation's engine: sharded when launched by ``torchrun`` (rank 0 summarises, every
    rank gets the report) and, with ``store``, resumable (finished batches are kept in the results
    folder until the audit is appended to its ``audits/`` store).
    """
    card = getattr(model, "card", None)
    dataset = dataset or (card.dataset if card is not None else None)
    if dataset is None:
        raise UserError("name the dataset of an unregistered model")
    ranks = distributed.join(str(device))
    device = ranks.device(str(device))
    run = StoredRun(ranks, keep=store, results_dir=results_dir)
    run.check_folder()  # before the planning, which calibrates attacks
    plan = plan_audit(model.to(device).eval(), dataset, protocol, attacks, n_examples, seed, batch_size, data_dir, device, results_dir)
    batches, seconds, _ = run.run(plan.identity(dataset), plan.work(protocol), progress)
    report = None
    if ranks.is_main:
        report = summarise(plan, batches.in_order(), row_name(model), dataset, seconds)
        checkpoint = getattr(model, "checkpoint_sha256", None)
        run.finish(lambda: store_.append_audit({**report.as_dict(), "checkpoint_sha256": checkpoint}, results_dir))
    return ranks.share(report)
