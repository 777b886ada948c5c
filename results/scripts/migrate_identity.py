"""Carry stored rows over to the identity and selection rules of 2026-11-23 (run once, kept as the record).

Rows made before those rules lack three fields that the official selection and the tables read:
- ``preset_unmodified``: recomputed exactly from the row's stored protocol and the model (the
  same comparison `robustbench_snn.evaluation.preset_unmodified` makes for new rows);
- ``clean_accuracy_one_draw``: recomputed by the new rule, one seeded draw per batch on the same
  images (deterministic models: the clean accuracy; smoothed classifiers: none);
- ``model_hash``: the weights' hash, after checking that the card's checkpoint is the one the row names.
``config_hash`` stays as it was and ``code_version`` stays empty: those rows were made by older
code, so the new identity never reuses them. Rows that have the fields are left alone.

    python results/scripts/migrate_identity.py results/fashion-mnist.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from robustbench_snn.attacks import Protocol
from robustbench_snn.attacks.runner import decide
from robustbench_snn.data import first_examples, load_dataset
from robustbench_snn.evaluation import model_hash, preset_unmodified
from robustbench_snn.registry import load_model
from robustbench_snn.seeds import batch_seed, one_draw_seed


def one_draw_accuracy(model, row: dict) -> float:
    examples = first_examples(load_dataset(row["dataset"], "test"), row["n_examples"])
    correct = 0
    for index, (images, labels) in enumerate(DataLoader(examples, batch_size=row["batch_size"], shuffle=False)):
        model.encoder.seed(one_draw_seed(batch_seed(row["seed"], index)))
        correct += int(decide(model, images, labels, 1).sum())
    return correct / row["n_examples"]


def migrate(row: dict, models: dict) -> dict:
    if "preset_unmodified" in row or row.get("protocol") == "certify":
        return row
    model = models.setdefault(row["model"], load_model(row["model"]))
    if row.get("checkpoint_sha256") != model.checkpoint_sha256:
        raise SystemExit(f"{row['model']}: the row names another checkpoint than the card's; not migrated")
    params = {key: value for key, value in row["params"].items() if key != "smoothed"}
    smoothed = "smoothed" in row["params"]
    stochastic_decision = row["stochastic"] and row["eval_draws"] > 1 and not smoothed
    with torch.no_grad():
        one_draw = one_draw_accuracy(model, row) if stochastic_decision else (None if smoothed else row["clean_accuracy"])
    return {
        **row,
        "clean_accuracy_one_draw": one_draw,
        "preset_unmodified": preset_unmodified(model, Protocol.model_validate(params)),
        "model_hash": model_hash(model),
        "code_version": None,
    }


def main(path: str) -> None:
    file = Path(path)
    rows = [json.loads(line) for line in file.read_text().splitlines() if line.strip()]
    models: dict = {}
    migrated = [migrate(row, models) for row in rows]
    changed = sum(old is not new for old, new in zip(rows, migrated))
    partial = file.with_suffix(".migrating")
    partial.write_text("".join(json.dumps(row, default=str) + "\n" for row in migrated))
    partial.replace(file)
    print(f"{file}: {changed} of {len(rows)} rows carried over")


if __name__ == "__main__":
    main(sys.argv[1])
