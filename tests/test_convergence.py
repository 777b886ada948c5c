"""Worst cases that never rise with more attacks, restarts or doublings, and the convergence check."""

import torch
from conftest import model_with

from robustbench_snn import attack, benchmark
from robustbench_snn.attacks import Protocol
from robustbench_snn.attacks.protocol import AttackSpec, Convergence

N = 40


def _poisson(shipped_models):
    return model_with(shipped_models, kind="snn", encoding="poisson")


def _robust(model, images, labels, protocol, seed=0):
    return attack(model, images, labels, dataset="fashion-mnist", attack=protocol, seed=seed)


def test_more_restarts_repeat_the_fewer_and_never_raise_robust_accuracy(shipped_models, fmnist_batch):
    model = _poisson(shipped_models)
    images, labels = fmnist_batch
    results = {}
    for restarts in (1, 2, 4):
        member = AttackSpec(attack="square", eps=0.1, queries=20, restarts=restarts, eot=1)
        results[restarts] = _robust(model, images, labels, Protocol(name="s", members=[member], eval_draws=2))
    assert (results[2].robust <= results[1].robust).all()
    assert (results[4].robust <= results[2].robust).all()


def test_later_members_keep_the_earlier_protocol_as_their_exact_start(shipped_models, fmnist_batch):
    model = _poisson(shipped_models)
    images, labels = fmnist_batch
    earlier = [
        AttackSpec(attack="pgd", eps=0.05, steps=3, eot=2),
        AttackSpec(attack="square", eps=0.05, queries=30, eot=1),
    ]
    later = [AttackSpec(attack="pgd", eps=0.05, steps=3, eot=2, estimator="relaxed", temperature=0.3)]
    v2 = _robust(model, images, labels, Protocol(name="p", members=earlier, eval_draws=2))
    v3 = _robust(model, images, labels, Protocol(name="p", members=earlier, later_members=later, eval_draws=2))
    assert (v3.robust <= v2.robust).all()
    assert v3.attacks[: len(v2.attacks)] == v2.attacks
    for sample in range(len(images)):  # every sample v2 fooled, v3 fooled by the same member
        if v2.fooled_by[sample] is not None:
            assert v3.fooled_by[sample] == v2.fooled_by[sample]


def test_the_convergence_rule_doubles_a_cheap_members_restarts_and_records_the_curve(shipped_models):
    model = _poisson(shipped_models)
    protocol = Protocol(
        name="c",
        members=[AttackSpec(attack="pgd", eps=0.1, steps=2, eot=8), AttackSpec(attack="pgd", eps=0.1, steps=2, source="expectation")],
        eval_draws=2,
        convergence=Convergence(share=0.0, min_doublings=1, max_doublings=2),
    )
    record = benchmark(model, dataset="fashion-mnist", attack=protocol, n_examples=N, seed=0, batch_size=20)
    assert list(record.flag_details["convergence"]) == ["pgd-2[bptt]<-expectation"]  # the cheap member only
    curve = record.flag_details["convergence"]["pgd-2[bptt]<-expectation"]
    assert curve["restarts"][0] == 1 and curve["restarts"][1] == 2
    assert curve["robust"] == sorted(curve["robust"], reverse=True)
    assert curve["robust"][-1] == round(record.robust_accuracy * N)
    # share 0: a doubling that still finds a sample after the last allowed one is not converged
    assert ("not_converged" in record.flags) == (curve["unconverged_batches"] > 0)
    seeds = record.member_seeds["pgd-2[bptt]<-expectation"]
    assert len(seeds) == 2 and all(len(set(batch)) == len(batch) >= 2 for batch in seeds)


def test_restarted_members_double_only_where_their_declared_restarts_found_samples(shipped_models):
    """``applies_to: restarted`` with ``min_doublings: 0``: the declared restarts are the first look;
    a member that fooled nothing with them is not doubled, one that fooled samples is, and a member
    without restarts is not a candidate wherever it stands."""
    model = shipped_models["fmnist_snn_direct"]
    rule = Convergence(applies_to="restarted", share=0.0, min_doublings=0, max_doublings=1)

    def curves(eps: float) -> dict:
        members = [AttackSpec(attack="pgd", eps=eps, steps=2), AttackSpec(attack="pgd", eps=eps, steps=2, restarts=2, loss="cw")]
        protocol = Protocol(name="r", members=members, convergence=rule)
        return benchmark(model, dataset="fashion-mnist", attack=protocol, n_examples=N, seed=0, batch_size=N).flag_details["convergence"]

    weak = curves(0.001)
    assert list(weak) == ["pgd-2x2-cw[bptt]"] and weak["pgd-2x2-cw[bptt]"]["restarts"] == [2]
    strong = curves(0.1)["pgd-2x2-cw[bptt]"]
    assert strong["restarts"] == [2, 4] and strong["robust"][1] <= strong["robust"][0]


def test_any_gradient_attack_crafts_on_a_source_and_mi_di_fgsm_on_an_ensemble(shipped_models, fmnist_batch):
    model = _poisson(shipped_models)
    images, labels = fmnist_batch
    members = [
        AttackSpec(attack="apgd-ce", eps=0.1, steps=5, source="expectation"),
        AttackSpec(attack="mi-di-fgsm", eps=0.1, steps=5, source="expectation+twin", loss="cw"),
    ]
    result = _robust(model, images, labels, Protocol(name="t", members=members, eval_draws=2))
    assert result.attacks[0] == "apgd-ce-5[bptt]<-expectation"
    assert result.attacks[1].startswith("mi-di-fgsm-5-cw[bptt]<-expectation+fmnist_ann")
    assert not result.skipped
    assert ((result.adversarial - images).abs() <= 0.1 + 1e-6).all()
    assert result.robust_accuracy < result.clean.float().mean()
    assert torch.isfinite(result.adversarial).all()


def test_a_deterministic_model_is_its_own_expectation_so_reliable_is_not_reduced(shipped_models, fmnist_batch):
    model = shipped_models["fmnist_snn_pgdat"]
    images, labels = fmnist_batch
    result = attack(model, images[:4], labels[:4], dataset="fashion-mnist", attack="reliable", seed=0)
    assert not result.skipped
    # the expectation's members are crafted on the model itself
    assert {"pgd-50x4-cw[bptt]", "pgd-50x2-cw[bptt-sigmoid]", "apgd-ce-100x2[bptt]", "sapgd-100x2-cw[bptt]"} <= set(result.attacks)
    assert not any("expectation" in label or "relaxed" in label for label in result.attacks)  # no sampling to relax
    assert any(label.startswith("apgd-dlr-100x2[bptt") for label in result.attacks)  # its sharpness searched
