"""Adaptive design: `advise --next` on planted laws (tables from elsewhere), and `study --adaptive` killed and resumed
on a tiny synthetic world with real runs."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from analysis import design, fit, noise, table
from harness import cli

TRUTH = {"E": 1.8, "A": 480.0, "alpha": 0.35, "B": 2000.0, "beta": 0.37}  # a Chinchilla-like law of the loss


def planted(n, t, seed, noise=0.004):
    """Losses of the planted law at (n, t) with log-normal noise."""
    rng = np.random.default_rng(seed)
    return fit.predict_joint(TRUTH, n, t) * np.exp(rng.normal(0, noise, len(n)))


def write_table(path, n, t, seed):
    n, t = np.asarray(n, float), np.asarray(t, float)
    pd.DataFrame({"n_params": n, "tokens": t, "flops": 6 * n * t, "test_loss": planted(n, t, seed)}).to_csv(
        path, index=False
    )
    return path


def grid_table(tmp_path, ns, ts, seed, name="table.csv"):
    n, t = (a.ravel() for a in np.meshgrid(ns, ts))
    return write_table(tmp_path / name, n, t, seed)


def spread_after(base: pd.DataFrame, runs: np.ndarray, seed: int, draws: int = 100) -> float:
    """sum ln(sampling width) of alpha and beta after adding points of the planted law at `runs` (rows N, T) to the
    table `base`: the 2.5-97.5 percentile range of the fitted exponents (fit.joint_many, the fit `srt-scale fit`
    makes) over `draws` noise draws of the whole table, i.e. the interval the design really gives."""
    n, t = np.r_[base.n_params, runs[:, 0]], np.r_[base.tokens, runs[:, 1]]
    ys = np.stack([planted(n, t, 1000 * seed + d) for d in range(draws)])
    theta, _ = fit.joint_many(np.tile(n, (draws, 1)), np.tile(t, (draws, 1)), ys, np.ones(ys.shape, bool), 1)
    exps = theta[:, [2, 4]]
    return float(np.log(np.percentile(exps, 97.5, axis=0) - np.percentile(exps, 2.5, axis=0)).sum())


def propose_json(path, capsys, *extra):
    assert cli.main(["advise", str(path), "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_proposed_runs_fit_the_budget_and_beat_random_runs_of_equal_cost(tmp_path, capsys):
    ns, ts = np.geomspace(1e7, 4e7, 3), np.geomspace(1e9, 1e10, 3)  # N spans 0.6 decades: alpha is loose
    designed, random = [], []
    for seed in range(5):
        path = grid_table(tmp_path, ns, ts, seed)
        spend = 0.3 * float((6 * np.outer(ns, ts)).sum())
        out = propose_json(path, capsys, "--next", "12", "--spend", str(spend), "--bootstrap", "100")
        runs = out["runs"]
        assert 1 <= len(runs) <= 12 and out["flops_spent"] <= spend
        for r in runs:  # a table from elsewhere: each run is its one point, priced by the table's C = 6 N T
            assert r["branches"] == [r["tokens"]]
            assert r["flops_spent"] == pytest.approx(6 * r["n_params"] * r["tokens"], rel=1e-6)
        for name, w in out["widths"].items():
            assert 0 < w["after"] < w["before"], name
        base = pd.read_csv(path)
        pool = design.table_pool(design.problem(table.load(path), "test", None, "exponents", None, n_boot=0))
        rng = np.random.default_rng(100 + seed)
        picked, left = [], out["flops_spent"]
        for i in rng.permutation(len(pool)):  # random candidates of the same pool until the same FLOPs are used
            if pool[i].flops_spent <= left:
                picked.append([pool[i].n_params, pool[i].tokens])
                left -= pool[i].flops_spent
        designed.append(spread_after(base, np.array([[r["n_params"], r["tokens"]] for r in runs]), seed))
        random.append(spread_after(base, np.array(picked), seed))
    designed, random = np.array(designed), np.array(random)
    # sum of the exponents' log widths: -4.55 designed vs -4.30 random over these 5 seeds (each width ~12% narrower),
    # refits from their own starts; seed 4's random runs happen to do better (-4.82 vs -4.35)
    assert designed.mean() < random.mean() - 0.15, (designed, random)
    assert np.sum(designed < random) >= 3, (designed, random)  # and better on most seeds


@pytest.mark.parametrize("narrow", ["n_params", "tokens"])
def test_an_unidentified_parameter_steers_the_proposal_to_the_axis_that_identifies_it(tmp_path, capsys, narrow):
    """Three close values of one axis (a factor 1.25): E and that axis' term can hardly be told apart (the fit
    flags E); the proposal adds new values on that axis, beyond the table's."""
    wide, tight = np.geomspace(1e7, 1e9, 5), np.array([1e7, 1.12e7, 1.25e7])
    ns, ts = (tight, wide * 100) if narrow == "n_params" else (wide, tight * 100)
    path = grid_table(tmp_path, ns, ts, seed=1)
    out = propose_json(path, capsys, "--next", "3", "--spend", str(float((6 * np.outer(ns, ts)).sum())))
    assert "E" in out["unidentified"] and "E" in out["flagged_in_criterion"]
    old = pd.read_csv(path)[narrow]
    values = np.array([r[narrow] for r in out["runs"]])
    outside = (values < old.min() / 1.5) | (values > old.max() * 1.5)
    assert outside.sum() >= 2, values


def test_the_design_noise_is_the_tables_noise_model_with_floors():
    rng = np.random.default_rng(0)
    runs = np.repeat(np.arange(150), 5)
    resid = rng.normal(0, 0.01, 150)[runs] + rng.normal(0, 0.02, len(runs))
    nz = design.noise(noise.estimate(resid, runs, np.zeros((len(runs), 0))))  # no fitted parameters
    assert nz.point == pytest.approx(0.02, rel=0.1) and nz.run == pytest.approx(0.01, rel=0.25)
    one_each = design.noise(noise.estimate(rng.normal(0, 1e-5, 50), np.arange(50), np.zeros((50, 0))))
    assert one_each.point == design.NOISE_FLOOR and one_each.run == design.NOISE_FLOOR  # below the floors


def test_next_needs_the_runs_and_a_spend(tmp_path, capsys):
    path = grid_table(tmp_path, np.geomspace(1e7, 1e9, 3), np.geomspace(1e9, 1e11, 3), seed=2)
    assert cli.main(["advise", str(path), "--next", "2"]) == 2
    assert "--spend" in capsys.readouterr().err
    (tmp_path / "fits.json").write_text("{}")
    assert cli.main(["advise", str(tmp_path / "fits.json"), "--next", "2", "--spend", "1e20"]) == 2
    assert "results table or a sweep directory" in capsys.readouterr().err


BASE = """data:
  synthetic: {n_users: 150, n_items: 80, mean_length: 12, max_length: 30}
features: {kind: id}
model: {context: 10, dropout: 0.0}
train: {batch_size: 4, tokens: 3000, schedule: wsd, warmup_tokens: 200, decay: 0.25, branches: [0.25, 0.5, 1.0],
        threads: 1}
eval: {points: [1.0]}
"""
GRID = """base: base.yaml
shape: {aspect: 8, head_dim: 8, ff_mult: 2, tolerance: 0.3}
axes:
  n_params: [1000, 4000, 12000]
  tokens: [2000, 8000]
  negatives: [full]
"""


def study(tmp_path, *extra):
    return [
        sys.executable,
        "-m",
        "harness.cli",
        "study",
        str(tmp_path / "grid.yaml"),
        "--adaptive",
        "--executor",
        "debug",
        "--out",
        str(tmp_path / "study"),
        "--spend",
        "5e9",
        "--rounds",
        "1",
        "--next",
        "2",
        "--design-bootstrap",
        "50",
        "--bootstrap",
        "50",
        "--report",
        str(tmp_path / "report"),
        *extra,
    ]


def test_adaptive_study_resumes_after_a_kill_with_nothing_lost_or_run_twice(tmp_path, shared_cache):
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "grid.yaml").write_text(GRID)
    env = {**os.environ, "SRT_SCALE_CACHE": str(shared_cache)}
    proposal = tmp_path / "study" / "round_01" / "design.json"
    proc = subprocess.Popen(
        study(tmp_path), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.time() + 300
        while not proposal.exists() and proc.poll() is None and time.time() < deadline:
            time.sleep(0.2)
        assert proposal.exists(), proc.stdout.read().decode() if proc.poll() is not None else "timed out"
        os.killpg(proc.pid, signal.SIGKILL)  # in round 1: its proposal written, its sweep started
    finally:
        proc.wait()
    decided = proposal.read_bytes()
    seed_runs = sorted((tmp_path / "study" / "round_00" / "runs").glob("*/result.json"))
    assert len(seed_runs) == 3
    stamps = {p: p.stat().st_mtime_ns for p in seed_runs}
    done = subprocess.run(study(tmp_path), env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "round 1: resuming its proposal" in done.stdout
    assert proposal.read_bytes() == decided  # the proposal was not made again
    assert {p: p.stat().st_mtime_ns for p in seed_runs} == stamps  # finished runs were not trained again
    summary = json.loads((tmp_path / "study" / "summary.json").read_text())
    rounds = sorted((tmp_path / "study").glob("round_*"))
    ids = [d.name for r in rounds for d in (r / "runs").iterdir()]
    assert len(ids) == len(set(ids))  # no run in two rounds
    planned = [len(json.loads((r / "plan.json").read_text())["runs"]) for r in rounds]
    combined = pd.read_parquet(tmp_path / "study" / "results.parquet")
    assert combined["run_id"].nunique() == sum(planned) == len(ids)
    assert summary["rounds_run"] == len(rounds) - 1 >= 1
    assert summary["flops_spent"] == pytest.approx(design.spent(combined))
    assert [h["round"] for h in summary["history"]] == list(range(len(summary["history"])))
    assert (tmp_path / "report" / "report.md").exists() and (tmp_path / "report" / "fits.json").exists()
    again = subprocess.run(study(tmp_path, "--rounds", "3"), env=env, capture_output=True, text=True)
    assert again.returncode == 2 and "other settings (rounds)" in again.stderr
