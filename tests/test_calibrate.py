"""Attack settings searched per model on calibration images, and kills decided a second time."""

from pathlib import Path

import pytest

from robustbench_snn import benchmark
from robustbench_snn.attacks import Protocol, build_protocol
from robustbench_snn.attacks.protocol import AttackSpec
from robustbench_snn.data import load_dataset
from robustbench_snn.errors import UserError
from robustbench_snn.evaluation.calibrate import CALIBRATION_IMAGES, SEARCH_STEPS, SURVIVOR_CALIBRATION_IMAGES


def _searching(field: str, candidates: list[float], **fields) -> Protocol:
    member = AttackSpec(attack="pgd", eps=0.1, steps=3, search={field: candidates}, **fields)
    return Protocol(name="searching", members=[member], eval_draws=2)


def test_a_searched_step_size_is_chosen_on_calibration_images_and_recorded(shipped_models):
    model = shipped_models["fmnist_snn_direct"]
    record = benchmark(model, attack=_searching("step_size", [1e-4, 0.05]), n_examples=16, batch_size=16, seed=0)
    (search,) = record.searches
    assert search["images"] == f"fashion-mnist test[{10_000 - CALIBRATION_IMAGES}:10000]"
    assert search["fooled"][1] > search["fooled"][0]  # a step of 1e-4 cannot move a pixel far in 3 steps
    assert search["chosen"] == 0.05 and record.attacks == [search["member"]]


def test_a_searched_temperature_runs_the_relaxed_estimator_only_where_the_coding_admits_it(shipped_models):
    protocol = _searching("temperature", [0.01, 0.3], estimator="relaxed", eot=2, only_with_estimator=True)
    poisson = benchmark(shipped_models["fmnist_snn_poisson"], attack=protocol, n_examples=8, batch_size=8, seed=0)
    assert poisson.searches[0]["field"] == "temperature" and "relaxed@" in poisson.attacks[0]
    direct = benchmark(shipped_models["fmnist_snn_direct"], attack=protocol, n_examples=8, batch_size=8, seed=0)
    assert direct.attacks == [] and direct.robust_accuracy is None and not direct.skipped_members


def test_an_evaluation_reaching_the_calibration_images_searches_on_training_images_or_is_refused(tmp_path, monkeypatch):
    from robustbench_snn.errors import DatasetNotFoundError
    from robustbench_snn.evaluation import calibrate

    def test_split_only(dataset, split, data_dir=None):
        if split == "train":
            raise DatasetNotFoundError("no training split here")
        return load_dataset(dataset, split, data_dir)

    with monkeypatch.context() as patched:  # a machine without the training split (pip installs only the test split)
        patched.setattr(calibrate, "load_dataset", test_split_only)
        with pytest.raises(UserError, match="never evaluates"):
            calibrate.calibration_images("fashion-mnist", str(tmp_path), 10_000 - 10, "cpu")
    calibration_images = calibrate.calibration_images
    shipped = Path(load_dataset.__globals__["EMBEDDED_DIR"]) / "fashion-mnist"
    (tmp_path / "fashion-mnist").mkdir()
    for kind in ("images-idx3", "labels-idx1"):
        (tmp_path / "fashion-mnist" / f"train-{kind}-ubyte.gz").write_bytes((shipped / f"t10k-{kind}-ubyte.gz").read_bytes())
    assert calibration_images("fashion-mnist", str(tmp_path), 10_000, "cpu").description == f"fashion-mnist train[0:{CALIBRATION_IMAGES}]"
    assert calibration_images("fashion-mnist", str(tmp_path), 1000, "cpu").description.startswith("fashion-mnist test[")


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ({"search": {"steps": [1, 2]}}, "cannot be searched"),
        ({"search": {"temperature": [0.1]}}, "2 to 8 distinct"),
        ({"search": {"temperature": [0.1, -1.0]}, "estimator": "relaxed"}, "greater than 0"),
        ({"only_with_estimator": True}, "needs an estimator"),
        ({"search": {"surrogate_alpha": [4.0, 8.0]}, "search_keep": 3}, "at least that many candidates"),
        ({"search": {"step_size": [0.01, 0.05]}, "search_keep": 2}, "told apart by their labels"),
    ],
)
def test_a_malformed_search_is_a_clear_error(tmp_path, member, message):
    preset = tmp_path / "bad.yaml"
    fields = ", ".join(f"{key}: {value}" for key, value in member.items()).replace("'", "")
    preset.write_text(f"name: bad\nmembers:\n  - {{attack: pgd, {fields}}}\n")
    with pytest.raises(UserError, match=message):
        build_protocol("bad", directory=tmp_path)


def test_kills_are_decided_again_on_fresh_draws(shipped_models):
    overrides = {"steps": 2, "eot": 2, "eval_draws": 2}
    stochastic = benchmark(shipped_models["fmnist_snn_poisson"], attack="pgd", overrides=overrides, n_examples=32, batch_size=32, seed=0)
    kills, holding = sum(stochastic.member_kills.values()), sum(stochastic.member_kills_holding.values())
    assert 0 < holding <= kills
    assert stochastic.robust_accuracy <= stochastic.robust_accuracy_redecided
    deterministic = benchmark(shipped_models["fmnist_snn_direct"], attack="pgd", overrides={"steps": 2}, n_examples=32, batch_size=32)
    assert deterministic.member_kills_holding == deterministic.member_kills  # one decision is every decision


def test_a_preset_for_deterministic_models_on_a_stochastic_one_says_so_before_any_work(shipped_models, caplog):
    from robustbench_snn.evaluation import plan_evaluation

    arguments = {"dataset": None, "n_examples": 8, "seed": 0, "batch_size": 8, "data_dir": None, "device": "cpu", "compile_lif": False}
    with caplog.at_level("WARNING"):
        plan_evaluation(shipped_models["fmnist_rsc1_s0.2"], attack="autoattack", overrides=None, model_name=None, **arguments)
    (warning,) = [record.getMessage() for record in caplog.records if "overstate robustness" in record.getMessage()]
    assert "autoattack-rand" in warning and "reliable" in warning and "autoattack," not in warning
    caplog.clear()
    with caplog.at_level("WARNING"):
        plan_evaluation(shipped_models["fmnist_rsc1_s0.2"], attack="autoattack-rand", overrides=None, model_name=None, **arguments)
    assert not [record for record in caplog.records if "overstate robustness" in record.getMessage()]


def test_autoattacks_long_stages_move_the_progress_of_their_member(shipped_models, fmnist_batch):
    from robustbench_snn.attacks import attack_batch, build_protocol
    from robustbench_snn.evaluation.plan import prepare, resolve_protocol

    model = shipped_models["fmnist_ann"]  # broken by APGD-CE at once: AutoAttack stops after its first stage
    images, labels = fmnist_batch[0][:4], fmnist_batch[1][:4]
    protocol = resolve_protocol(build_protocol("autoattack", {"eval_draws": 1}), None, "fashion-mnist")
    model, protocol, members, sources, _ = prepare(model, protocol, images, "cpu", 0, "fashion-mnist")
    reported: list[float] = []
    attack_batch(model, protocol, members, images, labels, 0, sources, count_gradients=False, on_member=reported.append)
    inside = [done for done in reported if 0 < done < 1]
    assert inside and inside == sorted(inside) and reported[-1] == 1  # stages inside the one member, then its end


def test_a_search_on_survivors_decides_on_the_images_the_first_member_leaves_robust(shipped_models):
    """``search_on: survivors`` (reliable since version 9): the candidates are compared on the
    calibration images the first member left robust, which the row names, not on the easy ones
    every candidate fools."""
    first = AttackSpec(attack="pgd", eps=0.1, steps=2)
    searched = AttackSpec(attack="pgd", eps=0.1, steps=5, loss="cw", surrogate="atan", search={"surrogate_alpha": [4.0, 8.0]})
    protocol = Protocol(name="searching", members=[first, searched], search_on="survivors")
    record = benchmark(shipped_models["fmnist_snn_pgdat"], attack=protocol, n_examples=8, batch_size=8, seed=0)
    (search,) = record.searches
    left = int(search["images"].split("(the ")[1].split()[0])
    assert search["images"].startswith(f"fashion-mnist test[{10_000 - SURVIVOR_CALIBRATION_IMAGES}:10000]")
    assert "pgd-2[bptt] left robust" in search["images"] and max(search["fooled"]) <= left
    on_clean = benchmark(shipped_models["fmnist_snn_pgdat"], attack=protocol.model_copy(update={"search_on": "clean"}), n_examples=8)
    assert on_clean.searches[0]["images"] == f"fashion-mnist test[{10_000 - CALIBRATION_IMAGES}:10000]"


def test_a_search_on_survivors_falls_back_to_every_image_when_the_first_member_leaves_too_few(shipped_models):
    strong = AttackSpec(attack="pgd", eps=0.1, steps=10)
    searched = AttackSpec(attack="pgd", eps=0.1, steps=2, search={"step_size": [0.01, 0.05]})
    protocol = Protocol(name="searching", members=[strong, searched], search_on="survivors")
    record = benchmark(shipped_models["fmnist_ann"], attack=protocol, n_examples=8, batch_size=8, seed=0)
    (search,) = record.searches
    assert "it gets right: pgd-10 left 0" in search["images"]
    assert Protocol(name="plain").model_dump().keys() == protocol.model_copy(update={"search_on": "clean"}).model_dump().keys()


def test_search_keep_runs_the_best_candidates_in_their_order_and_a_long_member_shares_the_short_ones_curve(shipped_models, monkeypatch):
    """``search_keep: 2`` (reliable since version 11) runs the two best sharpnesses, best first, the
    second on what the first leaves; a member that is another's attack run longer is compared at
    `SEARCH_STEPS` on the other's curve, not searched again."""
    from robustbench_snn.evaluation import calibrate

    runs, outcome = [], calibrate._outcome

    def counted(model, candidate, *rest):
        runs.append(candidate.label())
        return outcome(model, candidate, *rest)

    monkeypatch.setattr(calibrate, "_outcome", counted)
    sharpness = {"surrogate_alpha": [4.0, 8.0, 16.0]}
    searched = dict(attack="pgd", eps=0.1, loss="cw", surrogate="atan", step_schedule="cosine", search=sharpness)
    short = AttackSpec(steps=SEARCH_STEPS, restarts=2, **searched)
    long = AttackSpec(steps=SEARCH_STEPS + 20, search_keep=2, **searched)
    protocol = Protocol(name="searching", members=[short, long])
    record = benchmark(shipped_models["fmnist_snn_pgdat"], attack=protocol, n_examples=8, batch_size=8, seed=0)
    assert len(runs) == 3  # three candidates, searched once for both members
    first, second = record.searches
    assert (first["fooled"], first["mean_margin"]) == (second["fooled"], second["mean_margin"])
    ranked = sorted(range(3), key=lambda index: (-second["fooled"][index], -second["mean_margin"][index], index))
    assert second["kept"] == [second["candidates"][index] for index in ranked[:2]] and second["chosen"] == second["kept"][0]
    assert first["kept"] == [first["chosen"]]
    longs = [label for label in record.attacks if label.startswith(f"pgd-{SEARCH_STEPS + 20}-")]
    assert longs == [f"pgd-{SEARCH_STEPS + 20}-cw-cosine[bptt-atan@{alpha:g}]" for alpha in second["kept"]]
    assert set(longs) <= set(record.member_kills)


def test_search_keep_runs_one_member_where_the_model_makes_every_candidate_one_attack(shipped_models):
    member = AttackSpec(attack="pgd", eps=0.1, steps=3, surrogate="atan", search={"surrogate_alpha": [4.0, 8.0]}, search_keep=2)
    record = benchmark(shipped_models["fmnist_ann"], attack=Protocol(name="searching", members=[member]), n_examples=8, batch_size=8)
    assert record.attacks == ["pgd-3"] and record.searches == []
