"""Adaptive SNN attacks: the new gradient rules against hand-computed values, margin losses, SA-PGD,
BPDA, attacks through a coding's expectation, and the audit."""

import math

import pytest
import torch
from conftest import RoundedInput, model_with, reliable_version
from torch.nn import functional as F

from robustbench_snn import benchmark
from robustbench_snn.attacks import build_protocol
from robustbench_snn.attacks.bpda import StraightThroughQuantizers
from robustbench_snn.attacks.primitives import margin_loss
from robustbench_snn.audit import audit
from robustbench_snn.models import GradientMode, NeuronConfig, SpikingActivation
from robustbench_snn.models.gradients import assg_slope, assg_update, pdsg_slope

N = 48


def lif_layer(timesteps: int = 2) -> SpikingActivation:
    return SpikingActivation(timesteps, NeuronConfig(tau=2.0, v_threshold=1.0, v_reset=0.0))


def input_gradient(layer: SpikingActivation, currents: torch.Tensor, mode: GradientMode, weights: torch.Tensor) -> torch.Tensor:
    layer.set_gradient(mode)
    currents = currents.clone().requires_grad_(True)
    (layer(currents) * weights).sum().backward()
    return currents.grad


def test_hart_averages_the_local_triangle_gradient_over_steps():
    # One neuron, T = 2, currents 1.2 then 2.0: h_1 = 0.6 (no spike), h_2 = 0.6 / 2 + 2.0 / 2 = 1.3 (spike).
    layer = lif_layer()
    weights = torch.tensor([[1.0], [3.0]])
    gradient = input_gradient(layer, torch.tensor([[1.2], [2.0]]), GradientMode("hart", alpha=1.0), weights)
    local = [1.0 * (1 - abs(0.6 - 1)) / 2, 3.0 * (1 - abs(1.3 - 1)) / 2]  # dL/ds_t * tri(h_t - 1) / tau
    expected = sum(local) / 2
    assert torch.allclose(gradient, torch.full((2, 1), expected))


def test_assg_sharpness_comes_from_the_running_moments():
    shifted = torch.tensor([[0.5, -2.0]])
    first, spread = assg_update(None, shifted)
    assert torch.allclose(first, torch.tensor([[0.9 + 0.05, 0.9 + 0.2]]))
    assert torch.allclose(spread, 0.1 * (shifted.abs() - first).abs())
    a = 2 * math.tan(math.pi * 0.425) / math.pi
    sharpness = a / (first + 1.5 * spread + 1e-4)
    expected = sharpness / 2 / (1 + (math.pi / 2 * sharpness * shifted) ** 2)
    assert torch.allclose(assg_slope(shifted, (first, spread), 0.425), expected)


def test_assg_moments_move_once_per_gradient_and_reset_with_the_mode():
    layer = lif_layer()
    currents = torch.tensor([[1.2, 0.4], [2.0, 0.1]])
    input_gradient(layer, currents, GradientMode("assg"), torch.ones(2, 2))
    moments = layer.sharpness_moments
    assert moments is not None and moments[0].shape == (2, 1, 2)  # [T, B, neurons]
    layer.update_sharpness = False
    layer(currents.clone().requires_grad_(True))
    assert torch.equal(layer.sharpness_moments[0], moments[0])
    layer.set_gradient(GradientMode("bptt"))
    assert layer.sharpness_moments is None


def test_pdsg_width_is_the_channel_standard_deviation():
    shifted = torch.randn(3, 4, 2, 5, 5)
    slope = pdsg_slope(shifted)
    width = shifted[:2, :, 1].std()
    expected = torch.exp(-0.5 * (shifted[1, :, 1] / width) ** 2) / (math.sqrt(2 * math.pi) * width)
    assert torch.allclose(slope[1, :, 1], expected, atol=1e-6)


def test_every_gradient_mode_keeps_the_logits_and_gives_its_own_gradient(shipped_models, fmnist_batch):
    model = model_with(shipped_models, kind="snn", encoding="direct")
    images, labels = fmnist_batch
    logits, gradients = {}, {}
    for mode in (GradientMode("bptt", "atan"), GradientMode("hart"), GradientMode("pdsg"), GradientMode("assg")):
        with model.using_gradient(mode):
            inputs = images.clone().requires_grad_(True)
            output = model(inputs)
            F.cross_entropy(output, labels).backward()
        logits[mode.label()], gradients[mode.label()] = output.detach(), inputs.grad
    assert all(torch.equal(value, logits["bptt-atan"]) for value in logits.values())
    for label, gradient in gradients.items():
        assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0, label
    names = list(gradients)
    assert all(not torch.allclose(gradients[a], gradients[b]) for i, a in enumerate(names) for b in names[i + 1 :])


def test_margin_losses_match_their_definitions():
    logits = torch.tensor([[3.0, 1.0, 2.0, 0.0]])
    labels = torch.tensor([0])
    assert margin_loss(logits, labels, "cw").item() == pytest.approx(2.0 - 3.0)
    assert margin_loss(logits, labels, "dlr").item() == pytest.approx((2.0 - 3.0) / (3.0 - 1.0))


def test_new_members_parse_label_and_run(shipped_models):
    protocol = build_protocol("pgd", {"loss": "dlr", "grad": "hart", "surrogate_alpha": 0.5, "steps": 2})
    assert protocol.members[0].label() == "pgd-2-dlr[hart@0.5]"
    assert build_protocol("sapgd", {"grad": "assg"}).members[0].label() == "sapgd-10[assg@0.425]"
    model = model_with(shipped_models, kind="snn", encoding="rsc")
    record = benchmark(
        model, attack="sapgd", n_examples=16, batch_size=16, seed=0, overrides={"grad": "assg", "steps": 3, "eot": 2, "eval_draws": 2}
    )
    assert record.robust_accuracy <= record.clean_accuracy and record.attacks == ["sapgd-3[assg@0.425]"]


def test_bpda_sees_through_input_rounding(shipped_models):
    base = model_with(shipped_models, kind="ann", encoding="direct")
    masked = RoundedInput(base)
    images = torch.rand(4, 1, 28, 28, requires_grad=True)
    with StraightThroughQuantizers() as mode:
        logits = masked(images)
        logits.sum().backward()
    assert mode.used == 1 and images.grad.abs().sum() > 0
    assert torch.equal(logits.detach(), masked(images.detach()))
    plain = benchmark(masked, dataset="fashion-mnist", attack="pgd", n_examples=N, batch_size=N, seed=0)
    bpda = benchmark(masked, dataset="fashion-mnist", attack="pgd", n_examples=N, batch_size=N, seed=0, overrides={"bpda": True})
    # Rounding to 5 levels limits what an eps = 0.1 ball can reach, so the base model's 0% is not the bound.
    assert plain.robust_accuracy > 0.8 and bpda.robust_accuracy < plain.robust_accuracy - 0.5


def test_the_expectation_relative_shares_weights_and_is_deterministic(shipped_models, fmnist_batch):
    model = model_with(shipped_models, kind="snn", encoding="poisson")
    relative = model.expectation_relative()
    images, _ = fmnist_batch
    assert not relative.stochastic and relative.backbone is model.backbone
    assert torch.equal(relative(images), relative(images))
    assert model_with(shipped_models, kind="snn", encoding="direct").expectation_relative() is None


def test_reliable_adds_the_attacks_its_coding_declares(shipped_models):
    poisson = model_with(shipped_models, kind="snn", encoding="poisson")
    record = benchmark(
        poisson, attack="reliable", n_examples=16, batch_size=16, seed=0, overrides={"steps": 1, "queries": 20, "checks": False}
    )
    declared = record.attacks[1:5]  # right after the first member, before the costlier ones
    assert len(poisson.encoder.adaptive_attacks) == 4 and all(label.endswith("<-expectation") for label in declared)
    # version 8's schedule: the member whose kills cost least per second next, Square (the black-box check) last
    assert record.attacks[5] == "pgd-1x2-cw[bptt-atan@4]"
    assert record.attacks[6].startswith("pgd-1x2-cw-cosine[bptt-atan@")  # version 9's, its sharpness searched
    assert record.attacks[7].startswith("pgd-1-cw-cosine[bptt-atan@")  # version 10's, longer (here shortened to 1 step)
    assert any(label.startswith("pgd-targeted-1x3-cosine[bptt-atan@") for label in record.attacks[8:10])  # version 12's
    assert record.attacks[-3:-1] == ["transfer<-fmnist_ann", "square-20"]
    assert record.attacks[-1].startswith("pgd-search-1+20x3-cosine[bptt-atan@8")  # version 13's later member, after everything
    assert any(label.startswith("pgd-1x2-cw[bptt|relaxed@") for label in record.attacks)  # the relaxed estimator, searched
    assert {"apgd-ce-1x2[bptt]<-expectation", "sapgd-1x2-cw[bptt]<-expectation"} <= set(record.attacks)
    assert sorted(search["field"] for search in record.searches) == ["surrogate_alpha"] * 4 + ["surrogate_alpha_last", "temperature"]
    assert "pgd-1[hart@1]" in record.attacks
    assert not any("bpda" in label for label in record.attacks)  # no quantiser: the same as plain PGD
    direct = model_with(shipped_models, kind="snn", encoding="direct")
    plain = benchmark(direct, attack="reliable", n_examples=8, batch_size=8, seed=0, overrides={"steps": 1, "queries": 20, "checks": False})
    assert not any("expectation" in label for label in plain.attacks)


def _dumped(members):
    return sorted(member.model_dump_json() for member in members)


def test_version_8_runs_every_member_of_version_7_and_decides_with_a_stated_error():
    """Version 8 changed the schedule and the decision, not the attacks: the same members (version 7
    as committed, in tests/data), in one list, and Wald's test for stochastic models."""
    version_8, version_7 = reliable_version(8), reliable_version(7)
    assert version_8.version == 8 and version_7.version == 7 and not version_8.later_members
    assert _dumped(version_8.members) == _dumped([*version_7.members, *version_7.later_members])
    assert version_8.sequential is not None and version_8.sequential.right_at < 0.16 < version_8.sequential.wrong_at
    assert version_8.convergence.applies_to == "restarted" and version_8.convergence.min_doublings == 0


def _added(current, previous):
    """The members ``current`` adds to ``previous``, after checking it keeps every one of them in their order."""
    kept = {member.model_dump_json() for member in previous.members}
    added = [member for member in current.members if member.model_dump_json() not in kept]
    assert [member for member in current.members if member not in added] == previous.members
    assert (current.sequential, current.convergence) == (previous.sequential, previous.convergence)
    return added


def test_version_9_keeps_version_8s_schedule_and_adds_a_searched_sharp_pgd_with_a_decaying_step():
    """Version 9 (issue 40's red team): version 8's members in version 8's order, with PGD through a
    searched sharp surrogate and a cosine step after the sharp CW member, every search decided on
    the first member's survivors; its rule and decisions are version 8's."""
    version_9 = reliable_version(9)
    assert version_9.version == 9 and version_9.search_on == "survivors"
    (sharp,) = _added(version_9, reliable_version(8))
    assert (sharp.step_schedule, sharp.loss, sharp.surrogate) == ("cosine", "cw", "atan") and max(sharp.search["surrogate_alpha"]) >= 16
    assert version_9.members.index(sharp) == 3 and version_9.members[2].surrogate_alpha == 4.0


def test_version_10_runs_version_9s_decaying_step_pgd_for_2000_steps_after_it():
    """Version 10 (issue 40's second red team, which broke version 9's survivors with version 9's own
    attack run longer): the same attack, 2,000 steps, right after version 9's."""
    version_10, version_9 = reliable_version(10), reliable_version(9)
    assert version_10.version == 10 and version_10.search_on == "survivors"
    (long,) = _added(version_10, version_9)
    short = version_10.members[version_10.members.index(long) - 1]
    assert long.steps == 2000 and long.model_copy(update={"steps": 100, "restarts": 2}) == short


def test_version_11_runs_version_10s_long_member_at_its_two_best_sharpnesses():
    """Version 11 (the second red team's pair of sharpnesses broke what version 10's one left): version
    10's members in its order, the 2,000-step member keeping the best two of its search."""
    current, version_10 = reliable_version(11), reliable_version(10)
    assert current.version == 11 and (current.sequential, current.convergence) == (version_10.sequential, version_10.convergence)
    changed = [(new, old) for new, old in zip(current.members, version_10.members, strict=True) if new != old]
    ((long, before),) = changed
    assert long.steps == 2000 and long.search_keep == 2 and long.model_copy(update={"search_keep": 1}) == before


def test_version_12_adds_targeted_pgd_toward_the_three_nearest_classes_after_the_long_member():
    """Version 12 (issue 40's third red team broke version 11's survivors with a targeted margin):
    version 11's members in its order, and after the 2,000-step member PGD toward each of the three
    most likely wrong classes, with the long member's sharpness search and its best two kept."""
    current, version_11 = reliable_version(12), reliable_version(11)
    assert current.version == 12
    (targeted,) = _added(current, version_11)
    long = current.members[current.members.index(targeted) - 1]
    assert long.steps == 2000 and targeted.attack == "pgd-targeted" and targeted.restarts == 3
    assert (targeted.search, targeted.search_keep, targeted.step_schedule) == (long.search, 2, "cosine")


def test_version_13_runs_version_12_as_its_exact_start_then_searches_from_the_best_point_reached():
    """Version 13 (issue 40's fourth red team searched from surrogate PGD's best point with a duller
    last layer): version 12's members, order and rule untouched, and one later member, `pgd-search`
    from the best point, its last layer's sharpness searched; later members never change the seeds
    or samples of the members before them, so version 13 can only count fewer samples robust."""
    current, version_12 = reliable_version(13), reliable_version(12)
    assert current.version == 13 and not version_12.later_members
    assert _added(current, version_12) == []
    (search,) = current.later_members
    assert search.attack == "pgd-search" and search.method.warm_starts and search.restarts == 3 and search.queries == 1000
    assert set(search.search) == {"surrogate_alpha_last"} and search.surrogate_alpha == 8.0


def test_version_14_is_version_13_with_a_search_from_the_best_of_pgds_starts_at_the_nearest_classes():
    """Version 14 (the search's kills on v13's survivors varied with PGD's random start): version 13's
    members, order and rule, and `pgd-search` version 3, whose every restart aims at each nearest class."""
    from robustbench_snn.attacks import get_attack

    current, version_13 = build_protocol("reliable"), reliable_version(13)
    assert current.version == 14
    assert current.model_copy(update={"version": 13, "description": version_13.description}) == version_13
    assert get_attack("pgd-search").version == 3


def test_audit_of_a_protocol_by_its_own_members_finds_nothing_beyond_it(shipped_models):
    model = model_with(shipped_models, kind="snn", encoding="rsc")
    report = audit(model, protocol="pgd", attacks="pgd", n_examples=32, batch_size=32, seed=0)
    assert report.worst_case_accuracy == report.protocol_accuracy
    assert report.broken_survivors == 0 and not report.flagged
    assert [entry.attack for entry in report.entries] == report.protocol_attacks


@pytest.mark.slow
def test_each_version_of_reliable_is_never_above_the_previous_and_reports_its_convergence(shipped_models):
    """Versions 3 to 7 each run the previous one as their exact start and add members after it
    (version 3 the expectation's PGD restarts, version 4 sharper surrogates, version 5 APGD and
    version 6 SA-PGD on the expectation, version 7 the relaxed estimator and APGD-DLR with searched
    settings): on the same images each can only count fewer samples robust. (Version 8 reorders
    version 7's members, so it is not version 7's exact start: each version's restarts then find a
    few samples the other's miss, and the leaderboard carries earlier versions' kills.) Every
    record carries the convergence curves of the members whose restarts double."""
    model = model_with(shipped_models, kind="snn", encoding="poisson")
    version_7 = reliable_version(7)
    version_6 = version_7.model_copy(update={"name": "reliable-v6", "version": 6, "later_members": version_7.later_members[:6]})
    version_5 = version_7.model_copy(update={"name": "reliable-v5", "version": 5, "later_members": version_7.later_members[:5]})
    version_2 = version_7.model_copy(update={"name": "reliable-v2", "version": 2, "later_members": [], "convergence": None})
    run = dict(n_examples=100, batch_size=50, seed=0)
    records = [benchmark(model, attack=protocol, **run) for protocol in (version_2, version_5, version_6, version_7)]
    for old, new in zip(records, records[1:]):
        assert new.robust_accuracy <= old.robust_accuracy
        assert new.attacks[: len(old.attacks)] == old.attacks
    assert [search["field"] for search in records[-1].searches] == ["temperature", "surrogate_alpha"]
    curves = records[-2].flag_details["convergence"]  # version 6's: the cheap members crafted on the expectation
    assert {label for label in curves if label.startswith("pgd-50x4-cw")} and all(label.endswith("<-expectation") for label in curves)
    assert {label for label in curves if label.startswith("apgd-ce-100x2")}
    assert {label for label in curves if label.startswith("sapgd-100x2-cw")}
    for curve in curves.values():
        assert curve["robust"] == sorted(curve["robust"], reverse=True)
        assert curve["restarts"][1] == 2 * curve["restarts"][0]
    assert "fooled_with_2x_restarts" in records[-1].flag_details and "fooled_with_2x_draws" in records[-1].flag_details


@pytest.mark.slow
def test_reliable_version_4_breaks_the_pgd_trained_snns_masked_gradient(shipped_models):
    """Version 4 adds sharper surrogates after version 3's whole run: on the PGD-trained SNN (whose
    training surrogate's gradient is masked) it counts strictly fewer samples robust, and their
    restarts double on this deterministic model like the cheap members'."""
    model = shipped_models["fmnist_snn_pgdat"]
    current = reliable_version(7).model_copy(update={"checks": False})
    version_3 = current.model_copy(update={"name": "reliable-v3", "version": 3, "later_members": current.later_members[:2]})
    run = dict(n_examples=100, batch_size=100, seed=0)
    old, new = benchmark(model, attack=version_3, **run), benchmark(model, attack=current, **run)
    assert new.attacks[: len(old.attacks)] == old.attacks
    assert new.robust_accuracy < old.robust_accuracy
    assert new.member_kills["pgd-50x2-cw[bptt-atan@4]"] > 0
    assert "pgd-50x2-cw[bptt-atan@4]" in new.flag_details["convergence"]
