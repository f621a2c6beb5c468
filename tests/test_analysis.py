"""Analysis on tables generated from known laws: parameter recovery, figures read back, report, CLI, degenerate
input. The analysis package reads only the results table."""

import json
import os
import subprocess
import sys

import matplotlib.image
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from figure_text import overlaps

from analysis import fit, frontier, laws, noise, plots, report, table
from harness.core.errors import UserError

TRUE = {
    "ppl": dict(E=1.6, A=30.0, alpha=0.34, B=400.0, beta=0.42),
    "ndcg@5": dict(E=0.1, A=2.0, alpha=0.25, B=12.0, beta=0.3),
}  # 1 - NDCG@5 in [0.26, 0.73]: NDCG in [0, 1]


def law(p, n, t):
    return p["E"] + p["A"] * n ** -p["alpha"] + p["B"] * t ** -p["beta"]


def known_table(noise=0.003, seed=0, ns=(1e4, 3e4, 1e5, 3e5, 1e6), ts=(1e5, 3e5, 1e6, 3e6, 1e7)):
    rng = np.random.default_rng(seed)
    rows = []
    for k, shift in (("64", 0.05), ("full", 0.0)):
        for n in ns:
            for t in ts:
                run = f"{k}-{n:g}-{t:g}"
                for frac in (0.5, 1.0):
                    tt = t * frac
                    eps = rng.normal(0, noise, 2)
                    ce = (law(TRUE["ppl"], n, t) + shift) * np.exp(eps[0])
                    err = (law(TRUE["ndcg@5"], n, t) + shift) * np.exp(eps[1])
                    row = {
                        "run_id": run,
                        "status": "done",
                        "final": frac == 1.0,
                        "n_params": int(n),
                        "tokens": int(tt),
                        "flops": 6.5 * n * tt,
                        "negatives": k,
                        "valid_ppl": np.exp(ce) * 1.01,
                        "valid_ndcg@5": (1 - err) * 0.99,
                    }
                    if frac == 1.0:
                        row.update({"test_ppl": np.exp(ce), "test_ndcg@5": 1 - err})
                    rows.append(row)
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def fitted():
    t = known_table()
    return t, laws.fit_table(t, n_boot=300)


@pytest.mark.parametrize("metric", ["ppl", "ndcg@5"])
def test_joint_law_recovers_exponents_and_cis_cover_the_truth(fitted, metric):
    _, fits = fitted
    j = fits["metrics"][metric]["full"]["joint"]
    assert j["converged"] and j["r2"] > 0.99
    for p in ("alpha", "beta"):
        assert j["params"][p] == pytest.approx(TRUE[metric][p], rel=0.05)
    for p, true in TRUE[metric].items():
        lo, hi = j["ci95"][p]
        assert lo <= true <= hi, (p, lo, true, hi)
    assert len(j["bootstrap"]) == 300
    cf = fits["metrics"][metric]["full"]["closed_form"]
    b, a = TRUE[metric]["beta"], TRUE[metric]["alpha"]
    assert cf["n_opt_exponent"] == pytest.approx(b / (a + b), abs=0.03)


def test_single_axis_and_sigmoid_recovery():
    x = np.geomspace(1e4, 1e7, 15)
    rng = np.random.default_rng(1)
    y = (0.7 + 25 * x**-0.3) * np.exp(rng.normal(0, 0.002, x.size))
    f = fit.power_law(x, y)
    assert f.params["alpha"] == pytest.approx(0.3, rel=0.05) and f.params["E"] == pytest.approx(0.7, rel=0.05)
    lc = np.linspace(20, 32, 25)
    ys = 0.35 / (1 + np.exp(-0.7 * (lc - 26))) + 0.04 + rng.normal(0, 0.001, lc.size)
    s = fit.sigmoid(lc, ys)
    for name, true in dict(p=0.35, k=0.7, c0=26, q=0.04).items():
        assert s.params[name] == pytest.approx(true, rel=0.05, abs=0.005)


def test_batched_lbfgs_solves_each_problem_like_scipy():
    """lbfgs_batch on B independent bounded problems: every problem reaches scipy L-BFGS-B's own optimum."""
    from scipy.optimize import minimize

    rng = np.random.default_rng(3)
    centers, scales = rng.normal(0, 2, (30, 4)), rng.uniform(0.1, 10, (30, 4))
    lo, hi = np.full(4, -1.5), np.full(4, 1.5)

    def fun(x, rows):  # a scaled, shifted quartic-plus-quadratic per problem; some optima sit outside the box
        z = x - centers[rows]
        return np.sum(scales[rows] * (z**2 + 0.1 * z**4), axis=1), scales[rows] * (2 * z + 0.4 * z**3)

    x, f, converged = fit.lbfgs_batch(fun, np.zeros((30, 4)), lo, hi)
    assert converged.all()
    for b in range(30):
        ref = minimize(
            lambda v: tuple(r[0] for r in fun(v[None], np.array([b]))),
            np.zeros(4),
            jac=True,
            method="L-BFGS-B",
            bounds=list(zip(lo, hi)),
            options={"gtol": 1e-10},
        )
        assert f[b] == pytest.approx(ref.fun, rel=1e-6, abs=1e-9)
        assert np.allclose(x[b], ref.x, atol=1e-4)


def test_bootstrap_refits_match_individual_fits():
    """A resample is a weight vector over runs: its batched refit has the objective of fitting that resample alone."""
    t = known_table(ns=(1e4, 1e5, 1e6), ts=(1e5, 1e6, 1e7))
    s = t[(t["negatives"] == "full") & t["final"]]
    x = [s["n_params"].to_numpy(float), s["tokens"].to_numpy(float)]
    y = table.to_target("ppl", s["test_ppl"])
    b = fit.bootstrap(fit.joint(*x, y), x, y, s["run_id"].to_numpy(), n_boot=5, seed=7)
    counts = np.random.default_rng(7).multinomial(len(s), np.full(len(s), 1 / len(s)), size=5)
    for c, sample in zip(counts, b.samples):
        pick = np.repeat(np.arange(len(s)), c[np.argsort(np.argsort(s["run_id"].to_numpy()))])
        alone = fit.joint(x[0][pick], x[1][pick], y[pick])
        assert sample["alpha"] == pytest.approx(alone.params["alpha"], abs=0.01)
        assert sample["beta"] == pytest.approx(alone.params["beta"], abs=0.01)


def test_extrapolation_and_isoflop(fitted):
    _, fits = fitted
    e = fits["metrics"]["ppl"]["full"]
    ex = e["extrapolation"]
    assert ex["heldout_points"] > 0 and ex["joint_rel_error"] < 0.02
    assert "n_opt_exponent" in e["isoflop"] or "note" in e["isoflop"]
    assert "sigmoid_c_rel_error" in fits["metrics"]["ndcg@5"]["full"]["extrapolation"]


def test_figures_are_written_with_labelled_log_axes(fitted, tmp_path):
    t, fits = fitted
    rows, _ = table.usable(t)
    written = plots.plot_all(rows, fits, tmp_path)
    assert len(written) == 13  # 6 per metric and the compute-optimal (N, T, K)
    for png in written:
        assert png.stat().st_size > 10_000 and png.with_suffix(".pdf").stat().st_size > 1_000
        assert matplotlib.image.imread(png).shape[0] > 200
    final = rows[rows["final"]]
    fig = plots.vs_axis(final, fits, "ppl", "n_params")
    ax = fig.axes[0]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    assert ax.get_xlabel() == plots.N_LABEL and ax.get_ylabel() == "test perplexity (full catalog)"
    assert len(ax.collections) == final["tokens"].nunique()  # one CI band per T
    fig = plots.vs_flops(rows, fits, "ndcg@5")
    assert fig.axes[0].get_xscale() == "log" and fig.axes[0].get_yscale() == "linear"
    assert fig.axes[-1].get_ylabel() == plots.N_LABEL  # the colour bar
    for metric in ("ppl", "ndcg@5"):  # no text of any figure clips or overlaps (read back from the rendering)
        for fig in (
            plots.vs_flops(rows, fits, metric),
            plots.vs_axis(final, fits, metric, "n_params"),
            plots.vs_axis(final, fits, metric, "tokens"),
            plots.isoflop(final, fits, metric),
            plots.negatives(final, fits, metric),
            plots.residuals(final, fits, metric),
            plots.optimum(final, fits),
        ):
            assert overlaps(fig) == [], (metric, fig.axes[0].get_title())
            plt.close(fig)
    assert plots.residuals(final, fits, "ppl").axes[2].get_title() == "extrapolation check"


def test_report_names_every_figure(fitted, tmp_path):
    t, _ = fitted
    report.write(t, tmp_path, n_boot=0)
    text = (tmp_path / "report.md").read_text()
    pngs = sorted((tmp_path / "figures").glob("*.png"))
    assert len(pngs) == 13 and all(f"figures/{p.name}" in text for p in pngs)
    assert "Approach 3" in text and "Extrapolation check" in text and "NDCG@5 form:" in text
    assert json.loads((tmp_path / "fits.json").read_text())["metrics"]["ppl"]["full"]["joint"]["converged"]


def test_degenerate_inputs_give_messages_and_the_possible_fits():
    t = known_table(ns=(1e5,), ts=(1e5, 3e5, 1e6, 1e7, 1e8))
    t.loc[t["run_id"] == t["run_id"].iloc[0], "status"] = "diverged"
    t.loc[t["run_id"] == t["run_id"].iloc[-1], "test_ppl"] = np.nan
    fits = laws.fit_table(t, n_boot=0)
    assert fits["summary"]["excluded"] == {"diverged": 1} and fits["summary"]["nan_rows"] == 1
    assert any("needs >= 3 distinct values of N and of T (have N (1))" in m for m in fits["messages"])
    by_t = fits["metrics"]["ppl"]["full"]["by_t_at_n"]
    assert "params" in next(iter(by_t.values()))  # the single-axis law in T is still fitted
    grid = known_table(ns=(1e4, 1e5, 1e6), ts=(1e5, 1e6, 1e7))
    few = laws.fit_table(grid[grid["run_id"].isin(grid["run_id"].unique()[::2])], n_boot=0)  # 3 N, 3 T, 5 runs
    assert any("needs >= 6 points (have 5)" in m for m in few["messages"])


def test_cli_fit_and_missing_columns(fitted, tmp_path):
    t, _ = fitted
    t.to_csv(tmp_path / "table.csv", index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "fit", str(tmp_path / "table.csv"), "--bootstrap", "0"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "ppl K=full" in proc.stdout and (tmp_path / "fits.json").exists()
    t.drop(columns=["flops", "tokens"]).to_csv(tmp_path / "bad.csv", index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "fit", str(tmp_path / "bad.csv")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "missing column(s) tokens, flops" in proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "fit", str(tmp_path / "table.csv"), "--column", "n_params=Model Size"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "no column 'Model Size'" in proc.stderr and "Traceback" not in proc.stderr


def test_flags_written_as_text_are_parsed_and_a_bad_flag_is_one_line(tmp_path):
    t = known_table(ns=(1e4, 1e5, 1e6), ts=(1e5, 1e6, 1e7))
    t["final"] = np.where(t["final"], "True", "")  # a spreadsheet's export: only the final rows are final
    t.to_csv(tmp_path / "text.csv", index=False)
    loaded = table.load(tmp_path / "text.csv")
    assert loaded["final"].dtype == bool and loaded["final"].sum() == len(t) // 2
    assert len(table.points(loaded)) == len(t) // 2
    t["final"] = np.where(loaded["final"], "yes", "maybe")
    t.to_csv(tmp_path / "bad.csv", index=False)
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "fit", str(tmp_path / "bad.csv")], capture_output=True, text=True
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "column final: 'maybe' is not a boolean" in proc.stderr and proc.stderr.count("\n") == 1


def test_cooldown_branch_ends_are_fitting_points_and_trunk_evaluations_are_not():
    t = known_table(ns=(1e4, 1e5, 1e6), ts=(1e5, 1e6, 1e7)).assign(annealed=False)
    t.loc[t["final"], "annealed"] = True
    trunk = t[t["final"]].assign(final=False, annealed=False, tokens=lambda d: d["tokens"] // 3)
    branches = t[t["final"]].assign(final=False, tokens=lambda d: d["tokens"] // 2)
    mixed = pd.concat([t, trunk, branches], ignore_index=True)
    got = table.points(mixed)
    assert got["annealed"].all() and len(got) == 2 * t["final"].sum()


def test_closed_form_of_a_law_whose_optimum_overflows_is_infinite_not_an_error():
    """A 3-run design's refit can land at alpha + beta ~ 0.01 with A / B ~ 1e15: G = (alpha A / (beta B))^(1 / 0.011)
    exceeds a float. The report must still be written (it raised OverflowError)."""
    cf = frontier.closed_form({"alpha": 0.01, "beta": 0.001, "A": 1e10, "B": 1e-5}, 6.0)
    assert cf["G"] == float("inf") and cf["n_opt_exponent"] == pytest.approx(1 / 11)
    assert frontier.closed_form({"alpha": 0.3, "beta": 0.3, "A": 400.0, "B": 400.0}, 6.0)["G"] == pytest.approx(1.0)


def test_isoflop_minima_of_a_known_law_follow_its_closed_form():
    """Cooldown-branch ends of 7 N x 10 T from the ppl law (C = 6 N T): each budget's own N range, interior
    minima, and N_opt(C) growing with the closed form's exponent beta / (alpha + beta)."""
    p = TRUE["ppl"]
    rows = [
        {
            "run_id": f"{n:g}",
            "status": "done",
            "final": t == 1e8,
            "annealed": True,
            "n_params": n,
            "tokens": t,
            "flops": 6 * n * t,
            "negatives": "full",
            "valid_ppl": np.exp(law(p, n, t)),
            "test_ppl": np.exp(law(p, n, t)),
        }
        for n in np.geomspace(1e3, 1e6, 7)
        for t in np.geomspace(1e5, 1e8, 10)
    ]
    t = pd.DataFrame(rows)
    iso = laws.fit_table(t, n_boot=0)["metrics"]["ppl"]["full"]["isoflop"]
    found = [c for c in iso["curves"] if c["n_opt"]]
    assert len(found) >= 3
    assert all(min(c["log_n"]) < np.log(c["n_opt"]) < max(c["log_n"]) for c in found)
    assert iso["n_opt_exponent"] == pytest.approx(p["beta"] / (p["alpha"] + p["beta"]), abs=0.08)


def test_report_on_a_foreign_table_with_many_t_repeats_text_k_and_no_validation_column(tmp_path):
    """The crashes seen on published tables: > 40 distinct T (line styles ran out), several runs at one (N, T, K)
    (reindex on duplicate labels), no valid_ columns (KeyError), a K label that is not a number."""
    t = known_table(ns=(1e4, 1e5, 1e6), ts=tuple(np.geomspace(1e5, 1e7, 45)))
    t = t[t["final"]].drop(columns=["valid_ppl", "valid_ndcg@5"])
    t["negatives"] = t["negatives"].map({"64": "sampled-64", "full": "full"})
    seed = t.assign(run_id=t["run_id"] + "-seed1", test_ppl=t["test_ppl"] * 1.002)
    t = pd.concat([t, seed], ignore_index=True)
    fits = report.write(t, tmp_path, n_boot=20)
    figures = sorted(p.name for p in (tmp_path / "figures").glob("*.png"))
    assert len(figures) == 13 and (tmp_path / "report.md").exists()
    assert fits["metrics"]["ppl"]["full"]["isoflop"]["column"] == "test_ppl"
    for name in figures:
        assert matplotlib.image.imread(tmp_path / "figures" / name).shape[0] > 100


def test_the_fitted_floor_is_compared_with_a_known_oracle():
    t = known_table(ns=(1e4, 3e4, 1e5, 3e5), ts=(1e5, 3e5, 1e6, 3e6)).assign(oracle_test_ppl=np.exp(TRUE["ppl"]["E"]))
    fl = laws.fit_table(t, n_boot=200)["metrics"]["ppl"]["full"]["oracle_floor"]
    assert fl["target"] == pytest.approx(TRUE["ppl"]["E"]) and abs(fl["rel_error"]) < 0.05 and fl["in_ci"]
    wrong = laws.fit_table(t.assign(oracle_test_ppl=np.exp(3.0)), n_boot=200)["metrics"]["ppl"]["full"]
    assert not wrong["oracle_floor"]["in_ci"] and wrong["oracle_floor"]["rel_error"] < -0.4


def test_advise_allocates_a_budget_by_the_closed_form_with_intervals(fitted, tmp_path):
    """Every run of the table costs 6.5 N T at either K, so the numerical optimum is the closed form's, and the
    better K (full: K = 64 is 0.05 nats worse everywhere) is chosen."""
    from analysis import advise

    t, fits = fitted
    a = advise.advise(fits, 1e14)
    p, kappa = fits["metrics"]["ppl"]["full"]["joint"]["params"], fits["kappa"]
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    assert a["negatives"] == "full" and a["candidates"] == ["64", "full"] and not a["edge"]
    assert a["n_params"] == pytest.approx(g * (1e14 / kappa) ** (p["beta"] / (p["alpha"] + p["beta"])), rel=1e-3)
    assert a["tokens"] == pytest.approx(1e14 / (kappa * a["n_params"]))
    assert a["n_params_ci95"][0] < a["n_params"] < a["n_params_ci95"][1]
    # the true law's allocation (same kappa) lies in the interval, and so does its perplexity there
    q = TRUE["ppl"]
    g_true = (q["alpha"] * q["A"] / (q["beta"] * q["B"])) ** (1 / (q["alpha"] + q["beta"]))
    n_true = g_true * (1e14 / kappa) ** (q["beta"] / (q["alpha"] + q["beta"]))
    assert a["n_params_ci95"][0] < n_true < a["n_params_ci95"][1]
    ppl = a["predictions"]["ppl"]
    assert ppl["ci95"][0] < ppl["value"] < ppl["ci95"][1]
    assert 0 <= a["predictions"]["ndcg@5"]["ci95"][0] <= a["predictions"]["ndcg@5"]["ci95"][1] <= 1
    (tmp_path / "fits.json").write_text(json.dumps(fits))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "advise",
            str(tmp_path),
            "--budget",
            "1e14",
            "--negatives",
            "64",
            "--json",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["negatives"] == "64" and out["n_params"] > 0 and len(out["tokens_ci95"]) == 2 and out["est_s"] > 0
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "advise", str(tmp_path), "--budget", "1e14", "--negatives", "7"],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "--negatives 7: not a K of the table" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_report_numbers_are_short_and_unfittable_slices_are_counted_once(tmp_path):
    t = known_table(ns=(1e4, 1e5, 1e6), ts=tuple(np.geomspace(1e5, 1e7, 45)))
    t = t[t["final"]].assign(n_params=lambda d: d["n_params"] * 1.0000137)  # N from a foreign tool: not integers
    fits = report.write(t, tmp_path, n_boot=0)
    text = (tmp_path / "report.md").read_text()
    assert "N from 1e+04 to 1e+06; T from 100,000 to 1e+07;" in text
    by_n = fits["metrics"]["ppl"]["full"]["by_n_at_t"]
    assert by_n == {"skipped": "45 value(s) of tokens with < 4 values of n_params (a 3-parameter law needs >= 4)"}


def test_bootstrap_intervals_cover_the_truth_in_repeated_noisy_tables():
    """30 tables from the Chinchilla-shaped law (5 N x 6 T over 2 decades each, 1% log-normal noise): each 95%
    interval of E, alpha and beta holds the true value in >= 85% of them (the binomial spread around 95% with 30
    tables is ~4%), and the intervals are informative (alpha's median width < 0.2)."""
    p = dict(E=1.8, A=480.0, alpha=0.35, B=2000.0, beta=0.37)
    n, t = (a.ravel() for a in np.meshgrid(np.geomspace(1e6, 1e8, 5), np.geomspace(1e8, 1e10, 6)))
    truth = law(p, n, t)
    rng = np.random.default_rng(1)
    hits, widths = {k: 0 for k in ("E", "alpha", "beta")}, []
    for r in range(30):
        y = truth * np.exp(rng.normal(0, 0.01, len(truth)))
        f = fit.bootstrap(fit.joint(n, t, y), [n, t], y, np.arange(len(y)), n_boot=200, seed=r)
        for k in hits:
            hits[k] += f.ci[k][0] <= p[k] <= f.ci[k][1]
        widths.append(f.ci["alpha"][1] - f.ci["alpha"][0])
    assert all(v / 30 >= 0.85 for v in hits.values()), hits
    assert np.median(widths) < 0.2


def test_status_words_from_other_tools_are_read_and_unknown_ones_are_one_line(tmp_path):
    t = known_table(ns=(1e4, 1e5, 1e6), ts=(1e5, 1e6, 1e7))
    t["status"] = np.where(np.arange(len(t)) % 2, " Done", "FINISHED")
    t.to_csv(tmp_path / "t.csv", index=False)
    assert (table.load(tmp_path / "t.csv")["status"] == "done").all()
    t.loc[0, "status"] = "exploded"
    t.to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(UserError, match="column status: unknown value 'exploded'"):
        table.load(tmp_path / "bad.csv")


@pytest.mark.parametrize(
    "column,value,why",
    [
        ("test_ppl", -5.0, "a perplexity must be finite and > 0"),
        ("test_ppl", 0.0, "a perplexity must be finite"),
        ("test_ppl", np.inf, "a perplexity must be finite"),
        ("test_ndcg@5", 1.5, "NDCG@5 must lie in [0, 1]"),
        ("test_ndcg@5", -0.1, "NDCG@5 must lie in [0, 1]"),
    ],
)
def test_an_impossible_metric_is_a_one_line_error_or_an_excluded_counted_row(tmp_path, column, value, why):
    """A finished run's perplexity <= 0 or infinite, or an NDCG@5 outside [0, 1]: `fit` exits 2 naming the
    column, the csv line and the value, and writes nothing; with --bad-values exclude the row is dropped and
    counted in fits.json and the report. A missing value (NaN) is not an error (it is counted as before)."""
    t = known_table()
    t[column] = t[column].astype(float)
    rows = np.flatnonzero(t["final"].to_numpy())
    t.loc[rows[3], column] = value
    t.loc[rows[5], "test_ppl"] = np.nan
    t.to_csv(tmp_path / "t.csv", index=False)
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "fit", str(tmp_path / "t.csv"), "--bootstrap", "0", "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert f"column {column}, line {rows[3] + 2}: {value}" in proc.stderr and why in proc.stderr
    assert not out.exists()
    # the exclusion through `fit` for every value; through `report` (figures and report.md) for the first one only
    command = "report" if (column, value) == ("test_ppl", -5.0) else "fit"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            command,
            str(tmp_path / "t.csv"),
            "--bootstrap",
            "0",
            "--out",
            str(out),
            "--bad-values",
            "exclude",
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "invalid value" not in proc.stderr  # nothing impossible reached numpy
    fits = json.loads((out / "fits.json").read_text())
    assert fits["table"]["excluded_values"] == {column: 1} and fits["summary"]["nan_rows"] == 1
    if command == "report":
        assert f"1 in `{column}`" in (out / "report.md").read_text()
    assert all(v > 0 for v in fits["metrics"]["ppl"]["full"]["frontier"]["values"])


def test_negatives_the_catalog_cannot_supply_are_a_one_line_error_suggesting_full(tmp_path, shared_cache):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "train",
            "configs/synthetic.yaml",
            "--set",
            "data.synthetic.n_items=50",
            "--set",
            "loss.negatives=5000",
            "--set",
            "features.kind=id",
            "--out",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "SRT_SCALE_CACHE": str(shared_cache)},
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert "loss.negatives = 5000: not fewer than the catalog's 50 items" in proc.stderr and "full" in proc.stderr
    assert not any(tmp_path.iterdir())  # nothing half-written


def floorless_table(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """y = 480/N^0.35 + 2000/T^0.37 with no floor (E = 0), 4 N x 4 T over one decade each, 1% noise."""
    rng = np.random.default_rng(seed)
    n, t = (a.ravel() for a in np.meshgrid(np.geomspace(1e8, 1e9, 4), np.geomspace(1e9, 1e10, 4)))
    return n, t, (480 / n**0.35 + 2000 / t**0.37) * np.exp(rng.normal(0, 0.01, len(n)))


@pytest.mark.parametrize("seed", range(20))
def test_a_floor_the_data_do_not_identify_is_named_never_a_collapsed_interval(seed):
    """E cannot be told from 0 on these data. On every noise seed the fit must say so (fits.json `unidentified`)
    and E's 95% interval must be the profile likelihood's one-sided [0, upper], never a point: it comes from
    well-posed fits with E held, not from where the bootstrap's refits stop in the flat direction of ln E."""
    n, t, y = floorless_table(seed)
    f = fit.joint(n, t, y)
    fit.identify(fit.bootstrap(f, [n, t], y, np.arange(len(y)), n_boot=50), [n, t])
    assert "E" in f.unidentified and "consistent with 0" in f.unidentified["E"]
    assert not f.floor_profile["rejects_zero"] and f.floor_profile["p_at_zero"] > 0.05
    lo, hi = f.ci["E"]
    assert lo == 0.0 and hi >= f.params["E"] and hi > 1e-3  # one-sided from the bound, not collapsed
    assert f.to_dict()["unidentified"] == f.unidentified and f.to_dict()["floor_profile"] == f.floor_profile


def test_the_floor_profile_is_the_least_squares_optimum_with_e_held_and_rejects_a_real_floor(fitted):
    """The profile at a held E is the least sum of squared log residuals (checked against scipy's least_squares
    from the truth); a table with a real floor (E = 0.5, half the smallest value, over 3 decades of N and T)
    rejects E = 0 and keeps its bootstrap interval, which contains the truth; a well-posed fit names nothing."""
    from scipy.optimize import least_squares

    n, t, y = floorless_table(3)
    f = fit.joint(n, t, y)
    logs = [np.log(n), np.log(t)]
    scale = 2.5e-4  # ~ the residual variance, as profile_floor scales it: the objective is O(n)
    for floor in (0.0, 0.1):
        got = scale * fit._floor_profile(f, logs, np.log(y), np.array([floor]), scale)[0]
        ref = least_squares(
            lambda p: np.log(floor + p[0] * n ** -p[1] + p[2] * t ** -p[3]) - np.log(y),
            [480, 0.35, 2000, 0.37],
            x_scale=[100, 0.1, 100, 0.1],
        )
        assert got == pytest.approx(2 * ref.cost, rel=1e-4)
    rng = np.random.default_rng(0)  # 5 N x 5 T over 3 decades each: enough span to see a floor of 0.5
    n, t = (a.ravel() for a in np.meshgrid(np.geomspace(1e6, 1e9, 5), np.geomspace(1e8, 1e11, 5)))
    y_floor = (0.5 + 480 / n**0.35 + 2000 / t**0.37) * np.exp(rng.normal(0, 0.01, len(n)))
    g = fit.identify(fit.bootstrap(fit.joint(n, t, y_floor), [n, t], y_floor, np.arange(len(n)), n_boot=200), [n, t])
    assert g.floor_profile["rejects_zero"] and "upper" not in g.floor_profile and "E" not in g.unidentified
    assert g.ci["E"][0] > 0 and g.ci["E"][0] < 0.5 < g.ci["E"][1]
    _, fits = fitted  # known_table()
    assert "unidentified" not in fits["metrics"]["ppl"]["full"]["joint"]
    assert "not identified" not in report.summary(fits)


def test_the_frontier_is_the_pareto_envelope_with_the_sigmoid_fitted_to_it_and_drawn(fitted):
    t, fits = fitted
    fr = fits["metrics"]["ndcg@5"]["full"]["frontier"]
    c, v = np.array(fr["flops"]), np.array(fr["values"])
    assert fr["column"] == "valid_ndcg@5" and np.all(np.diff(c) > 0) and np.all(np.diff(v) > 0)
    rows, _ = table.usable(t)
    every = rows[rows["negatives"] == "full"]
    best_at = np.array([v[c <= x].max() if (c <= x).any() else -np.inf for x in every["flops"]])
    assert np.all(every["valid_ndcg@5"].to_numpy() <= best_at + 1e-12)  # nothing beats the envelope
    sg = fr["sigmoid_ln_c"]
    assert sg["r2"] > 0.95 and sg["n_points"] == len(c)
    assert "sigmoid_ln_c" not in fits["metrics"]["ppl"]["full"]["frontier"]
    fig = plots.vs_flops(rows, fits, "ndcg@5")
    labels = [line.get_label() for line in fig.axes[-2].get_lines()]
    assert "Pareto envelope" in labels and "sigmoid in ln C, fitted to the envelope" in labels


def test_variable_projection_solves_the_scales_exactly_and_finds_a_boundary_floor():
    """On a noiseless law whose exponents lie on the projection grid the start is the law itself: scales by
    non-negative least squares, E = 0 at the box's lower edge; the fit from it has zero objective."""
    n, t = (a.ravel() for a in np.meshgrid(np.geomspace(1e6, 1e8, 5), np.geomspace(1e8, 1e10, 5)))
    alpha, beta = fit.PROJECTION_GRID[5], fit.PROJECTION_GRID[6]
    y = 480 / n**alpha + 2000 / t**beta
    theta = fit._projected_starts([([n, t], y)])[0]
    assert theta[0] == fit.BOUNDS["e"][0]  # E = 0: the lower edge of e = ln E
    assert np.allclose(np.exp(theta[[1, 3]]), [480, 2000], rtol=1e-6) and np.allclose(theta[[2, 4]], [alpha, beta])
    f = fit.joint(n, t, y)
    assert f.loss < 1e-12 and f.params["alpha"] == pytest.approx(alpha, rel=1e-4)


def test_table_spec_split_rows_pooling_and_protocol(tmp_path):
    t = known_table()
    t["test_ppl"] = t["test_ppl"].fillna(t["valid_ppl"])  # every row evaluated on both splits
    t["test_ndcg@5"] = t["test_ndcg@5"].fillna(t["valid_ndcg@5"])
    t.to_csv(tmp_path / "t.csv", index=False)
    n_final = int(t["final"].sum())
    valid = table.load(tmp_path / "t.csv", table.Spec(split="valid", protocol="sampled 100"))
    fits = laws.fit_table(valid, n_boot=0)
    assert fits["split"] == "valid" and plots.label(fits, "ppl", "valid") == "validation perplexity (sampled 100)"
    assert fits["metrics"]["ppl"]["full"]["points"] == n_final // 2
    every = table.load(tmp_path / "t.csv", table.Spec(rows="every"))
    assert len(table.points(every)) == len(t)
    env = table.load(tmp_path / "t.csv", table.Spec(rows="envelope"))
    for _, g in env.sort_values("tokens").groupby("run_id"):
        assert g["test_ppl"].is_monotonic_decreasing and g["test_ndcg@5"].is_monotonic_increasing
    pooled = table.load(tmp_path / "t.csv", table.Spec(pool_negatives=True))
    assert set(laws.fit_table(pooled, n_boot=0)["metrics"]["ppl"]) == {"pooled"}
    assert len(table.points(table.load(tmp_path / "t.csv", table.Spec(rows="final")))) == n_final
    for bad, where in (
        (dict(rows="annealed"), "no annealed rows"),
        (dict(split="train"), "--split"),
        (dict(rows="best"), "--rows"),
        (dict(columns={"params": "n_params"}), "'params'"),
    ):
        with pytest.raises(UserError, match=where):
            table.load(tmp_path / "t.csv", table.Spec(**bad))
    t.assign(n_params=-1).to_csv(tmp_path / "negative.csv", index=False)
    with pytest.raises(UserError, match="column n_params, line 2: '-1' is not a number > 0"):
        table.load(tmp_path / "negative.csv")
    t.assign(tokens="many").to_csv(tmp_path / "text.csv", index=False)
    with pytest.raises(UserError, match="column tokens, line 2: 'many' is not a number > 0"):
        table.load(tmp_path / "text.csv")


def isoflop_design(seed: int, labelled: bool, n_jitter: float = 0.0) -> tuple[pd.DataFrame, float]:
    """An IsoFLOP design of the ppl law: 5 budgets x 7 N spread around each budget's optimum (each N off by up to
    `n_jitter`), each run's C off its budget by up to 3% as real runs land near it; with or without the budget
    label. Returns the table and the closed form's N_opt exponent beta / (alpha + beta)."""
    p = TRUE["ppl"]
    a = p["beta"] / (p["alpha"] + p["beta"])
    g = (p["alpha"] * p["A"] / (p["beta"] * p["B"])) ** (1 / (p["alpha"] + p["beta"]))
    rng = np.random.default_rng(seed)
    rows = []
    for c in np.geomspace(1e12, 1e16, 5):
        for n in g * (c / 6) ** a * np.geomspace(0.1, 10, 7) * rng.uniform(1 - n_jitter, 1 + n_jitter, 7):
            cc = c * rng.uniform(0.97, 1.03)
            t = cc / (6 * n)
            rows.append(
                {
                    "run_id": f"{c:g}-{n:g}",
                    "status": "done",
                    "final": True,
                    "n_params": n,
                    "tokens": t,
                    "flops": cc,
                    "negatives": "full",
                    "test_ppl": np.exp(law(p, n, t)),
                    **({"budget": f"{c:g}"} if labelled else {}),
                }
            )
    return pd.DataFrame(rows), a


def test_an_isoflop_design_is_grouped_by_its_budget_label():
    """One parabola per budget label: interior minima, the closed form's exponent inside a 95% interval."""
    design, a = isoflop_design(seed=1, labelled=True)
    iso = laws.fit_table(design, n_boot=0)["metrics"]["ppl"]["full"]["isoflop"]
    assert len(iso["curves"]) == 5 and all(c["n_opt"] for c in iso["curves"])
    assert iso["n_opt_exponent"] == pytest.approx(a, abs=0.03)
    lo, hi = iso["n_opt_exponent_ci95"]
    assert lo <= a <= hi and hi - lo < 0.2


def test_an_unlabelled_design_with_one_run_per_n_is_grouped_into_budgets_by_c():
    """Every run has its own N (no size shared across budgets) and no label: runs within 0.1 decade of C form a
    budget; minima inside, the closed form's exponent."""
    design, a = isoflop_design(seed=2, labelled=False, n_jitter=0.02)
    iso = laws.fit_table(design, n_boot=0)["metrics"]["ppl"]["full"]["isoflop"]
    assert len(iso["curves"]) == 5 and all(len(c["log_n"]) == 7 and c["n_opt"] for c in iso["curves"])
    assert iso["n_opt_exponent"] == pytest.approx(a, abs=0.03)


def test_figures_of_a_table_too_small_for_laws_keep_their_text_apart():
    """2 N x 2 T: no joint fit, no IsoFLOP curve. The empty IsoFLOP panel says why inside the panel; its title
    does not run into the neighbouring panel's (the failure seen on published tables)."""
    t = known_table(ns=(1e4, 3e4), ts=(1e5, 1e6))
    fits = laws.fit_table(t, n_boot=0)
    rows, _ = table.usable(t)
    final = table.points(rows)
    fig = plots.isoflop(final, fits, "ppl")
    assert overlaps(fig) == []
    inside = [text.get_text().replace("\n", " ") for ax in fig.axes for text in ax.texts]
    assert any("IsoFLOP minima need >= 3 N" in text for text in inside)
    assert "no IsoFLOP minima and no joint fit" in inside
    plt.close(fig)


def test_a_planted_capacity_curve_is_set_beside_the_trained_runs_in_fits_report_and_figure(tmp_path, fitted):
    """A table whose world records the capacity oracle (oracle_test_capacity_<d>_ppl, oracle_test_exact_ppl, as
    the spectral world does): fits.json `capacity` holds the planted L*(d) per width with the trained runs' best
    ln(ppl) per K, and the planted gap's exponent, recovered from a gap planted as 2 N^-0.5; the report states it
    beside alpha; the `capacity` figure is written and its text neither clips nor overlaps."""
    t = known_table()
    widths = {1e4: 8, 3e4: 12, 1e5: 24, 3e5: 40, 1e6: 64}
    t["d_model"] = t["n_params"].map(lambda n: widths[float(n)])
    t["oracle_test_exact_ppl"] = np.exp(1.5)
    for n, d in widths.items():
        t[f"oracle_test_capacity_{d}_ppl"] = np.exp(1.5 + 2 * n**-0.5)
    fits = laws.fit_table(t, n_boot=50)
    cap = fits["capacity"]
    assert cap["floor"] == pytest.approx(1.5) and [w["d_model"] for w in cap["widths"]] == [8, 12, 24, 40, 64]
    assert cap["gap_exponent_vs_n"] == pytest.approx(0.5, abs=1e-9)
    best = t[t["n_params"] == 1e4].groupby("negatives")["test_ppl"].min()
    assert cap["widths"][0]["trained"] == pytest.approx({k: np.log(v) for k, v in best.items()})
    report.write(t, tmp_path, fits=fits)
    text = (tmp_path / "report.md").read_text()
    assert "## Capacity oracle (planted)" in text and "N^-0.500" in text and "fitted alpha" in text
    assert (tmp_path / "figures" / "capacity.png").exists()
    fig = plots.capacity(fits)
    assert overlaps(fig) == []
    assert "capacity" not in fitted[1]  # a world without one (known_table) has none


def test_fits_do_not_depend_on_run_ids_or_row_order():
    """The same measurements under other run ids, in another row order (a rerun whose config gained a key gets new
    ids; collect sorts by id): identical laws and identical bootstrap intervals, to the last bit."""
    t = known_table()
    shuffled = t.sample(frac=1.0, random_state=1).reset_index(drop=True)
    shuffled["run_id"] = "x" + shuffled["run_id"].str[::-1]
    a, b = laws.fit_table(t, n_boot=100), laws.fit_table(shuffled, n_boot=100)
    for metric in ("ppl", "ndcg@5"):
        for k in ("64", "full"):
            ja, jb = a["metrics"][metric][k]["joint"], b["metrics"][metric][k]["joint"]
            assert ja["params"] == jb["params"] and ja["ci95"] == jb["ci95"], (metric, k)


def test_fits_say_which_n_and_c_and_refit_on_the_other_n(tmp_path):
    """fits.json names the N and C the laws use; the report refits each law on the other N (Pearce & Song's
    convention bias); `--n-column n_params_total` fits on the total and the check then refits on non-embedding N."""
    from harness.cli import main

    ns, ts, tables = np.geomspace(1e4, 1e6, 5), np.geomspace(1e5, 1e7, 6), 2e5
    rows = [
        {
            "run_id": f"r{i}",
            "status": "done",
            "final": t == ts[-1],
            "annealed": True,
            "n_params": n,
            "n_params_tables": tables,
            "n_params_total": n + tables,
            "tokens": t,
            "flops": 10 * n * t,
            "negatives": "full",
            "test_ppl": np.exp(law(TRUE["ppl"], n, t)),
            "test_ndcg@5": 1 - law(TRUE["ndcg@5"], n, t),
        }
        for i, n in enumerate(ns)
        for t in ts
    ]
    path = tmp_path / "table.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    main(["report", str(path), "--out", str(tmp_path / "a"), "--bootstrap", "0"])
    main(["fit", str(path), "--out", str(tmp_path / "b"), "--bootstrap", "0", "--n-column", "n_params_total"])
    a, b = (json.loads((tmp_path / d / "fits.json").read_text()) for d in "ab")
    assert a["conventions"]["n"] == "n_params" and "id / token tables left out" in a["conventions"]["n_means"]
    assert "scoring against the K + 1 candidates or the catalog" in a["conventions"]["flops_means"]
    assert b["conventions"]["n"] == "n_params_total"
    sa, sb = a["conventions"]["sensitivity"], b["conventions"]["sensitivity"]
    assert sa["other_n"] == "n_params_total" and sb["other_n"] == "n_params_nonembedding"
    alpha = sa["laws"]["ppl"]["full"]["alpha"]
    assert alpha[0] == pytest.approx(TRUE["ppl"]["alpha"], rel=0.02)  # planted on non-embedding N
    # a constant 200K added to N compresses its log range: the same fall in loss needs a steeper exponent
    assert alpha[1] > 1.5 * alpha[0]
    assert a["metrics"]["ppl"]["full"]["joint"]["params"]["alpha"] == pytest.approx(alpha[0], rel=1e-6)
    assert b["metrics"]["ppl"]["full"]["joint"]["params"]["alpha"] == pytest.approx(alpha[1], rel=1e-3)
    assert sb["laws"]["ppl"]["full"]["alpha"] == pytest.approx(alpha[::-1], rel=1e-3)
    assert sa["laws"]["ppl"]["full"]["alpha_at_bound"] == [False, False]
    assert sa["laws"]["ppl"]["full"]["n_decades"] == pytest.approx([2.0, np.log10((1e6 + tables) / (1e4 + tables))])
    text = (tmp_path / "a" / "report.md").read_text()
    assert "Refitted on N = `n_params_total`" in text and f"alpha {alpha[0]:.3g} vs {alpha[1]:.3g}" in text
    assert "(bound)" not in text


def test_an_n_convention_refit_whose_alpha_hits_the_box_is_marked_not_reported_as_an_estimate():
    """A refit whose alpha sits on the exponent box's edge (the quickstart's refit on n_params_total: 45K of
    token tables under N of 2K - 104K leave the total 0.5 decades) is marked (bound) with both Ns' spans, not printed
    as an estimate; values inside the box are printed as they are."""
    from analysis import report

    hi = fit.BOUNDS["alpha"][1]
    laws = {
        "ppl": {
            "full": {
                "alpha": [0.716, hi],
                "n_opt_exponent": [0.371, 0.0795],
                "alpha_at_bound": [False, True],
                "n_decades": [1.73, 0.5],
            },
            "64": {"alpha": [1.14, 2.0], "n_opt_exponent": [0.376, 0.2], "alpha_at_bound": [False, False]},
        }
    }
    conv = {
        "n": "n_params",
        "n_means": "",
        "flops_means": "",
        "sensitivity": {"other_n": "n_params_total", "laws": laws},
    }
    (line,) = report._conventions_lines(conv)
    assert f"ppl K=full: alpha 0.716 vs {hi:.3g} (bound), N_opt exponent 0.371 vs 0.0795 (bound)" in line
    assert "ppl K=64: alpha 1.14 vs 2, N_opt exponent 0.376 vs 0.2" in line
    assert "N spans 1.73 decades, `n_params_total` 0.50" in line


def test_a_table_above_the_scout_size_reaches_the_optimum_of_a_scout_on_every_point(monkeypatch):
    """Tables over fit.SCOUT_POINTS take their starts and scout on a fixed subset and converge on every point: the
    joint fit and the parametric bootstrap's refits land where a scout on every point does, to the optimiser's
    precision on these nearly-L1 objectives (either path stops up to a few percent of an interval's width from the
    polished optimum), so the intervals agree; and the subset is the same on every call."""
    rng = np.random.default_rng(5)
    runs = 60
    n = np.repeat(np.exp(rng.uniform(np.log(2e3), np.log(1e5), runs)), 6)
    t = np.tile(np.geomspace(2e4, 6.4e5, 6), runs)
    run_id = np.repeat(np.arange(runs), 6)
    y = (4.0 + 17.5 * n**-0.5 + 15.8 * t**-0.4) * np.exp(
        rng.normal(0, 0.003, runs)[run_id] + rng.normal(0, 0.002, n.size)
    )
    assert n.size > fit.SCOUT_POINTS
    assert np.array_equal(fit.scout_subset(n.size), fit.scout_subset(n.size)) and fit.scout_subset(50) is None

    def fitted():
        f = fit.joint(n, t, y)
        nz = noise.estimate(fit.residuals(f, [n, t], y), run_id, fit.log_jacobian(f, [n, t]))
        fit.parametric_bootstrap(f, [n, t], y, run_id, nz, n_boot=40, seed=1)
        return f

    subset = fitted()
    monkeypatch.setattr(fit, "SCOUT_POINTS", n.size)
    every = fitted()
    assert subset.loss == pytest.approx(every.loss, rel=1e-3)
    for name in ("alpha", "beta"):
        width = every.ci[name][1] - every.ci[name][0]
        assert subset.params[name] == pytest.approx(every.params[name], abs=0.05 * width)
        refits = np.array([[s[name] for s in f.samples] for f in (subset, every)])
        assert np.median(np.abs(refits[0] - refits[1])) < 0.1 * width
        assert np.allclose(subset.ci[name], every.ci[name], atol=0.05 * width)
