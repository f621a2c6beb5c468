"""Data-parallel runs: `srt-scale train --nproc 2` (two gloo processes on loopback) against one process, and a
2-task local submitit job; the 2-task Slurm job that is preempted and resumes is in test_slurm.py."""

import json
import os
import subprocess
import sys

import pytest
from test_sweep import BASE, make_sweep

from harness.core import config
from harness.run import identity
from harness.sweep import sweep


def _cli_train(cfg_path, out, cache, *extra):
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "train", str(cfg_path), "--out", str(out), "--quiet", *extra],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SRT_SCALE_CACHE": str(cache)},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_two_processes_through_the_cli_match_one_process(tmp_path, shared_cache):
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(
        BASE + "model: {d_model: 16, n_heads: 1, d_ff: 32, n_layers: 1, context: 10, dropout: 0.0}\n"
        "train: {batch_size: 16, tokens: 6000, threads: 1}\n"
    )
    run_id = identity.run_id(config.load(cfg_path))
    _cli_train(cfg_path, tmp_path / "one", shared_cache)
    proc = _cli_train(cfg_path, tmp_path / "two", shared_cache, "--nproc", "2")
    assert "(2 processes)" in proc.stdout and "test_ppl" in proc.stdout
    one = json.loads((tmp_path / "one" / run_id / "result.json").read_text())
    two = json.loads((tmp_path / "two" / run_id / "result.json").read_text())
    assert one["world_size"] == 1 and two["world_size"] == 2 and two["status"] == "done"
    assert two["tokens"] == one["tokens"] == 6000  # T is exact across ranks
    # the same global batch, its gradient summed over ranks: equal up to float summation order
    for key in [k for k in one if k.startswith(("valid_", "test_"))] + ["train_loss"]:
        assert two[key] == pytest.approx(one[key], rel=1e-5, abs=1e-7), key
    log = (tmp_path / "two" / run_id / "train.log").read_text()
    assert "processes 2" in log and log.count(" start: ") == 1  # rank 0 writes the run's files


def test_a_checkpoint_resumes_only_with_its_number_of_processes(tmp_path, shared_cache):
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(BASE + "train: {batch_size: 16, tokens: 3000, threads: 1}\n")
    run_id = identity.run_id(config.load(cfg_path))
    _cli_train(cfg_path, tmp_path / "runs", shared_cache, "--nproc", "2")
    (tmp_path / "runs" / run_id / "result.json").unlink()  # as if it had stopped before the end
    proc = subprocess.run(
        [sys.executable, "-m", "harness.cli", "train", str(cfg_path), "--out", str(tmp_path / "runs"), "--quiet"],
        capture_output=True,
        text=True,
        env={**os.environ, "SRT_SCALE_CACHE": str(shared_cache)},
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "written by a run of 2 process(es)" in proc.stderr


def test_two_task_local_job_is_one_data_parallel_run(tmp_path):
    s, points = make_sweep(tmp_path, axes="  negatives: [full]\n  model.dropout: [0.0]\n")
    profile = {**sweep.load_profile(None), "tasks_per_node": 2, "max_jobs": 1}
    sweep.submit(s, points, "local", profile, log=lambda m: None)
    result = json.loads((s.runs_dir / points[0].run_id / "result.json").read_text())
    assert result["status"] == "done" and result["world_size"] == 2
    from harness.run import train

    one = train({**points[0].cfg, "train.threads": 1}, tmp_path / "one", progress=False)
    assert result["test_ppl"] == pytest.approx(one["test_ppl"], rel=1e-5)


def test_ranks_share_the_model_but_draw_their_own_dropout_and_negatives(tmp_path, shared_cache, monkeypatch):
    """Every rank builds the same weights; rank r > 0 draws dropout (and per-target negatives) from its own
    stream, rank 0 from a one-process run's, and shared negatives (one set per global batch) are the same on all."""
    import torch

    from harness.run import Run
    from harness.run.distributed import Group

    monkeypatch.setenv("SRT_SCALE_CACHE", str(shared_cache))
    cfg_path = tmp_path / "run.yaml"
    cfg_path.write_text(BASE + "loss: {negatives: 8, shared_negatives: false}\n")
    per_target = config.load(cfg_path)
    shared = {**per_target, "loss.shared_negatives": True}

    def draws(cfg, rank):
        run = Run(cfg, tmp_path, Group(rank, 2, rank))
        mask = torch.nn.functional.dropout(torch.ones(4096), 0.5)
        return run.model.state_dict(), mask, run.sampler.sample((64,))

    one = Run(per_target, tmp_path)
    alone = torch.nn.functional.dropout(torch.ones(4096), 0.5), one.sampler.sample((64,))
    (w0, m0, n0), (w1, m1, n1) = draws(per_target, 0), draws(per_target, 1)
    assert all(torch.equal(w0[k], w1[k]) for k in w0)
    assert torch.equal(m0, alone[0]) and torch.equal(n0, alone[1])  # rank 0 is the one-process run
    assert not torch.equal(m0, m1) and not torch.equal(n0, n1)
    assert torch.equal(draws(shared, 0)[2], draws(shared, 1)[2])
