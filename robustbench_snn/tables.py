"""Tables from stored results: tidy rows joined with the registry, QTE over eps sweeps, Pareto fronts.

Official rows: a table cell, a leaderboard cell and a QTE point come only from a run of an
official preset as shipped (`preset_unmodified`, eps aside), on at least the preset's
``n_examples`` images, with the standard seed; among those the newest run wins. Quick runs,
overrides and other seeds are kept in the store and listed as such, never shown as official.

QTE (Quantification Trade-off Estimation, Wu et al. 2024) scores a model over attack strengths:
the trapezoid area under robust accuracy against eps, ``sum (eps_b - eps_a) (A(eps_a) + A(eps_b)) / 2``
over the stored grid, with ``A(0)`` the clean accuracy. ``qte_normalised`` divides it by the
grid's width so that models evaluated on different grids compare.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal, get_args

import pandas as pd
from scipy.stats import beta

from robustbench_snn.attacks.protocol import build_protocol, official_presets
from robustbench_snn.columns import COLUMNS
from robustbench_snn.defences import RECIPES
from robustbench_snn.registry import ModelCard
from robustbench_snn.store import STANDARD_SEED

# Columns that identify one evaluated configuration apart from eps.
# ``store``: a user's rows never merge with, or replace, the official store's.
CURVE_KEYS = ["store", "model", "dataset", "protocol", "norm", "grad", "eot", "eval_draws", "seed", "n_examples"]
OFFICIAL_KEYS = ["store", "model", "dataset", "protocol", "norm"]
Selection = Literal["official", "yours", "all"]
# The protocol the leaderboard ranks by, and the one an outside attack tests (`robustbench_snn.outside`).
RANKING_PROTOCOL = "reliable"
SELECTIONS: tuple[str, ...] = get_args(Selection)
TABLE_COLUMNS = [
    "store",
    "model",
    "family",
    "dataset",
    "protocol",
    "protocol_version",
    "norm",
    "eps",
    "grad",
    "eot",
    "eval_draws",
    "sequential",
    "seed",
    "n_examples",
    "clean_accuracy",
    "clean_accuracy_one_draw",
    "robust_accuracy",
    "robust_low",
    "robust_high",
    "robust_accuracy_redecided",
    "qte",
    "qte_normalised",
    "firing_rate",
    "synops",
    "macs",
    "energy_pj",
    "firing_rate_adv",
    "synops_adv",
    "energy_pj_adv",
    "flags",
    "official",
    "timestamp",
]
# Per-image energy figures (`robustbench_snn.energy`) as table columns: the inputs, and the figure.
ENERGY_COLUMNS = {
    "firing_rate": ("clean", "firing_rate"),
    "synops": ("clean", "synops"),
    "macs": ("clean", "macs"),
    "energy_pj": ("clean", "energy_pj"),
    "firing_rate_adv": ("adversarial", "firing_rate"),
    "synops_adv": ("adversarial", "synops"),
    "energy_pj_adv": ("adversarial", "energy_pj"),
}
# The settings of the zoo's certificates: a certificate row is official with at least these
# draws and images, at most this alpha, the standard seed, and the model's own noise.
STANDARD_CERTIFICATE = {"n0": 100, "n": 1000, "alpha": 0.001, "n_examples": 500}


@functools.cache
def preset_sizes() -> dict[str, int]:
    """The ``n_examples`` each official preset asks for."""
    return {name: build_protocol(name, directory=path.parent).n_examples or 0 for name, path in official_presets().items()}


def is_official(row: Mapping) -> bool:
    """Whether a stored attack row may fill an official cell (see the module docstring)."""
    sizes = preset_sizes()
    return (
        row.get("protocol") in sizes
        and row.get("preset_unmodified") is True
        and row.get("seed") == STANDARD_SEED
        and (row.get("n_examples") or 0) >= sizes[row["protocol"]]
    )


def is_official_certificate(row: Mapping, card: ModelCard | None) -> bool:
    """Whether a certificate row is one of the standard settings on the model's own noise."""
    own_sigma = card.encoding.noise_level() if card is not None else None
    return (
        row.get("protocol") == "certify"
        and row.get("certificate") != "gaussian"
        and row.get("seed") == STANDARD_SEED
        and row.get("n0") == STANDARD_CERTIFICATE["n0"]
        and (row.get("n") or 0) >= STANDARD_CERTIFICATE["n"]
        and (row.get("alpha") or 1) <= STANDARD_CERTIFICATE["alpha"]
        and (row.get("n_examples") or 0) >= STANDARD_CERTIFICATE["n_examples"]
        and (own_sigma is None or row.get("sigma") == own_sigma)
    )


def _official_ranking_rows(rows: Iterable[Mapping], dataset: str, eps: float) -> list[Mapping]:
    """The official rows of the ranking protocol on ``dataset`` at Linf ``eps``, every version's."""
    return [
        row
        for row in rows
        if row.get("dataset") == dataset
        and row.get("protocol") == RANKING_PROTOCOL
        and row.get("norm") == "Linf"
        and isinstance(row.get("eps"), (int, float))
        and abs(row["eps"] - eps) < 1e-9
        and is_official(row)
    ]


def _sequential(row: Mapping) -> Mapping | None:
    """The sequential test the row's protocol decided by, if any."""
    params = row.get("params")
    return params.get("sequential") if isinstance(params, Mapping) else None


def four_draw_rows(rows: Iterable[Mapping], dataset: str, eps: float) -> dict[str, Mapping]:
    """Each stochastic model's newest official row of the ranking protocol at ``eps`` decided by
    the four-draw rule (made by a version before the sequential test), by model name: the number a
    row decided by the test is shown beside while the two differ (issue 40)."""
    newest: dict[str, Mapping] = {}
    for row in _official_ranking_rows(rows, dataset, eps):
        is_newer = row.get("timestamp", "") > newest.get(row["model"], {}).get("timestamp", "")
        if row.get("stochastic") is True and not _sequential(row) and is_newer:
            newest[row["model"]] = row
    return newest


def carried_kills(rows: Iterable[Mapping], dataset: str, eps: float, outside: Iterable[Mapping] = ()) -> dict[str, dict]:
    """Per model, the samples its newest official row of the ranking protocol at ``eps`` counts
    robust that an earlier version's official row on the same images broke, or an ``outside``
    attack (`robustbench_snn.outside`) broke among that row's or an earlier row's survivors, when
    there are any: their union, since every kill is one.

    Each version's random restarts find a few samples another version's miss, so a new version's
    number on the same images can be a sample or two above the old one's although it runs the same
    attacks. A kill of a deterministic model is a fact about the model, and so is one decided by the
    same sequential test: those are carried (a sample any version or outside attack broke stays
    broken); a stochastic model's kills decided by another rule are not (its four-draw rule counts
    inputs the test does not)."""
    official = _official_ranking_rows(rows, dataset, eps)
    attacks_on = {}
    for evaluation in outside:
        attacks_on.setdefault((evaluation["model"], evaluation["row_timestamp"]), []).append(evaluation)
    carried: dict[str, dict] = {}
    for model in {row["model"] for row in official}:
        ordered = sorted((row for row in official if row["model"] == model), key=lambda row: row.get("timestamp", ""))
        newest = ordered[-1]
        if not isinstance(newest.get("survivors"), list):
            continue
        robust, versions, attacks = set(newest["survivors"]), [], []
        for row in ordered:
            if row is not newest:
                if not _same_images_and_rule(row, newest):
                    continue
                if isinstance(row.get("survivors"), list) and robust - set(row["survivors"]):
                    versions.append(_version(row))
                    robust &= set(row["survivors"])
            for evaluation in attacks_on.get((model, row.get("timestamp")), []):
                if robust & set(evaluation["broken"]):
                    attacks.append(f"{evaluation['attack']} by {evaluation['submitted_by']}")
                    robust -= set(evaluation["broken"])
        if len(robust) < len(newest["survivors"]):
            carried[model] = {
                "robust_accuracy": len(robust) / newest["n_examples"],
                "robust_accuracy_row": newest["robust_accuracy"],
                "broken": len(newest["survivors"]) - len(robust),
                "survivors": len(newest["survivors"]),
                "n_examples": newest["n_examples"],
                "versions": sorted(set(versions)),
                "outside": sorted(set(attacks)),
                "version": _version(newest),
                "timestamp": newest.get("timestamp"),
            }
    return carried


def with_carried_kills(table: pd.DataFrame, carried: Mapping[str, Mapping]) -> pd.DataFrame:
    """``table`` with ``robust_accuracy_carried``: on the row whose survivors `carried_kills` lowered,
    the lower number the leaderboard ranks by, so that a table never shows a model above its
    ranking cell; elsewhere missing."""
    lowered = {(model, kills["timestamp"]): kills["robust_accuracy"] for model, kills in carried.items()}
    marked = table.copy()
    marked["robust_accuracy_carried"] = [
        lowered.get((model, timestamp), math.nan) if protocol == RANKING_PROTOCOL else math.nan
        for model, timestamp, protocol in zip(table["model"], table["timestamp"], table["protocol"])
    ]
    return marked


def _version(row: Mapping) -> int | None:
    params = row.get("params")
    return params.get("version") if isinstance(params, Mapping) else None


def _same_images_and_rule(earlier: Mapping, newest: Mapping) -> bool:
    """Whether ``earlier`` ran on ``newest``'s images and decided a kill as ``newest`` does."""
    if (earlier.get("n_examples"), earlier.get("seed"), earlier.get("checkpoint_sha256")) != (
        newest.get("n_examples"),
        newest.get("seed"),
        newest.get("checkpoint_sha256"),
    ):
        return False
    if not newest.get("stochastic"):
        return not earlier.get("stochastic")

    def rule(row: Mapping) -> tuple:
        return (_sequential(row), None if _sequential(row) else row.get("eval_draws"))

    return rule(earlier) == rule(newest)


def newest_official_certificates(rows: Iterable[Mapping], cards: Mapping[str, ModelCard]) -> dict[str, Mapping]:
    """Each model's newest official certificate among ``rows``, by model name: what the leaderboard shows."""
    newest: dict[str, Mapping] = {}
    for row in rows:
        is_newer = row.get("timestamp", "") > newest.get(row.get("model"), {}).get("timestamp", "")
        if is_newer and is_official_certificate(row, cards.get(row["model"])):
            newest[row["model"]] = row
    return newest


def energy_figure(energy: object, inputs: str, figure: str) -> float:
    """One per-image figure of a row's ``energy`` (NaN for rows made before energy was counted)."""
    summary = energy.get(inputs) if isinstance(energy, Mapping) else None
    value = summary.get(figure) if isinstance(summary, Mapping) else None
    return math.nan if value is None else float(value)


def energy_breakdown(energy: Mapping) -> pd.DataFrame:
    """A record's energy per layer, in the order the layers ran: firing rates of spiking layers,
    SynOps, MACs and estimated energy (pJ per image) of synaptic layers, clean and, after an
    attack, on the final adversarial inputs (``*_adv``); a last row ``total``."""
    adversarial = energy.get("adversarial")
    rows = []
    for position, layer in enumerate(energy["clean"]["layers"]):
        under_attack = adversarial["layers"][position] if adversarial else {}
        rows.append(
            {
                "layer": layer["layer"],
                "operation": "spiking" if layer["kind"] == "spiking" else layer["operation"],
                "input": layer.get("input", "-"),
                "neurons": layer.get("neurons"),
                "firing_rate": layer.get("firing_rate"),
                "synops": layer.get("synops"),
                "macs": layer.get("macs"),
                "energy_pj": layer.get("energy_pj"),
                **({f"{key}_adv": under_attack.get(key) for key in ("firing_rate", "synops", "energy_pj")} if adversarial else {}),
            }
        )
    total = {"layer": "total", "operation": "", "input": "", "neurons": sum(row["neurons"] or 0 for row in rows)}
    for inputs, suffix in (("clean", ""), ("adversarial", "_adv")):
        summary = energy.get(inputs)
        if summary:
            total.update({f"{key}{suffix}": summary[key] for key in ("firing_rate", "synops", "energy_pj")})
            if not suffix:
                total["macs"] = summary["macs"]
    return pd.DataFrame([*rows, total])


def percent(value: float | None) -> str:
    """An accuracy as a percentage with two decimals, or "-" when missing."""
    return "-" if value is None or pd.isna(value) else f"{100 * value:.2f}"


def microjoules(value: float | None) -> str:
    """An energy in pJ as microjoules with three decimals, or "-" when missing."""
    return "-" if value is None or pd.isna(value) else f"{value / 1e6:.3f}"


def interval(low: float, high: float) -> str:
    """A confidence interval in percent with one decimal, or "-" when missing."""
    return "-" if pd.isna(low) else f"{100 * low:.1f}-{100 * high:.1f}"


def qte(eps: Sequence[float], accuracy: Sequence[float]) -> float:
    """The trapezoid area under accuracy against eps (points in any order)."""
    points = sorted(zip(eps, accuracy))
    return sum((b - a) * (acc_a + acc_b) / 2 for (a, acc_a), (b, acc_b) in zip(points, points[1:]))


def curve_from_zero(curve: pd.DataFrame) -> tuple[list[float], list[float]]:
    """A model's eps grid and robust accuracies, sorted, starting at eps 0 (A(0) is the clean accuracy)."""
    curve = curve.sort_values("eps")
    grid, accuracy = list(curve["eps"]), list(curve["robust_accuracy"])
    if 0.0 not in grid:
        grid, accuracy = [0.0, *grid], [curve["clean_accuracy"].iloc[0], *accuracy]
    return grid, accuracy


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (clean, robust) that no other point matches or beats in both, best clean first."""
    front = [
        index
        for index, (clean, robust) in enumerate(points)
        if not any(
            other_clean >= clean and other_robust >= robust and (other_clean, other_robust) != (clean, robust)
            for other_clean, other_robust in points
        )
    ]
    return sorted(front, key=lambda index: -points[index][0])


def redecided_accuracy(robust: float | None, n_examples: int, kills: object, holding: object) -> float | None:
    """The robust accuracy with the kills that did not hold when decided again on fresh draws given
    back (None for a row without those counts): a stochastic model's decision is itself a sample."""
    if robust is None or pd.isna(robust) or not isinstance(kills, Mapping) or not isinstance(holding, Mapping):
        return None
    return robust + (sum(kills.values()) - sum(holding.values())) / n_examples


def clopper_pearson(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The exact binomial confidence interval of a proportion."""
    tail = (1 - level) / 2
    low = 0.0 if successes == 0 else float(beta.ppf(tail, successes, n - successes + 1))
    high = 1.0 if successes == n else float(beta.ppf(1 - tail, successes + 1, n - successes))
    return low, high


def family(card: ModelCard | None) -> str:
    """The family a model is plotted and grouped in."""
    if card is None:
        return "unregistered"
    recipe = RECIPES.get(card.training.recipe)
    grouped = recipe.family if recipe is not None else None
    if grouped is not None and "{kind}" in grouped:
        return grouped.format(kind=card.kind.upper())
    if card.kind == "ann":
        return "ANN"
    return grouped or card.encoding.family()


def results_table(
    rows: pd.DataFrame,
    cards: Sequence[ModelCard],
    dataset: str | None = None,
    protocol: str | None = None,
    eps: float | None = None,
    select: Selection = "official",
) -> pd.DataFrame:
    """One row per model x attack protocol x eps, with family, confidence interval and QTE, and
    the registered result columns (`robustbench_snn.columns`) any row measured, by name.

    ``select`` says which rows (the ``official`` column says which row is official):
    ``official``, the official rows (`is_official`) of every store, the newest per store, model,
    protocol, norm and eps: the leaderboard's cells, which no quick run changes;
    ``yours``, those of the official store and every configuration of a user's store (``store``
    not ``official``), so that a user's quick run shows beside, never instead of, a full one;
    ``all``, every configuration's newest run.
    """
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {', '.join(SELECTIONS)}, not {select!r}")
    if rows.empty or "protocol" not in rows:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    table = rows[rows["protocol"] != "certify"].copy()  # certificates are another kind of row
    if "store" not in table:
        table["store"] = "official"
    if table.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    for column, value in (("dataset", dataset), ("protocol", protocol)):
        if value is not None:
            table = table[table[column] == value]
    for column in (
        {*CURVE_KEYS, *TABLE_COLUMNS}
        - set(table.columns)
        - {
            "family",
            "robust_low",
            "robust_high",
            "robust_accuracy_redecided",
            "qte",
            "qte_normalised",
            "official",
            "protocol_version",
            "sequential",
        }
        - set(ENERGY_COLUMNS)
    ):
        table[column] = None
    table["official"] = pd.Series([is_official(row) for row in table.to_dict("records")], index=table.index, dtype=bool)
    parameters = table["params"] if "params" in table else pd.Series(None, index=table.index, dtype=object)
    table["protocol_version"] = [params.get("version") if isinstance(params, dict) else None for params in parameters]
    # The sequential test that decided a stochastic model's answers, where the protocol has one (else ``eval_draws`` draws did).
    table["sequential"] = [params.get("sequential") if isinstance(params, dict) else None for params in parameters]
    energies = table["energy"] if "energy" in table else pd.Series(None, index=table.index, dtype=object)
    for column, (inputs, figure) in ENERGY_COLUMNS.items():
        table[column] = [energy_figure(energy, inputs, figure) for energy in energies]
    measured = table["columns"] if "columns" in table else pd.Series(None, index=table.index, dtype=object)
    extra = [name for name in COLUMNS if any(isinstance(values, dict) and name in values for values in measured)]
    for name in extra:
        table[name] = [values.get(name) if isinstance(values, dict) else None for values in measured]
    table = table.sort_values("timestamp")
    every_configuration = table["store"] != "official" if select == "yours" else pd.Series(select == "all", index=table.index)
    cells = table[table["official"] & ~every_configuration].drop_duplicates([*OFFICIAL_KEYS, "eps"], keep="last")
    configurations = table[every_configuration].drop_duplicates([*CURVE_KEYS, "eps"], keep="last")
    table = pd.concat([cells, configurations])
    by_name = {card.name: card for card in cards}
    table["family"] = [family(by_name.get(name)) for name in table["model"]]
    attacked = table["robust_accuracy"].notna()
    intervals = [
        clopper_pearson(round(accuracy * n), n) if has_attack else (math.nan, math.nan)
        for accuracy, n, has_attack in zip(table["robust_accuracy"].fillna(0), table["n_examples"], attacked)
    ]
    kills = table["member_kills"] if "member_kills" in table else pd.Series(None, index=table.index, dtype=object)
    holding = table["member_kills_holding"] if "member_kills_holding" in table else pd.Series(None, index=table.index, dtype=object)
    table["robust_accuracy_redecided"] = [
        redecided_accuracy(*values) for values in zip(table["robust_accuracy"], table["n_examples"], kills, holding)
    ]
    table["robust_low"] = [low for low, _ in intervals]
    table["robust_high"] = [high for _, high in intervals]
    curve_ids = pd.Series(["|".join(map(str, key)) for key in table[CURVE_KEYS].itertuples(index=False, name=None)], index=table.index)
    scores = {}
    for curve_id, curve in table[attacked].groupby(curve_ids[attacked]):
        grid, accuracy = curve_from_zero(curve)
        area, width = qte(grid, accuracy), max(grid) - min(grid)
        scores[curve_id] = (area, area / width) if width > 0 else (math.nan, math.nan)
    table["qte"] = [scores.get(curve_id, (math.nan, math.nan))[0] for curve_id in curve_ids]
    table["qte_normalised"] = [scores.get(curve_id, (math.nan, math.nan))[1] for curve_id in curve_ids]
    if eps is not None:
        table = table[(table["eps"] - eps).abs() < 1e-9]
    # the user's rows first: "yours" sorts after "official", so the store column descends
    order = ["store", "dataset", "protocol", "model", "eps"]
    return table[TABLE_COLUMNS + extra].sort_values(order, ascending=[False, True, True, True, True]).reset_index(drop=True)


def registered_columns(table: pd.DataFrame) -> list[str]:
    """The registered result columns (`robustbench_snn.columns`) that ``table`` holds, in registry order."""
    return [name for name in COLUMNS if name in table.columns]
