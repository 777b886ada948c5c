"""Evaluation: run a protocol over the first n test examples and return one tidy benchmark record.

Batches are seeded from ``seed`` and their index, so a run is reproducible and an interrupted
run resumes from its last finished batch with the same outcome. With ``store=True`` the record
is appended to ``results/`` and an identical configuration already stored is reused.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from robustbench_snn import results as store_
from robustbench_snn.attacks import FLAGS, Protocol, attack_batch, build_protocol, effective_members, run_checks
from robustbench_snn.attacks.flags import (
    CHECK_EXAMPLES,
    below_certified,
    significant_count,
    stochastic_without_eot,
    zero_gradients,
)
from robustbench_snn.attacks.methods import uses_quantizers
from robustbench_snn.attacks.protocol import EXPECTATION_SOURCE, AttackSpec, official_presets
from robustbench_snn.attacks.runner import batch_seed, eot_draws, has_spiking_layers, is_smoothed, is_stochastic, normalised, unsupported
from robustbench_snn.certify import covering_radius
from robustbench_snn.data import dataset_info, first_examples, load_dataset
from robustbench_snn.errors import UserError
from robustbench_snn.models.user import as_attackable
from robustbench_snn.progress import CheckProgress, RunProgress
from robustbench_snn.provenance import code_version, stamp
from robustbench_snn.runtime import resolve_device

logger = logging.getLogger(__name__)

@dataclass
class EvaluationRecord:
    """One benchmark result: a model on a dataset under a protocol (one tidy results row)."""

    model: str
    dataset: str
    protocol: str
    attacks: list[str]
    norm: str | None
    eps: float | None
    grad: str | None
    eot: int
    eval_draws: int
    seed: int
    n_examples: int
    clean_accuracy: float
    robust_accuracy: float | None
    clean_accuracy_one_draw: float | None
    flags: list[str]
    flag_details: dict
    member_kills: dict[str, int]
    member_seconds: dict[str, float]
    skipped_members: list[str]
    stochastic: bool
    batch_size: int
    params: dict
    runtime_s: float
    checkpoint_sha256: str | None
    config_hash: str
    preset_unmodified: bool = False
    model_hash: str | None = None
    code_version: str | None = None
    lif_kernel: str | None = None
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str = "unknown"
    timestamp: str = ""
    reused: bool = False

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> "EvaluationRecord":
        known = {name: row[name] for name in cls.__dataclass_fields__ if name in row}
        return cls(**{**known, "reused": True})


def model_hash(model: nn.Module) -> str:
    """The identity of a module's exact weights: its structure (the module tree as printed, with
    its settings such as an encoder's sigma) and every parameter and buffer, bit for bit."""
    digest = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}\n{model}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode() + b"\0" + str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def preset_unmodified(model: nn.Module, protocol: Protocol) -> bool:
    """Whether ``protocol`` is the official preset of its name as shipped, eps aside: every field
    and member the same once normalised for ``model`` (a user's file named like a preset is not)."""
    shipped = official_presets()
    if protocol.name not in shipped:
        return False
    preset = build_protocol(protocol.name, directory=shipped[protocol.name].parent)

    def shape(candidate: Protocol) -> tuple:
        members = [normalised(member, model).model_copy(update={"eps": None}).model_dump() for member in candidate.members]
        return candidate.model_dump(exclude={"members", "n_examples", "description"}), members

    return shape(protocol) == shape(preset)


def _lif_kernel(model: nn.Module) -> str | None:
    """Which LIF implementation ran (the compiled kernel and spikingjelly's give the same spikes)."""
    layers = getattr(model, "spiking_layers", [])
    if not layers:
        return None
    return "compiled" if all(layer.compiled for layer in layers) else "spikingjelly"


def _summed(counters: Iterable[dict[str, float]]) -> dict[str, float]:
    """Per-key sums of the batches' counters."""
    total: dict[str, float] = {}
    for counter in counters:
        for key, value in counter.items():
            total[key] = total.get(key, 0) + value
    return total


# Image-gradient evaluations (images x steps x EOT draws) beyond which compiling the LIF kernel
# pays for itself: compiling costs tens of seconds the first time on a machine and a few seconds
# per process after that, one compiled PGD step saves about half the step's time.
COMPILE_WORTH = 20_000


def compile_pays(model: nn.Module, members: list[AttackSpec], n_examples: int) -> bool:
    """Whether an evaluation is big enough for the compiled LIF kernel to pay for its compilation."""
    work = n_examples * sum(member.steps * eot_draws(model, member) for member in members if member.uses_gradients)
    return has_spiking_layers(model) and hasattr(model, "compile_lif") and work >= COMPILE_WORTH


def _summary_fields(model: nn.Module, members: list[AttackSpec]) -> dict:
    """The threat model and the gradient settings that actually ran (no SNN mode or EOT where they do not apply)."""
    if not members:
        return {"norm": None, "eps": None, "grad": None, "eot": 1}
    grads = {member.gradient().label() for member in members if member.white_box} if has_spiking_layers(model) else set()
    return {
        "norm": members[0].norm,
        "eps": members[0].eps,
        "grad": grads.pop() if len(grads) == 1 else ("ensemble" if grads else None),
        "eot": max(eot_draws(model, member) for member in members),
    }


def resolve_sources(
    model: nn.Module, members: list[AttackSpec], device: str, seed: int
) -> tuple[list[AttackSpec], dict[str, nn.Module], list[str]]:
    """Load the source model of each transfer member ('twin': the registered ANN twin; 'expectation':
    the model fed its coding's expectation); a member whose source does not exist is skipped."""
    from robustbench_snn.registry import find_ann_twin, load_model

    sources: dict[str, nn.Module] = {}
    kept, skipped = [], []
    card = getattr(model, "card", None)

    def skip(reason: str, hint: str = "") -> None:
        if len(members) == 1:
            raise UserError(f"cannot run {reason}{hint}")
        logger.warning("skipping %s", reason)
        skipped.append(reason)

    for member in members:
        if member.attack != "transfer":
            kept.append(member)
            continue
        name = member.source
        if name == EXPECTATION_SOURCE:
            relative = model.expectation_relative() if hasattr(model, "expectation_relative") else None
            if relative is None:
                skip(f"{member.label()}: the model has no stochastic encoder with a known expectation")
                continue
            sources[name] = relative
            kept.append(member)
            continue
        if name == "twin":
            twin = find_ann_twin(card) if card is not None else None
            if twin is None:
                skip(f"{member.label()}: no registered ANN twin of {card.name if card else 'this unregistered model'}",
                     "; pass --source NAME")
                continue
            name = twin.name
        if name not in sources:
            sources[name] = load_model(name, device=device, seed=seed)
        kept.append(member.model_copy(update={"source": name}))
    return kept, sources, skipped


def plan_members(
    model: nn.Module, protocol: Protocol, sample: torch.Tensor, device: str, seed: int
) -> tuple[list[AttackSpec], dict[str, nn.Module], list[str]]:
    """The members that run on ``model`` (`effective_members`), their transfer sources and the
    members skipped; ``sample`` (one image) shows whether the model quantises its input."""
    quantized = any(member.bpda for member in protocol.members) and uses_quantizers(model, sample)
    members = effective_members(model, protocol, quantized)
    impossible = [reason for reason in map(functools.partial(unsupported, model), members) if reason]
    for reason in impossible:
        logger.warning("skipping %s", reason)
    kept, sources, skipped = resolve_sources(
        model, [member for member in members if unsupported(model, member) is None], device, seed
    )
    return kept, sources, impossible + skipped


def _check_run(seed: int, batch_size: int) -> None:
    if batch_size <= 0:
        raise UserError(f"batch size must be positive, got {batch_size}")
    if not 0 <= seed < 2**63:
        raise UserError(f"the seed must be in [0, 2^63), got {seed}")


def _protocol(attack: str | Protocol, overrides: dict | None, dataset: str) -> Protocol:
    protocol = attack if isinstance(attack, Protocol) else build_protocol(attack, overrides)
    return protocol.resolved(dataset_info(dataset))


def prepare(model: nn.Module, protocol: Protocol, probe: torch.Tensor, device: torch.device, seed: int
            ) -> tuple[nn.Module, Protocol, list[AttackSpec], dict[str, nn.Module], list[str]]:
    """The model as the runner attacks it (a user's SNN wrapped, randomness detected on ``probe``),
    the protocol normalised for it, and the members that run, their sources and the ones skipped."""
    model = as_attackable(model.to(device).eval(), probe, seed)
    protocol = protocol.model_copy(update={"members": [normalised(member, model) for member in protocol.members]})
    members, sources, skipped = plan_members(model, protocol, probe[:1], device, seed)
    return model, protocol, members, sources, skipped


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
) -> AttackResult:
    """Attack ``images`` (in [0, 1]) with a protocol and return the adversarial examples.

    The same runner as `benchmark` (every member on the samples still robust, EOT and the
    decision rule for stochastic models), on your own tensors, with nothing stored and no checks.
    ``dataset`` sets the default threat model (eps) and is not loaded.
    """
    _check_run(seed, batch_size)
    if len(images) != len(labels) or len(images) == 0:
        raise UserError(f"images and labels must be non-empty and of one length, got {len(images)} and {len(labels)}")
    device = resolve_device(device)
    protocol = _protocol(attack, overrides, dataset)
    model, protocol, members, sources, skipped = prepare(model, protocol, images[:8].to(device), device, seed)
    parts = []
    for index, start in enumerate(range(0, len(images), batch_size)):
        batch = images[start:start + batch_size].to(device), labels[start:start + batch_size].to(device)
        parts.append(attack_batch(model, protocol, members, *batch, batch_seed(seed, index), sources,
                                  count_gradients=False, keep_adversarial=True))
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
) -> EvaluationRecord:
    """Evaluate ``model`` (from `load_model`, or any module mapping [0, 1] images to logits).

    ``attack`` is a preset name, an attack name, ``none`` (clean accuracy only) or a `Protocol`;
    ``overrides`` replaces protocol fields (eps, steps, grad, surrogate, eot, eval_draws, ...).
    A `SmoothedClassifier` is also certified on every batch, and its record's protocol is
    ``<name>-smoothed``, with the ``below_certified`` check. ``compile_lif`` runs the LIF layers
    through the compiled kernel (same spikes); by default it does when the attack work pays for
    the compilation (`compile_pays`). ``model_name`` names an unregistered model's rows (default:
    its class name); a registered model is always named by its card.
    """
    card = getattr(model, "card", None)
    dataset = dataset or (card.dataset if card is not None else None)
    if dataset is None:
        raise UserError("name the dataset of an unregistered model")
    if card is not None and card.dataset != dataset:
        raise UserError(f"model {card.name!r} was trained on {card.dataset}, not {dataset}")
    _check_run(seed, batch_size)
    device = resolve_device(device)
    protocol = _protocol(attack, overrides, dataset)
    if n_examples is None:
        n_examples = protocol.n_examples
    test_split = load_dataset(dataset, "test", data_dir)
    if n_examples is not None and n_examples > len(test_split):
        raise UserError(f"asked for {n_examples} images; the {dataset} test split has {len(test_split)}")
    examples = first_examples(test_split, n_examples)
    probe = torch.stack([examples[index][0] for index in range(min(8, len(examples)))]).to(device)
    model, protocol, members, sources, skipped = prepare(model, protocol, probe, device, seed)
    smoothed = is_smoothed(model)
    if compile_lif is None:
        compile_lif = compile_pays(model, members, len(examples)) or None
    if compile_lif is not None and hasattr(model, "compile_lif"):
        model.compile_lif(compile_lif)
    model_name = card.name if card is not None else model_name or getattr(model, "display_name", type(model).__name__)
    checkpoint = getattr(model, "checkpoint_sha256", None)
    weights = model_hash(model)
    unmodified = preset_unmodified(model, protocol)
    config = {
        "model": model_name, "weights": weights, "dataset": dataset, "n_examples": len(examples),
        "seed": seed, "batch_size": batch_size, "protocol": protocol.model_dump(mode="json", exclude={"members", "description"}),
        "members": [member.model_dump(mode="json") for member in members], "code": code_version(),
    }
    if smoothed:
        config["smoothed"] = model.settings()
    hash_ = store_.config_hash(config)
    if store and not force:
        row = store_.find_row(dataset, hash_, results_dir)
        if row is not None:
            logger.info("reusing stored result %s (pass force=True to recompute)", hash_)
            return EvaluationRecord.from_row(row)

    if store:
        store_.ensure_writable(store_.results_dir(results_dir))
    partial = store_.PartialRun(hash_, results_dir) if store else None
    finished = partial.finished_batches() if partial is not None else {}
    if finished:
        logger.warning("resuming an interrupted run: %d of %d batch(es) already finished (%s)",
                       len(finished), -(-len(examples) // batch_size), partial.path)
    loader = DataLoader(examples, batch_size=batch_size, shuffle=False)
    outcomes: list[dict] = []
    true_labels: list[int] = []
    check_images, check_labels, check_robust = [], [], []
    started = time.perf_counter()
    batches = -(-len(examples) // batch_size)
    with RunProgress(protocol.name, len(examples), len(members) + 1, progress) as bar:
        for index, (images, labels) in enumerate(loader):
            images, labels = images.to(device), labels.to(device)
            on_member = bar.within(len(labels))
            outcome = finished.get(index)
            batch_seconds = None
            if outcome is None:
                batch_started = time.perf_counter()
                outcome = attack_batch(model, protocol, members, images, labels, batch_seed(seed, index), sources,
                                       on_member=on_member).as_dict()
                if smoothed:
                    outcome["certified_radius"] = [
                        sample.radius if sample.correct else 0.0 for sample in model.certify(images, labels)
                    ]
                outcome["seconds"] = batch_seconds = time.perf_counter() - batch_started
                if partial is not None:
                    partial.record({"batch": index, **outcome})
            outcomes.append(outcome)
            true_labels += labels.tolist()
            if protocol.checks and sum(len(part) for part in check_labels) < CHECK_EXAMPLES:
                correct = torch.tensor(outcome["clean"], dtype=torch.bool)
                check_images.append(images[correct.to(device)])
                check_labels.append(labels[correct.to(device)])
                check_robust.append(torch.tensor(outcome["robust"], dtype=torch.bool)[correct])
            counts = {"clean": sum(sum(part["clean"]) for part in outcomes)}
            if members:
                counts["robust"] = sum(sum(part["robust"]) for part in outcomes)
            bar.finished(len(labels), counts, batch_seconds, batches - index - 1)

    clean = [flag for part in outcomes for flag in part["clean"]]
    one_draw = [flag for part in outcomes for flag in part["clean_one_draw"]]
    robust = [flag for part in outcomes for flag in part["robust"]]
    fooled_by = [who for part in outcomes for who in part["fooled_by"]]
    member_kills = {member.label(): fooled_by.count(member.label()) for member in members}
    zero_counts = _summed(part["zero_gradients"] for part in outcomes)
    member_seconds = {label: round(seconds, 3) for label, seconds in _summed(part.get("member_seconds", {}) for part in outcomes).items()}

    flags, details = [], {}
    if stochastic_without_eot(model, members):
        flags.append("stochastic_without_eot")
    masked, shares = zero_gradients(zero_counts, sum(clean))
    details["zero_gradient_share"] = shares
    if masked:
        flags.append("zero_gradients")
    if protocol.checks and members:
        blackbox = [member.label() for member in members if not member.white_box]
        if blackbox:
            details["blackbox_kills"] = sum(member_kills[label] for label in blackbox)
            if details["blackbox_kills"] > significant_count(sum(clean)):
                flags.append("blackbox_stronger")
        with CheckProgress(3 + (0 if blackbox else 1 + len(sources)), progress) as checks:
            check_flags, check_details = run_checks(
                model, protocol, members, torch.cat(check_images)[:CHECK_EXAMPLES], torch.cat(check_labels)[:CHECK_EXAMPLES],
                torch.cat(check_robust)[:CHECK_EXAMPLES].to(device), seed, sources, blackbox=not blackbox, on_check=checks,
            )
        flags += check_flags
        details.update(check_details)
    if smoothed and members:
        needed = covering_radius(members[0].norm, members[0].eps, model.certificate.norm, examples[0][0].numel())
        violated, smoothing_details = below_certified(
            clean, robust, [radius for part in outcomes for radius in part["certified_radius"]], needed
        )
        details.update(smoothing_details)
        if violated:
            flags.append("below_certified")
    if skipped and members:
        flags.append("reduced_protocol")
    flags = [flag for flag in FLAGS if flag in flags]
    record = EvaluationRecord(
        model=model_name,
        dataset=dataset,
        protocol=protocol.name + ("-custom" if protocol.name in official_presets() and not unmodified else "")
        + ("-smoothed" if smoothed else "") + ("-reduced" if skipped and members else ""),
        attacks=[member.label() for member in members],
        **_summary_fields(model, members),
        eval_draws=protocol.eval_draws,
        seed=seed,
        n_examples=len(clean),
        clean_accuracy=sum(clean) / len(clean),
        robust_accuracy=sum(robust) / len(robust) if members else None,
        clean_accuracy_one_draw=None if smoothed else sum(one_draw) / len(one_draw),
        flags=flags,
        flag_details=details,
        member_kills=member_kills,
        member_seconds=member_seconds,
        skipped_members=skipped,
        stochastic=is_stochastic(model),
        batch_size=batch_size,
        params={**protocol.model_dump(mode="json"), **({"smoothed": model.settings()} if smoothed else {})},
        # an interrupted run's batches count too, so a resumed row's time is the whole run's
        runtime_s=round(time.perf_counter() - started + sum(part["seconds"] for part in finished.values()), 3),
        checkpoint_sha256=checkpoint,
        config_hash=hash_,
        preset_unmodified=unmodified,
        model_hash=weights,
        lif_kernel=_lif_kernel(model),
        **stamp(),
    )
    if store:
        store_.append_row(record.as_dict(), results_dir, replace=force)
        partial.discard()
    if save_samples:
        frame = pd.DataFrame({
            "index": range(len(clean)), "label": true_labels, "clean_correct": clean, "robust": robust, "fooled_by": fooled_by,
        })
        store_.save_samples(frame, hash_, results_dir)
    logger.info("%s on %s under %s: clean %.4f robust %s flags %s", model_name, dataset, protocol.name,
                record.clean_accuracy, record.robust_accuracy, flags or "none")
    return record
