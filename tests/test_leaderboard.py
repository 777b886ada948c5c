"""The static leaderboard, built from stored rows and tested in a real headless browser (Debian's chromium)."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import require
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select
from test_tables import _row

from robustbench_snn import benchmark, load_model
from robustbench_snn.attacks import build_protocol
from robustbench_snn.attacks.flags import FLAGS
from robustbench_snn.cli import main
from robustbench_snn.leaderboard import build_site
from robustbench_snn.store import append_outside, append_row
from robustbench_snn.tables import clopper_pearson

CURRENT = build_protocol("reliable").version
PREVIOUS = CURRENT - 1

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _certificate(model: str, kind: str, sigma: float, curve: dict) -> dict:
    return {
        "model": model,
        "dataset": "fashion-mnist",
        "protocol": "certify",
        "norm": "L2",
        "certificate": kind,
        "sigma": sigma,
        "n0": 100,
        "n": 1000,
        "alpha": 0.001,
        "n_examples": 500,
        "seed": 0,
        "smoothed_accuracy": 0.8,
        "abstained": 0.05,
        "mean_radius": 0.3,
        "curve": curve,
        "timestamp": "2026-01-01T00:00:00",
    }


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    results = tmp_path_factory.mktemp("results")
    for model, clean, pgd, reliable, flags in [
        ("fmnist_ann", 0.92, 0.00, 0.00, []),
        ("fmnist_rsc1_s0.2", 0.80, 0.25, 0.20, []),
        ("fmnist_snn_poisson", 0.78, 0.40, 0.35, ["blackbox_stronger"]),
        ("fmnist_ann_pgdat", 0.82, 0.69, 0.66, []),
    ]:
        append_row(_row(model, 0.1, pgd, clean=clean), results)
        append_row(_row(model, 0.1, reliable, clean=clean, protocol="reliable", flags=flags), results)
    append_row(_row("fmnist_rsc1_s0.2", 0.05, 0.5, clean=0.80), results)
    append_row(_row("fmnist_snn_direct", 0.1, 0.05, clean=0.89), results)
    append_row(_row("fmnist_rsc2_s0.1", 0.1, 0.05, clean=0.87, protocol="reliable"), results)
    append_row(_row("fmnist_poisson_lowlat", 0.1, 0.05, clean=0.80, protocol="reliable"), results)
    append_row(_row("fmnist_poisson_lowlat", 0.1, 0.27, clean=0.80, protocol="paper-sharmin2020"), results)
    append_row(_certificate("fmnist_rsc1_s0.2", "rsc-I", 0.2, {"0": 0.8, "0.25": 0.45, "0.5": 0.0}), results)
    append_row(_certificate("fmnist_rsc2_s0.1", "rsc-II", 0.1, {"0": 0.9, "0.1": 0.8, "0.25": 0.0}), results)
    # One official row carries the energy counts of a real run.
    energy = benchmark(load_model("fmnist_rsc1_s0.2"), attack="fgsm", n_examples=16).energy
    append_row(
        {**_row("fmnist_rsc1_s0.2", 0.1, 0.20, clean=0.80, protocol="reliable", timestamp="2026-01-02T00:00:00"), "energy": energy}, results
    )
    out = tmp_path_factory.mktemp("site")
    build_site(out, results)
    return out


def test_site_files_and_ranking(site):
    data = json.loads((site / "fashion-mnist.json").read_text())
    ranked = [(row["rank"], row["model"]) for row in data["leaderboard"]]
    # By robust accuracy, the flagged one in its place (its badge says why), ties by clean accuracy, then the unranked.
    assert ranked == [
        (1, "fmnist_ann_pgdat"),
        (2, "fmnist_snn_poisson"),
        (3, "fmnist_rsc1_s0.2"),
        (4, "fmnist_rsc2_s0.1"),
        (5, "fmnist_poisson_lowlat"),
        (6, "fmnist_ann"),
        (None, "fmnist_snn_direct"),
    ]
    badges = {row["model"]: [badge["badge"] for badge in row["badges"]] for row in data["leaderboard"]}
    assert badges["fmnist_snn_poisson"] == ["black-box stronger"] and badges["fmnist_ann_pgdat"] == []
    assert (site / "fashion-mnist-tradeoff.png").read_bytes()[:4] == b"\x89PNG"
    assert (site / "models" / "fmnist_rsc1_s0.2-eps.png").is_file()
    assert (site / "models" / "fmnist_rsc2_s0.1.html").is_file(), "every registered model gets a page"
    certified = {row["model"]: row["certified"] for row in data["leaderboard"]}
    assert (certified["fmnist_rsc1_s0.2"]["text"], certified["fmnist_rsc1_s0.2"]["radius"]) == ("45.00", "L2 0.25")
    assert certified["fmnist_ann"]["text"] == "-"
    # RSC-II at sigma 0.1 over 4 steps: 1,000 draws at alpha 0.001 certify at most 0.1 * 2.46 / 2 in L2, below 0.25.
    assert certified["fmnist_rsc2_s0.1"]["text"] == "n/a" and certified["fmnist_rsc2_s0.1"]["radius"] == "reach 0.123"
    assert "says nothing about the model" in certified["fmnist_rsc2_s0.1"]["note"]
    assert (site / "models" / "fmnist_rsc1_s0.2-certified.png").is_file()
    assert "rsc-I certificate" in (site / "models" / "fmnist_rsc1_s0.2.html").read_text()
    html = (site / "fashion-mnist.html").read_text()
    assert "http://" not in html and "https://" not in html, "the page must not need the network"
    assert "not a measurement on hardware" in html


def test_energy_column_and_per_layer_breakdown(site):
    data = json.loads((site / "fashion-mnist.json").read_text())
    energy = {row["model"]: (row["energy"], row["energy_adv"]) for row in data["leaderboard"]}
    assert energy["fmnist_ann"] == ("-", "-"), "rows without counts show none"
    clean, attacked = (float(value) for value in energy["fmnist_rsc1_s0.2"])
    assert 0.5 < clean < 2 and 0.5 < attacked < 2, "an RSC-I small_cnn costs about 1 uJ per image"
    page = (site / "models" / "fmnist_rsc1_s0.2.html").read_text()
    assert "Energy by layer" in page and "backbone.0" in page and "real values" in page and "(attack)" in page
    assert "Energy by layer" not in (site / "models" / "fmnist_ann.html").read_text()


@pytest.fixture(scope="module")
def browser():
    require(bool(CHROMIUM and CHROMEDRIVER), "Debian's chromium and chromium-driver (a headless browser)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--allow-file-access-from-files",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def _cells(driver, column: str) -> list[str]:
    """The visible text of ``column`` in the rows shown."""
    index = [header.text for header in driver.find_elements(By.CSS_SELECTOR, "#leaderboard thead th")].index(column)
    return [
        row.find_elements(By.TAG_NAME, "td")[index].text
        for row in driver.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr")
        if row.is_displayed()
    ]


def _header(driver, column: str):
    return next(header for header in driver.find_elements(By.CSS_SELECTOR, "#leaderboard thead th") if header.text == column)


def test_the_first_screen_holds_the_whole_ranking_table_at_1400_by_1000(site, browser):
    browser.set_window_size(1400, 1000)
    browser.get((site / "fashion-mnist.html").as_uri())
    height, overflow = browser.execute_script(
        "return [window.innerHeight, document.documentElement.scrollWidth - document.documentElement.clientWidth]"
    )
    first_row = browser.find_element(By.CSS_SELECTOR, "#leaderboard tbody tr").rect
    assert first_row["y"] + first_row["height"] < 0.5 * height, "the table starts on the first screen, not below the prose"
    assert overflow <= 0, "no column is cut off at 1400 px"
    headers = [header.text for header in browser.find_elements(By.CSS_SELECTOR, "#leaderboard thead th") if header.is_displayed()]
    assert headers[:5] == ["rank", "model", "kind", "coding", "clean"] and headers.index("reliable") < headers.index("pgd")
    assert "flags" in headers and "paper's protocol" in headers and "sigma" not in headers
    low, high = clopper_pearson(660, 1000)
    assert _cells(browser, "reliable")[0].splitlines() == ["66.00", f"{100 * low:.1f}-{100 * high:.1f}"], "a 95% interval under each"
    assert not browser.find_element(By.ID, "protocol").get_attribute("open"), "the protocol's history is one click away"
    browser.find_element(By.CSS_SELECTOR, "#protocol summary").click()
    assert "Version 7" in browser.find_element(By.ID, "protocol").text
    browser.find_element(By.ID, "more-columns").click()
    assert _header(browser, "sigma").is_displayed() and _cells(browser, "T")[0] == "1"
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


def test_a_reader_sorts_filters_reads_a_badge_and_opens_a_model_page(site, browser):
    browser.set_window_size(1400, 1000)
    browser.get((site / "fashion-mnist.html").as_uri())
    assert _cells(browser, "model") == [
        "fmnist_ann_pgdat",
        "fmnist_snn_poisson",
        "fmnist_rsc1_s0.2",
        "fmnist_rsc2_s0.1",
        "fmnist_poisson_lowlat",
        "fmnist_ann",
        "fmnist_snn_direct",
    ]

    _header(browser, "reliable").click()
    ascending = [float(cell.split()[0]) for cell in _cells(browser, "reliable") if cell != "-"]
    assert ascending == sorted(ascending) and _cells(browser, "reliable")[-1] == "-", "by the number, missing last"
    _header(browser, "clean").click()
    _header(browser, "clean").click()
    descending = [float(value) for value in _cells(browser, "clean")]
    assert descending == sorted(descending, reverse=True)

    Select(browser.find_element(By.CSS_SELECTOR, "select[data-filter=kind]")).select_by_visible_text("ann")
    assert sorted(_cells(browser, "model")) == ["fmnist_ann", "fmnist_ann_pgdat"]
    assert browser.find_element(By.ID, "shown").text == "2 of 7 models"
    Select(browser.find_element(By.CSS_SELECTOR, "select[data-filter=kind]")).select_by_visible_text("all")
    Select(browser.find_element(By.CSS_SELECTOR, "select[data-filter=encoding]")).select_by_visible_text("poisson")
    assert sorted(_cells(browser, "model")) == ["fmnist_poisson_lowlat", "fmnist_snn_poisson"]
    Select(browser.find_element(By.CSS_SELECTOR, "select[data-filter=encoding]")).select_by_visible_text("all")

    badge = browser.find_element(By.CSS_SELECTOR, "button.badge[data-flag=blackbox_stronger]")
    assert badge.text == "black-box stronger" and badge.get_attribute("title") == FLAGS["blackbox_stronger"]
    reason = badge.find_element(By.XPATH, "following-sibling::span[1]")
    assert not reason.is_displayed()
    badge.click()
    assert reason.is_displayed() and reason.text == FLAGS["blackbox_stronger"]

    assert _cells(browser, "certified")[_cells(browser, "model").index("fmnist_rsc2_s0.1")].splitlines() == ["n/a", "reach 0.123"]
    energy = _cells(browser, "energy µJ")
    assert float(energy[_cells(browser, "model").index("fmnist_rsc1_s0.2")]) > 0

    browser.find_element(By.LINK_TEXT, "fmnist_rsc1_s0.2").click()
    assert browser.find_element(By.TAG_NAME, "h1").text == "fmnist_rsc1_s0.2"
    assert Path(browser.current_url).name == "fmnist_rsc1_s0.2.html"
    lead = browser.find_element(By.CSS_SELECTOR, "p.lead").text
    assert lead.startswith("20.00% robust accuracy under reliable") and "rank 3 on fashion-mnist" in lead, "the model's number first"
    results = browser.find_elements(By.CSS_SELECTOR, "#results tbody tr")
    assert len(results) == 3 and results[0].text.startswith("reliable"), "the ranking protocol's row first"
    assert [row.text.split()[2] for row in results[1:]] == ["0.1", "0.05"], "then the threat model's eps, then the sweep"
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, errors


def _audit(model: str, version: int, flagged: bool) -> dict:
    return {
        "model": model,
        "dataset": "fashion-mnist",
        "protocol": "reliable",
        "protocol_version": version,
        "n_examples": 200,
        "protocol_accuracy": 0.2,
        "worst_case_accuracy": 0.15 if flagged else 0.2,
        "entries": [{"attack": "pgd-10[bptt]", "robust_accuracy": 0.3, "only_this": 0, "fooled_protocol_survivors": 0, "seconds": 1.0}],
        "protocol_survivors": 40,
        "broken_survivors": 10 if flagged else 0,
        "control_kills": 0,
        "flagged": flagged,
        "timestamp": "2026-01-03T00:00:00",
    }


def test_an_audit_flags_a_row_only_when_it_audited_the_current_version_and_old_rows_show_theirs(tmp_path):
    from robustbench_snn.store import append_audit

    for model, version in (("fmnist_rsc1_s0.2", CURRENT), ("fmnist_snn_poisson", PREVIOUS)):
        append_row({**_row(model, 0.1, 0.2, clean=0.8, protocol="reliable"), "params": {"version": version}}, tmp_path)
    append_audit(_audit("fmnist_rsc1_s0.2", CURRENT, flagged=True), tmp_path)
    append_audit(_audit("fmnist_snn_poisson", PREVIOUS, flagged=True), tmp_path)
    build_site(tmp_path / "site", tmp_path)
    board = json.loads((tmp_path / "site" / "fashion-mnist.json").read_text())["leaderboard"]
    flags = {row["model"]: row["flags"] for row in board}
    assert "audit_stronger" in flags["fmnist_rsc1_s0.2"] and "audit_stronger" not in flags["fmnist_snn_poisson"]
    cells = {row["model"]: (row["robust"]["reliable"]["text"], row["robust"]["reliable"]["older"]) for row in board}
    assert cells == {"fmnist_rsc1_s0.2": ("20.00", None), "fmnist_snn_poisson": ("20.00", PREVIOUS)}, "an older version says so"
    badges = {row["model"]: [badge["badge"] for badge in row["badges"]] for row in board}
    assert badges == {"fmnist_rsc1_s0.2": ["audit broke it"], "fmnist_snn_poisson": [f"v{PREVIOUS}"]}
    page = (tmp_path / "site" / "models" / "fmnist_snn_poisson.html").read_text()
    assert f"This audit is of version {PREVIOUS}" in page and f"rows above are of version {CURRENT}" in page


def test_a_published_defence_shows_its_papers_protocol_and_how_much_it_overstates_when_our_copy_reproduces_the_paper(tmp_path):
    results, out = tmp_path / "results", tmp_path / "site"
    append_row(_row("fmnist_poisson_lowlat", 0.1, 0.30, clean=0.88, protocol="reliable"), results)
    # The paper's own evaluation, weak by design (single-draw gradients): its flag must not mark the model.
    append_row(
        _row("fmnist_poisson_lowlat", 0.1, 0.476, clean=0.88, protocol="paper-sharmin2020", flags=["stochastic_without_eot"]), results
    )
    append_row(_row("fmnist_hosnn", 0.1, 0.036, clean=0.85, protocol="reliable"), results)
    append_row(_row("fmnist_hosnn", 0.1, 0.33, clean=0.85, protocol="paper-hosnn"), results)
    # HoSNN's paper reports 74.91% on Fashion-MNIST under its evaluation at 8/255: a copy at 72% there reproduces it.
    append_row(_row("fmnist_hosnn", 8 / 255, 0.72, clean=0.85, protocol="paper-hosnn"), results)
    append_row(_row("fmnist_ann", 0.1, 0.0, clean=0.92, protocol="reliable"), results)
    build_site(out, results)
    rows = {row["model"]: row for row in json.loads((out / "fashion-mnist.json").read_text())["leaderboard"]}
    reproduced = rows["fmnist_hosnn"]["paper"]
    shown = (reproduced["robust"], reproduced["reliable"], reproduced["overstated_by"], reproduced["fidelity"])
    assert shown == ("33.00", "3.60", "+29.4", "reproduced")
    unchecked = rows["fmnist_poisson_lowlat"]["paper"]
    assert (unchecked["robust"], unchecked["reliable"], unchecked["overstated_by"]) == ("47.60", "30.00", "-")
    assert unchecked["fidelity"] == "not measured", "no number of Sharmin et al.'s could be read: the distance is not a finding"
    assert unchecked["fidelity_reason"] == "the paper's number could not be read here" and unchecked["reported"] is None
    assert rows["fmnist_poisson_lowlat"]["flags"] == "" and rows["fmnist_poisson_lowlat"]["rank"] == 1
    assert rows["fmnist_ann"]["paper"]["overstated_by"] == "-", "a model that is not a published defence has no paper's protocol"
    html = (out / "fashion-mnist.html").read_text()
    assert ">paper's protocol</th>" in html and ">overstated by</th>" in html and ">copy</th>" in html
    assert "<th>paper-sharmin2020</th>" not in html
    page = (out / "models" / "fmnist_hosnn.html").read_text()
    assert "At the paper's eps (0.03137) under the same evaluation: 72.00%; the paper reports 74.91%" in page
    assert "<strong>reproduced</strong>" in page
    assert "+29.4 points" in page
    unchecked_page = (out / "models" / "fmnist_poisson_lowlat.html").read_text()
    assert "Sharmin et al." in unchecked_page and "<strong>not measured</strong>" in unchecked_page and "+17.6" not in unchecked_page


def test_the_index_links_the_documentation_published_beside_it(tmp_path):
    append_row(_row("fmnist_ann", 0.1, 0.0, clean=0.92, protocol="reliable"), tmp_path / "results")
    build_site(tmp_path / "site", tmp_path / "results")
    assert "docs/index.html" not in (tmp_path / "site" / "index.html").read_text(), "no link to documentation that is not there"
    (tmp_path / "site" / "docs").mkdir()
    (tmp_path / "site" / "docs" / "index.html").write_text("<h1>docs</h1>")
    build_site(tmp_path / "site", tmp_path / "results")
    assert '<a href="docs/index.html">Documentation</a>' in (tmp_path / "site" / "index.html").read_text()
    assert (tmp_path / "site" / "docs" / "index.html").read_text() == "<h1>docs</h1>", "a rebuild keeps the published documentation"


def test_kills_that_do_not_hold_on_a_second_decision_show_as_a_note_with_the_redecided_number(tmp_path):
    noisy = {
        **_row("fmnist_snn_poisson", 0.1, 0.08, clean=0.82, protocol="reliable"),
        "member_kills": {"pgd-20[bptt]": 600, "later": 140},
        "member_kills_holding": {"pgd-20[bptt]": 590, "later": 100},
    }
    steady = {
        **_row("fmnist_snn_rat", 0.1, 0.30, clean=0.82, protocol="reliable"),
        "member_kills": {"pgd-20[bptt]": 520},
        "member_kills_holding": {"pgd-20[bptt]": 515},
    }
    for row in (noisy, steady):
        append_row(row, tmp_path / "results")
    build_site(tmp_path / "site", tmp_path / "results")
    board = {row["model"]: row for row in json.loads((tmp_path / "site" / "fashion-mnist.json").read_text())["leaderboard"]}
    (note,) = board["fmnist_snn_poisson"]["badges"]
    assert (
        note["name"] == "decision_noise"
        and note["note"]
        and "50 of its kills did not hold" in note["reason"]
        and "13.00%" in note["reason"]
    )
    assert board["fmnist_snn_poisson"]["redecided"] == "13.00" and board["fmnist_snn_poisson"]["flags"] == "", "a note, not a flag"
    assert board["fmnist_snn_rat"]["badges"] == [], "half a point of re-decision noise is no note"
    assert board["fmnist_snn_rat"]["rank"] == 1 and board["fmnist_snn_poisson"]["rank"] == 2, "the note does not move a row"


def test_a_row_decided_by_the_sequential_test_shows_the_four_draw_rules_number_beside_it_while_they_differ(tmp_path):
    test = {"right_at": 0.1, "wrong_at": 0.25, "alpha": 0.0001, "beta": 0.01, "chunk": 8, "max_draws": 256}

    def stored(model, robust, version, stochastic, timestamp):
        params = {"version": version, **({"sequential": test} if version >= 8 else {})}
        row = _row(model, 0.1, robust, clean=0.82, protocol="reliable", timestamp=timestamp)
        append_row({**row, "params": params, "stochastic": stochastic}, tmp_path / "results")

    stored("fmnist_snn_poisson", 0.078, 7, True, "2026-01-01T00:00:00")
    stored("fmnist_snn_poisson", 0.130, CURRENT, True, "2026-02-01T00:00:00")
    stored("fmnist_snn_rat", 0.303, 7, False, "2026-01-01T00:00:00")
    stored("fmnist_snn_rat", 0.300, CURRENT, False, "2026-02-01T00:00:00")
    stored("fmnist_rsc1_s0.1", 0.055, CURRENT, True, "2026-02-01T00:00:00")
    build_site(tmp_path / "site", tmp_path / "results")
    board = {row["model"]: row for row in json.loads((tmp_path / "site" / "fashion-mnist.json").read_text())["leaderboard"]}
    poisson = board["fmnist_snn_poisson"]
    assert poisson["robust"]["reliable"]["text"] == "13.00", "the current version's number ranks"
    (note,) = poisson["badges"]
    assert note["name"] == "decision_rule" and note["note"] and note["badge"] == "7.80% by four draws"
    assert "version 7" in note["reason"] and "any of 4 draws" in note["reason"] and "at least 0.25" in note["reason"]
    assert board["fmnist_snn_rat"]["badges"] == [], "a deterministic model's answer is one forward: no rule to compare"
    assert board["fmnist_rsc1_s0.1"]["badges"] == [], "no four-draw row of the model: nothing to show beside"


def test_a_sample_an_earlier_version_broke_on_the_same_images_stays_broken_in_the_ranking(tmp_path):
    """Each version's restarts find a few samples another's miss: on a deterministic model (or under
    the same decision rule) the ranking cell carries every earlier version's kills on the same
    images, credited; under another rule, on other images or other weights, nothing is carried."""

    def stored(model, survivors, version, stochastic=False, timestamp="2026-01-01T00:00:00", **fields):
        params = {"version": version, **({"sequential": {"right_at": 0.1, "wrong_at": 0.25}} if version >= 8 else {})}
        row = _row(model, 0.1, len(survivors) / 1000, clean=0.9, protocol="reliable", timestamp=timestamp)
        extra = {"params": params, "stochastic": stochastic, "survivors": survivors, "checkpoint_sha256": "a" * 64, **fields}
        append_row({**row, **extra}, tmp_path / "results")

    stored("fmnist_snn_direct", [1, 2, 3, 4, 5], PREVIOUS)
    stored("fmnist_snn_direct", [1, 2, 3, 6, 7, 8], CURRENT, timestamp="2026-02-01T00:00:00")
    stored("fmnist_snn_poisson", [1, 2], 7, stochastic=True)
    stored("fmnist_snn_poisson", [1, 2, 3, 4], CURRENT, stochastic=True, timestamp="2026-02-01T00:00:00")
    stored("fmnist_ann", [1, 2], PREVIOUS, checkpoint_sha256="b" * 64)
    stored("fmnist_ann", [1, 2, 3], CURRENT, timestamp="2026-02-01T00:00:00")
    build_site(tmp_path / "site", tmp_path / "results")
    board = {row["model"]: row for row in json.loads((tmp_path / "site" / "fashion-mnist.json").read_text())["leaderboard"]}
    direct = board["fmnist_snn_direct"]
    cell = direct["robust"]["reliable"]
    assert cell["text"] == "0.30" and cell["protocol_text"] == "0.60", "the previous version broke 6, 7 and 8: three of the current's six"
    assert f"reliable v{PREVIOUS} on the same images" in cell["attack"]
    assert f"broke 3 of the 6 samples version {CURRENT} counts robust" in cell["reason"]
    assert [badge["name"] for badge in direct["badges"]] == ["carried_kills"]
    assert board["fmnist_snn_poisson"]["robust"]["reliable"]["text"] == "0.40", "four draws decide otherwise than the test"
    assert board["fmnist_ann"]["robust"]["reliable"]["text"] == "0.30", "other weights: other samples"
    assert board["fmnist_ann"]["badges"] == []
    assert board["fmnist_snn_direct"]["rank"] > board["fmnist_snn_poisson"]["rank"], (
        "the carried number ranks: 0.30 below 0.40, not 0.60 above"
    )

    # An outside attack's kills among an earlier version's survivors are kills too: carried, credited.
    outside = {"model": "fmnist_snn_direct", "dataset": "fashion-mnist", "protocol": "reliable", "row_timestamp": "2026-01-01T00:00:00"}
    outside |= {"attack": "sharp-pgd", "members": [], "submitted_by": "a red team", "n_examples": 1000, "survivors": 5, "broken": [1, 4]}
    append_outside(
        {**outside, "robust_accuracy": 0.003, "robust_accuracy_row": 0.005, "timestamp": "2026-01-02T00:00:00"}, tmp_path / "results"
    )
    build_site(tmp_path / "site", tmp_path / "results")
    board = {row["model"]: row for row in json.loads((tmp_path / "site" / "fashion-mnist.json").read_text())["leaderboard"]}
    cell = board["fmnist_snn_direct"]["robust"]["reliable"]
    assert cell["text"] == "0.20", "sample 1, robust to both versions, was broken by the outside attack on the previous one's"
    assert f"reliable v{PREVIOUS} and the outside attack sharp-pgd by a red team on the same images" == cell["attack"]

    # An outside attack on the newest version's survivors adds its kills to the carried ones: the
    # cell shows their union (sample 2 as well: 0.10), not the lowest of the two numbers (0.20).
    newest = {"row_timestamp": "2026-02-01T00:00:00", "survivors": 6, "broken": [2], "robust_accuracy": 0.005}
    append_outside({**outside, **newest, "robust_accuracy_row": 0.006, "timestamp": "2026-02-02T00:00:00"}, tmp_path / "results")
    build_site(tmp_path / "site", tmp_path / "results")
    board = {row["model"]: row for row in json.loads((tmp_path / "site" / "fashion-mnist.json").read_text())["leaderboard"]}
    assert board["fmnist_snn_direct"]["robust"]["reliable"]["text"] == "0.10"
    assert {"outside_stronger", "carried_kills"} <= {badge["name"] for badge in board["fmnist_snn_direct"]["badges"]}
    # `rsc-bench results` shows the same number beside the row's own, so no table puts the model above its cell.
    shown = CliRunner().invoke(main, ["results", "--results-dir", str(tmp_path / "results"), "--protocol", "reliable", "--json"])
    table = {row["model"]: row for row in json.loads(shown.output)}
    assert table["fmnist_snn_direct"]["robust_accuracy"] == 0.006 and table["fmnist_snn_direct"]["robust_accuracy_carried"] == 0.001
    assert table["fmnist_snn_poisson"]["robust_accuracy_carried"] is None, "nothing carried: no lower number"
