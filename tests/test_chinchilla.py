"""A published table through the whole analysis: the 245 runs of Chinchilla's Figure 4 (tests/data/README.md).
Besiroglu et al. (2024) refit approach 3 on the 240 left after dropping the 5 highest losses: E = 1.817
(95% CI 1.769-1.871), A = 482.0, B = 2085.4, alpha = 0.348 (0.317-0.373), beta = 0.366 (0.331-0.415)."""

import json
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from figure_text import overlaps

from analysis import advise, frontier, laws, plots, report, table

DATA = Path(__file__).parent / "data" / "chinchilla_approach3.csv"
COLUMNS = {"n_params": "Model Size", "flops": "Training FLOP", "test_loss": "loss"}
PUBLISHED = {"E": (1.817, 1.769, 1.871), "alpha": (0.348, 0.317, 0.373), "beta": (0.366, 0.331, 0.415)}
PUBLISHED_LAW = dict(E=1.817, A=482.0, alpha=0.348, B=2085.4, beta=0.366)


def load_240(tmp_path: Path) -> pd.DataFrame:
    source = pd.read_csv(DATA)
    assert len(source) == 245
    path = tmp_path / "chinchilla_240.csv"
    source.sort_values("loss").iloc[:-5].to_csv(path, index=False)
    return table.load(path, table.Spec(columns=COLUMNS, protocol="MassiveText"))


@pytest.fixture(scope="module")
def chinchilla(tmp_path_factory):
    t = load_240(tmp_path_factory.mktemp("chinchilla"))
    return t, laws.fit_table(t, n_boot=1000)


def test_the_table_is_read_through_its_own_column_names(chinchilla):
    t, fits = chinchilla
    assert len(t) == 240 and (t["status"] == "done").all() and t["final"].all()
    assert np.allclose(t["tokens"] * 6 * t["n_params"], t["flops"])
    assert np.allclose(np.log(t["test_ppl"]), t["test_loss"])
    assert fits["table"]["columns"] == COLUMNS
    assert "tokens = flops / (6 n_params)" in fits["table"]["assumed"]


def test_approach_3_reproduces_the_published_refit(chinchilla):
    _, fits = chinchilla
    j = fits["metrics"]["ppl"]["full"]["joint"]
    assert j["converged"] and j["n_points"] == 240
    for name, (value, lo, hi) in PUBLISHED.items():
        assert j["params"][name] == pytest.approx(value, rel=0.02), name
        width = j["ci95"][name][1] - j["ci95"][name][0]
        assert width == pytest.approx(hi - lo, rel=0.30), (name, j["ci95"][name])
    assert "unidentified" not in j  # every parameter is pinned down by these 240 runs
    a = fits["metrics"]["ppl"]["full"]["closed_form"]["n_opt_exponent"]
    assert a == pytest.approx(0.513, abs=0.01)


def test_approach_2_finds_interior_minima_on_the_isoflop_curves(chinchilla):
    _, fits = chinchilla
    iso = fits["metrics"]["ppl"]["full"]["isoflop"]
    inside = [c for c in iso["curves"] if c["n_opt"] is not None]
    assert len(inside) >= 4
    lo, hi = iso["n_opt_exponent_ci95"]
    assert lo < iso["n_opt_exponent"] < hi
    assert 0.4 < iso["n_opt_exponent"] < 0.65  # Hoffmann et al.: a = 0.49 from their IsoFLOP profiles


def test_advise_at_the_chinchilla_budget_matches_the_closed_form(chinchilla):
    _, fits = chinchilla
    c = 5.76e23
    a = advise.advise(fits, c)
    cf = frontier.closed_form(PUBLISHED_LAW, 6.0)
    n_pub = cf["G"] * (c / cf["kappa"]) ** cf["n_opt_exponent"]
    assert fits["cost"]["linear"]["a"] == pytest.approx(6.0, rel=1e-6) and a["flops_per_target"] == pytest.approx(
        6.0 * a["n_params"], rel=1e-6
    )  # the table's C = 6 N T, so the cost model is the closed form's
    assert a["n_params_ci95"][0] < n_pub < a["n_params_ci95"][1]
    assert a["n_params"] == pytest.approx(n_pub, rel=0.15)
    assert a["tokens"] == pytest.approx(c / (6 * n_pub), rel=0.15)
    loss = np.log(a["predictions"]["ppl"]["value"])
    assert loss == pytest.approx(laws.fit.predict_joint(PUBLISHED_LAW, n_pub, c / (6 * n_pub)), rel=0.01)


def test_report_writes_every_figure_with_labels_that_neither_clip_nor_overlap(chinchilla, tmp_path):
    t, fits = chinchilla
    report.write(t, tmp_path, fits=fits)
    figures = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert figures == sorted(
        [f"ppl_{n}.png" for n in ("vs_flops", "vs_n", "vs_t", "isoflop", "negatives", "residuals")] + ["optimum.png"]
    )
    for png in (tmp_path / "figures").glob("*.png"):
        assert matplotlib.image.imread(png).shape[0] > 200
    text = (tmp_path / "report.md").read_text()
    assert "test perplexity = e^loss (MassiveText)" in text and "n_params = `Model Size`" in text
    approach_2 = next(line for line in text.splitlines() if line.startswith("- Approach 2"))
    assert "N_opt ∝ C^0.5" in approach_2 and "(95% CI 0.4" in approach_2
    rows, _ = table.usable(t)
    final = table.points(rows)
    for fig in (
        plots.vs_flops(rows, fits, "ppl"),
        plots.vs_axis(final, fits, "ppl", "n_params"),
        plots.vs_axis(final, fits, "ppl", "tokens"),
        plots.isoflop(final, fits, "ppl"),
        plots.negatives(final, fits, "ppl"),
        plots.residuals(final, fits, "ppl"),
    ):
        assert overlaps(fig) == [], fig.axes[0].get_title()
        assert any("MassiveText" in ax.get_ylabel() or "e^loss" in ax.get_ylabel() for ax in fig.axes)
        plt.close(fig)


def test_cli_reads_the_published_table_and_advises(tmp_path):
    load_240(tmp_path)
    cols = [arg for name, source in COLUMNS.items() for arg in ("--column", f"{name}={source}")]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "advise",
            str(tmp_path / "chinchilla_240.csv"),
            "--budget",
            "5.76e23",
            "--json",
            *cols,
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    a = json.loads(proc.stdout)
    assert 5e10 < a["n_params"] < 1e11 and a["table"]["columns"] == COLUMNS


def test_the_overlap_check_sees_a_clipped_label_and_colliding_titles():
    fig, (a, b) = plt.subplots(1, 2, figsize=(4, 2))
    a.set_ylabel("a y-label far too long for a figure two inches high, so it leaves the canvas")
    a.set_title("a title long enough to run into its neighbour's title")
    b.set_title("the neighbour")
    problems = overlaps(fig)
    assert any("far too long" in p for p in problems) and any("neighbour" in p for p in problems)
    plt.close(fig)
