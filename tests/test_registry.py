"""Registry: card validation with clear errors, safe checkpoints, and loading."""

import os
import pickle
from pathlib import Path

import pytest
import torch
from conftest import write_card

from robustbench_snn.data import DATASETS
from robustbench_snn.errors import CardError, CheckpointError
from robustbench_snn.registry import find_card, list_cards, load_model, models_dirs, read_card, sha256_of

REPO = Path(__file__).resolve().parents[1]


def test_a_valid_card_loads_into_a_working_model(tmp_path, card_data):
    model = load_model(str(write_card(tmp_path, card_data)))
    assert model.card.name == "tiny_ann"
    assert model.checkpoint_sha256 == card_data["checkpoint"]["sha256"]
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        (lambda card: card.pop("license"), "license", "Field required"),
        (lambda card: card.update(timesteps="four"), "timesteps", "valid integer"),
        (lambda card: card["architecture"].update(name="resnet999"), "architecture.name", "unknown architecture 'resnet999'"),
        (lambda card: card["checkpoint"].update(sha256="abc"), "checkpoint.sha256", "pattern"),
        (lambda card: card.update(dataset="mnist-2"), "dataset", "unknown dataset"),
        (lambda card: card.update(encoding={"name": "rsc", "sigma": 0.1}), "encoding", "variant: Field required"),
        (lambda card: card.update(kind="snn", timesteps=4), "(card)", "neuron section"),
        (lambda card: card.update(run="import os"), "run", "Extra inputs are not permitted"),
        (lambda card: card["reference"].update(protocol="paper-snnrat"), "reference.protocol", "did you mean paper-snn-rat"),
    ],
)
def test_invalid_cards_are_rejected_naming_file_and_field(tmp_path, card_data, change, field, message):
    change(card_data)
    path = write_card(tmp_path, card_data)
    with pytest.raises(CardError) as error:
        read_card(path)
    text = str(error.value)
    assert str(path) in text
    assert f"field '{field}'" in text
    assert message in text


def test_a_card_that_is_not_yaml_is_rejected(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: [unclosed")
    with pytest.raises(CardError, match="not valid YAML"):
        read_card(path)


def test_wrong_hash_is_refused_before_loading(tmp_path, card_data):
    card_data["checkpoint"]["sha256"] = "0" * 64
    with pytest.raises(CheckpointError, match=f"expected {'0' * 64}"):
        load_model(str(write_card(tmp_path, card_data)))


def test_truncated_checkpoint_is_refused(tmp_path, card_data):
    weights = tmp_path / "tiny.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(str(write_card(tmp_path, card_data)))


def test_html_page_in_place_of_weights_is_refused(tmp_path, card_data):
    page = b"<!DOCTYPE html><html><body>Sign in to download</body></html>"
    (tmp_path / "tiny.safetensors").write_bytes(page)
    card_data["checkpoint"].update(sha256=sha256_of(tmp_path / "tiny.safetensors"), size_bytes=len(page))
    with pytest.raises(CheckpointError, match="HTML page") as error:
        load_model(str(write_card(tmp_path, card_data)))
    assert "tiny.safetensors" in str(error.value)


class _RunsCode:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_that_would_run_code_is_refused_and_does_not_run(tmp_path, card_data):
    marker = tmp_path / "pwned"
    weights = tmp_path / "evil.pt"
    with open(weights, "wb") as handle:
        pickle.dump({"backbone.0.weight": _RunsCode(marker)}, handle)
    with pytest.raises(CheckpointError, match="refused to load"):
        load_model(str(write_card(tmp_path, card_data)), checkpoint=weights)
    assert not marker.exists()


def test_plain_torch_state_dict_loads_through_weights_only(tmp_path, card_data):
    reference = load_model(str(write_card(tmp_path, card_data)))
    torch.save(reference.state_dict(), tmp_path / "weights.pt")
    model = load_model(str(write_card(tmp_path, card_data)), checkpoint=tmp_path / "weights.pt")
    images = torch.rand(2, 1, 28, 28)
    assert torch.equal(model(images), reference(images))


def test_checkpoint_of_another_architecture_is_refused(tmp_path, card_data):
    card_data["architecture"]["args"] = {"channels": [8, 8]}
    with pytest.raises(CheckpointError, match="does not fit architecture 'small_cnn'"):
        load_model(str(write_card(tmp_path, card_data)))


def test_every_registered_card_validates_and_its_checkpoint_matches_and_loads():
    cards = list_cards()
    assert {card.dataset for card in cards} >= {"fashion-mnist", "cifar10"}
    for card in cards:
        assert card.path.parent.name == card.dataset
        if card.checkpoint is None:
            continue
        weights = card.path.parent / card.checkpoint.path
        assert sha256_of(weights) == card.checkpoint.sha256
        model = load_model(card.name)
        shape = DATASETS[card.dataset].input_shape
        assert model(torch.rand(2, *shape)).shape == (2, DATASETS[card.dataset].num_classes)


def test_paper_recipes_are_registered_without_checkpoints():
    for name in ("rsc_resnet19", "poisson_resnet19", "ann_resnet19", "rsc_vgg11", "poisson_vgg11", "ann_vgg11"):
        card = find_card(name)
        assert card.checkpoint is None
        assert card.training.command.startswith("rsc-bench train --dataset cifar10")


def test_loading_a_card_without_checkpoint_explains_how_to_get_one():
    with pytest.raises(CheckpointError) as error:
        load_model("rsc_resnet19")
    assert "no checkpoint yet" in str(error.value)
    assert "--checkpoint PATH" in str(error.value)
    assert "rsc-bench train --dataset cifar10 --arch resnet19" in str(error.value)


def test_a_users_cards_folder_adds_to_the_shipped_registry(tmp_path, card_data, monkeypatch):
    (tmp_path / "fashion-mnist").mkdir()
    write_card(tmp_path / "fashion-mnist", card_data)
    (tmp_path / "fashion-mnist" / "tiny.safetensors").write_bytes((tmp_path / "tiny.safetensors").read_bytes())
    shipped = {card.name for card in list_cards()}
    monkeypatch.setenv("RSC_BENCH_MODELS", str(tmp_path))
    assert models_dirs()[0] == tmp_path
    assert {card.name for card in list_cards()} == shipped | {"tiny_ann"}
    assert load_model("tiny_ann").card.name == "tiny_ann"
    assert [card.name for card in list_cards(directory=tmp_path)] == ["tiny_ann"]


def test_a_users_card_can_never_take_a_shipped_models_name(tmp_path, card_data, monkeypatch):
    write_card(tmp_path, {**card_data, "name": "fmnist_ann"})
    monkeypatch.setenv("RSC_BENCH_MODELS", str(tmp_path))
    with pytest.raises(CardError, match="fmnist_ann"):
        load_model("fmnist_ann")
