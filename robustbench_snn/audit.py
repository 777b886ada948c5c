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
from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm import tqdm

from robustbench_snn.attacks import attack_batch, build_protocol
from robustbench_snn.attacks.flags import fooled, significant_count
from robustbench_snn.data import dataset_info, first_examples, load_dataset
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation import plan_members
from robustbench_snn.evaluation.plan import components_used
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
) -> AuditReport:
    """Audit ``protocol`` on ``model`` against every member of the ``attacks`` preset run alone."""
    card = getattr(model, "card", None)
    dataset = dataset or (card.dataset if card is not None else None)
    if dataset is None:
        raise UserError("name the dataset of an unregistered model")
    info = dataset_info(dataset)
    model = model.to(device).eval()
    examples = first_examples(load_dataset(dataset, "test", data_dir), n_examples)
    sample = examples[0][0].unsqueeze(0).to(device)
    tested = build_protocol(protocol).resolved(info)
    suite = build_protocol(attacks, {"eval_draws": tested.eval_draws}).resolved(info)
    if not tested.members:
        raise UserError(f"the protocol under audit must attack; {protocol!r} has no attack members")
    tested_members, sources, _ = plan_members(model, tested, sample, device, seed, dataset)
    suite_members, suite_sources, _ = plan_members(model, suite, sample, device, seed, dataset)
    sources.update(suite_sources)
    labels_ = [member.label() for member in suite_members]
    if len(set(labels_)) != len(labels_):
        raise UserError(f"the audit preset {attacks!r} names one attack twice")
    loader = DataLoader(examples, batch_size=batch_size, shuffle=False)
    clean, kept, control = [], [], []
    alone: dict[str, list[bool]] = {label: [] for label in labels_}
    seconds: dict[str, float] = dict.fromkeys(labels_, 0.0)
    started = time.perf_counter()
    with tqdm(total=len(examples) * (len(suite_members) + 2), desc=f"audit {protocol}", unit="img", disable=not progress) as bar:
        for index, (images, labels) in enumerate(loader):
            images, labels = images.to(device), labels.to(device)
            this_batch = batch_seed(seed, index)
            outcome = attack_batch(model, tested, tested_members, images, labels, this_batch, sources, count_gradients=False)
            clean += outcome.clean
            kept += outcome.robust
            bar.update(len(labels))
            survivors = torch.tensor(outcome.robust, dtype=torch.bool)
            reference = tested_members[0]
            control_fooled = torch.zeros(len(labels), dtype=torch.bool)
            control_fooled[survivors] = fooled(
                model,
                reference,
                images[survivors.to(device)],
                labels[survivors.to(device)],
                tested.eval_draws,
                this_batch + CONTROL_SEED_OFFSET,
                sources,
            ).cpu()
            control += control_fooled.tolist()
            bar.update(len(labels))
            for member, label in zip(suite_members, labels_):
                begun = time.perf_counter()
                alone[label] += attack_batch(model, suite, [member], images, labels, this_batch, sources, count_gradients=False).robust
                seconds[label] += time.perf_counter() - begun
                bar.update(len(labels))

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
        model=card.name if card is not None else type(model).__name__,
        dataset=dataset,
        protocol=protocol,
        n_examples=n,
        seed=seed,
        clean_accuracy=sum(clean) / n,
        protocol_accuracy=sum(kept) / n,
        worst_case_accuracy=sum(every) / n,
        entries=entries,
        protocol_survivors=sum(kept),
        broken_survivors=broken,
        control_kills=control_kills,
        flagged=broken - control_kills > significant_count(n),
        protocol_attacks=[member.label() for member in tested_members],
        runtime_s=round(time.perf_counter() - started, 1),
        protocol_version=tested.version,
        **stamp(components_used(model, [*tested_members, *suite_members])),
    )
