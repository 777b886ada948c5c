"""Record: one tidy results row from a plan, its batches' outcomes and its flags, with provenance."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from torch import nn

from robustbench_snn.attacks.protocol import AttackSpec, official_presets
from robustbench_snn.attacks.runner import eot_draws
from robustbench_snn.columns import combine_columns
from robustbench_snn.energy import record_energy
from robustbench_snn.evaluation.assess import summed
from robustbench_snn.evaluation.batches import BatchResult
from robustbench_snn.evaluation.plan import Plan
from robustbench_snn.models.interface import has_spiking_layers, is_stochastic
from robustbench_snn.provenance import stamp
from robustbench_snn.tables import redecided_accuracy


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
    # the versions of the code that computed it (`provenance.components`)
    components: dict[str, int] = field(default_factory=dict)
    lif_kernel: str | None = None
    # spikes, firing rates, SynOps, MACs and estimated energy per image, clean and under attack (`robustbench_snn.energy`)
    energy: dict | None = None
    versions: dict[str, str] = field(default_factory=dict)
    git_commit: str = "unknown"
    timestamp: str = ""
    # processes the batches were sharded over, and the seconds rank 0 spent gathering their outcomes
    ranks: int = 1
    gather_s: float = 0.0
    reused: bool = False
    # the seed of every restart each member ran, per batch (`seeds.restart_seed`)
    member_seeds: dict[str, list[list[int]]] = field(default_factory=dict)
    # the registered columns' values (`robustbench_snn.columns`), by name
    columns: dict = field(default_factory=dict)
    # each searched attack setting: candidates, their outcomes on calibration images, the choice (`evaluation.calibrate`)
    searches: list[dict] = field(default_factory=list)
    # per member, how many of its kills hold when each fooling input is decided again on fresh draws
    # (all on a deterministic model; None for rows made before it was measured)
    member_kills_holding: dict[str, int] | None = None
    # the positions (in the evaluated images' order) of the samples counted robust: an attack from
    # outside needs only these to test the number (`robustbench_snn.outside`); None for rows made before
    survivors: list[int] | None = None

    @property
    def robust_accuracy_redecided(self) -> float | None:
        """The robust accuracy counting as robust the samples whose kill did not hold on a second decision."""
        return redecided_accuracy(self.robust_accuracy, self.n_examples, self.member_kills, self.member_kills_holding)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict) -> "EvaluationRecord":
        known = {name: row[name] for name in cls.__dataclass_fields__ if name in row}
        return cls(**{**known, "reused": True})


def _lif_kernel(model: nn.Module) -> str | None:
    """Which LIF implementation ran (the compiled kernel and spikingjelly's give the same spikes)."""
    layers = getattr(model, "spiking_layers", [])
    if not layers:
        return None
    return "compiled" if all(layer.compiled for layer in layers) else "spikingjelly"


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


def protocol_label(plan: Plan) -> str:
    """The row's protocol: the preset's name, marked ``-custom`` when changed, ``-smoothed`` and ``-reduced``."""
    reduced = plan.skipped and plan.members
    custom = plan.protocol.name in official_presets() and not plan.preset_unmodified
    return plan.protocol.name + ("-custom" if custom else "") + ("-smoothed" if plan.smoothed else "") + ("-reduced" if reduced else "")


def build_record(plan: Plan, outcomes: list[BatchResult], flags: list[str], details: dict, runtime_s: float) -> EvaluationRecord:
    """The row of a finished run; ``outcomes`` in batch order, ``runtime_s`` the whole run's (resumed batches too,
    and the searches and checks)."""
    model, members = plan.model, plan.members
    clean = [flag for part in outcomes for flag in part.clean]
    one_draw = [flag for part in outcomes for flag in part.clean_one_draw]
    robust = [flag for part in outcomes for flag in part.robust]
    fooled_by = [who for part in outcomes for who in part.fooled_by]
    seconds = summed([part.member_seconds for part in outcomes])
    holding = summed([part.kills_holding for part in outcomes])
    return EvaluationRecord(
        model=plan.model_name,
        dataset=plan.dataset,
        protocol=protocol_label(plan),
        attacks=[member.label() for member in members],
        **_summary_fields(model, members),
        eval_draws=plan.protocol.eval_draws,
        seed=plan.seed,
        n_examples=len(clean),
        clean_accuracy=sum(clean) / len(clean),
        robust_accuracy=sum(robust) / len(robust) if members else None,
        clean_accuracy_one_draw=None if plan.smoothed else sum(one_draw) / len(one_draw),
        flags=flags,
        flag_details=details,
        member_kills={member.label(): fooled_by.count(member.label()) for member in members},
        member_kills_holding={member.label(): holding.get(member.label(), 0) for member in members},
        member_seconds={label: round(value, 3) for label, value in seconds.items()},
        skipped_members=plan.skipped,
        stochastic=is_stochastic(model),
        batch_size=plan.batch_size,
        params={**plan.protocol.model_dump(mode="json"), **({"smoothed": model.settings()} if plan.smoothed else {})},
        runtime_s=round(runtime_s, 3),
        checkpoint_sha256=getattr(model, "checkpoint_sha256", None),
        config_hash=plan.config_hash,
        preset_unmodified=plan.preset_unmodified,
        model_hash=plan.weights,
        lif_kernel=_lif_kernel(model),
        energy=record_energy([part.energy for part in outcomes]),
        member_seeds={member.label(): [part.member_seeds.get(member.label(), []) for part in outcomes] for member in members},
        columns=combine_columns([part.columns for part in outcomes], len(clean)),
        searches=[search.as_dict() for search in plan.searches],
        survivors=[position for position, survived in enumerate(robust) if survived] if members else None,
        **stamp(plan.components),
    )
