"""``rsc-bench train``: a paper recipe, written out as a checkpoint and a model card."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

from robustbench_snn.cli import options
from robustbench_snn.cli.app import main
from robustbench_snn.errors import UserError

ARCHITECTURES = options.RegistryChoice("robustbench_snn.models", "ARCHITECTURES", "architecture")
KINDS = options.RegistryChoice("robustbench_snn.models", "KINDS", "kind", ordered=True)
RECIPES = options.RegistryChoice("robustbench_snn.defences", "RECIPES", "recipe", ordered=True)
NEURONS = options.RegistryChoice("robustbench_snn.defences", "NEURONS", "neuron", ordered=True)


def _declared_options() -> list[click.Option]:
    """An option per parameter a neuron type or recipe declares (`robustbench_snn.defences`), its
    help saying whose it is and its default."""
    from robustbench_snn.defences import NeuronType, parameter_owners

    made = []
    for name, (declaration, field) in parameter_owners().items():
        owner = f"{declaration.name} neurons" if isinstance(declaration, NeuronType) else declaration.name
        default = (
            ""
            if field.is_required() or field.default is None or "[default" in (field.description or "")
            else f" [default: {field.default}]"
        )
        decls, settings = options.field_option(name, field, help=f"{owner}: {field.description}{default}.")
        made.append(click.Option(decls, **settings))
    return made


def _command_line(ctx: click.Context, never: tuple[str, ...]) -> str:
    """The command as a user would retype it: every option with a value, defaults included (so the
    command replays even if a default changes), a repeatable option once per value."""
    words = ["rsc-bench", ctx.info_name]
    for param in ctx.command.params:
        value = ctx.params.get(param.name)
        if param.name in never or value is None:
            continue
        flag = max(param.opts, key=len)
        values = value if isinstance(value, tuple) else (value,)
        for one in values:
            words += [flag] if getattr(param, "is_flag", False) else [flag, str(one)]
    return shlex.join(words)


def _split_declared(declared: dict) -> tuple[dict, dict]:
    """The generated options given, as the neuron type's parameters and the recipe's."""
    from robustbench_snn.defences import NeuronType, parameter_owners

    owners = parameter_owners()
    given = {name: value for name, value in declared.items() if value is not None}
    neuron = {name: value for name, value in given.items() if isinstance(owners[name][0], NeuronType)}
    return neuron, {name: value for name, value in given.items() if name not in neuron}


def _encoding_params(pairs: tuple[str, ...], **named: object) -> dict:
    """``KEY=VALUE`` pairs and the named shortcuts given, as one mapping."""
    params = {key: value for key, value in named.items() if value is not None}
    for pair in pairs:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise UserError(f"--encoding-param takes KEY=VALUE, got {pair!r}")
        if key in params:
            raise UserError(f"encoding parameter {key!r} is given twice")
        params[key] = value
    return params


@main.command(cls=options.GeneratedOptions, generate=_declared_options, after="recipe")
@click.option("--dataset", required=True, type=options.DATASETS)
@click.option("--arch", required=True, type=ARCHITECTURES, help="Registered architecture.")
@click.option("--kind", required=True, type=KINDS, help="snn (LIF neurons) or ann (ReLU twin).")
@click.option("--encoding", default="direct", show_default=True, type=options.ENCODINGS, help="Registered input encoder.")
@click.option("--sigma", type=click.FloatRange(min=0), help="RSC noise level (rsc encoding; same as --encoding-param sigma=S).")
@click.option(
    "--variant",
    type=click.Choice(["I", "II"]),
    help="RSC variant: I one draw for all steps, II a draw per step (same as --encoding-param variant=V).",
)
@click.option(
    "--encoding-param",
    "encoding_params",
    multiple=True,
    metavar="KEY=VALUE",
    help="A parameter of the encoder (repeatable), checked by the encoder's own schema.",
)
@click.option("--timesteps", "-T", type=click.IntRange(min=1), help="Simulation steps [default: 4 for snn, 1 for ann].")
@click.option("--surrogate", default="atan", show_default=True, type=options.SURROGATES, help="Surrogate for BPTT training.")
@click.option(
    "--surrogate-alpha",
    type=click.FloatRange(min=0, min_open=True),
    help="The surrogate's sharpness [default: the surrogate's own: atan 2, sigmoid 4, triangle, rectangle and exponential 1].",
)
@click.option(
    "--tau",
    default=2.0,
    show_default=True,
    type=click.FloatRange(min=1, min_open=True),
    help="LIF membrane time constant: the potential keeps 1 - 1/tau of itself per step (smaller leaks more).",
)
@click.option(
    "--neuron",
    type=NEURONS,
    help="The neuron type [default: the one whose parameters are given, else lif]; `rsc-bench names neuron` lists them.",
)
@click.option(
    "--recipe",
    default="standard",
    show_default=True,
    type=RECIPES,
    help="The training recipe; `rsc-bench names recipe` lists each with what it does.",
)
@click.option("--epochs", default=5, show_default=True, type=click.IntRange(min=1))
@options.batch_size
@click.option("--lr", default=1e-3, show_default=True, type=options.FiniteFloat(min=0, min_open=True), help="Adam's learning rate.")
@click.option("--train-examples", type=click.IntRange(min=1), help="Train on the first N training images only.")
@options.seed
@click.option("--out", required=True, type=click.Path(), help="Output stem: writes OUT.safetensors and OUT.yaml.")
@click.option(
    "--overwrite",
    is_flag=True,
    help="Replace existing OUT files (a registered model only at its own files; a model shipped in an installed package never).",
)
@options.data_dir
@options.device
@options.as_json
@options.quiet
def train(
    dataset,
    arch,
    kind,
    encoding,
    sigma,
    variant,
    encoding_params,
    timesteps,
    surrogate,
    surrogate_alpha,
    tau,
    neuron,
    recipe,
    epochs,
    batch_size,
    lr,
    train_examples,
    seed,
    out,
    overwrite,
    data_dir,
    device,
    as_json,
    quiet,
    **declared,
):
    """Train a model with a paper recipe and write its checkpoint and model card.

    \b
    Examples:
      rsc-bench train --dataset fashion-mnist --arch small_cnn --kind snn --encoding rsc \\
          --sigma 0.2 --variant I --recipe rsc --epochs 4 --seed 0 --out my_models/fashion-mnist/my_rsc
      rsc-bench train --dataset fashion-mnist --arch small_cnn --kind snn --encoding rsc \\
          --sigma 0.2 --variant I --recipe ersct --teacher fmnist_ann --epochs 4 --out my_models/fashion-mnist/my_ersct
      rsc-bench train --dataset fashion-mnist --arch small_cnn --kind ann --recipe pgd-at --at-steps 5 \\
          --epochs 4 --out my_models/fashion-mnist/my_ann_at
      rsc-bench train --dataset fashion-mnist --arch small_cnn --kind snn --threshold-tau 1.5 \\
          --recipe hosnn --clean-model fmnist_snn_direct --epochs 2 --out my_models/fashion-mnist/my_hosnn
      rsc-bench train --dataset fashion-mnist --arch small_cnn --kind snn --noise-sigma 0.2 \\
          --recipe tgo --epochs 4 --out my_models/fashion-mnist/my_tgo
      rsc-bench train --dataset fashion-mnist --arch small_cnn --kind snn --encoding frequency \\
          --leak-init 1 --surrogate triangle --recipe feel --epochs 4 --out my_models/fashion-mnist/my_feel

    The card records this exact command, the seed and every hyperparameter, and the clean
    accuracy measured on the full test split. Use it with `rsc-bench --models-dir my_models ...`.
    """
    from robustbench_snn.data import dataset_info
    from robustbench_snn.models import ModelSpec, NeuronConfig
    from robustbench_snn.models.encoders import encoder_class, validated_parameters
    from robustbench_snn.store import ensure_writable
    from robustbench_snn.submission import chance_note
    from robustbench_snn.training import TrainingConfig, check_output, entry_paths, train_classifier, write_entry

    params = _encoding_params(encoding_params, sigma=sigma, variant=variant)
    neuron_params, recipe_options = _split_declared(declared)
    if kind == "ann" and timesteps not in (None, 1):
        raise UserError("an ann runs one step; drop --timesteps")
    spec = ModelSpec(
        architecture=arch,
        kind=kind,
        encoding=encoding,
        encoding_params=validated_parameters(encoder_class(encoding), params),
        timesteps=timesteps or (4 if kind == "snn" else 1),
        neuron=NeuronConfig(tau=tau, surrogate=surrogate, surrogate_alpha=surrogate_alpha, type=neuron, params=neuron_params),
    )
    config = TrainingConfig(
        recipe=recipe,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=lr,
        seed=seed,
        train_examples=train_examples,
        options=recipe_options,
    )
    command = _command_line(click.get_current_context(), never=("quiet", "as_json", "overwrite"))
    check_output(Path(out), overwrite)
    ensure_writable(Path(out).resolve().parent)
    progress = not (quiet or as_json)
    started = time.monotonic()
    model = train_classifier(spec, dataset, config, data_dir=data_dir, device=device, progress=progress)
    seconds = time.monotonic() - started
    card = write_entry(model, spec, dataset, config, Path(out), command, data_dir, device, progress, training_seconds=seconds)
    weights, card_file = entry_paths(Path(out))
    if as_json:
        options.print_json({"card": str(card_file), "checkpoint": str(weights), **card.model_dump(mode="json")})
    else:
        accuracy = f"clean accuracy {100 * card.claimed.clean_accuracy:.2f}% on {card.claimed.n_examples} test images"
        click.echo(f"wrote {card_file}: {accuracy}, trained in {card.training.seconds:.0f} s")
    chance = chance_note(card.claimed.clean_accuracy, card.claimed.n_examples, dataset_info(dataset).num_classes)
    if chance is not None:
        click.echo(f"warning: {chance} (more epochs, more --train-examples or another --lr); `submit check` refuses it", err=True)
