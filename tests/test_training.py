"""Training recipes on real Fashion-MNIST images, and `rsc-bench train` writing a registry entry."""

import pytest
import torch

from robustbench_snn.data import DATASETS
from robustbench_snn.errors import UserError
from robustbench_snn.models import ModelSpec, NeuronConfig, build_classifier
from robustbench_snn.registry import load_model, read_card
from robustbench_snn.training import TrainingConfig, build_recipe

RSC = {"sigma": 0.2, "variant": "I"}
RECIPE_MODELS = [
    ("standard", ModelSpec("small_cnn", "ann"), {}),
    ("standard", ModelSpec("small_cnn", "snn", "poisson", timesteps=2), {}),
    ("rsc", ModelSpec("small_cnn", "snn", "rsc", RSC, timesteps=2), {}),
    ("ersct", ModelSpec("small_cnn", "snn", "rsc", RSC, timesteps=2), {"teacher": "fmnist_ann"}),
    ("pgd-at", ModelSpec("small_cnn", "ann"), {"at_steps": 2}),
    ("pgd-at", ModelSpec("small_cnn", "snn", timesteps=2), {"at_steps": 2}),
    ("snn-rat", ModelSpec("small_cnn", "snn", timesteps=2), {}),
    ("low-latency", ModelSpec("small_cnn", "snn", "poisson", timesteps=2), {}),
    ("tgo", ModelSpec("small_cnn", "snn", timesteps=2, neuron=NeuronConfig(params={"noise_sigma": 0.2})), {}),
    ("sr", ModelSpec("small_cnn", "snn", timesteps=2), {"sr_lambda": 0.01}),
]


def recipe_for(recipe: str, spec: ModelSpec, options: dict):
    torch.manual_seed(0)
    model = build_classifier(spec, DATASETS["fashion-mnist"], seed=0)
    config = TrainingConfig(recipe=recipe, options=options)
    return model, build_recipe(model, spec, "fashion-mnist", config, "cpu")


@pytest.mark.parametrize(
    ("recipe", "spec", "options"), RECIPE_MODELS, ids=[f"{recipe}-{spec.kind}-{spec.encoding}" for recipe, spec, _ in RECIPE_MODELS]
)
def test_each_recipe_lowers_its_loss_in_a_few_steps(fmnist_batch, recipe, spec, options):
    images, labels = fmnist_batch
    model, batch_loss = recipe_for(recipe, spec, options)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    after_step = getattr(batch_loss, "after_step", lambda model: None)
    for step in range(20):
        model.train()
        loss = batch_loss(model, images, labels, step)
        optimizer.zero_grad()
        loss.total.backward()
        optimizer.step()
        after_step(model)
        losses.append(loss.total.item())
    assert all(torch.isfinite(torch.tensor(losses)))
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3, losses


def test_ersct_distillation_and_presynaptic_terms_are_nonzero_and_reach_the_students_weights(fmnist_batch):
    images, labels = fmnist_batch
    model, distillation = recipe_for("ersct", ModelSpec("small_cnn", "snn", "rsc", RSC, timesteps=2), {"teacher": "fmnist_ann"})
    model.train()
    _, terms = distillation.terms(model, images, labels)
    first_conv, readout = model.backbone[0].weight, model.backbone[-1].bias
    for name in ("kd", "presynaptic"):
        assert terms[name].item() > 0, name
        (gradient,) = torch.autograd.grad(terms[name], [first_conv], retain_graph=True)
        assert torch.isfinite(gradient).all() and gradient.abs().sum() > 0, name
    (readout_gradient,) = torch.autograd.grad(terms["kd"], [readout], retain_graph=True)
    assert readout_gradient.abs().sum() > 0
    assert not any(module._forward_hooks for module in model.modules()), "hooks must not outlive a batch"


def test_recipe_options_are_checked_against_the_recipe_and_the_model():
    with pytest.raises(UserError, match="ersct recipe.s settings need --teacher: the registered ANN teacher"):
        TrainingConfig(recipe="ersct")
    with pytest.raises(UserError, match="kd-weight is an option of the ersct recipe"):
        TrainingConfig(recipe="standard", options={"kd_weight": 2.0})
    assert TrainingConfig(recipe="pgd-at").options["at_steps"] == 5
    with pytest.raises(UserError, match="must be an ANN"):
        recipe_for("ersct", ModelSpec("small_cnn", "snn", "rsc", RSC, timesteps=2), {"teacher": "fmnist_snn_direct"})
    with pytest.raises(UserError, match="rsc recipe trains RSC models"):
        recipe_for("rsc", ModelSpec("small_cnn", "snn", timesteps=2), {})


def test_snn_rat_trains_at_fgsm_examples_of_a_quarter_of_the_threat_model_and_retracts_toward_parseval_weights(fmnist_batch):
    from robustbench_snn.training.snn_rat import parseval_retraction

    model, recipe = recipe_for("snn-rat", ModelSpec("small_cnn", "snn", timesteps=2), {})
    assert recipe.spec.attack == "fgsm" and recipe.spec.eps == pytest.approx(DATASETS["fashion-mnist"].linf_eps / 4)
    assert recipe.beta == 0.004
    # W <- (1 + b) W - b W W^T W: on a diagonal matrix each entry d goes to (1 + b) d - b d^3 (worked by hand).
    layer = torch.nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[2.0, 0.0], [0.0, 0.5]]))
    parseval_retraction(layer, 0.1, torch.Generator().manual_seed(0))
    assert torch.allclose(layer.weight, torch.tensor([[2.2 - 0.8, 0.0], [0.0, 0.55 - 0.0125]]))
    # Orthonormal rows are its fixed point; a conv's filters are the rows of its flattened weight.
    rotation = torch.nn.Conv2d(2, 2, 1, bias=False)
    with torch.no_grad():
        rotation.weight.copy_(torch.tensor([[0.6, 0.8], [-0.8, 0.6]]).view(2, 2, 1, 1))
    before = rotation.weight.clone()
    parseval_retraction(rotation, 0.1, torch.Generator().manual_seed(0))
    assert torch.allclose(rotation.weight, before)
    with pytest.raises(UserError, match="snn-rat trains SNNs"):
        recipe_for("snn-rat", ModelSpec("small_cnn", "ann"), {})
    with pytest.raises(UserError, match="low-latency trains Poisson-coded SNNs"):
        recipe_for("low-latency", ModelSpec("small_cnn", "snn", timesteps=2), {})


def test_a_defence_recipes_card_names_its_paper_and_the_preset_of_its_evaluation(tmp_path, shipped_train_dir):
    from click.testing import CliRunner

    from robustbench_snn.attacks import build_protocol
    from robustbench_snn.cli import main

    out = tmp_path / "tiny_lowlat"
    arguments = ["train", "--dataset", "fashion-mnist", "--arch", "small_cnn", "--kind", "snn", "--encoding", "poisson", "-T", "2"]
    arguments += ["--tau", "1.5", "--recipe", "low-latency", "--epochs", "1", "--train-examples", "64", "--batch-size", "64"]
    arguments += ["--out", str(out), "-q", "--data-dir", str(shipped_train_dir)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    card = read_card(out.with_suffix(".yaml"))
    assert card.neuron.tau == 1.5 and "--tau 1.5" in card.training.command and card.timesteps == 2
    assert "Sharmin" in card.reference.paper and card.reference.protocol == "paper-sharmin2020"
    assert build_protocol(card.reference.protocol).members[0].attack == "fgsm"


def test_a_card_records_the_radius_a_recipe_took_from_the_dataset_and_a_tgo_card_its_noisy_neurons(tmp_path, shipped_train_dir):
    from click.testing import CliRunner

    from robustbench_snn.cli import main

    quarter = DATASETS["fashion-mnist"].linf_eps / 4
    assert TrainingConfig(recipe="snn-rat").for_dataset("fashion-mnist").as_card_dict()["rat_eps"] == pytest.approx(quarter)
    assert (
        TrainingConfig(recipe="hosnn", options={"clean_model": "fmnist_snn_direct", "hosnn_eps": 0.01})
        .for_dataset("fashion-mnist")
        .options["hosnn_eps"]
        == 0.01
    )
    assert TrainingConfig(recipe="pgd-at").for_dataset("fashion-mnist").options["at_eps"] == DATASETS["fashion-mnist"].linf_eps
    out = tmp_path / "tiny_tgo"
    arguments = ["train", "--dataset", "fashion-mnist", "--arch", "small_cnn", "--kind", "snn", "-T", "2", "--noise-sigma", "0.2"]
    arguments += ["--recipe", "tgo", "--epochs", "1", "--train-examples", "64", "--batch-size", "64"]
    arguments += ["--out", str(out), "-q", "--data-dir", str(shipped_train_dir)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    card = read_card(out.with_suffix(".yaml"))
    assert card.neuron.noise_sigma == 0.2 and card.stochastic and card.reference.protocol == "paper-tgo"
    assert card.training.hyperparameters["tgo_margin"] == 0.3 and card.training.hyperparameters["tgo_lambda"] == 1.0
    assert load_model(str(out.with_suffix(".yaml"))).stochastic


def test_train_command_writes_a_card_that_validates_and_loads(tmp_path, shipped_train_dir):
    from click.testing import CliRunner

    from robustbench_snn.cli import main

    out = tmp_path / "tiny_ersct"
    result = CliRunner().invoke(
        main,
        [
            "train",
            "--dataset",
            "fashion-mnist",
            "--arch",
            "small_cnn",
            "--kind",
            "snn",
            "--encoding",
            "rsc",
            "--sigma",
            "0.1",
            "--variant",
            "II",
            "-T",
            "2",
            "--recipe",
            "ersct",
            "--teacher",
            "fmnist_ann",
            "--epochs",
            "1",
            "--train-examples",
            "256",
            "--batch-size",
            "64",
            "--seed",
            "0",
            "--out",
            str(out),
            "-q",
            "--data-dir",
            str(shipped_train_dir),
        ],
    )
    assert result.exit_code == 0, result.output
    card = read_card(tmp_path / "tiny_ersct.yaml")
    assert card.training.recipe == "ersct" and "--teacher fmnist_ann" in card.training.command
    hyperparameters = card.training.hyperparameters
    assert hyperparameters["teacher"] == "fmnist_ann" and hyperparameters["kd_temperature"] == 4.0
    assert "at_steps" not in hyperparameters
    assert {"torch", "threads", "device"} <= set(card.training.environment)
    assert card.claimed.n_examples == 10000
    assert 0 < card.training.seconds and f"trained in {card.training.seconds:.0f} s" in result.output
    model = load_model(str(tmp_path / "tiny_ersct.yaml"))
    assert model.card.encoding.variant == "II"


def test_same_command_and_seed_give_the_same_checkpoint_hash(tmp_path, shipped_train_dir):
    from robustbench_snn.registry import sha256_of, write_state_dict
    from robustbench_snn.training import train_classifier

    spec = ModelSpec("small_cnn", "snn", "rsc", RSC, timesteps=2)
    config = TrainingConfig(recipe="rsc", epochs=1, batch_size=64, train_examples=192, seed=3)
    hashes = []
    for attempt in range(2):
        model = train_classifier(spec, "fashion-mnist", config, data_dir=shipped_train_dir)
        write_state_dict(model.state_dict(), tmp_path / f"run{attempt}.safetensors")
        hashes.append(sha256_of(tmp_path / f"run{attempt}.safetensors"))
    assert hashes[0] == hashes[1]
    other = train_classifier(
        spec, "fashion-mnist", TrainingConfig(recipe="rsc", epochs=1, batch_size=64, train_examples=192, seed=4), data_dir=shipped_train_dir
    )
    write_state_dict(other.state_dict(), tmp_path / "other.safetensors")
    assert sha256_of(tmp_path / "other.safetensors") != hashes[0]


def test_the_command_a_train_card_records_replays_to_the_bit_identical_checkpoint(tmp_path, shipped_train_dir):
    import shlex

    from click.testing import CliRunner

    from robustbench_snn.cli import main
    from robustbench_snn.registry import sha256_of

    first = tmp_path / "first" / "tiny_direct"
    arguments = ["train", "--dataset", "fashion-mnist", "--arch", "small_cnn", "--kind", "snn", "-T", "2", "--epochs", "1"]
    arguments += ["--train-examples", "128", "--batch-size", "64", "--out", str(first), "-q", "--data-dir", str(shipped_train_dir)]
    assert CliRunner().invoke(main, arguments).exit_code == 0
    card = read_card(first.with_suffix(".yaml"))
    recorded = shlex.split(card.training.command)
    assert recorded[:2] == ["rsc-bench", "train"] and "--encoding" in recorded and "()" not in recorded
    assert recorded[recorded.index("--encoding") + 1] == "direct"
    assert "RSC" not in card.reference.paper, "a direct-coded SNN follows surrogate-gradient learning, not the RSC paper"
    replayed = tmp_path / "replayed" / "tiny_direct"
    recorded[recorded.index("--out") + 1] = str(replayed)
    result = CliRunner().invoke(main, recorded[1:])
    assert result.exit_code == 0, result.output
    assert sha256_of(replayed.with_suffix(".safetensors")) == sha256_of(first.with_suffix(".safetensors")) == card.checkpoint.sha256


def _train(arguments: list[str]):
    from click.testing import CliRunner

    from robustbench_snn.cli import main

    base = ["train", "--dataset", "fashion-mnist", "--arch", "small_cnn", "--kind", "ann", "--epochs", "1", "--train-examples", "64"]
    return CliRunner().invoke(main, base + arguments)


def test_a_training_run_never_replaces_a_registered_model_without_being_told(tmp_path):
    from robustbench_snn.registry import find_card, sha256_of

    card = find_card("fmnist_ann")
    stem = card.path.with_suffix("")
    before = (sha256_of(card.path), sha256_of(stem.with_suffix(".safetensors")))
    result = _train(["--out", str(stem)])
    assert result.exit_code != 0 and "registered model" in result.output and "--overwrite" in result.output
    elsewhere = _train(["--out", str(tmp_path / "fmnist_ann")])  # its name elsewhere: two models, one name
    assert elsewhere.exit_code != 0 and "choose another name" in elsewhere.output
    assert (sha256_of(card.path), sha256_of(stem.with_suffix(".safetensors"))) == before
    assert not list(tmp_path.iterdir())


def test_existing_output_files_are_replaced_only_with_overwrite(tmp_path):
    (tmp_path / "mine.yaml").write_text("my notes\n")
    result = _train(["--out", str(tmp_path / "mine")])
    assert result.exit_code != 0 and "already exists" in result.output and "--overwrite" in result.output
    assert (tmp_path / "mine.yaml").read_text() == "my notes\n"


def test_a_learning_rate_that_is_not_a_finite_number_is_refused_before_training(tmp_path):
    result = _train(["--lr", "nan", "--out", str(tmp_path / "nan_lr")])
    assert result.exit_code == 2 and "nan" in result.output.lower() and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


def test_a_plugin_recipes_own_parameter_is_an_option_of_train_and_a_card_hyperparameter(monkeypatch):
    from pydantic import Field

    from robustbench_snn.cli.train import _declared_options
    from robustbench_snn.config import Strict
    from robustbench_snn.defences import RECIPES, RecipeInfo, register_recipe

    class PluginParameters(Strict):
        plugin_weight: float = Field(default=0.5, gt=0, description="weight of the plug-in's term")

    RECIPES.lookup("standard")  # the built-ins first
    register_recipe(
        RecipeInfo(name="plugin-recipe", summary="x", reference=None, build=RECIPES["standard"].build, parameters=PluginParameters)
    )
    try:
        assert TrainingConfig(recipe="standard").recipe == "standard", "one plug-in's option once broke every recipe"
        assert TrainingConfig(recipe="plugin-recipe").as_card_dict()["plugin_weight"] == 0.5
        assert TrainingConfig(recipe="plugin-recipe", options={"plugin_weight": 2.0}).options["plugin_weight"] == 2.0
        with pytest.raises(UserError, match="plugin-weight is an option of the plugin-recipe recipe, not of standard"):
            TrainingConfig(recipe="standard", options={"plugin_weight": 2.0})
        with pytest.raises(UserError, match="greater than 0"):
            TrainingConfig(recipe="plugin-recipe", options={"plugin_weight": -1.0})
        option = next(option for option in _declared_options() if option.name == "plugin_weight")
        assert option.opts == ["--plugin-weight"] and option.help == "plugin-recipe: weight of the plug-in's term [default: 0.5]."
    finally:
        RECIPES.unregister("plugin-recipe")


def test_every_shipped_cards_recorded_train_command_still_parses_to_the_cards_neurons_and_hyperparameters():
    """The options are generated from the neuron types' and recipes' schemas now; every command a
    card recorded with the hand-written options must still mean what it meant."""
    import shlex

    from robustbench_snn.cli.train import _split_declared, train
    from robustbench_snn.defences import parameter_owners
    from robustbench_snn.registry import list_cards

    checked = 0
    for card in list_cards():
        words = shlex.split(card.training.command)
        if words[:1] != ["rsc-bench"] or "train" not in words:
            continue
        context = train.make_context("train", words[words.index("train") + 1 :])
        neuron_params, recipe_options = _split_declared({name: context.params[name] for name in parameter_owners()})
        if card.kind == "snn":
            neuron = NeuronConfig(type=context.params["neuron"], params=neuron_params)
            assert (neuron.type, neuron.params) == (card.spec().neuron.type, card.spec().neuron.params), card.name
        config = TrainingConfig(recipe=context.params["recipe"], options=recipe_options).for_dataset(card.dataset)
        recorded = card.training.hyperparameters  # cards older than the dataset defaults' recording lack them
        assert all(recorded[key] == value for key, value in config.options.items() if key in recorded), card.name
        checked += 1
    assert checked >= 15
