"""Real failures: a loss that explodes, job processes killed with SIGKILL, a checkpoint whose pickle would run
code. Each through the real CLI or the real local executor."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from test_sweep import BASE, run

from harness.core import config
from harness.model.evaluate import metrics_from_ranks
from harness.plan import grid
from harness.run import identity
from harness.sweep import results, sweep


def cli(*args, cache, check_rc=None):
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env={**os.environ, "SRT_SCALE_CACHE": str(cache)},
        timeout=600,
    )
    if check_rc is not None:
        assert proc.returncode == check_rc, proc.stdout + proc.stderr
    return proc


def test_overflowing_perplexity_is_infinite_not_a_crash():
    m = metrics_from_ranks(torch.tensor([1, 3]), torch.tensor([1e4, 2e4]))
    assert m["ppl"] == math.inf and m["ndcg@5"] == pytest.approx((1 + 0.5) / 2)


def test_exploding_run_ends_diverged_and_a_sweep_keeps_it(tmp_path, shared_cache):
    (tmp_path / "base.yaml").write_text(BASE)
    grid = tmp_path / "grid.yaml"
    grid.write_text(
        "base: base.yaml\nset: {train.lr: 1000.0, train.grad_clip: 0.0, train.warmup: 0.0}\n"
        "axes:\n  negatives: [full]\n  eval.points: [[0.1, 0.5, 1.0], [1.0]]\n"
    )
    out = tmp_path / "sweep"
    proc = cli("sweep", grid, "--executor", "debug", "--out", out, cache=shared_cache, check_rc=0)
    assert "2 diverged" in proc.stdout
    cli("collect", out, cache=shared_cache, check_rc=0)
    table = pd.read_parquet(out / "results.parquet")
    finals = table[table["final"]]
    assert len(finals) == 2 and (finals["status"] == "diverged").all()
    assert (finals["valid_ppl"] == math.inf).all() and (finals["test_ppl"] == math.inf).all()
    assert finals["test_ndcg@5"].isna().all()
    assert (finals["diverged_tokens"] < finals["train.tokens"]).all() and (finals["diverged_step"] >= 1).all()
    reasons = set(finals["diverged_reason"])
    assert any("non-finite valid_ppl" in r for r in reasons) or any("loss" in r for r in reasons)
    proc = cli("sweep", grid, "--executor", "debug", "--out", out, cache=shared_cache, check_rc=0)
    assert "nothing to submit" in proc.stdout  # diverged runs are kept, not retried without --retry-failed


def _rows(s):
    table, _ = results.collect(s.runs_dir, s.states())
    return table.sort_values(["run_id", "tokens"]).reset_index(drop=True)


def test_sigkilled_local_sweep_resumes_on_the_next_plain_sweep(tmp_path, shared_cache):
    axes = "  negatives: [8, full]\n"
    settings = "set: {train.tokens: 120000, train.checkpoint_every_s: 1, eval.points: [0.25, 0.5, 0.75, 1.0]}\n"
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "grid.yaml").write_text("base: base.yaml\n" + settings + "axes:\n" + axes)
    reference, points = make_sweep_from(tmp_path, "reference")
    run(reference, points, "debug")
    killed, _ = make_sweep_from(tmp_path, "killed")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "sweep",
            str(tmp_path / "grid.yaml"),
            "--executor",
            "local",
            "--max-jobs",
            "2",
            "--out",
            str(killed.root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "SRT_SCALE_CACHE": str(shared_cache)},
    )
    try:
        deadline = time.time() + 300
        while time.time() < deadline:  # every run has a checkpoint and none has finished
            if all((killed.runs_dir / p.run_id / "checkpoint.pt").exists() for p in points):
                break
            time.sleep(0.2)
        jobs = killed.jobs()
        assert len(jobs) == 2 and not any((killed.runs_dir / p.run_id / "result.json").exists() for p in points)
        for job in jobs.values():
            _kill_job(job["job_id"])
        proc.kill()
    finally:
        proc.wait()
    time.sleep(0.5)
    counts, failing = sweep.status(killed)
    assert counts == {"interrupted": 2} and {f[1] for f in failing} == {"interrupted"}
    assert set(run(killed, points, "local")) == {p.run_id for p in points}  # no --retry-failed needed
    assert sweep.status(killed)[0] == {"done": 2}
    logs = [(killed.runs_dir / p.run_id / "train.log").read_text() for p in points]
    assert all("resume at" in log for log in logs), "\n---\n".join(logs)  # the logs say how each run went
    a, b = _rows(reference), _rows(killed)
    assert list(zip(a["run_id"], a["tokens"])) == list(zip(b["run_id"], b["tokens"]))  # none lost or duplicated
    metrics = [c for c in a.columns if c.startswith(("valid_", "test_"))]
    for col in metrics:
        assert b[col].to_numpy() == pytest.approx(a[col].to_numpy(), rel=1e-6, abs=1e-9, nan_ok=True), col


def make_sweep_from(tmp_path, name):
    from harness.plan import grid, plan

    points = grid.load(tmp_path / "grid.yaml")
    s = sweep.Sweep(tmp_path / name)
    s.write_plan(plan.plan(points, threads=1), tmp_path / "grid.yaml")
    return s, points


class _RunsCode:
    """Unpickling this creates a file: what a crafted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_whose_pickle_runs_code_is_refused(tmp_path, shared_cache):
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(BASE)
    cfg = config.load(cfg_path)
    run_dir = tmp_path / "runs" / identity.run_id(cfg)
    marker = tmp_path / "pwned"
    # resume: a run directory whose checkpoint was replaced
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(BASE)
    torch.save({"model": _RunsCode(marker), "state": {}}, run_dir / "checkpoint.pt")
    proc = cli("train", cfg_path, "--out", tmp_path / "runs", "--quiet", cache=shared_cache, check_rc=2)
    error = proc.stderr.strip()
    assert len(error.splitlines()) == 1 and "checkpoint.pt: refused" in error and "Traceback" not in proc.stderr
    assert not marker.exists()
    assert json.loads((run_dir / "result.json").read_text())["status"] == "failed"
    # --init-from: someone else's finished run directory on shared storage, its checkpoint replaced
    result = json.loads((run_dir / "result.json").read_text())
    (run_dir / "result.json").write_text(json.dumps({**result, "status": "done"}))
    proc = cli(
        "train", cfg_path, "--out", tmp_path / "fine", "--quiet", "--init-from", run_dir, cache=shared_cache, check_rc=2
    )
    assert len(proc.stderr.strip().splitlines()) == 1 and "checkpoint.pt: refused" in proc.stderr
    assert not marker.exists()


def test_a_run_killed_max_retries_times_ends_failed_with_the_reason_and_retry_failed_runs_it(tmp_path, shared_cache):
    """A local sweep whose job is SIGKILLed each time its run starts, the job id's process alone (submitit's
    controller; its trainer dies with it, sweep.die_with_controller): with sweep.max_retries = 2 the third plain
    sweep marks the run failed, naming the kills and the last line it logged, and submits nothing;
    `--retry-failed` then trains it to the end, the only trainer that ever finished it."""
    (tmp_path / "base.yaml").write_text(BASE)
    grid_path = tmp_path / "grid.yaml"
    grid_path.write_text(
        "base: base.yaml\nset: {train.tokens: 200000, sweep.max_retries: 2}\naxes:\n  negatives: [full]\n"
    )
    out = tmp_path / "sweep"
    s = sweep.Sweep(out)
    (run_id,) = [p.run_id for p in grid.load(grid_path)]
    for attempt in range(2):
        proc = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "sweep", str(grid_path), "--executor", "local", "--out", str(out)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "SRT_SCALE_CACHE": str(shared_cache)},
        )
        try:
            deadline = time.time() + 300
            while _starts(s) <= attempt or s.kills(run_id) <= attempt:  # killed once its job is on record and it trains
                assert time.time() < deadline and proc.poll() is None
                time.sleep(0.1)
            for job in s.jobs().values():
                os.kill(int(job["job_id"]), signal.SIGKILL)
            proc.kill()
        finally:
            proc.wait()
        time.sleep(0.5)
        assert sweep.status(s)[0] == {"interrupted": 1}
    proc = cli("sweep", grid_path, "--executor", "local", "--out", out, cache=shared_cache, check_rc=0)
    assert f"{run_id}: failed: killed 2 times (sweep.max_retries): last seen:" in proc.stdout
    assert "nothing to submit" in proc.stdout
    result = json.loads((out / "runs" / run_id / "result.json").read_text())
    assert result["status"] == "failed" and result["error"].startswith("killed 2 times")
    assert sweep.status(s)[0] == {"failed": 1}
    cli("sweep", grid_path, "--executor", "local", "--out", out, "--retry-failed", cache=shared_cache, check_rc=0)
    assert sweep.status(s)[0] == {"done": 1}
    assert s.kills(run_id) == 1  # the count started again at the retry: one submission since, which finished
    log = (out / "runs" / run_id / "train.log").read_text()
    assert log.count(" start: ") == 3 and log.count(" done: ") == 1  # no trainer outlived its controller


def _kill_job(pid: str) -> None:
    """SIGKILL a local job as the OOM killer would its trainer: the task processes that submitit's controller
    (the job id's process) started, then the controller. Killing only the controller orphans the trainer, which
    trains on beside the next submission of its run."""
    children = [
        int(stat.split()[0])
        for path in Path("/proc").glob("[0-9]*/stat")
        for stat in [_read(path)]
        if stat and stat.rsplit(")", 1)[1].split()[1] == pid
    ]
    for child in [*children, int(pid)]:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:  # a process that ended while /proc was listed
        return ""


def _starts(s) -> int:
    """How many times a run of sweep `s` has started training (its train.log's start and resume lines)."""
    return sum(
        1
        for log in s.runs_dir.glob("*/train.log")
        for line in log.read_text().splitlines()
        if " start: " in line or " resume at " in line
    )


def test_a_torn_result_json_is_named_moved_aside_and_the_run_resubmitted(tmp_path, shared_cache):
    """A result.json that does not parse (a torn copy on shared storage) does not leave its run stuck: the next
    sweep names the file, moves it to result.json.torn and trains the run again, which ends done."""
    (tmp_path / "base.yaml").write_text(BASE)
    grid_path = tmp_path / "grid.yaml"
    grid_path.write_text("base: base.yaml\naxes:\n  negatives: [full]\n")
    out = tmp_path / "sweep"
    cli("sweep", grid_path, "--executor", "debug", "--out", out, cache=shared_cache, check_rc=0)
    (path,) = (out / "runs").glob("*/result.json")
    good = path.read_text()
    path.write_text(good[: len(good) // 2])
    proc = cli("sweep", grid_path, "--executor", "debug", "--out", out, cache=shared_cache, check_rc=0)
    assert f"{path}: does not parse (a torn copy?): moved to result.json.torn" in proc.stdout
    assert (path.parent / "result.json.torn").read_text() == good[: len(good) // 2]
    assert json.loads(path.read_text())["status"] == "done" and sweep.status(sweep.Sweep(out))[0] == {"done": 1}
