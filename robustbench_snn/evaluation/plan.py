"""Plan: what one evaluation runs and its identity, before any image is attacked.

The protocol is resolved for the dataset and normalised for the model; the members that can run,
their transfer sources and the skipped ones are chosen; the test images are picked; and the
configuration's identity (weights, sources' weights, data, protocol, members, and the versions
of the code they run) is hashed, so that a stored
row is reused and an interrupted run resumed.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from dataclasses import dataclass, field, replace

import torch
from torch import nn
from torch.utils.data import Dataset

from robustbench_snn import store
from robustbench_snn.attacks import Protocol, build_protocol, effective_members
from robustbench_snn.attacks.attack import get_attack
from robustbench_snn.attacks.bpda import uses_quantizers
from robustbench_snn.attacks.flags import stochastic_without_eot
from robustbench_snn.attacks.protocol import AttackSpec, official_presets
from robustbench_snn.attacks.runner import eot_draws, normalised, unsupported
from robustbench_snn.attacks.sources import Twin, resolve_sources
from robustbench_snn.columns import column_versions
from robustbench_snn.data import DatasetInfo, dataset_info, first_examples, load_dataset
from robustbench_snn.devices import resolve_device
from robustbench_snn.engine import ImageBatches
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation.calibrate import calibrated_members
from robustbench_snn.evaluation.inputs import SATURATION_MARGIN, check_differentiable, check_model
from robustbench_snn.models.encoders import Encoder
from robustbench_snn.models.estimators import ESTIMATORS
from robustbench_snn.models.interface import has_spiking_layers, is_smoothed, row_name
from robustbench_snn.models.user import as_attackable
from robustbench_snn.provenance import components

logger = logging.getLogger(__name__)

# Image-gradient evaluations (images x steps x EOT draws) beyond which compiling the LIF kernel
# pays for itself: compiling costs tens of seconds the first time on a machine and a few seconds
# per process after that, one compiled PGD step saves about half the step's time.
COMPILE_WORTH = 20_000


@dataclass
class Plan:
    """One evaluation, ready to run: the model as attacked, what runs on it, on which images, and its identity."""

    model: nn.Module
    model_name: str
    dataset: str
    protocol: Protocol
    members: list[AttackSpec]
    sources: dict[str, nn.Module]
    skipped: list[str]
    examples: Dataset
    seed: int
    batch_size: int
    device: torch.device
    weights: str
    preset_unmodified: bool
    config_hash: str
    components: dict[str, int]
    # the logits are so large on the first images that cross-entropy's gradient vanishes
    saturated: bool = False
    # the members' searched settings, once chosen (`evaluation.calibrate`)
    searches: list = field(default_factory=list)

    @property
    def smoothed(self) -> bool:
        return is_smoothed(self.model)

    @property
    def images(self) -> ImageBatches:
        return ImageBatches(self.examples, self.batch_size, self.device)

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch ``index``'s images and labels, on the plan's device."""
        return self.images[index]

    def calibrated(self, data_dir: str | None) -> "Plan":
        """The plan with its members' searches resolved on calibration images (`evaluation.calibrate`);
        run after a stored row is looked for, since the identity is the protocol as declared."""
        members, searches = calibrated_members(
            self.model, self.members, self.dataset, data_dir, len(self.examples), self.protocol, self.seed, self.sources
        )
        return replace(self, members=members, searches=searches)


def model_hash(model: nn.Module) -> str:
    """The identity of a module's exact weights: its structure (the module tree as printed, with
    its settings such as an encoder's sigma) and every parameter and buffer, bit for bit."""
    digest = hashlib.sha256(f"{type(model).__module__}.{type(model).__qualname__}\n{model}".encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode() + b"\0" + str(tensor.dtype).encode())
        digest.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def logit_margin(model: nn.Module, members: list[AttackSpec], probe: torch.Tensor) -> float | None:
    """The largest logit margin on ``probe`` when gradient members attack the model itself (after
    checking that it is differentiable, `check_differentiable`); None otherwise."""
    white_box = [member for member in members if member.uses_gradients and member.source is None]
    if not white_box or is_smoothed(model):
        return None
    return check_differentiable(model, probe)


def components_used(model: nn.Module, members: list[AttackSpec], columns: dict[str, int] | None = None) -> dict[str, int]:
    """The versions of the code an evaluation of ``model`` by ``members`` (measuring ``columns``) runs (`provenance.components`)."""
    encoder = getattr(model, "encoder", None)
    encoders = {encoder.name: encoder.version} if isinstance(encoder, Encoder) and encoder.name else {}
    attacks = {member.attack: get_attack(member.attack).version for member in members}
    estimators = {member.estimator: ESTIMATORS[member.estimator].version for member in members if member.estimator}
    return components(attacks, encoders, columns, estimators)


def preset_unmodified(model: nn.Module, protocol: Protocol) -> bool:
    """Whether ``protocol`` is the official preset of its name as shipped, eps aside: every field
    and member the same once normalised for ``model`` (a user's file named like a preset is not)."""
    shipped = official_presets()
    if protocol.name not in shipped:
        return False
    preset = build_protocol(protocol.name, directory=shipped[protocol.name].parent)

    def shape(candidate: Protocol) -> tuple:
        def plain(members: list[AttackSpec]) -> list[dict]:
            return [normalised(member, model).model_copy(update={"eps": None}).model_dump() for member in members]

        fields = candidate.model_dump(exclude={"members", "later_members", "n_examples", "description"})
        return fields, plain(candidate.members), plain(candidate.later_members)

    return shape(protocol) == shape(preset)


def _warn_beyond_threat_model(protocol: Protocol, info: DatasetInfo) -> None:
    """Say so when a member attacks a ball larger than the dataset's threat model: a legitimate
    sweep point, but no leaderboard row compares with it."""
    for member in [*protocol.members, *protocol.later_members]:
        standard = info.default_eps(member.norm)
        if member.eps > standard * (1 + 1e-9):
            logger.warning(
                "%s attacks at %s eps %.4g, %.1fx %s's threat model (eps %.4g): a robust accuracy no leaderboard row compares with",
                member.label(),
                member.norm,
                member.eps,
                member.eps / standard,
                info.name,
                standard,
            )
            return


def presets_with_eot() -> list[str]:
    """The shipped presets whose every gradient member averages its gradient over draws (EOT)."""
    found = []
    for name in official_presets():
        protocol = build_protocol(name)
        members = [*protocol.members, *protocol.later_members]
        if any(member.uses_gradients for member in members) and all(
            member.eot > 1 or member.method.own_eot for member in members if member.uses_gradients
        ):
            found.append(name)
    return found


def compile_pays(model: nn.Module, members: list[AttackSpec], n_examples: int) -> bool:
    """Whether an evaluation is big enough for the compiled LIF kernel to pay for its compilation."""
    work = n_examples * sum(member.steps * eot_draws(model, member) for member in members if member.uses_gradients)
    return has_spiking_layers(model) and hasattr(model, "compile_lif") and work >= COMPILE_WORTH


def _check_unregistered_name(name: str) -> None:
    """Refuse to store a user's model under a registered name, where its rows would read as the registry model's."""
    from robustbench_snn.registry import list_cards

    if name in {card.name for card in list_cards()}:
        raise UserError(f"{name!r} is a registered model's name; name the rows of your model otherwise (model_name=)")


def plan_members(
    model: nn.Module, protocol: Protocol, sample: torch.Tensor, device: str, seed: int, dataset: str | None = None, twin: Twin = None
) -> tuple[list[AttackSpec], dict[str, nn.Module], list[str]]:
    """The members that run on ``model`` (`effective_members`), their transfer sources and the
    members skipped; ``sample`` (one image) shows whether the model quantises its input."""
    quantized = any(member.bpda for member in protocol.members) and uses_quantizers(model, sample)
    members = effective_members(model, protocol, quantized)
    impossible = [reason for reason in map(functools.partial(unsupported, model), members) if reason]
    for reason in impossible:
        logger.warning("skipping %s", reason)
    runnable = [member for member in members if unsupported(model, member) is None]
    kept, sources, skipped = resolve_sources(model, runnable, device, seed, dataset, twin)
    return kept, sources, impossible + skipped


def check_run(seed: int, batch_size: int) -> None:
    """Refuse a seed or batch size no run can use."""
    if type(batch_size) is not int or type(seed) is not int:
        raise UserError(f"the seed and the batch size must be whole numbers (int), got seed {seed!r} and batch size {batch_size!r}")
    if batch_size <= 0:
        raise UserError(f"batch size must be positive, got {batch_size}")
    if not 0 <= seed < 2**63:
        raise UserError(f"the seed must be in [0, 2^63), got {seed}")


def resolve_protocol(attack: str | Protocol, overrides: dict | None, dataset: str) -> Protocol:
    """The protocol named ``attack`` (or given) with ``overrides``, its eps filled in from the dataset."""
    protocol = attack if isinstance(attack, Protocol) else build_protocol(attack, overrides)
    return protocol.resolved(dataset_info(dataset))


def prepare(
    model: nn.Module,
    protocol: Protocol,
    probe: torch.Tensor,
    device: torch.device,
    seed: int,
    dataset: str | None = None,
    twin: Twin = None,
) -> tuple[nn.Module, Protocol, list[AttackSpec], dict[str, nn.Module], list[str]]:
    """The model as the runner attacks it (a user's SNN wrapped, randomness detected on ``probe``),
    the protocol normalised for it, and the members that run, their sources and the ones skipped."""
    model = as_attackable(model.to(device).eval(), probe, seed)
    protocol = protocol.model_copy(
        update={name: [normalised(member, model) for member in getattr(protocol, name)] for name in ("members", "later_members")}
    )
    if twin is not None and not isinstance(twin, (nn.Module, str)):
        raise UserError(f"twin must be an nn.Module or a registered model's name, not {type(twin).__name__}")
    members, sources, skipped = plan_members(model, protocol, probe[:1], device, seed, dataset, twin)
    return model, protocol, members, sources, skipped


def plan_evaluation(
    model: nn.Module,
    *,
    dataset: str | None,
    attack: str | Protocol,
    n_examples: int | None,
    seed: int,
    batch_size: int,
    data_dir: str | None,
    device: str,
    overrides: dict | None,
    compile_lif: bool | None,
    model_name: str | None,
    twin: Twin = None,
) -> Plan:
    """Everything `benchmark` decides before attacking (see its docstring for the arguments)."""
    card = getattr(model, "card", None)
    dataset = dataset or (card.dataset if card is not None else None)
    if dataset is None:
        raise UserError("name the dataset of an unregistered model")
    if card is not None and card.dataset != dataset:
        raise UserError(f"model {card.name!r} was trained on {card.dataset}, not {dataset}")
    check_run(seed, batch_size)
    device = resolve_device(device)
    protocol = resolve_protocol(attack, overrides, dataset)
    _warn_beyond_threat_model(protocol, dataset_info(dataset))
    if n_examples is None:
        n_examples = protocol.n_examples
    test_split = load_dataset(dataset, "test", data_dir)
    if n_examples is not None and n_examples > len(test_split):
        raise UserError(f"asked for {n_examples} images; the {dataset} test split has {len(test_split)}")
    examples = first_examples(test_split, n_examples)
    probe = torch.stack([examples[index][0] for index in range(min(8, len(examples)))]).to(device)
    check_model(model, probe, dataset_info(dataset))
    model, protocol, members, sources, skipped = prepare(model, protocol, probe, device, seed, dataset, twin)
    if stochastic_without_eot(model, members):
        logger.warning(
            "%s draws new randomness at every forward, and %s takes each gradient from one draw: its number would "
            "overstate robustness. Presets made for stochastic models: %s (or give --eot)",
            row_name(model),
            protocol.name,
            ", ".join(presets_with_eot()),
        )
    margin = logit_margin(model, members, probe)
    if compile_lif is None:
        compile_lif = compile_pays(model, members, len(examples)) or None
    if compile_lif is not None and hasattr(model, "compile_lif"):
        model.compile_lif(compile_lif)
    model_name = model_name if card is None and model_name else row_name(model)
    if card is None:
        _check_unregistered_name(model_name)
    weights = model_hash(model)
    versions_used = components_used(model, members, column_versions())
    config = {
        "model": model_name,
        "weights": weights,
        "dataset": dataset,
        "n_examples": len(examples),
        "seed": seed,
        "batch_size": batch_size,
        "protocol": protocol.model_dump(mode="json", exclude={"members", "description"}),
        "members": [member.model_dump(mode="json") for member in members],
        "sources": {name: model_hash(source) for name, source in sorted(sources.items())},
        "code": versions_used,
    }
    if is_smoothed(model):
        config["smoothed"] = model.settings()
    return Plan(
        model=model,
        model_name=model_name,
        dataset=dataset,
        protocol=protocol,
        members=members,
        sources=sources,
        skipped=skipped,
        examples=examples,
        seed=seed,
        batch_size=batch_size,
        device=device,
        weights=weights,
        preset_unmodified=preset_unmodified(model, protocol),
        config_hash=store.config_hash(config),
        components=versions_used,
        saturated=margin is not None and margin > SATURATION_MARGIN,
    )
