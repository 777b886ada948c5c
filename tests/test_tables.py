"""Results tables, QTE, Pareto fronts and plots, from rows stored the way `evaluate` stores them."""

import json
import math

import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.colors import to_rgb
from matplotlib.text import Text
from matplotlib.transforms import Bbox

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


def _lab(colour: str) -> tuple[float, float, float]:
    """A colour in CIELAB (D65), where distance approximates how different two colours look."""
    linear = [channel / 12.92 if channel <= 0.04045 else ((channel + 0.055) / 1.055) ** 2.4 for channel in to_rgb(colour)]
    matrix = ((0.4124, 0.3576, 0.1805), (0.2126, 0.7152, 0.0722), (0.0193, 0.1192, 0.9505))
    x, y, z = (sum(weight * channel for weight, channel in zip(row, linear)) / white for row, white in zip(matrix, (0.95047, 1.0, 1.08883)))
    f = [value ** (1 / 3) if value > 0.008856 else 7.787 * value + 16 / 116 for value in (x, y, z)]
    return 116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])


def _drawn_marks(axes) -> list:
    """The display boxes of every marker (its marker size) and every error bar segment that ``axes`` drew, read from its artists."""
    marks = []
    for line in axes.get_lines():
        if line.get_marker() in (None, "None", "", " "):
            continue
        half = line.get_markersize() * axes.figure.dpi / 72 / 2
        for cx, cy in line.get_transform().transform(line.get_xydata()):
            marks.append(Bbox([[cx - half, cy - half], [cx + half, cy + half]]))
    for collection in axes.collections:
        for segment in getattr(collection, "get_segments", lambda: [])():
            (x0, y0), (x1, y1) = collection.get_transform().transform(segment)[[0, -1]]
            marks.append(Bbox([[min(x0, x1) - 0.5, min(y0, y1)], [max(x0, x1) + 0.5, max(y0, y1)]]))
    return marks


def test_figures_tell_every_family_and_model_apart_and_keep_text_off_the_data(monkeypatch, tmp_path):
    from robustbench_snn import plots
    from robustbench_snn.store import OFFICIAL_RESULTS_DIR
    from robustbench_snn.tables import family

    styles = [(plots._style(family)["color"], plots._style(family)["marker"]) for family in plots.families()]
    assert len(set(styles)) == len(styles) and len({marker for _, marker in styles}) == len(styles)
    colours = [_lab(colour) for colour, _ in styles]
    closest = min(math.dist(a, b) for index, a in enumerate(colours) for b in colours[index + 1 :])
    assert closest > 25, "no two families' colours look alike (CIE76 distance)"
    cards = list_cards()
    assert {"adversarially trained ANN", "adversarially trained SNN", "SNN-RAT"} <= {family(card) for card in cards}
    assert {family(card) for card in cards} <= set(plots.families()), "every registered family has a style of its own"

    official = results_table(load_rows("fashion-mnist", OFFICIAL_RESULTS_DIR), cards, dataset="fashion-mnist", protocol="pgd")

    def looks(axes) -> list[tuple]:
        return [
            (line.get_color() if isinstance(line.get_color(), str) else tuple(line.get_color()), line.get_linestyle(), line.get_marker())
            for line in axes.get_lines()
        ]

    few = official[official["family"].isin(["RSC-I", "RSC-II"])]
    figure = _drawn(monkeypatch, plots.plot_eps, few, tmp_path / "eps.png", "eps")
    (axes,) = figure.axes
    assert len(looks(axes)) == few["model"].nunique() and len(set(looks(axes))) == len(looks(axes)), "every model's curve looks different"
    assert axes.get_legend().get_window_extent().x0 >= axes.get_window_extent().x1, "the legend sits outside the data"
    # The whole zoo: more curves than one panel can tell apart, so a panel per family, its models in distinct colours.
    figure = _drawn(monkeypatch, plots.plot_eps, official, tmp_path / "eps.png", "eps")
    panels = [axes for axes in figure.axes if axes.get_visible()]
    assert [axes.get_title() for axes in panels] == [name for name in plots.families() if name in set(official["family"])]
    assert sum(len(axes.get_lines()) for axes in panels) == official["model"].nunique()
    assert all(len({colour for colour, _, _ in looks(axes)}) == len(axes.get_lines()) for axes in panels), "distinct colours per panel"

    at_eps = results_table(load_rows("fashion-mnist", OFFICIAL_RESULTS_DIR), cards, dataset="fashion-mnist", protocol="reliable", eps=0.1)
    # A user's own model in the thick of the cluster, labelled "(yours)".
    yours = at_eps.iloc[[0]].assign(
        model="SinabsNet",
        store="yours",
        family="unregistered",
        clean_accuracy=0.85,
        robust_accuracy=0.06,
        robust_low=0.045,
        robust_high=0.077,
        flags=[[]],
    )
    at_eps = pd.concat([at_eps, yours], ignore_index=True)
    figure = _drawn(monkeypatch, plots.plot_tradeoff, at_eps, {card.name: card for card in cards}, tmp_path / "t.png", "tradeoff")
    renderer = figure.canvas.get_renderer()
    for panel in figure.axes:
        boxes = [Text.get_window_extent(text, renderer) for text in panel.texts]  # the text alone, not its leader line
        assert boxes, "the RSC sigma sweep is labelled"
        overlapping = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
        assert not overlapping, "labels never overlap each other"
        drawn = _drawn_marks(panel)
        assert len(drawn) > 2 * len(at_eps), "every model's marker and error bar"
        covered = [(text.get_text(), mark) for text, box in zip(panel.texts, boxes) for mark in drawn if box.overlaps(mark)]
        assert not covered, f"no label covers a marker or an error bar: {covered}"
        assert "SinabsNet (yours)" in [text.get_text() for text in panel.texts]
    legend = [text.get_text() for text in figure.axes[-1].get_legend().get_texts()]
    shown = [name for name in plots.families() if name in legend]
    assert legend[: len(shown)] == shown and legend[len(shown) :] == ["Pareto front", "potentially unreliable"], "a deliberate order"
    energy_axes = figure.axes[-1]
    tick_labels = [label.get_text() for label in energy_axes.get_xticklabels() if label.get_text()]
    assert tick_labels and all(float(text) in {0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50} for text in tick_labels), tick_labels
