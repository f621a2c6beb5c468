"""Sweeps through submitit: debug and local executors here, the real Slurm cluster in test_slurm.py."""

import json
import pickle

import pandas as pd
import pytest

from analysis import laws
from analysis import table as results_table
from harness import cli
from harness.plan import grid, plan
from harness.sweep import results, sweep

BASE = """data:
  synthetic: {n_users: 150, n_items: 80, mean_length: 12, max_length: 30}
features: {kind: id}
model: {d_model: 16, n_heads: 1, d_ff: 32, n_layers: 1, context: 10, dropout: 0.1}
train: {batch_size: 16, tokens: 3000}
eval: {points: [0.5, 1.0]}
"""


def make_sweep(tmp_path, axes="  negatives: [8, full]\n", name="sweep"):
    (tmp_path / "base.yaml").write_text(BASE)
    path = tmp_path / "grid.yaml"
    path.write_text("base: base.yaml\naxes:\n" + axes)
    points = grid.load(path)
    s = sweep.Sweep(tmp_path / name)
    s.write_plan(plan.plan(points, threads=1), path)
    return s, points


def run(s, points, executor, **kw):
    return sweep.submit(s, points, executor, sweep.load_profile(None), log=lambda m: None, **kw)


def test_debug_sweep_runs_collects_and_never_reruns(tmp_path):
    s, points = make_sweep(tmp_path)
    assert set(run(s, points, "debug")) == {p.run_id for p in points}
    counts, failing = sweep.status(s)
    assert counts == {"done": 2} and failing == []
    table, problems = results.collect(s.runs_dir, s.states())
    assert problems == [] and len(table) == 4 and table["final"].sum() == 2
    assert set(table["negatives"]) == {"8", "full"} and (table["status"] == "done").all()
    assert {"features.kind", "train.tokens", "git_sha", "host"} <= set(table.columns)
    assert table["oracle_test_ndcg@5"].between(0, 1).all() and (table["oracle_test_ppl"] > 1).all()
    assert run(s, points, "debug") == {}  # a finished sweep submits nothing
    assert (s.root / "plan.json").exists() and (s.root / "grid.yaml").exists() and (s.root / "base.yaml").exists()


def test_local_executor_matches_debug(tmp_path):
    s_debug, points = make_sweep(tmp_path, name="debug")
    run(s_debug, points, "debug")
    s_local, _ = make_sweep(tmp_path, name="local")
    submitted = run(s_local, points, "local")
    assert len(submitted) == 2
    a, _ = results.collect(s_debug.runs_dir)
    b, _ = results.collect(s_local.runs_dir)
    metrics = [c for c in a.columns if c.startswith(("valid_", "test_"))]
    assert a[metrics].equals(b[metrics])


def test_collect_skips_half_written_runs(tmp_path):
    s, points = make_sweep(tmp_path, axes="  negatives: [8]\n")
    run(s, points, "debug")
    (s.runs_dir / "aaaaaaaaaaaa").mkdir()
    (s.runs_dir / "aaaaaaaaaaaa" / "config.yaml").write_text("model: {d_model: 8}\n")
    torn = s.runs_dir / "bbbbbbbbbbbb"
    torn.mkdir()
    (torn / "config.yaml").write_text("model: {d_model: 8}\n")
    (torn / "metrics.jsonl").write_text('{"run_id": "bbbbbbbbbbbb", "tok')
    table, problems = results.collect(s.runs_dir, s.states())
    assert len(table) == 2 and table["run_id"].nunique() == 1
    assert any("aaaaaaaaaaaa" in p and "no evaluation" in p for p in problems)
    assert any("bbbbbbbbbbbb" in p and "unreadable" in p for p in problems)
    parquet, csv = results.write_table(table, tmp_path / "table")
    assert parquet.exists() and csv.exists()


def test_failed_run_is_reported_and_retried_only_when_asked(tmp_path):
    s, points = make_sweep(tmp_path, axes="  loss.sampler: [popularity]\n")
    # sabotage the run: a checkpoint that cannot be loaded makes training fail inside the job
    run_dir = s.runs_dir / points[0].run_id
    run_dir.mkdir(parents=True)
    (run_dir / "checkpoint.pt").write_text("not a checkpoint")
    run(s, points, "debug")
    counts, failing = sweep.status(s)
    assert counts == {"failed": 1}
    assert failing[0][0] == points[0].run_id and failing[0][2] != "(no log)"
    assert run(s, points, "debug") == {}  # not without --retry-failed
    (run_dir / "checkpoint.pt").unlink()
    assert set(run(s, points, "debug", retry_failed=True)) == {points[0].run_id}
    assert sweep.status(s)[0] == {"done": 1}
    assert json.loads((run_dir / "result.json").read_text())["status"] == "done"


def test_unknown_profile_key(tmp_path):
    (tmp_path / "p.yaml").write_text("partition: debug\ncpus: 2\n")
    with pytest.raises(Exception, match="unknown profile key 'cpus'"):
        sweep.load_profile(tmp_path / "p.yaml")


def test_progress_counts_flops_and_an_eta_corrected_by_the_finished_runs(tmp_path):
    """FLOPs done count what runs trained (branches included, from the progress file's `spent`); the ETA is the
    plan's estimate scaled by measured / estimated training seconds of the finished runs."""
    from harness.sweep import progress

    s, points = make_sweep(tmp_path)
    run(s, points[:1], "debug")
    plan_runs = {r["run_id"]: r for r in s.plan["runs"]}
    first, second = (plan_runs[p.run_id] for p in points)
    wall = json.loads((s.runs_dir / first["run_id"] / "result.json").read_text())["wall_s"]
    ratio = wall / (first["est_s"] - first["est_setup_s"])
    snap = progress.snapshot(s.plan, s.runs_dir, s.states())
    assert snap["counts"] == {"done": 1, "not_submitted": 1} and snap["total"] == 2
    assert snap["time_ratio"] == pytest.approx(ratio)
    assert snap["flops_done"] == pytest.approx(first["flops_spent"])
    assert snap["eta_s"] == pytest.approx(second["est_setup_s"] + (second["est_s"] - second["est_setup_s"]) * ratio)
    # a run halfway through its planned targets (what a training run reports every few seconds)
    (s.runs_dir / second["run_id"]).mkdir(parents=True)
    (s.runs_dir / second["run_id"] / progress.PROGRESS_FILE).write_text(
        json.dumps({"tokens": second["tokens"] // 3, "spent": second["targets_spent"] // 2})
    )
    snap = progress.snapshot(s.plan, s.runs_dir, s.states())
    assert snap["flops_done"] == pytest.approx(first["flops_spent"] + second["flops_spent"] / 2, rel=1e-3)
    assert snap["eta_s"] == pytest.approx((second["est_s"] - second["est_setup_s"]) / 2 * ratio, rel=1e-3)
    assert progress.describe(snap).startswith("1/2 done, 0 running, 1 waiting, 0 failed | ")
    assert f"plan x {ratio:.2f}, as the finished runs took" in progress.describe(snap)
    lines = []
    view = progress.View(lines.append, live=False)
    view.update(snap)
    view.update(snap)  # the same counts: no second line
    assert len(lines) == 1 and "ETA" in lines[0]


def test_status_watch_reattaches_and_returns_when_nothing_runs(tmp_path):
    import subprocess
    import sys

    s, points = make_sweep(tmp_path)
    run(s, points, "debug")
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "status", str(s.root), "--watch", "--poll", "0.1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "2/2 done" in proc.stdout and "(100%)" in proc.stdout and "2 runs: 2 done" in proc.stdout


def test_local_runs_share_job_processes_with_the_same_metrics(tmp_path):
    s_debug, points = make_sweep(tmp_path, axes="  negatives: [4, 8, 16, full]\n", name="debug")
    run(s_debug, points, "debug")
    s_local, _ = make_sweep(tmp_path, axes="  negatives: [4, 8, 16, full]\n", name="local")
    submitted = sweep.submit(s_local, points, "local", {**sweep.load_profile(None), "max_jobs": 2}, log=lambda m: None)
    assert len(submitted) == 4 and len(set(submitted.values())) == 2  # 4 runs in 2 job processes
    assert sweep.status(s_local)[0] == {"done": 4}
    a, _ = results.collect(s_debug.runs_dir)
    b, _ = results.collect(s_local.runs_dir)
    metrics = [c for c in a.columns if c.startswith(("valid_", "test_"))]
    assert a[metrics].equals(b[metrics])


def test_groups_balance_estimated_time():
    est = [10, 1, 7, 3, 3, 2]
    out = plan.groups(list(range(6)), est, 2)
    assert sorted(i for g in out for i in g) == list(range(6))
    loads = [sum(est[i] for i in g) for g in out]
    assert max(loads) - min(loads) <= 2 and all(est[g[0]] == max(est[i] for i in g) for g in out)


def test_collect_labels_an_isoflop_design_with_each_runs_budget(tmp_path):
    """`collect` writes the plan's budget per run, so approach 2 groups an IsoFLOP design by its budgets."""
    (tmp_path / "base.yaml").write_text(
        BASE.replace("model: {d_model: 16, n_heads: 1, d_ff: 32, n_layers: 1, ", "model: {")
    )
    path = tmp_path / "grid.yaml"
    path.write_text(
        "base: base.yaml\nshape: {aspect: 8, head_dim: 8, ff_mult: 2, tolerance: 0.5}\n"
        "isoflop:\n  flops: [2.0e+8, 6.0e+8]\n"
        "  n_params: {count: 3, decades: 0.7, centre: {n_params: 1.5e+4, flops: 2.0e+8, exponent: 0.5}}\n"
        "axes: {negatives: [full]}\n"
    )
    points = grid.load(path)
    s = sweep.Sweep(tmp_path / "iso")
    s.write_plan(plan.plan(points, threads=1), path)
    run(s, points, "debug")
    assert cli.main(["collect", str(s.root)]) == 0
    table = pd.read_parquet(s.root / "results.parquet")
    labels = table.groupby("run_id")["budget"].unique()
    assert all(len(v) == 1 for v in labels) and sorted(set(table["budget"])) == [2.0e8, 6.0e8]
    final = table[table["final"]]
    assert (abs(final["flops"] / final["budget"] - 1) < 0.02).all()
    iso = laws.fit_table(results_table.load(s.root), n_boot=0)["metrics"]["ppl"]["full"]["isoflop"]
    assert len(iso["curves"]) == 2 and all(len(c["log_n"]) == 3 for c in iso["curves"])


def test_a_run_after_another_in_one_job_process_gives_the_rows_it_gives_alone(tmp_path):
    """Bit-identical reruns: a WSD run with branches trained second in a job process that first trained another
    run (one local job for both: runs_per_job 1 -> 2) records exactly the rows it records trained alone in its own
    job process with a checkpoint every second (timed checkpoints inside the trunk and the branches)."""
    (tmp_path / "base.yaml").write_text(BASE)
    common = (
        "base: base.yaml\nset: {train.tokens: 120000, train.schedule: wsd, train.warmup_tokens: 2000, "
        "train.branches: [0.25, 0.5, 1.0], eval.points: [1.0]"
    )
    (tmp_path / "pair.yaml").write_text(common + "}\naxes:\n  negatives: [8, full]\n")
    (tmp_path / "alone.yaml").write_text(common + ", train.checkpoint_every_s: 1}\naxes:\n  negatives: [8, full]\n")
    (tmp_path / "pair_profile.yaml").write_text("runs_per_job: 2\n")
    (tmp_path / "alone_profile.yaml").write_text("runs_per_job: 1\n")
    rows, order = {}, {}
    for name in ("pair", "alone"):
        points = grid.load(tmp_path / f"{name}.yaml")
        s = sweep.Sweep(tmp_path / name)
        s.write_plan(plan.plan(points, threads=1), tmp_path / f"{name}.yaml")
        submitted = sweep.submit(
            s, points, "local", sweep.load_profile(tmp_path / f"{name}_profile.yaml"), log=lambda m: None
        )
        assert len(set(submitted.values())) == (1 if name == "pair" else 2)  # job processes
        results = [pickle.loads((s.folder / f"{job}_0_result.pkl").read_bytes()) for job in set(submitted.values())]
        assert all(status == "success" for status, _ in results)
        order[name] = [line.split(":")[0] for _, outcomes in results for line in outcomes.splitlines()]
        rows[name] = {
            p.run_id: [json.loads(line) for line in (s.runs_dir / p.run_id / "metrics.jsonl").read_text().splitlines()]
            for p in points
        }
    second = order["pair"][-1]  # trained after the other run, in the same process
    assert len(rows["pair"][second]) == len(rows["alone"][second]) == 3
    for a, b in zip(rows["pair"][second], rows["alone"][second]):
        metrics = {k: v for k, v in a.items() if k.startswith(("valid_", "test_", "train_loss"))}
        assert metrics and metrics == {k: b[k] for k in metrics}, a["tokens"]


def test_no_calibrate_times_nothing_and_takes_the_eta_from_the_first_finished_run(tmp_path, monkeypatch, capsys):
    from harness.sweep import progress

    monkeypatch.setenv("SRT_SCALE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "grid.yaml").write_text("base: base.yaml\naxes:\n  negatives: [8, full]\n")
    assert cli.main(["plan", str(tmp_path / "grid.yaml"), "--no-calibrate"]) == 0
    out = capsys.readouterr().out
    assert "not timed (no calibration): the sweep's ETA comes from its first finished runs" in out
    assert not (tmp_path / "cache" / "throughput.json").exists()  # no step was timed here
    points = grid.load(tmp_path / "grid.yaml")
    s = sweep.Sweep(tmp_path / "untimed")
    s.write_plan(plan.plan(points, 1, "flops"), tmp_path / "grid.yaml")
    snap = progress.snapshot(s.plan, s.runs_dir, s.states())
    assert progress.describe(snap).endswith("| ETA after the first finished run")
    run(s, points[:1], "debug")
    first, second = (next(r for r in s.plan["runs"] if r["run_id"] == p.run_id) for p in points)
    wall = json.loads((s.runs_dir / first["run_id"] / "result.json").read_text())["wall_s"]
    snap = progress.snapshot(s.plan, s.runs_dir, s.states())  # seconds per FLOP of the finished run, for the rest
    assert snap["eta_s"] == pytest.approx(wall * second["flops_spent"] / first["flops_spent"], rel=1e-6)
    assert "ETA" in progress.describe(snap) and "first finished" not in progress.describe(snap)


def test_plan_show_prints_a_runs_resolved_config_that_train_reads_back_and_its_profile(tmp_path, capsys):
    import yaml

    from harness.core import config

    make_sweep(tmp_path, axes="  negatives: [8, full]\n  train.lr: [0.001, 0.003]\n")
    points = grid.load(tmp_path / "grid.yaml")
    cli.main(["plan", str(tmp_path / "grid.yaml"), "--show", points[2].run_id])
    shown = capsys.readouterr().out
    assert shown.startswith(f"# run {points[2].run_id} (index 2 of 4): ")
    tree = yaml.safe_load(shown)
    assert tree.pop("profile") == sweep.load_profile(None)
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(tree))
    assert config.load(tmp_path / "run.yaml") == points[2].cfg
    cli.main(["plan", str(tmp_path / "grid.yaml"), "--show", "2"])
    assert capsys.readouterr().out == shown
    assert cli.main(["plan", str(tmp_path / "grid.yaml"), "--show", "9"]) == 2
    assert "--show 9: no run of this grid" in capsys.readouterr().err
