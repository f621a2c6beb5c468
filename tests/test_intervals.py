"""Intervals that hold on our own designs: the noise model (point and run variance), the parametric bootstrap with a
run effect, lack of fit, replicate seeds, `compare`, and tables that cannot mislead."""

import json
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import compare, fit, lack_of_fit, laws, noise, table
from harness.core.errors import UserError
from harness.plan import grid

TRUE = dict(E=4.0, A=17.5, alpha=0.5, B=15.8, beta=0.4)
T6 = np.geomspace(2e4, 6.4e5, 6)


def planted(ns, seeds=1, run_sd=0.003, point_sd=0.002, seed=0, law=TRUE, coupling=0.0, prefix="r"):
    """A table shaped like ours: one run per (N, seed), its 6 cooldown-branch ends as fitting points, log-normal
    run effect and point noise; `coupling` makes the T term's scale grow with N (an N x T interaction)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i, n in enumerate(ns):
        for s in range(seeds):
            effect = rng.normal(0, run_sd)
            b = law["B"] * (n / 1e4) ** coupling
            for t in T6:
                y = law["E"] + law["A"] * n ** -law["alpha"] + b * t ** -law["beta"]
                ln_ppl = y * np.exp(effect + rng.normal(0, point_sd))
                rows.append(
                    {
                        "run_id": f"{prefix}{i}-{s}",
                        "status": "done",
                        "final": t == T6[-1],
                        "annealed": True,
                        "n_params": n,
                        "tokens": t,
                        "flops": 10 * n * t,
                        "negatives": "full",
                        "train.seed": s,
                        "model.d_model": i,
                        "test_ppl": np.exp(ln_ppl),
                    }
                )
    return pd.DataFrame(rows)


def joint(s, n_boot=100, intervals="auto", seed=0):
    return laws.joint_law(s, table.to_target("ppl", s["test_ppl"]), n_boot, seed, intervals)


def test_a_strong_run_effect_is_measured_and_widens_the_intervals_beyond_the_point_method():
    s = planted(np.geomspace(2e3, 1e5, 20), seeds=2, run_sd=0.01, point_sd=0.002)
    runs_fit, points_fit = joint(s, intervals="runs"), joint(s, intervals="points")
    nz = runs_fit.intervals["noise"]
    assert nz["runs"] == 40 and nz["replicate_runs"] == 40 and nz["run_dof"] > 20
    assert nz["run"] == pytest.approx(0.01, rel=0.3)  # planted on ln(ppl), the fitted log target's own scale
    assert nz["point"] == pytest.approx(0.002, rel=0.3)
    assert nz["replicate_run"] == pytest.approx(nz["run"], rel=0.5)
    width = {m: f.ci["alpha"][1] - f.ci["alpha"][0] for m, f in (("runs", runs_fit), ("points", points_fit))}
    assert width["runs"] > 1.5 * width["points"]
    assert runs_fit.intervals["method"] == "runs" and points_fit.intervals["method"] == "points"


def test_the_method_of_moments_is_unbiased_in_expectation_under_the_linear_model():
    rng = np.random.default_rng(3)
    runs = np.repeat(np.arange(8), 6)
    jac = np.column_stack([np.ones(48), np.log(np.repeat(np.geomspace(1e3, 1e5, 8), 6)), np.tile(np.log(T6), 8)])
    m_mat = np.eye(48) - jac @ np.linalg.pinv(jac)  # what the law's fit leaves of a disturbance
    est = []
    for _ in range(400):
        e = rng.normal(0, 0.01, 8)[runs] + rng.normal(0, 0.004, 48)
        est.append(noise.estimate(m_mat @ e, runs, jac))
    assert np.mean([n.run**2 for n in est]) == pytest.approx(0.01**2, rel=0.15)
    assert np.mean([n.point**2 for n in est]) == pytest.approx(0.004**2, rel=0.05)
    assert est[0].run_dof == pytest.approx(8 - 2, abs=1.0)  # 8 run means, 2 between-run parameters


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 6), min_size=2, max_size=12),
    n_cols=st.integers(0, 4),
    word=st.lists(st.sampled_from(["ident", "means", "same", "resid"]), min_size=1, max_size=5),
    seed=st.integers(0, 2**16),
)
def test_the_estimates_structured_matrices_give_the_dense_traces(sizes, n_cols, word, seed):
    """noise._Design's matrices (I, run-mean projector P, same-run indicator Z Z', residual-maker M) never
    materialise n x n arrays: the trace of any product of them equals the dense matrices' trace."""
    rng = np.random.default_rng(seed)
    runs = np.repeat(np.arange(len(sizes)), sizes)
    jac = rng.normal(size=(len(runs), n_cols))
    if seed % 3 == 0 and n_cols:
        jac[:, 0] = rng.normal(size=len(sizes))[runs]  # a column that lives between runs, like N's terms
    same = (runs[:, None] == runs[None, :]).astype(float)
    dense = {
        "ident": np.eye(len(runs)),
        "means": same / same.sum(axis=1, keepdims=True),
        "same": same,
        "resid": np.eye(len(runs)) - jac @ np.linalg.pinv(jac),
    }
    design = noise._Design.of(runs, jac)
    op, mat = getattr(design, word[0]), dense[word[0]]
    for name in word[1:]:
        op, mat = op @ getattr(design, name), mat @ dense[name]
    assert op.trace() == pytest.approx(np.trace(mat), abs=1e-8 * max(1.0, np.abs(mat).sum()))


def test_three_runs_for_three_between_run_parameters_leave_the_run_noise_unidentified_and_flagged():
    f = joint(planted([2e3, 2.5e4, 1e5]), n_boot=50)
    assert not f.intervals["noise"]["identified"]
    for p in ("E", "A", "alpha"):
        assert "run-to-run noise is not identified" in f.unidentified[p]


def test_one_point_per_run_and_a_table_without_run_ids_use_the_point_method_and_say_so(tmp_path):
    s = planted([2e3, 8e3, 2.5e4, 5e4, 1e5])
    s["run_id"] = [f"x{i}" for i in range(len(s))]
    assert joint(s, n_boot=20).intervals["method"] == "points"
    path = tmp_path / "foreign.csv"
    s.drop(columns=["run_id", "status", "final", "annealed", "train.seed", "model.d_model"]).to_csv(path, index=False)
    fits = laws.fit_table(table.load(path), n_boot=20)
    intervals = fits["metrics"]["ppl"]["full"]["joint"]["intervals"]
    assert intervals["method"] == "points" and "no run_id" in intervals["why"]


def test_replicates_run_the_pure_error_test_which_rejects_a_wrong_law():
    s = planted(np.geomspace(2e3, 1e5, 5), seeds=2, coupling=0.4, point_sd=0.001, run_sd=0.001)
    f = joint(s, n_boot=200)
    assert "pure_error" in f.lack_of_fit["tests"] and f.lack_of_fit["rejects"]
    assert f.lack_of_fit["tests"]["pure_error"]["p"] < 0.02


def test_the_lack_of_fit_statistics_vanish_on_an_exact_law_and_need_replicated_cells():
    n, t = (a.ravel() for a in np.meshgrid(np.geomspace(2e3, 1e5, 5), T6))
    exact = np.zeros(len(n))
    wrong = np.log(n) * np.log(t) - np.mean(np.log(n) * np.log(t))
    assert (
        lack_of_fit.trend_f(exact + 1e-9 * np.sin(np.arange(len(n))), [n, t])[0][0]
        < lack_of_fit.trend_f(wrong + 1e-9 * np.sin(np.arange(len(n))), [n, t])[0][0]
    )
    assert lack_of_fit.pure_error_f(wrong, np.arange(len(n)), 5) is None  # every cell one point


def test_compare_accepts_a_study_against_itself_and_rejects_two_laws(tmp_path):
    a = planted(np.geomspace(2e3, 1e5, 5), seeds=1, seed=1)
    b = planted(np.geomspace(2e3, 1e5, 5), seeds=1, seed=2, law={**TRUE, "alpha": 0.25, "A": 3.0}, prefix="b")
    pa, pb = tmp_path / "a.parquet", tmp_path / "b.parquet"
    a.to_parquet(pa)
    b.to_parquet(pb)
    same = compare.compare(str(pa), str(pa), n_boot=60)
    test = same["laws"]["ppl|full"]["shared_law"]
    assert test["statistic"] == pytest.approx(0.0, abs=1e-12) and not test["rejects"]
    other = compare.compare(str(pa), str(pb), n_boot=60)
    assert other["laws"]["ppl|full"]["shared_law"]["rejects"]
    assert "two laws" in other["verdict"]
    out = tmp_path / "cmp"
    figures = compare.write(other, out)
    assert figures and figures[0].exists() and json.loads((out / "compare.json").read_text())["laws"]


def test_compare_cli_prints_the_verdict_and_fits_json_inputs_skip_the_test(tmp_path):
    a = planted(np.geomspace(2e3, 1e5, 5), seeds=1, seed=1)
    pa = tmp_path / "a.parquet"
    a.to_parquet(pa)
    fits = laws.fit_table(table.load(pa), n_boot=30)
    (tmp_path / "fits.json").write_text(json.dumps(fits))
    r = subprocess.run(
        [sys.executable, "-m", "harness.cli", "compare", str(pa), str(tmp_path / "fits.json"), "--bootstrap", "30"],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "verdict:" in r.stdout and "needs tables" in r.stdout


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda t: pd.concat([t, t]), r"30 duplicate row\(s\), the same \(run_id, tokens\).*line 32 repeats line 2"),
        (
            lambda t: t.assign(n_params=t["n_params"].where(t.index != 3, 0)),
            r"column n_params, line 5: '0.0' is not a "
            r"number > 0",
        ),
        (lambda t: t.iloc[:0], "the table has no rows"),
    ],
)
def test_a_table_that_could_mislead_is_a_one_line_error_with_exit_2(tmp_path, edit, message):
    path = tmp_path / "t.csv"
    edit(planted(np.geomspace(2e3, 1e5, 5))).to_csv(path, index=False)
    r = subprocess.run(
        [sys.executable, "-m", "harness.cli", "fit", str(path), "--bootstrap", "0"], capture_output=True, text=True
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert re.search(message, r.stderr), r.stderr


def test_duplicates_keep_first_fits_once_and_counts_them(tmp_path):
    t = planted(np.geomspace(2e3, 1e5, 5))
    path = tmp_path / "t.csv"
    pd.concat([t, t.iloc[:4]]).to_csv(path, index=False)
    loaded = table.load(path, table.Spec(duplicates="keep-first"))
    assert len(loaded) == len(t) and loaded.attrs["table"]["duplicates_dropped"] == 4
    foreign = t.drop(columns=["run_id", "status", "final", "annealed"])
    pd.concat([foreign, foreign]).to_csv(path, index=False)
    with pytest.raises(UserError, match="the same values in every column"):
        table.load(path)


def test_grid_replicates_copy_the_chosen_cells_with_other_seeds_and_refuse_mistakes(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "data:\n  synthetic: {n_users: 200, n_items: 120, mean_length: 15, "
        "max_length: 40}\nfeatures: {kind: id}\nmodel: {context: 20}\n"
        "train: {batch_size: 32, tokens: 6000}\n"
    )
    path = tmp_path / "grid.yaml"
    head = "base: base.yaml\naxes:\n  n_params: [1.28e+4, 1.0e+5, 3.0e+5]\n  negatives: [16, full]\nseeds: [0]\n"
    path.write_text(head + "replicates: {seeds: [1, 2]}\n")
    points = grid.load(path)
    seeds = {(p.shape.n_params, p.cfg["loss.negatives"]): [] for p in points}
    for p in points:
        seeds[(p.shape.n_params, p.cfg["loss.negatives"])].append(p.cfg["train.seed"])
    assert len(points) == 6 + 2 * 2 * 2  # the smallest and largest N, both K, two more seeds each
    assert sorted(len(v) for v in seeds.values()) == [1, 1, 3, 3, 3, 3]
    for bad, message in (
        ("replicates: {seeds: [0]}\n", "already a seed"),
        ("replicates: {seeds: [1], n_params: [5.0e+4]}\n", "not a value of the n_params axis"),
        ("replicates: [1]\n", "needs 'seeds'"),
    ):
        path.write_text(head + bad)
        with pytest.raises(UserError, match=message):
            grid.load(path)


def test_fit_help_says_what_the_intervals_are():
    r = subprocess.run([sys.executable, "-m", "harness.cli", "fit", "--help"], capture_output=True, text=True)
    text = " ".join(r.stdout.split())
    assert "parametric bootstrap with a random effect per run" in text and "bootstrap resamples over runs" not in text


def test_simulated_variances_carry_their_degrees_of_freedom():
    s = planted(np.geomspace(2e3, 1e5, 40))
    y = table.to_target("ppl", s["test_ppl"])
    xs = [s["n_params"].to_numpy(float), s["tokens"].to_numpy(float)]
    f = fit.joint(*xs, y)
    pred = np.log(fit.predict_joint(f.params, *xs))
    wide = []
    for dof in (2.0, 1e9):
        nz = noise.Noise(point=0.002, run=0.003, point_dof=1e9, run_dof=dof, runs=40, points=240)
        logy = fit.simulate(f, xs, s["run_id"].to_numpy(), nz, 2000, np.random.default_rng(0)) - pred
        means = pd.DataFrame(logy.T).groupby(s["run_id"].to_numpy()).mean().to_numpy()  # (runs, tables)
        wide.append(np.mean(np.var(means, axis=0, ddof=1) > 3 * (0.003**2 + 0.002**2 / 6)))
    # a run-mean variance drawn as v * 2 / chi2(2) exceeds 3 v with probability 1 - exp(-1/3) = 0.28; fixed, never
    assert wide[0] > 0.15 and wide[1] < 0.01
