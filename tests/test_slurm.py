"""Sweeps on the real one-node Slurm cluster of their own that slurm/cluster.sh starts (sbatch job arrays, sacct,
requeue); never on a cluster the machine already belongs to.

In CI (CI=true) a cluster that cannot start is a failure (cluster.sh installs the packages there); elsewhere these
tests skip when it cannot start (not root, Slurm not installed)."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from test_sweep import BASE, make_sweep

from harness.run import identity, train
from harness.sweep import results, sweep

ROOT = Path(__file__).parent.parent
pytestmark = pytest.mark.xdist_group("slurm")  # one worker drives the one cluster (make test: --dist loadgroup)
PROFILE = ROOT / "slurm" / "local.yaml"


def _cluster_sh(*args, env=None, timeout=900):
    return subprocess.run(
        ["bash", str(ROOT / "slurm" / "cluster.sh"), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def cluster():
    """This suite's own cluster (slurm/cluster.sh: its own SLURM_CONF, ports, munge and database); sbatch, sacct
    and scancel in this process and its children talk to it alone while the module runs."""
    proc = _cluster_sh("start")
    if proc.returncode != 0:
        message = f"could not start the local Slurm cluster: {proc.stderr.strip()[-2000:]}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = _cluster_sh("env").stdout.split("=", 1)[1].strip()
    yield os.environ["SLURM_CONF"]
    if before is None:
        del os.environ["SLURM_CONF"]
    else:
        os.environ["SLURM_CONF"] = before


def _submit(s, points, **kw):
    return sweep.submit(s, points, "slurm", sweep.load_profile(PROFILE), log=lambda m: None, **kw)


def _wait_until(predicate, timeout=180, poll=0.5):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(poll)
    raise AssertionError("timed out waiting")


def _training_started(s, run_id):
    log = s.runs_dir / run_id / "train.log"
    return log.exists() and "start" in log.read_text()


def test_grid_runs_as_a_job_array_and_matches_the_local_executor(cluster, tmp_path):
    s, points = make_sweep(tmp_path, axes="  negatives: [8, full]\n  train.lr: [0.001, 0.003]\n", name="slurm")
    submitted = _submit(s, points)
    assert len({j.split("_")[0] for j in submitted.values()}) == 1  # one array
    assert sweep.status(s)[0] == {"done": 4}
    table, problems = results.collect(s.runs_dir, s.states())
    assert problems == [] and table["final"].sum() == 4
    local, _ = make_sweep(tmp_path, axes="  negatives: [8, full]\n  train.lr: [0.001, 0.003]\n", name="local")
    sweep.submit(local, points, "local", {**sweep.load_profile(PROFILE), "max_jobs": 2}, log=lambda m: None)
    other, _ = results.collect(local.runs_dir)
    metrics = [c for c in table.columns if c.startswith(("valid_", "test_"))]
    assert table[metrics].equals(other[metrics])
    assert _submit(s, points) == {}  # resubmitting a finished sweep submits nothing


def test_usr2_checkpoints_requeues_and_resumes_to_the_same_metrics(cluster, tmp_path):
    s, points = make_sweep(tmp_path, axes="  train.tokens: [150000]\n", name="slurm")
    ((run_id, job_id),) = _submit(s, points, wait=False).items()
    _wait_until(lambda: _training_started(s, run_id))
    time.sleep(1)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    states = sweep.wait_for(s, [run_id], poll_s=1)
    assert states == {run_id: "done"}
    log = (s.runs_dir / run_id / "train.log").read_text()
    assert "stopped at" in log and "resume at" in log
    whole = train({**points[0].cfg, "train.threads": 1}, tmp_path / "whole", progress=False)
    resumed = json.loads((s.runs_dir / run_id / "result.json").read_text())
    for key in [k for k in whole if k.startswith(("valid_", "test_"))] + ["tokens"]:
        assert resumed[key] == pytest.approx(whole[key], rel=1e-6, abs=1e-9), key


def test_scancel_without_a_handler_is_interrupted_and_the_next_sweep_resumes_it(cluster, tmp_path):
    s, points = make_sweep(tmp_path, axes="  train.tokens: [150000]\n", name="slurm")
    ((run_id, job_id),) = _submit(s, points, wait=False).items()
    _wait_until(lambda: _training_started(s, run_id))
    subprocess.run(["scancel", job_id], check=True)  # SIGTERM (submitit ignores it), SIGKILL after KillWait
    _wait_until(lambda: sweep.status(s)[0] == {"interrupted": 1}, timeout=120, poll=1)
    counts, failing = sweep.status(s)
    assert failing[0][:2] == (run_id, "interrupted")
    assert set(_submit(s, points)) == {run_id}  # a plain sweep resumes it: no flag needed
    assert sweep.status(s)[0] == {"done": 1}
    assert identity.run_id(points[0].cfg) == run_id


def test_two_task_job_is_preempted_and_resumes_to_the_same_metrics(cluster, tmp_path):
    """One run as a 2-task Slurm job (two gloo processes): USR2 stops both at the same step, task 0 checkpoints
    and requeues, the requeued job resumes every rank's state. No dropout and the full softmax: the result
    equals a single-process run's up to float summation order."""
    profile = tmp_path / "two.yaml"
    profile.write_text(PROFILE.read_text().replace("tasks_per_node: 1", "tasks_per_node: 2"))
    s, points = make_sweep(tmp_path, axes="  train.tokens: [150000]\n  model.dropout: [0.0]\n", name="slurm")
    ((run_id, job_id),) = sweep.submit(
        s, points, "slurm", sweep.load_profile(profile), wait=False, log=lambda m: None
    ).items()
    _wait_until(lambda: _training_started(s, run_id))
    time.sleep(1)
    subprocess.run(["scancel", "--signal=USR2", job_id], check=True)
    states = sweep.wait_for(s, [run_id], poll_s=1, log=lambda m: None)
    assert states == {run_id: "done"}
    log = (s.runs_dir / run_id / "train.log").read_text()
    assert "stopped at" in log and "resume at" in log and "processes 2" in log
    resumed = json.loads((s.runs_dir / run_id / "result.json").read_text())
    assert resumed["world_size"] == 2
    whole = train({**points[0].cfg, "train.threads": 1}, tmp_path / "whole", progress=False)
    for key in [k for k in whole if k.startswith(("valid_", "test_"))] + ["tokens"]:
        assert resumed[key] == pytest.approx(whole[key], rel=1e-5, abs=1e-8), key


def test_a_cluster_the_machine_already_has_is_never_touched(cluster, tmp_path):
    """A second cluster on other ports stands for the one a machine belongs to (its SLURM_CONF is what sinfo
    answers by default): starting ours again, a sweep and stopping ours submit nothing to it and leave it up."""
    home = tempfile.mkdtemp(prefix="srt-foreign-", dir="/tmp")  # short: munge's socket path must fit 108 bytes
    foreign = {"SRT_SLURM_DIR": home, "SRT_SLURM_PORT": "26817", "SRT_SLURM_CLUSTER": "foreign"}
    assert _cluster_sh("start", env=foreign).returncode == 0
    try:
        foreign_conf = {"SLURM_CONF": f"{home}/slurm.conf"}
        started = _cluster_sh("start", env=foreign_conf)  # the machine's cluster answers sinfo: ours is still ours
        assert started.returncode == 0 and "srtlocal already up" in started.stderr
        s, points = make_sweep(tmp_path, axes="  train.tokens: [20000]\n", name="slurm")
        _submit(s, points)
        assert sweep.status(s)[0] == {"done": 1}
        sacct = ["sacct", "-a", "-n", "-X", "-S", "now-1hour", "-o", "JobName%40"]
        ours = subprocess.run(sacct, capture_output=True, text=True, check=True).stdout
        theirs = subprocess.run(sacct, capture_output=True, text=True, check=True, env={**os.environ, **foreign_conf})
        assert ours.strip() and theirs.stdout.strip() == ""
        assert _cluster_sh("status", env=foreign).returncode == 0
    finally:
        _cluster_sh("stop", env=foreign)
        shutil.rmtree(home, ignore_errors=True)


def test_a_job_that_cannot_see_the_cache_or_the_sweep_fails_at_once_naming_the_path(cluster, tmp_path, monkeypatch):
    """Held jobs whose paths are taken away before they start stand for a node that does not mount them."""
    held = tmp_path / "held.yaml"
    held.write_text(PROFILE.read_text().replace("sbatch: {}", "sbatch: {hold: true}"))
    cache = tmp_path / "node-local-cache"
    monkeypatch.setenv("SRT_SCALE_CACHE", str(cache))
    s, points = make_sweep(tmp_path, axes="  train.tokens: [20000]\n", name="slurm")
    ((run_id, job_id),) = sweep.submit(s, points, "slurm", sweep.load_profile(held), wait=False, log=print).items()
    shutil.rmtree(cache)
    subprocess.run(["scontrol", "release", job_id], check=True)
    assert sweep.wait_for(s, [run_id], poll_s=0.5, log=lambda m: None) == {run_id: "failed"}
    error = s.result(run_id)["error"]
    assert error.startswith(f"{cache} is not visible on ") and "filesystem every node sees" in error

    other, points = make_sweep(tmp_path, axes="  train.tokens: [20001]\n", name="node-local")
    ((run_id, job_id),) = sweep.submit(other, points, "slurm", sweep.load_profile(held), wait=False, log=print).items()
    other.folder.rename(tmp_path / "away")  # the job's script, pickle and log folder are not there
    subprocess.run(["scontrol", "release", job_id], check=True)
    assert sweep.wait_for(other, [run_id], poll_s=0.5, log=lambda m: None) == {run_id: "failed"}
    (tmp_path / "away").rename(other.folder)
    counts, failing = sweep.status(other)
    assert counts == {"failed": 1} and str(other.root.resolve()) in failing[0][2]
    assert "filesystem every node sees" in failing[0][2]


def test_a_slurm_plan_times_new_shapes_in_one_calibration_job_and_nothing_here(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("SRT_SCALE_CACHE", str(tmp_path / "cache"))
    (tmp_path / "base.yaml").write_text(BASE)
    (tmp_path / "grid.yaml").write_text("base: base.yaml\naxes:\n  negatives: [8, full]\n  train.lr: [0.001, 0.003]\n")
    command = [
        sys.executable,
        "-m",
        "harness.cli",
        "plan",
        str(tmp_path / "grid.yaml"),
        "--executor",
        "slurm",
        "--profile",
        str(PROFILE),
    ]
    first = subprocess.run([*command, "--json"], capture_output=True, text=True, check=True)
    assert "timing 2 new shape(s) on slurm|partition=debug|gpus=0 in calibration job" in first.stderr
    target = "slurm|partition=debug|gpus=0|threads=1"
    assert json.loads(first.stdout)["totals"]["timed_on"] == "slurm|partition=debug|gpus=0"
    cached = json.loads((tmp_path / "cache" / "throughput.json").read_text())
    assert list(cached) == [target] and len(cached[target]) == 3  # 2 shapes (lr is untimed) + process_s
    again = subprocess.run(command, capture_output=True, text=True, check=True)
    assert "calibration job" not in again.stderr and "by shape on slurm|partition=debug|gpus=0)" in again.stdout
