"""The static leaderboard: HTML pages, figures and JSON built from ``results/`` and ``models/``.

One page per dataset at its standard threat model (Linf, the dataset's eps), ranked by robust
accuracy under the ``reliable`` protocol, from official rows only (`robustbench_snn.tables`);
one page per model with its card, every stored row (marked official or not), its eps curve, its
certificate and its latest audit. A flagged audit (an attack alone broke samples ``reliable``
counted robust) adds ``audit_stronger`` to the model's flags. The site opens from ``file://``
with no network: the only script is ours.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import shutil
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path

import jinja2
import pandas as pd

from robustbench_snn.attacks.flags import BADGES, FLAGS
from robustbench_snn.attacks.protocol import build_protocol, official_presets
from robustbench_snn.certify import Certificate
from robustbench_snn.columns import COLUMNS
from robustbench_snn.data import dataset_info
from robustbench_snn.fidelity import REPRODUCED, Fidelity, fidelity
from robustbench_snn.files import building
from robustbench_snn.plots import plot_certified, plot_eps, plot_tradeoff
from robustbench_snn.registry import ModelCard, list_cards
from robustbench_snn.store import load_audits, load_outside, load_rows
from robustbench_snn.tables import (
    RANKING_PROTOCOL,
    clopper_pearson,
    carried_kills,
    energy_breakdown,
    family,
    four_draw_rows,
    interval,
    is_official,
    microjoules,
    newest_official_certificates,
    percent,
    registered_columns,
    results_table,
)

logger = logging.getLogger(__name__)

HERE = Path(__file__).parent
# No certificate reaches a Linf ball of the threat model's size (0.1 in Linf is 2.8 in L2 on 28x28
# images), so certified accuracy is shown at fixed radii of the norm each certificate is in.
CERTIFIED_RADIUS = {"L2": 0.25, "L1": 0.02}
RANK_RULE = (
    "higher robust accuracy first, ties by clean accuracy; a badge marks a number that may still be too high and says why, "
    "without moving the row (that would put it below models known to be less robust); models not yet evaluated follow, unranked."
)
# The table's filters: (row key, title), each offering the values its rows hold.
FILTERS = (("kind", "kind"), ("encoding", "coding"), ("family", "family"), ("origin", "origin"))


def _certificates(rows: pd.DataFrame, dataset: str, cards: dict[str, ModelCard]) -> dict[str, dict]:
    """The newest official certificate row of each model of ``dataset``."""
    if rows.empty or "protocol" not in rows:
        return {}
    of_dataset = rows[rows["dataset"] == dataset].to_dict("records")
    return {model: _plain(row) for model, row in newest_official_certificates(of_dataset, cards).items()}


def _plain(row: dict) -> dict:
    """A row as stored: pandas' NaN for fields the row lacks dropped, whole numbers it widened to floats as ints."""
    return {
        key: int(value) if isinstance(value, float) and value.is_integer() and key != "sigma" else value
        for key, value in row.items()
        if not (isinstance(value, float) and math.isnan(value))
    }


def _audits(dataset: str, results_dir: str | os.PathLike | None) -> dict[str, dict]:
    """The newest audit of ``reliable`` for each model of ``dataset``, marked ``current`` when it
    audited the preset's current version (only a current audit flags the model's row)."""
    version = _current_versions()[RANKING_PROTOCOL]
    return {
        audit["model"]: {**audit, "current": audit.get("protocol_version") == version, "current_version": version}
        for audit in load_audits(dataset, results_dir)
        if audit.get("protocol") == RANKING_PROTOCOL
    }


def _robust_cell(row: pd.Series) -> str:
    """A robust accuracy, with its preset's version when that is older than the shipped preset's."""
    older = _older_version(row)
    return percent(row["robust_accuracy"]) + (f" (v{older})" if older else "")


def _older_version(row: pd.Series) -> int | None:
    """The row's preset version when it is older than the shipped preset's, else None."""
    current = _current_versions().get(row["protocol"])
    version = row.get("protocol_version")
    if current is None or version is None or pd.isna(version) or int(version) >= current:
        return None
    return int(version)


def _robust_entry(row: pd.Series) -> dict:
    """A robust-accuracy cell of the ranking table: the number, its 95% interval and the version it is of."""
    return {
        "text": percent(row["robust_accuracy"]),
        "value": row["robust_accuracy"],
        "ci": interval(row["robust_low"], row["robust_high"]),
        "older": _older_version(row),
    }


@functools.cache
def _current_versions() -> dict[str, int]:
    return {name: build_protocol(name).version for name in official_presets()}


def _standing_outside(evaluations: list[dict], at_eps: pd.DataFrame) -> dict[str, dict]:
    """Per model, the lowest number an outside attack left (`robustbench_snn.outside`) while the
    ranking protocol's current row has not come down to it ("until reliable catches it")."""
    ranking = {row["model"]: row["robust_accuracy"] for _, row in at_eps[at_eps["protocol"] == RANKING_PROTOCOL].iterrows()}
    standing: dict[str, dict] = {}
    for evaluation in evaluations:
        model = evaluation["model"]
        if not evaluation["broken"] or model not in ranking or ranking[model] <= evaluation["robust_accuracy"] + 1e-12:
            continue
        if model not in standing or evaluation["robust_accuracy"] < standing[model]["robust_accuracy"]:
            standing[model] = evaluation
    return standing


def _outside_entry(evaluation: dict) -> dict:
    """The lower number an outside attack left, credited: shown in the ranking cell."""
    low, high = clopper_pearson(round(evaluation["robust_accuracy"] * evaluation["n_examples"]), evaluation["n_examples"])
    return {
        "text": percent(evaluation["robust_accuracy"]),
        "value": evaluation["robust_accuracy"],
        "ci": interval(low, high),
        "older": None,
        "by": evaluation["submitted_by"],
        "attack": evaluation["attack"],
        "reason": f"{evaluation['attack']}, submitted by {evaluation['submitted_by']} ({evaluation['timestamp'][:10]}), fooled "
        f"{len(evaluation['broken'])} of the {evaluation['survivors']} samples {RANKING_PROTOCOL} counted robust "
        f"(each decided again on a fresh copy of the model): at most {percent(evaluation['robust_accuracy'])}%, "
        f"not {percent(evaluation['robust_accuracy_row'])}%; marked until {RANKING_PROTOCOL} reaches it",
    }


def _carried_entry(carried: dict) -> dict:
    """The lower number left when an earlier version's kills on the same images are carried: shown in the ranking cell."""
    low, high = clopper_pearson(round(carried["robust_accuracy"] * carried["n_examples"]), carried["n_examples"])
    return {
        "text": percent(carried["robust_accuracy"]),
        "value": carried["robust_accuracy"],
        "ci": interval(low, high),
        "older": None,
        "by": "this benchmark" if not carried["outside"] else "this benchmark and outside attacks",
        "attack": f"{_carried_sources(carried)} on the same images",
        "reason": _carried_reason(carried),
    }


def _carried_sources(carried: dict) -> str:
    """The earlier versions and outside attacks whose kills a ranking cell carries."""
    versions = [f"{RANKING_PROTOCOL} " + ", ".join(f"v{version}" for version in carried["versions"])] if carried["versions"] else []
    outside = [f"the outside attack {attack}" for attack in carried["outside"]]
    return " and ".join(versions + outside)


def _carried_reason(carried: dict) -> str:
    """Why the ranking cell carries earlier kills: what they broke, and the two numbers."""
    return (
        f"{_carried_sources(carried)}, run on the same images, broke {carried['broken']} of the {carried['survivors']} "
        f"samples version {carried['version']} counts robust (each version's random restarts find a few samples another's "
        f"miss, and an outside attack tests the survivors of the version it ran on); a sample any of them broke stays broken: at most "
        f"{percent(carried['robust_accuracy'])}%, not {percent(carried['robust_accuracy_row'])}%"
    )


def _flagged_by_audit(audits: dict[str, dict]) -> set[str]:
    """The models whose audit of the ranking protocol's current version broke it (`audit_stronger`)."""
    return {name for name, audit in audits.items() if audit.get("flagged") and audit["current"]}


def _with_audit_flags(rows: pd.DataFrame, audits: dict[str, dict]) -> pd.DataFrame:
    """``rows`` with ``audit_stronger`` added to the flags of each model `_flagged_by_audit`, so the
    plot marks what the table marks."""
    flagged = _flagged_by_audit(audits)
    marked = rows.copy()
    marked["flags"] = [[*flags, "audit_stronger"] if model in flagged else flags for model, flags in zip(rows["model"], rows["flags"])]
    return marked


def _certified_entry(certificate: dict | None, card: ModelCard | None) -> dict:
    """The certified accuracy at the radius the leaderboard compares, and why it is 0 where the
    certificate's draws cannot reach that radius whatever the model (the number is then the test's, not the model's)."""
    if certificate is None:
        return {"text": "-", "value": None, "note": None, "radius": None}
    radius = CERTIFIED_RADIUS[certificate["norm"]]
    at_radius = f"{certificate['norm']} {radius:g}"
    timesteps = card.timesteps if card is not None else 1
    reach = Certificate(certificate["norm"], certificate.get("sigma"), timesteps, certificate["certificate"]).largest_radius(
        certificate["n"], certificate["alpha"]
    )
    if reach >= radius:
        accuracy = certificate["curve"][f"{radius:g}"]
        return {"text": percent(accuracy), "value": accuracy, "note": None, "radius": at_radius}
    note = (
        f"out of reach: with n = {certificate['n']} draws at alpha = {certificate['alpha']:g} no image can be certified "
        f"beyond {certificate['norm']} radius {reach:.3g} (every draw right), so 0 at {radius:g} says nothing about the model"
    )
    return {"text": "n/a", "value": None, "note": note, "radius": f"reach {reach:.3g}"}


def _noise_level(card: ModelCard | None) -> float | str:
    sigma = card.encoding.noise_level() if card is not None else None
    return "-" if sigma is None else sigma


def _paper_protocols(cards: list[ModelCard]) -> set[str]:
    """The presets that reproduce a published defence's own evaluation (its card's ``reference.protocol``)."""
    return {card.reference.protocol for card in cards if card.reference.protocol}


def _paper_comparison(card: ModelCard | None, by_protocol: dict[str, Mapping], verdict: Fidelity | None = None) -> dict:
    """A published defence's robust accuracy under its paper's own evaluation, how many points that
    is above `reliable` on the same images, and whether our copy is the paper's defence (``verdict``,
    `robustbench_snn.fidelity`). How far the paper's evaluation overstates the copy is a finding
    about the paper only for a copy that reproduces it: otherwise "-", with the reason."""
    protocol = card.reference.protocol if card is not None else None
    paper, ranking = by_protocol.get(protocol), by_protocol.get(RANKING_PROTOCOL)
    overstated = "-"
    if paper is not None and ranking is not None and verdict is not None and verdict.verdict == REPRODUCED:
        overstated = f"{100 * (paper['robust_accuracy'] - ranking['robust_accuracy']):+.1f}"
    reported = card.reference.reported if card is not None else None
    return {
        "protocol": protocol,
        "robust": _robust_cell(paper) if paper is not None else "-",
        "reliable": _robust_cell(ranking) if ranking is not None else "-",
        "overstated_by": overstated,
        "fidelity": verdict.verdict if verdict is not None else "not recorded",
        "fidelity_reason": verdict.reason if verdict is not None else "the card records no number of the paper to check the copy against",
        "reported": None
        if reported is None or reported.robust_accuracy is None
        else {"text": f"{100 * reported.robust_accuracy:.2f}", "eps": f"{reported.eps:.4g}"},
        "paper_eps": None if reported is None else f"{reported.eps:.4g}",
        "robust_at_paper_eps": "-" if verdict is None or verdict.copy_robust is None else f"{verdict.copy_robust:.2f}%",
    }


def _origin(card: ModelCard | None) -> str:
    """Whether a model was trained by this package's own `rsc-bench train` (its card's command replays here) or submitted."""
    return "trained here" if card is not None and card.training.command.startswith("rsc-bench train") else "submitted"


def _badges(flags: list[str], ranking: pd.Series | None, outside: dict | None = None, four_draw: dict | None = None) -> list[dict]:
    """The short badges of a row: each reliability flag (a standing outside attack's with its credit),
    the notes on its decision (kills that did not hold; the four-draw rule's number beside the
    sequential test's), and the ranking protocol's version when the row is of an older one."""
    badges = [
        {
            "name": flag,
            "badge": BADGES.get(flag, flag),
            "reason": _outside_entry(outside)["reason"] if flag == "outside_stronger" and outside else FLAGS.get(flag, flag),
        }
        for flag in flags
    ]
    for note in (_decision_noise(ranking), _decision_rule(ranking, four_draw)) if ranking is not None else ():
        if note is not None:
            badges.append(note)
    older = _older_version(ranking) if ranking is not None else None
    if older is not None:
        current = _current_versions()[RANKING_PROTOCOL]
        badges.append(
            {
                "name": "older_version",
                "badge": f"v{older}",
                "reason": f"this robust accuracy is of {RANKING_PROTOCOL} version {older}, not the current {current}; "
                "a newer version may differ by the samples whose random starts moved (a sample or two of 1,000 on the zoo), "
                "and the cell carries the kills of every version on the same images; on a stochastic model version 8 decides "
                "by a sequential test instead of four draws, which may count more samples robust (both numbers are shown once "
                "it has run)",
            }
        )
    return badges


# A ranking row whose number rises by at least this much when its kills are decided again is shown with both.
DECISION_NOISE = 0.01


def _decision_noise(ranking: pd.Series) -> dict | None:
    """A note (not a flag: the number is not too high, it is not well defined) when many of the
    row's kills did not hold when decided again on fresh draws, with the re-decided number."""
    redecided = ranking.get("robust_accuracy_redecided")
    if redecided is None or pd.isna(redecided) or redecided - ranking["robust_accuracy"] < DECISION_NOISE - 1e-12:
        return None
    lost = round((redecided - ranking["robust_accuracy"]) * ranking["n_examples"])
    return {
        "name": "decision_noise",
        "badge": "decision noise",
        "note": True,
        "reason": f"{lost} of its kills did not hold when each fooling input was decided again on fresh draws (a stochastic "
        f"model's decision is itself a sample): {percent(redecided)}% re-decided. Both stand until the protocol decides "
        "with a stated error (the sequential test)",
    }


def _decision_rule(ranking: pd.Series, four_draw: dict | None) -> dict | None:
    """A note beside a row decided by the sequential test when the model's last row decided by
    four draws differs from it by a point or more: both stand while the two rules differ."""
    test = ranking.get("sequential")
    if four_draw is None or not isinstance(test, dict):
        return None
    if abs(four_draw["robust_accuracy"] - ranking["robust_accuracy"]) < DECISION_NOISE - 1e-12:
        return None
    version = (four_draw.get("params") or {}).get("version")
    return {
        "name": "decision_rule",
        "badge": f"{percent(four_draw['robust_accuracy'])}% by four draws",
        "note": True,
        "reason": f"decided by Wald's sequential test (an input wrong on at least {test['wrong_at']:g} of its draws is decided "
        f"wrong with probability at least {1 - test['beta']:g}, one wrong on at most {test['right_at']:g} with probability at "
        f"most {test['alpha']:g}); version {version}, which called an input wrong if any of {four_draw.get('eval_draws')} "
        f"draws was, counted {percent(four_draw['robust_accuracy'])}% on the same images. The four-draw rule's verdict "
        "near the decision boundary changes when the same input is decided again; both stand while they differ",
    }


def _carried_badge(carried: dict | None, outside: dict | None) -> list[dict]:
    """A note on a row whose number is lowered by an earlier version's kills on the same images, or
    by several sources' together (a standing outside attack alone has its own badge)."""
    if carried is None or (outside is not None and carried["robust_accuracy"] >= outside["robust_accuracy"] - 1e-12):
        return []
    return [{"name": "carried_kills", "badge": "earlier kills", "note": True, "reason": _carried_reason(carried)}]


def _lowest_credited(outside: dict | None, carried: dict | None) -> dict | None:
    """The ranking cell's entry when a standing outside attack or an earlier version's kills leave a lower number (the lower of
    the two; at a tie the outside attack's where it tested the current row, else the carried kills, counted against it)."""
    tested_current = outside is not None and (carried is None or outside.get("protocol_version") == carried["version"])
    pair = (outside and _outside_entry(outside), carried and _carried_entry(carried))
    entries = [entry for entry in (pair if tested_current else pair[::-1]) if entry]
    return min(entries, key=lambda entry: entry["value"]) if entries else None


def _leaderboard_rows(
    at_eps: pd.DataFrame,
    cards: dict[str, ModelCard],
    protocols: list[str],
    certificates: dict[str, dict],
    audits: dict[str, dict],
    defences: set[str],
    outside: dict[str, dict],
    fidelities: dict[str, Fidelity | None],
    four_draw: dict[str, dict],
    carried: dict[str, dict],
) -> list[dict]:
    """One row per model at the threat model's eps, ranked by robust accuracy under the ranking
    protocol (ties by clean accuracy); models it has not evaluated follow, unranked. A flag does not
    move a row (demoting it would put it below models known to be less robust): its badge says why
    the number may be too high. A standing outside attack's lower number (``outside``) replaces the
    protocol's in the ranking cell and the rank, credited. A paper's protocol (in ``defences``) is
    weak by design: its flags say so on the model page, not here."""
    rows = []
    flagged_by_audit = _flagged_by_audit(audits)
    for name, group in at_eps.groupby("model"):
        card = cards.get(name)
        by_protocol = {row["protocol"]: row for _, row in group.iterrows()}
        ranking = by_protocol.get(RANKING_PROTOCOL)
        ours = group[~group["protocol"].isin(defences)]
        main = ranking if ranking is not None else (ours if not ours.empty else group).sort_values("timestamp").iloc[-1]
        flags = [
            flag
            for flag in FLAGS
            if flag
            in {flag for flags in ours["flags"] for flag in flags}
            | ({"audit_stronger"} if name in flagged_by_audit else set())
            | ({"outside_stronger"} if name in outside else set())
        ]
        robust = {protocol: _robust_entry(by_protocol[protocol]) if protocol in by_protocol else None for protocol in protocols}
        lower = _lowest_credited(outside.get(name), carried.get(name))
        if lower is not None:
            robust[RANKING_PROTOCOL] = {**lower, "protocol_text": robust[RANKING_PROTOCOL]["text"]}
        ranked = robust[RANKING_PROTOCOL]["value"] if ranking is not None else 0.0
        pgd = by_protocol.get("pgd")
        rows.append(
            {
                "model": name,
                "kind": card.kind if card else "?",
                "encoding": card.encoding.label() if card else "?",
                "family": family(card),
                "origin": _origin(card),
                "sigma": _noise_level(card),
                "timesteps": card.timesteps if card else "-",
                "clean": percent(main["clean_accuracy"]),
                "clean_one_draw": percent(main["clean_accuracy_one_draw"]),
                "robust": robust,
                "qte": percent(pgd["qte_normalised"]) if pgd is not None else "-",
                "redecided": percent(ranking["robust_accuracy_redecided"]) if ranking is not None else "-",
                "firing": percent(main["firing_rate"]),
                "energy": microjoules(main["energy_pj"]),
                "energy_adv": microjoules(main["energy_pj_adv"]),
                "certified": _certified_entry(certificates.get(name), card),
                "paper": _paper_comparison(card, by_protocol, fidelities.get(name)),
                "columns": {column: COLUMNS[column].cell(main[column]) for column in registered_columns(at_eps)},
                "flags": ", ".join(flags),
                "badges": _badges(flags, ranking, outside.get(name), four_draw.get(name)) + _carried_badge(carried.get(name), outside.get(name)),
                "n": int(main["n_examples"]),
                "date": str(main["timestamp"])[:10],
                "_key": (ranking is None, -ranked, -main["clean_accuracy"]),
            }
        )
    rows.sort(key=lambda row: row["_key"])
    for rank, row in enumerate(rows, 1):
        row["rank"] = rank if not row["_key"][0] else None
        del row["_key"]
    return rows


def _filters(rows: list[dict]) -> list[dict]:
    """The table's filters, each with the values its rows hold, sorted."""
    return [{"key": key, "title": title, "options": sorted({str(row[key]) for row in rows})} for key, title in FILTERS]


def _eps_label(eps: float) -> str:
    """An eps as people write it: k/255 when it is one, else four significant digits."""
    steps = eps * 255
    return f"{round(steps)}/255" if steps >= 0.5 and abs(steps - round(steps)) < 1e-6 else f"{eps:.4g}"


def _model_rows(table: pd.DataFrame, threat_eps: float) -> list[dict]:
    """A model's stored rows, the ranking protocol's first, then the others at the threat model's eps, then every sweep by eps."""
    order = table.assign(_ranking=table["protocol"] != RANKING_PROTOCOL, _off_threat=(table["eps"] - threat_eps).abs() > 1e-9).sort_values(
        ["_ranking", "_off_threat", "protocol", "eps"]
    )
    return [
        {
            "protocol": row["protocol"],
            "norm": row["norm"],
            "eps": _eps_label(row["eps"]),
            "grad": row["grad"] or "-",
            "eot": int(row["eot"]),
            "n": int(row["n_examples"]),
            "clean": percent(row["clean_accuracy"]),
            "robust": percent(row["robust_accuracy"]),
            "clean_one_draw": percent(row["clean_accuracy_one_draw"]),
            "ci": interval(row["robust_low"], row["robust_high"]),
            "official": "official" if row["official"] else "other",
            "energy": microjoules(row["energy_pj"]),
            "energy_adv": microjoules(row["energy_pj_adv"]),
            "flags": ", ".join(row["flags"]),
            "date": str(row["timestamp"])[:10],
        }
        for _, row in order.iterrows()
    ]


def _energy_profile(rows: pd.DataFrame, model: str, dataset: str, eps: float) -> dict | None:
    """The per-layer energy of a model's newest official row that counted it at the threat model's
    eps, under the ranking protocol if it has one: the row's settings and `energy_breakdown`."""
    if rows.empty or "energy" not in rows:
        return None
    candidates = [
        row
        for row in rows[(rows["model"] == model) & (rows["dataset"] == dataset)].sort_values("timestamp").to_dict("records")
        if isinstance(row.get("energy"), dict) and is_official(row) and abs((row.get("eps") or 0) - eps) < 1e-9
    ]
    if not candidates:
        return None
    ranked = [row for row in candidates if row["protocol"] == RANKING_PROTOCOL]
    row = (ranked or candidates)[-1]
    energy = row["energy"]
    *layers, total = energy_breakdown(energy).astype(object).where(lambda frame: frame.notna(), None).to_dict("records")
    return {
        "protocol": row["protocol"],
        "n": energy["clean"]["images"],
        "draws": energy["draws"],
        "constants": energy["constants"],
        "attacked": energy.get("adversarial") is not None,
        "layers": layers,
        "total": total,
        "date": str(row["timestamp"])[:10],
    }


def build_site(out: str | os.PathLike, results_dir: str | os.PathLike | None = None, models_dir: str | os.PathLike | None = None) -> Path:
    """Write the site into ``out`` (replacing what a previous build wrote there); return its index
    page. The site is built beside ``out`` and moved in when complete, so a failed build (a full
    disk) leaves ``out`` as it was. The index links the documentation published beside it
    (``out/docs``, built by MkDocs: ``mkdocs build --site-dir leaderboard/docs``) when it is there."""
    docs = (Path(out) / "docs" / "index.html").is_file()
    with building(out) as staging:
        _write_site(staging, results_dir, models_dir, docs)
    logger.info("built the leaderboard in %s", out)
    return Path(out) / "index.html"


def _write_site(out: Path, results_dir: str | os.PathLike | None, models_dir: str | os.PathLike | None, docs: bool = False) -> None:
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
    built = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cards = list_cards(directory=models_dir)
    by_name = {card.name: card for card in cards}
    rows = load_rows(directory=results_dir)
    ranking = build_protocol(RANKING_PROTOCOL)
    (out / "models").mkdir(parents=True, exist_ok=True)
    (out / "static").mkdir(exist_ok=True)
    for asset in (HERE / "static").iterdir():  # one file at a time: a full disk is an OSError with its errno
        shutil.copyfile(asset, out / "static" / asset.name)

    pages = []
    stored = rows.to_dict("records") if not rows.empty else []
    for dataset in sorted({card.dataset for card in cards if card.checkpoint} | set(rows.get("dataset", []))):
        info = dataset_info(dataset)
        every_norm = results_table(rows, cards, dataset=dataset)
        table = every_norm[every_norm["norm"] == "Linf"] if not every_norm.empty else every_norm
        at_eps = table[(table["eps"] - info.linf_eps).abs() < 1e-9] if not table.empty else table
        defences = _paper_protocols([card for card in cards if card.dataset == dataset])
        protocols = sorted(set(at_eps["protocol"]) - {"none"} - defences, key=lambda name: (name != RANKING_PROTOCOL, name))
        certificates = _certificates(rows, dataset, by_name)
        audits = _audits(dataset, results_dir)
        evaluations = load_outside(dataset, results_dir)
        outside = _standing_outside(evaluations, at_eps)
        tabled = table.to_dict("records")
        fidelities = {card.name: fidelity(card, tabled) for card in cards if card.dataset == dataset}
        four_draw = four_draw_rows(stored, dataset, info.linf_eps)
        carried = carried_kills(stored, dataset, info.linf_eps, evaluations)
        leaderboard = _leaderboard_rows(at_eps, by_name, protocols, certificates, audits, defences, outside, fidelities, four_draw, carried)
        papers = {row["model"]: row["paper"] for row in leaderboard}
        all_rows = results_table(rows, cards, dataset=dataset, select="all")
        pareto_protocol = RANKING_PROTOCOL if RANKING_PROTOCOL in protocols else (protocols[0] if protocols else None)
        pareto = None
        if pareto_protocol:
            pareto = f"{dataset}-tradeoff.png"
            plot_tradeoff(
                _with_audit_flags(at_eps[at_eps["protocol"] == pareto_protocol], audits),
                by_name,
                out / pareto,
                f"{dataset}, {pareto_protocol}, Linf eps = {info.linf_eps:.4g}",
            )
        json_file = f"{dataset}.json"
        (out / json_file).write_text(
            json.dumps(
                {
                    "dataset": dataset,
                    "norm": "Linf",
                    "eps": info.linf_eps,
                    "leaderboard": leaderboard,
                    "results": json.loads(table.to_json(orient="records")),
                    "certificates": certificates,
                },
                indent=1,
                default=str,
            )
        )
        title = f"{dataset}, Linf eps = {info.linf_eps:.4g}"
        page = f"{dataset}.html"
        (out / page).write_text(
            environment.get_template("dataset.html").render(
                title=title,
                root="",
                built=built,
                rows=leaderboard,
                protocols=protocols,
                norm="Linf",
                ranking_version=ranking.version,
                ranking_description=ranking.description,
                eps_label=f"{info.linf_eps:.4g}",
                pareto=pareto,
                rank_rule=RANK_RULE,
                filters=_filters(leaderboard),
                pareto_protocol=pareto_protocol,
                json_file=json_file,
                defences=bool(defences),
                columns=[(column, COLUMNS[column].title) for column in registered_columns(at_eps)],
            )
        )
        pages.append({"file": page, "title": title, "models": len(leaderboard), "evaluated": ", ".join(protocols) or "-"})
        for card in (card for card in cards if card.dataset == dataset):
            model_table = table[table["model"] == card.name] if not table.empty else table
            model_rows = all_rows[all_rows["model"] == card.name] if not all_rows.empty else all_rows
            curve = None
            if not model_table.empty and model_table["robust_accuracy"].notna().any():
                curve = f"{card.name}-eps.png"
                plot_eps(model_table, out / "models" / curve, f"{card.name}: robust accuracy against eps")
            certificate, certified_curve = certificates.get(card.name), None
            if certificate is not None:
                certified_curve = f"{card.name}-certified.png"
                plot_certified(
                    certificate["curve"],
                    certificate["norm"],
                    out / "models" / certified_curve,
                    f"{card.name}: {certificate['certificate']} certificate",
                )
            (out / "models" / f"{card.name}.html").write_text(
                environment.get_template("model.html").render(
                    title=card.name,
                    root="../",
                    built=built,
                    card=card,
                    card_yaml=card.to_yaml(),
                    rows=_model_rows(model_rows, info.linf_eps) if not model_rows.empty else [],
                    summary=next((row for row in leaderboard if row["model"] == card.name), None),
                    ranking_version=ranking.version,
                    curve=curve,
                    certificate=certificate,
                    certified_curve=certified_curve,
                    paper=papers.get(card.name, _paper_comparison(card, {}, fidelities.get(card.name))) if card.reference.protocol else None,
                    audit=audits.get(card.name),
                    energy=_energy_profile(rows, card.name, dataset, info.linf_eps),
                )
            )
    (out / "index.html").write_text(
        environment.get_template("index.html").render(title="Leaderboard", root="", built=built, pages=pages, docs=docs)
    )
