"""Results tables, QTE, Pareto fronts and plots, from rows stored the way `evaluate` stores them."""

import json

import pytest
from click.testing import CliRunner

from robustbench_snn.cli import main
from robustbench_snn.registry import list_cards
from robustbench_snn.store import append_row, load_rows
from robustbench_snn.tables import clopper_pearson, pareto_front, qte, results_table


def test_qte_of_a_known_curve_is_its_hand_computed_area():
    # Trapezoids: 0.1 * (0.9 + 0.5) / 2 + 0.1 * (0.5 + 0.1) / 2 = 0.07 + 0.03 = 0.10
    assert qte([0.0, 0.1, 0.2], [0.9, 0.5, 0.1]) == pytest.approx(0.10)
    assert qte([0.2, 0.0, 0.1], [0.1, 0.9, 0.5]) == pytest.approx(0.10)
    assert qte([0.0, 0.05, 0.1], [1.0, 1.0, 1.0]) == pytest.approx(0.1)


def test_pareto_front_of_a_known_point_set():
    points = [(0.90, 0.10), (0.85, 0.30), (0.80, 0.25), (0.70, 0.50), (0.60, 0.45), (0.85, 0.30)]
    assert pareto_front(points) == [0, 1, 5, 3]
    assert pareto_front([(0.5, 0.5)]) == [0]


def test_clopper_pearson_interval_covers_the_estimate_and_narrows_with_n():
    low, high = clopper_pearson(30, 100)
    assert low < 0.30 < high
    wide, narrow = clopper_pearson(3, 10), clopper_pearson(300, 1000)
    assert narrow[1] - narrow[0] < wide[1] - wide[0]
    assert clopper_pearson(0, 50)[0] == 0.0 and clopper_pearson(50, 50)[1] == 1.0


def _row(model, eps, robust, clean=0.9, protocol="pgd", flags=(), timestamp="2026-01-01T00:00:00"):
    return {
        "model": model,
        "dataset": "fashion-mnist",
        "protocol": protocol,
        "norm": "Linf",
        "eps": eps,
        "grad": "bptt",
        "eot": 8,
        "eval_draws": 4,
        "seed": 0,
        "n_examples": 1000,
        "clean_accuracy": clean,
        "robust_accuracy": robust,
        "flags": list(flags),
        "timestamp": timestamp,
        "preset_unmodified": True,
    }


@pytest.fixture
def stored(tmp_path):
    for eps, robust in ((0.05, 0.6), (0.1, 0.3), (0.2, 0.1)):
        append_row(_row("fmnist_rsc1_s0.2", eps, robust), tmp_path)
    append_row(_row("fmnist_ann", 0.1, 0.0, clean=0.92), tmp_path)
    append_row(_row("fmnist_ann", 0.1, 0.01, clean=0.92, timestamp="2026-02-01T00:00:00"), tmp_path)
    append_row(_row("fmnist_snn_poisson", 0.1, 0.35, clean=0.86, flags=["blackbox_stronger"]), tmp_path)
    append_row(
        {
            "model": "fmnist_rsc1_s0.2",
            "dataset": "fashion-mnist",
            "protocol": "certify",
            "norm": "L2",
            "seed": 0,
            "n_examples": 500,
            "curve": {"0": 0.8},
            "timestamp": "2026-01-01T00:00:00",
        },
        tmp_path,
    )
    return tmp_path


def test_results_table_keeps_the_newest_run_and_scores_each_sweep(stored):
    table = results_table(load_rows("fashion-mnist", stored), list_cards())
    ann = table[table["model"] == "fmnist_ann"]
    assert len(ann) == 1 and ann["robust_accuracy"].item() == 0.01
    rsc = table[table["model"] == "fmnist_rsc1_s0.2"]
    expected = qte([0.0, 0.05, 0.1, 0.2], [0.9, 0.6, 0.3, 0.1])
    assert rsc["qte"].tolist() == pytest.approx([expected] * 3)
    assert rsc["qte_normalised"].iloc[0] == pytest.approx(expected / 0.2)
    assert set(table["family"]) == {"ANN", "RSC-I", "Poisson SNN"}
    at_eps = results_table(load_rows("fashion-mnist", stored), list_cards(), eps=0.1)
    assert sorted(at_eps["model"]) == ["fmnist_ann", "fmnist_rsc1_s0.2", "fmnist_snn_poisson"]


def test_a_quick_run_shows_beside_a_full_one_of_the_same_cell_and_never_on_the_leaderboard(stored):
    append_row({**_row("fmnist_ann", 0.1, 0.5, timestamp="2026-03-01T00:00:00"), "n_examples": 20}, stored)
    rows = load_rows("fashion-mnist", stored)
    cell = [
        (row["n_examples"], row["robust_accuracy"], row["official"])
        for _, row in results_table(rows, list_cards(), eps=0.1, select="yours").query("model == 'fmnist_ann'").iterrows()
    ]
    assert sorted(cell) == [(20, 0.5, False), (1000, 0.01, True)], "a user's quick run beside their full run"
    official = results_table(rows, list_cards(), eps=0.1).query("model == 'fmnist_ann'")
    assert official["robust_accuracy"].tolist() == [0.01], "the leaderboard's cell is the full run's"
    with pytest.raises(ValueError, match="official, yours, all"):
        results_table(rows, list_cards(), select="mine")


def test_results_command_prints_table_csv_and_json(stored):
    runner = CliRunner()
    records = json.loads(runner.invoke(main, ["results", "--results-dir", str(stored), "--format", "json"]).output)
    assert {record["model"] for record in records} == {"fmnist_ann", "fmnist_rsc1_s0.2", "fmnist_snn_poisson"}
    table = runner.invoke(main, ["results", "--results-dir", str(stored), "--eps", "0.1"])
    assert table.exit_code == 0 and "blackbox_stronger" in table.output and "qte_norm" in table.output
    csv = runner.invoke(main, ["results", "--results-dir", str(stored), "--format", "csv", "--eps", "0.1"])
    assert csv.exit_code == 0 and csv.output.splitlines()[0].startswith("store,model,family")
    assert len(csv.output.splitlines()) == 1 + len(table.output.splitlines()) - 1
    none = runner.invoke(main, ["results", "--results-dir", str(stored), "--format", "csv", "--protocol", "reliable"])
    assert none.exit_code == 3 and "no stored official results" in none.output


def test_plots_are_written_and_bad_requests_are_clear_errors(stored, tmp_path):
    runner = CliRunner()
    out = tmp_path / "tradeoff.png"
    result = runner.invoke(main, ["plot-tradeoff", "--results-dir", str(stored), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = tmp_path / "eps.svg"
    assert runner.invoke(main, ["plot-eps", "--results-dir", str(stored), "--out", str(svg)]).exit_code == 0
    assert "<svg" in svg.read_text()[:500]
    wrong = runner.invoke(main, ["plot-tradeoff", "--results-dir", str(stored), "--out", str(tmp_path / "x.gif")])
    assert wrong.exit_code == 2 and "must end in one of" in wrong.output
    (tmp_path / "none").mkdir()
    empty = runner.invoke(main, ["plot-tradeoff", "--results-dir", str(tmp_path / "none"), "--out", str(out)])
    assert empty.exit_code == 3 and "run `rsc-bench evaluate` first" in empty.output
    missing = runner.invoke(main, ["plot-tradeoff", "--results-dir", str(tmp_path / "missing"), "--out", str(out)])
    assert missing.exit_code == 2 and "does not exist" in missing.output


def _drawn(monkeypatch, draw, *args):
    """The figure a plot function drew (its saving replaced by capturing it)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from robustbench_snn import plots

    captured = []
    monkeypatch.setattr(plots, "_save", lambda figure, out: captured.append(figure) or out)
    draw(*args)
    figure = captured[0]
    FigureCanvasAgg(figure).draw()
    return figure


def test_figures_tell_every_family_and_model_apart_and_keep_text_off_the_data(monkeypatch, tmp_path):
    from robustbench_snn import plots
    from robustbench_snn.store import OFFICIAL_RESULTS_DIR
    from robustbench_snn.tables import family

    styles = [(tuple(plots._style(family)["color"]), plots._style(family)["marker"]) for family in plots.families()]
    assert len(set(styles)) == len(styles) and len({marker for _, marker in styles}) == len(styles)
    cards = list_cards()
    assert {"adversarially trained ANN", "adversarially trained SNN", "SNN-RAT"} <= {family(card) for card in cards}
    assert {family(card) for card in cards} <= set(plots.families()), "every registered family has a style of its own"

    official = results_table(load_rows("fashion-mnist", OFFICIAL_RESULTS_DIR), cards, dataset="fashion-mnist", protocol="pgd")
    figure = _drawn(monkeypatch, plots.plot_eps, official, tmp_path / "eps.png", "eps")
    axes = figure.axes[0]
    looks = [
        (line.get_color() if isinstance(line.get_color(), str) else tuple(line.get_color()), line.get_linestyle(), line.get_marker())
        for line in axes.get_lines()
    ]
    assert len(looks) == official["model"].nunique() and len(set(looks)) == len(looks), "every model's curve looks different"
    assert axes.get_legend().get_window_extent().x0 >= axes.get_window_extent().x1, "the legend sits outside the data"

    at_eps = results_table(load_rows("fashion-mnist", OFFICIAL_RESULTS_DIR), cards, dataset="fashion-mnist", protocol="reliable", eps=0.1)
    figure = _drawn(monkeypatch, plots.plot_tradeoff, at_eps, {card.name: card for card in cards}, tmp_path / "t.png", "tradeoff")
    renderer = figure.canvas.get_renderer()
    for panel in figure.axes:
        boxes = [text.get_window_extent(renderer) for text in panel.texts]
        assert boxes, "the RSC sigma sweep is labelled"
        overlapping = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
        assert not overlapping, "labels never overlap each other"
    energy_axes = figure.axes[-1]
    tick_labels = [label.get_text() for label in energy_axes.get_xticklabels() if label.get_text()]
    assert tick_labels and all(float(text) in {0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50} for text in tick_labels), tick_labels
