"""The attack runner on real shipped models: strength ordering, gradient modes, EOT, masking flags."""

import pytest
import torch
from conftest import RoundedInput, model_with
from torch.nn import functional as F

from robustbench_snn import benchmark
from robustbench_snn.attacks import build_protocol, parse_eps
from robustbench_snn.attacks.primitives import loss_gradient
from robustbench_snn.errors import UserError
from robustbench_snn.models import GradientMode

N = 48


def run(model, attack="pgd", n=N, **overrides):
    overrides.setdefault("eot", 2)
    overrides.setdefault("eval_draws", 2)
    if attack == "none":
        overrides = {key: overrides[key] for key in ("eval_draws",)}
    return benchmark(model, attack=attack, n_examples=n, seed=0, batch_size=N, overrides=overrides)


@pytest.mark.parametrize("name", ["ann", "snn-direct", "snn-rsc"])
def test_pgd_is_at_most_fgsm_is_at_most_clean_and_falls_with_eps(shipped_models, name):
    kind, _, encoding = name.partition("-")
    model = model_with(shipped_models, kind=kind, encoding=encoding or "direct")
    slack = 2 / N if model.stochastic else 0
    fgsm = run(model, "fgsm")
    pgd = run(model, "pgd")
    assert pgd.clean_accuracy == fgsm.clean_accuracy
    assert pgd.robust_accuracy <= fgsm.robust_accuracy + slack
    assert fgsm.robust_accuracy <= fgsm.clean_accuracy
    curve = [run(model, "pgd", eps=eps).robust_accuracy for eps in (0.02, 0.05, 0.1, 0.2)]
    assert all(later <= earlier + slack for earlier, later in zip(curve, curve[1:])), curve
    assert curve[0] > curve[-1]
    assert run(model, "pgd", eps=1.0).robust_accuracy <= 1 / N


def test_gradient_modes_differ_in_gradient_but_never_in_logits(shipped_models, fmnist_batch):
    model = model_with(shipped_models, kind="snn", encoding="direct")
    images, labels = fmnist_batch
    logits, gradients = {}, {}
    modes = (GradientMode("bptt", "atan"), GradientMode("bptt", "sigmoid"), GradientMode("bptr"), GradientMode("rga"), GradientMode("act"))
    for mode in modes:
        with model.using_gradient(mode):
            inputs = images.clone().requires_grad_(True)
            output = model(inputs)
            F.cross_entropy(output, labels).backward()
        logits[mode.label()] = output.detach()
        gradients[mode.label()] = inputs.grad
    reference = logits["bptt-atan"]
    assert all(torch.equal(value, reference) for value in logits.values())
    for label, gradient in gradients.items():
        assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0, label
    labels_ = list(gradients)
    for first in range(len(labels_)):
        for second in range(first + 1, len(labels_)):
            assert not torch.allclose(gradients[labels_[first]], gradients[labels_[second]]), (labels_[first], labels_[second])
    assert model.gradient == GradientMode()


def test_eot_gradients_vary_less_across_repeats_than_single_draws(shipped_models, fmnist_batch):
    model = model_with(shipped_models, kind="snn", encoding="rsc")
    images, labels = fmnist_batch[0][:8], fmnist_batch[1][:8]
    model.encoder.seed(0)

    def spread(draws: int) -> float:
        repeats = torch.stack([loss_gradient(model, images, labels, draws)[0] for _ in range(6)])
        return repeats.var(0).mean().item()

    assert spread(8) < 0.5 * spread(1)


def test_gradient_masking_is_flagged_and_the_reliable_protocol_sees_through_it(shipped_models):
    masked = RoundedInput(model_with(shipped_models, kind="ann", encoding="direct"))
    pgd = benchmark(
        masked, dataset="fashion-mnist", attack="pgd", n_examples=N, batch_size=N, seed=0, overrides={"checks": True, "steps": 5}
    )
    assert {"zero_gradients", "unbounded_not_zero", "blackbox_stronger"} <= set(pgd.flags)
    assert pgd.flag_details["zero_gradient_share"]["bptt"] == 1.0
    reliable = benchmark(
        masked, dataset="fashion-mnist", attack="reliable", n_examples=N, batch_size=N, seed=0, overrides={"steps": 5, "queries": 300}
    )
    assert not reliable.skipped_members and "transfer<-fmnist_ann" in reliable.attacks  # the dataset's reference ANN
    assert reliable.robust_accuracy < pgd.robust_accuracy - 0.2
    assert "zero_gradients" in reliable.flags


def test_checks_attack_the_survivors_and_flag_an_attack_that_had_not_converged(shipped_models):
    model = model_with(shipped_models, kind="ann", encoding="direct")
    weak = run(model, "pgd", eps=0.05, steps=1, step_size=0.01, checks=True)
    details = weak.flag_details
    assert details["check_survivors"] == round(weak.robust_accuracy * N)
    assert details["fooled_with_4x_steps"] >= 2 and "more_steps_stronger" in weak.flags
    strong = run(model, "pgd", eps=0.02, steps=20, checks=True)
    assert strong.flag_details["check_survivors"] >= 5, strong.flag_details
    assert not {"non_monotone_eps", "more_steps_stronger", "unbounded_not_zero", "blackbox_stronger"} & set(strong.flags)


def test_stochastic_model_attacked_without_eot_is_flagged(shipped_models):
    model = model_with(shipped_models, kind="snn", encoding="rsc")
    assert "stochastic_without_eot" in run(model, "pgd", n=16, eot=1, steps=2).flags
    assert "stochastic_without_eot" not in run(model, "pgd", n=16, eot=2, steps=2).flags
    deterministic = model_with(shipped_models, kind="ann", encoding="direct")
    assert "stochastic_without_eot" not in run(deterministic, "pgd", n=16, eot=1, steps=2).flags


def test_decision_rule_is_conservative_for_stochastic_models(shipped_models):
    model = model_with(shipped_models, kind="snn", encoding="rsc")
    one, many = run(model, "none", n=200, eval_draws=1), run(model, "none", n=200, eval_draws=8)
    assert many.clean_accuracy <= one.clean_accuracy
    assert many.robust_accuracy is None and many.eval_draws == 8


def test_transfer_from_the_ann_twin_runs_on_an_snn(shipped_models):
    model = model_with(shipped_models, kind="snn", encoding="direct")
    record = run(model, "transfer", steps=5)
    assert record.attacks == ["transfer<-fmnist_ann"]
    assert record.robust_accuracy < record.clean_accuracy


def test_preset_fields_are_overridden_by_options_and_validated():
    protocol = build_protocol("reliable", {"eps": parse_eps("8/255"), "eot": 3})
    assert all(member.eps == pytest.approx(8 / 255) and member.eot == 3 for member in protocol.members)
    assert protocol.checks and len({member.label() for member in protocol.members}) == len(protocol.members)
    with pytest.raises(UserError, match="unknown attack 'pgdd'"):
        build_protocol("pgdd")
    with pytest.raises(UserError, match="field 'members.0.surrogate'"):
        build_protocol("pgd", {"surrogate": "tanh"})
    with pytest.raises(UserError, match="need an attack"):
        build_protocol("none", {"eps": 0.1})
    with pytest.raises(UserError, match="8/255"):
        parse_eps("eight")


def test_autoattack_standard_and_rand_run_through_the_runner(shipped_models):
    ann = model_with(shipped_models, kind="ann", encoding="direct")
    standard = benchmark(ann, attack="autoattack", n_examples=8, batch_size=8, seed=0)
    assert standard.attacks == ["autoattack"]  # an ANN: no SNN gradient mode in the label
    assert standard.robust_accuracy <= run(ann, "pgd", n=8).robust_accuracy
    rsc = model_with(shipped_models, kind="snn", encoding="rsc")
    rand = benchmark(rsc, attack="autoattack-rand", n_examples=4, batch_size=4, seed=0, overrides={"eval_draws": 2})
    assert "stochastic_without_eot" not in rand.flags
    assert rand.robust_accuracy <= rand.clean_accuracy


def test_l2_pgd_stays_inside_its_ball_and_beats_a_smaller_ball(shipped_models, fmnist_batch):
    from robustbench_snn.attacks.methods.pgd import pgd
    from robustbench_snn.attacks.protocol import AttackSpec

    model = model_with(shipped_models, kind="ann", encoding="direct")
    images, labels = fmnist_batch
    spec = AttackSpec(attack="pgd", norm="L2", eps=1.5, steps=10)
    adversarial = pgd(model, spec, images, labels, seed=0)
    assert ((adversarial - images).flatten(1).norm(dim=1) <= 1.5 + 1e-4).all()
    assert adversarial.min() >= 0 and adversarial.max() <= 1
    small, large = (run(model, "pgd", n=32, norm="L2", eps=eps).robust_accuracy for eps in (0.25, 2.0))
    assert large < small


@pytest.mark.parametrize(
    ("preset", "step_per_eps", "random_start"),
    # the papers' step at eps 8/255, as a share of eps
    [("paper-snn-rat", 2.55 / 8, True), ("paper-sharmin2020", 2 / 8, True), ("paper-hosnn", 1 / 3, False), ("paper-tgo", 2.55 / 8, True)],
)
def test_a_papers_protocol_preset_runs_the_attack_its_paper_states(preset, step_per_eps, random_start):
    from robustbench_snn.attacks.methods.pgd import step_size_of
    from robustbench_snn.data import dataset_info

    protocol = build_protocol(preset).resolved(dataset_info("fashion-mnist"))
    fgsm, pgd = protocol.members
    assert (fgsm.attack, pgd.attack, pgd.steps, pgd.random_start) == ("fgsm", "pgd", 7, random_start)
    assert step_size_of(pgd, pgd.steps) == pytest.approx(step_per_eps * pgd.eps, rel=1e-3) and pgd.eps == 0.1
    for member in protocol.members:  # the training surrogate, cross-entropy, one draw per step
        assert (member.grad, member.surrogate, member.eot, member.loss) == ("bptt", None, 1, "ce")
    assert protocol.eval_draws == 1 and not protocol.checks and protocol.later_members == []


def test_a_cosine_step_schedule_starts_at_half_eps_decays_to_zero_and_leaves_constant_members_as_they_were():
    from robustbench_snn.attacks.methods.pgd import scheduled_steps
    from robustbench_snn.attacks.protocol import AttackSpec

    cosine = AttackSpec(attack="pgd", eps=0.1, steps=100, loss="cw", step_schedule="cosine")
    steps = scheduled_steps(cosine, cosine.steps)
    assert steps[0] == pytest.approx(0.05) and steps[-1] < 1e-4 and steps == sorted(steps, reverse=True)
    assert cosine.label() == "pgd-100-cw-cosine[bptt]"
    constant = AttackSpec(attack="pgd", eps=0.1, steps=100)
    assert scheduled_steps(constant, 100) == [pytest.approx(0.0025)] * 100
    assert "step_schedule" not in constant.model_dump()  # every member written before the field keeps its identity
    with pytest.raises(ValueError, match="sets its own steps; 'step_schedule' applies to pgd, pgd-search, pgd-targeted, transfer"):
        AttackSpec(attack="apgd-dlr", eps=0.1, step_schedule="cosine")


@pytest.mark.slow
def test_a_sharp_surrogate_with_a_decaying_step_breaks_survivors_that_its_fixed_step_leaves(shipped_models):
    """Issue 40's red team: the direct SNN's survivors of `reliable` version 8 (the official row's),
    broken through the arctan surrogate at sharpness 8 only with large early steps."""
    import json
    from pathlib import Path

    from robustbench_snn.attacks.protocol import AttackSpec
    from robustbench_snn.attacks.runner import attack_samples
    from robustbench_snn.data import load_dataset

    store = Path(__file__).parents[1] / "results" / "fashion-mnist.jsonl"
    rows = [json.loads(line) for line in store.read_text().splitlines()]
    (row,) = [
        row
        for row in rows
        if row["model"] == "fmnist_snn_direct"
        and row["protocol"] == "reliable"
        and row["n_examples"] == 1000
        and row.get("params", {}).get("version") == 8
    ]
    split = load_dataset("fashion-mnist", "test")
    images = torch.stack([split[index][0] for index in row["survivors"]])
    labels = torch.tensor([int(split[index][1]) for index in row["survivors"]])
    sharp = dict(attack="pgd", eps=0.1, steps=100, restarts=2, loss="cw", surrogate="atan", surrogate_alpha=8.0)
    fooled = {
        schedule: int(
            (
                ~attack_samples(shipped_models["fmnist_snn_direct"], AttackSpec(**sharp, step_schedule=schedule), images, labels, 1, 0, {})
            ).sum()
        )
        for schedule in ("constant", "cosine")
    }
    assert fooled["constant"] == 0 and fooled["cosine"] >= 3


class _FarTopClass(torch.nn.Module):
    """Three classes over three pixels: class 0 (the label) at 1, class 1 at 0.95 whatever the input
    (the largest wrong logit, out of reach), class 2 at 0.5 + 5 x_2 (the reachable boundary)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fixed = torch.ones_like(images[:, 0])
        return torch.stack([fixed, 0.95 * fixed, 0.5 + 5 * images[:, 2]], dim=1)


def test_targeted_pgd_aims_each_restart_at_the_next_most_likely_wrong_class():
    """The untargeted CW margin follows the largest wrong logit, here one no input moves; the targeted
    attack's second restart aims at the next class, whose boundary lies inside the ball."""
    from robustbench_snn.attacks import get_attack
    from robustbench_snn.attacks.methods.pgd import ranked_wrong_classes
    from robustbench_snn.attacks.protocol import AttackSpec

    model, images, labels = _FarTopClass(), torch.zeros(1, 3), torch.zeros(1, dtype=torch.long)
    assert ranked_wrong_classes(model, images, labels).tolist() == [[1, 2]]
    spec = AttackSpec(attack="pgd-targeted", eps=0.2, steps=10, restarts=1, random_start=False)
    untargeted = AttackSpec(attack="pgd", loss="cw", eps=0.2, steps=10, restarts=2, random_start=False)
    untargeted = get_attack("pgd").perturb(model, untargeted, images, labels, 0, 1)
    first_target_only = get_attack("pgd-targeted").perturb(model, spec, images, labels, 0, 1)
    two_targets = get_attack("pgd-targeted").perturb(model, spec.model_copy(update={"restarts": 2}), images, labels, 0, 1)
    assert model(untargeted).argmax(1).item() == 0 and model(first_target_only).argmax(1).item() == 0
    assert model(two_targets).argmax(1).item() == 2 and two_targets[0, :2].tolist() == [0.0, 0.0], "only class 2's pixel moved"


def test_targeted_pgd_aims_each_restart_at_its_own_class_under_the_runner():
    """The runner runs a member's restarts one at a time; each must still aim at its own class (a
    runner that ran every restart as the first aimed all of them at the unreachable class)."""
    from robustbench_snn.attacks.protocol import AttackSpec
    from robustbench_snn.attacks.runner import attack_samples

    model, images, labels = _FarTopClass(), torch.zeros(1, 3), torch.zeros(1, dtype=torch.long)
    spec = AttackSpec(attack="pgd-targeted", eps=0.2, steps=10, restarts=1, random_start=False)
    assert attack_samples(model, spec, images, labels, 1, 0, {}).tolist() == [True]
    assert attack_samples(model, spec.model_copy(update={"restarts": 2}), images, labels, 1, 0, {}).tolist() == [False]


class _StepAtOnePixel(torch.nn.Module):
    """Two classes over a 1x2x2 image whose wrong logit steps up where the first pixel reaches 0.05:
    no gradient anywhere, and the boundary inside the ball around the black image."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        step = torch.floor(10 * images[:, 0, 0, 0] + 0.5) * 0.2
        return torch.stack([torch.full_like(step, 0.5), 0.4 + step], dim=1)


def test_pgd_search_crosses_a_boundary_where_pgd_has_no_gradient():
    """Issue 40's fourth red team: where surrogate PGD stalls, a search on the true margin from its end point crosses."""
    from robustbench_snn.attacks import get_attack
    from robustbench_snn.attacks.protocol import AttackSpec

    model, images, labels = _StepAtOnePixel(), torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.long)
    fields = {"eps": 0.1, "steps": 5, "random_start": False}
    searched = get_attack("pgd-search").perturb(model, AttackSpec(attack="pgd-search", queries=20, **fields), images, labels, 0, 1)
    targeted = get_attack("pgd-targeted").perturb(model, AttackSpec(attack="pgd-targeted", **fields), images, labels, 0, 1)
    assert model(targeted).argmax(1).item() == 0 and torch.equal(targeted, images), "PGD has no gradient to follow"
    assert model(searched).argmax(1).item() == 1 and (searched - images).abs().max() <= 0.1 + 1e-6
    with pytest.raises(ValueError, match="Linf only"):
        AttackSpec(attack="pgd-search", norm="L2", eps=0.5)


class _ThirdClassInside(torch.nn.Module):
    """Four classes over a 1x2x2 image: class 0 (the label) at 1, classes 1 and 2 fixed just below it
    (the two most likely wrong classes, out of reach), class 3 at 1.5 - 50 (x - 0.15)^2 in the last
    pixel x: above 1 only inside the ball (0.08 < x < 0.22), never at its corners (0 or 0.3), where a
    search's moves put pixels, so only PGD toward class 3 crosses."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fixed, pixel = torch.ones_like(images[:, 0, 0, 0]), images[:, 0, 1, 1]
        return torch.stack([fixed, 0.98 * fixed, 0.96 * fixed, 1.5 - 50 * (pixel - 0.15) ** 2], dim=1)


def test_each_pgd_search_restart_aims_pgd_at_each_of_the_three_nearest_classes():
    """One restart: its PGD toward the third most likely wrong class crosses where the first two cannot."""
    from robustbench_snn.attacks import get_attack
    from robustbench_snn.attacks.protocol import AttackSpec

    model, images, labels = _ThirdClassInside(), torch.zeros(1, 1, 2, 2), torch.zeros(1, dtype=torch.long)
    fields = dict(eps=0.3, steps=10, step_size=0.03, restarts=1, queries=5, random_start=False)
    found = get_attack("pgd-search").perturb(model, AttackSpec(attack="pgd-search", **fields), images, labels, 0, 1)
    assert model(found).argmax(1).item() == 3 and found.flatten()[:3].tolist() == [0.0, 0.0, 0.0]
    first_class_only = get_attack("pgd-targeted").perturb(model, AttackSpec(attack="pgd-targeted", **fields), images, labels, 0, 1)
    assert model(first_class_only).argmax(1).item() == 0


class _Linear(torch.nn.Module):
    """Two classes over three pixels: class 0 at 1, class 1 at 0.5 + the pixels' sum, so that within
    eps 0.1 of the black image the margin rises to -0.2 with every pixel at 0.1 and never crosses."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.ones_like(images[:, 0]), 0.5 + images.sum(1)], dim=1)


def test_a_warm_starting_member_gets_the_best_point_the_members_before_it_reached(monkeypatch):
    """Issue 40's fourth red team searched from surrogate PGD's best point; the runner keeps each
    sample's input of largest margin (here the first member's, not the weaker last one's) and hands
    it to a member that warm-starts, which `pgd-search` then prefers to its own PGD's end points."""
    from robustbench_snn.attacks.attack import ATTACKS, Attack
    from robustbench_snn.attacks.methods.pgd_search import best_start
    from robustbench_snn.attacks.protocol import AttackSpec, Protocol
    from robustbench_snn.attacks.runner import attack_batch

    class RecordsStarts(Attack):
        name = "test-records-starts"
        warm_starts = True
        received: list = []

        def perturb(self, model, spec, images, labels, seed, draws, starts=None):
            self.received.append(starts.clone())
            return images

    ATTACKS.lookup("fgsm")  # the built-ins first, so the test's attack is the only one added
    monkeypatch.setitem(ATTACKS._entries, RecordsStarts.name, RecordsStarts())
    model, images, labels = _Linear(), torch.zeros(2, 3), torch.zeros(2, dtype=torch.long)
    members = [
        AttackSpec(attack="pgd", eps=0.1, steps=10, random_start=False),
        AttackSpec(attack="pgd", eps=0.1, steps=1, step_size=0.01, random_start=False),
        AttackSpec(attack="test-records-starts", eps=0.1),
    ]
    outcome = attack_batch(model, Protocol(name="p", members=members), members, images, labels, 0, {}, count_gradients=False)
    assert outcome.robust == [True, True]
    (starts,) = RecordsStarts.received
    assert torch.allclose(starts, torch.full((2, 3), 0.1)), "the first member's point, of larger margin than the last one's"
    worse = torch.full((2, 3), 0.01)
    assert torch.equal(best_start(model, [worse, starts, worse], labels), starts)
    assert torch.equal(best_start(model, [starts, worse], labels), starts)


def test_only_the_first_pgd_search_restart_searches_from_the_members_best_point(monkeypatch):
    """The runner's best point includes the member's own last search: a later restart handed it would
    search again from where that one stalled, so later restarts search from their own PGD's ends."""
    from robustbench_snn.attacks import get_attack
    from robustbench_snn.attacks.methods import pgd_search
    from robustbench_snn.attacks.protocol import AttackSpec

    searched_from = []

    def recording_search(scores, clean, start, labels, eps, iterations, generator):
        searched_from.append(start.clone())
        return start, torch.full((len(start),), -1.0)

    monkeypatch.setattr(pgd_search, "margin_search", recording_search)
    model, images, labels = _Linear(), torch.zeros(1, 3), torch.zeros(1, dtype=torch.long)
    best = torch.full((1, 3), 0.1)
    spec = AttackSpec(attack="pgd-search", eps=0.1, steps=1, step_size=0.01, random_start=False, restarts=1)
    for restart in (0, 1):
        get_attack("pgd-search").perturb(model, spec.one_restart(restart), images, labels, 0, 1, starts=best)
    first, later = searched_from
    assert torch.equal(first, best) and torch.allclose(later, torch.full((1, 3), 0.01))


def test_a_last_layer_sharpness_sets_the_last_spiking_layer_only_and_is_part_of_the_label(shipped_models):
    """Issue 40's fourth red team: sharp early layers and a smooth last one (8, 8, 2) brought PGD to
    margins that one sharpness everywhere did not; ``surrogate_alpha_last`` says it in a preset."""
    from robustbench_snn.attacks.protocol import AttackSpec
    from robustbench_snn.attacks.runner import gradient_context, normalised

    model = shipped_models["fmnist_snn_direct"]
    spec = AttackSpec(attack="pgd", eps=0.1, surrogate="atan", surrogate_alpha=8.0, surrogate_alpha_last=2.0)
    before = [layer.surrogate for layer in model.spiking_layers]
    with gradient_context(model, spec):
        assert [layer.surrogate for layer in model.spiking_layers] == [("atan", 8.0)] * (len(before) - 1) + [("atan", 2.0)]
    assert [layer.surrogate for layer in model.spiking_layers] == before
    assert spec.label() == "pgd-10[bptt-atan@8,last@2]"
    same = AttackSpec(attack="pgd", eps=0.1, surrogate="atan", surrogate_alpha=8.0, surrogate_alpha_last=8.0)
    assert normalised(same, model).label() == "pgd-10[bptt-atan@8]" and normalised(same, model).surrogate_alpha_last is None
    assert "surrogate_alpha_last" not in AttackSpec(attack="pgd", eps=0.1).model_dump(), "members without it keep their identity"
    with pytest.raises(ValueError, match="needs bptt through a named surrogate"):
        AttackSpec(attack="pgd", eps=0.1, surrogate_alpha_last=2.0)
