"""Sweeps: a grid's runs submitted through submitit (debug, local or slurm), resumable and re-attachable.

A sweep directory holds:
- plan.json: the resolved plan (every run's config, shape, N, T, K, FLOPs, estimated time);
- jobs.jsonl: one line per submission (run id, executor, submitit job id and folder);
- runs/<run_id>/: the run directories (docs/design.md, "The run");
- submitit/: submitit's scripts, pickles and job logs.
A run's state comes from its result.json (done, diverged, failed: it raised) or, while it has none, from its
job: pending, running, timed_out, or interrupted when the job is gone without an outcome (SIGKILL, OOM killer,
node failure, scancel). Not-submitted and interrupted runs are submitted by every sweep (an interrupted one
resumes from its checkpoint) until it has been killed sweep.max_retries times, when it is marked failed with the
reason; failed, diverged and timed-out runs are resubmitted only with retry_failed. Every run writes its
own files and renames them into place, so jobs finishing together never corrupt each other.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import submitit

from harness.core import config
from harness.core.errors import UserError, last_line
from harness.core.io import cache_dir, read_result, write_json, write_text
from harness.core.registry import EXECUTORS
from harness.core.schema import STATUSES
from harness.plan.grid import Point
from harness.run import identity, tracking, train
from harness.sweep import progress

PR_SET_PDEATHSIG = 1  # linux/prctl.h
STATES = STATUSES + ("not_submitted",)
RESUMED = ("not_submitted", "interrupted")  # submitted by every sweep
RETRYABLE = ("failed", "diverged", "timed_out")  # resubmitted only with retry_failed


def parallel_jobs(executor: str, profile: dict) -> int:
    """Runs at a time on `executor` with `profile`."""
    return EXECUTORS.get(executor).parallel(profile)


def job_count(executor: str, n_runs: int, profile: dict) -> int:
    """How many jobs (processes) `executor` makes of `n_runs` runs with `profile`."""
    return EXECUTORS.get(executor).n_groups(n_runs, profile)


def load_profile(path: str | Path | None) -> dict:
    """A cluster profile (slurm/*.yaml; keys: config.PROFILE): sbatch resources, array parallelism, extra flags,
    setup lines. Missing keys take their defaults."""
    profile = {k.name: k.default for k in config.PROFILE}
    if path is None:
        return profile
    tree = config.load_yaml(path)
    for key, value in tree.items():
        known = config.PROFILE_KEYS.get(key)
        if known is None:
            raise UserError(f"{path}: unknown profile key {key!r} (known: {', '.join(config.PROFILE_KEYS)})")
        if not known.check(value):
            raise UserError(f"{path}: {key} = {value!r}: expected {known.expect}")
    return {**profile, **tree}


def pretrain(cfg: dict) -> None:
    """Train the pretraining run that `transfer.init_from` names as a run config YAML, under
    <cache>/pretrained/<dataset key>/ (once: concurrent jobs wait on a file lock and find it done). A run directory
    needs
    nothing. Runs never launch runs: this is done here, before the run starts."""
    source = cfg["transfer.init_from"]
    if not source or Path(source).suffix not in (".yaml", ".yml"):
        return
    pre = config.load(source)
    root = identity.pretrained_dir(source).parent
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{identity.run_id(pre)}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        train(pre, root, progress=False)


def record_failed(run_dir: Path, error: str, tokens: int = 0) -> None:
    """The result.json of a run that ended `failed` outside train() (which records its own failures)."""
    write_json(
        run_dir / "result.json",
        {"run_id": run_dir.name, "status": "failed", "final": True, "tokens": tokens, "error": error},
    )


NOT_SHARED = "is not visible on {host}: the sweep directory, the cache and the Python environment must be on a \
filesystem every node sees (docs/usage.md, 'Cluster profiles')"


def check_visible(cfgs: list[dict], out: str, cache: str) -> None:
    """Fail a job at once, with one line naming the path, when this node cannot see the sweep's runs directory or
    the cache (the submitting host made both): each run is recorded failed with that line when the runs directory
    is visible, and the job raises."""
    for path in (out, cache):
        if not Path(path).is_dir():
            error = f"{path} {NOT_SHARED.format(host=socket.gethostname())}"
            if Path(out).is_dir() and submitit.JobEnvironment().global_rank == 0:
                for cfg in cfgs:
                    record_failed(Path(out) / identity.run_id(cfg), error)
            raise UserError(error)


def die_with_controller() -> None:
    """A local job's trainer ends with its submitit controller, the process whose id the sweep records and
    watches: otherwise a controller killed on its own (SIGKILL) leaves the trainer running while the sweep calls
    its run interrupted and trains it again beside it. Linux's prctl(PR_SET_PDEATHSIG, SIGKILL); a no-op outside
    a local job (and where the controller runs under a setup shell, whose pid is the job id)."""
    controller = os.environ.get("SUBMITIT_LOCAL_JOB_ID")
    if controller is None or os.environ.get("SUBMITIT_LOCAL_WITH_SHELL") or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != int(controller):  # it ended before the line above could take effect
        os._exit(1)


class RunJob(submitit.helpers.Checkpointable):
    """The job submitit runs: train a group of configs one after another in this process (one process start,
    import and dataset load for the group), with one process per task (data-parallel runs when the job has
    several). A run that raises is recorded `failed` and the group goes on. On USR2 (timeout or preemption)
    training stops at the next step boundary and saves its checkpoint; then submitit's own handler (on task 0)
    requeues the job, which skips the finished runs and resumes the stopped one."""

    def __call__(self, cfgs: list[dict], out: str, cache: str) -> str:
        die_with_controller()
        check_visible(cfgs, out, cache)
        os.environ["SRT_SCALE_CACHE"] = cache
        rank = 0
        if submitit.JobEnvironment().num_tasks > 1:
            rank = submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False).rank
        stop = threading.Event()
        submitit_handler = signal.getsignal(signal.SIGUSR2)
        signal.signal(signal.SIGUSR2, lambda *_: stop.set())
        outcomes = []
        for cfg in cfgs:
            run_id = identity.run_id(cfg)
            try:
                pretrain(cfg)
                result = None if stop.is_set() else train(cfg, out, should_stop=stop.is_set, progress=False)
            except Exception as e:  # train() records failures once its run is built; this covers what comes before
                path = Path(out) / run_id / "result.json"
                if rank == 0 and not path.exists():
                    record_failed(path.parent, f"{type(e).__name__}: {e}")
                outcomes.append(f"{run_id}: failed ({type(e).__name__}: {last_line(e)[:200]})")
                continue
            if result is None:
                if rank != 0:
                    return "stopped"  # task 0 requeues the whole job
                signal.signal(signal.SIGUSR2, submitit_handler)
                if callable(submitit_handler):
                    submitit_handler(signal.SIGUSR2, None)  # checkpoint() + requeue + exit
                raise RuntimeError("training was interrupted and the job could not be requeued")
            outcomes.append(f"{run_id}: {result['status']}")
        return "\n".join(outcomes)


class Sweep:
    """A sweep directory: its plan, its job records and its runs' states."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.runs_dir = self.root / "runs"
        self.folder = self.root / "submitit"

    @property
    def plan(self) -> dict:
        path = self.root / "plan.json"
        if not path.exists():
            raise UserError(f"{self.root}: not a sweep directory (no plan.json)")
        return json.loads(path.read_text())

    def write_plan(self, plan: dict, grid_path: str | Path) -> None:
        """Record the plan, and the grid's text and its base config's, with the sweep."""
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.root / "plan.json", plan)
        grid_path = Path(grid_path)
        write_text(self.root / "grid.yaml", grid_path.read_text())
        base = grid_path.parent / str(config.load_yaml(grid_path).get("base", ""))
        if base.is_file():
            write_text(self.root / "base.yaml", base.read_text())

    def jobs(self) -> dict[str, dict]:
        """Last submission record per run id (a torn last line is ignored; retry marks are not submissions)."""
        records: dict[str, dict] = {}
        path = self.root / "jobs.jsonl"
        if path.exists():
            for line in path.read_text().splitlines():
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if "job_id" in rec:
                    records[rec["run_id"]] = rec
        return records

    def record_job(self, run_id: str, executor: str, job: submitit.Job) -> None:
        self._append({"run_id": run_id, "executor": executor, "job_id": str(job.job_id), "submitted": time.time()})

    def record_retry(self, run_id: str) -> None:
        """--retry-failed resubmits `run_id`: its count of kills starts again."""
        self._append({"run_id": run_id, "retry": time.time()})

    def _append(self, record: dict) -> None:
        with open(self.root / "jobs.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def kills(self, run_id: str) -> int:
        """Submissions of an interrupted run since the last --retry-failed one: every one of them ended without
        an outcome (one that ended with one would have left result.json)."""
        path = self.root / "jobs.jsonl"
        count = 0
        for line in path.read_text().splitlines() if path.exists() else []:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rec["run_id"] == run_id:
                count = 0 if "retry" in rec else count + 1
        return count

    def give_up(self, run_id: str, job: dict | None, kills: int) -> None:
        """Mark a run killed `kills` times failed, with the reason and the last line it logged."""
        record_failed(
            self.runs_dir / run_id,
            f"killed {kills} times (sweep.max_retries): last seen: {self.last_log_line(run_id, job)[:300]}",
            progress.tokens_so_far(self.runs_dir / run_id),
        )

    def result(self, run_id: str) -> dict | None:
        """The run's result.json (None while it has none, or while it does not parse: see io.read_result)."""
        try:
            return json.loads((self.runs_dir / run_id / "result.json").read_text())
        except (OSError, ValueError):
            return None

    def state(self, run_id: str, job: dict | None = None) -> str:
        """One of STATES."""
        result = self.result(run_id)
        if result is None and job is not None:
            state = EXECUTORS.get(job["executor"]).job_state(job, self.folder, self.runs_dir / run_id)
            if state in progress.WAITING:
                return state
            result = self.result(run_id)  # read again: the job may have written it and ended since the first read
            if result is None:
                return state
        if result is not None:
            return {"done": "done", "diverged": "diverged"}.get(result["status"], "failed")
        return "not_submitted"

    def states(self) -> dict[str, str]:
        jobs = self.jobs()
        return {r["run_id"]: self.state(r["run_id"], jobs.get(r["run_id"])) for r in self.plan["runs"]}

    def last_log_line(self, run_id: str, job: dict | None) -> str:
        """The last non-empty line of the job's stderr, else of the run's train.log."""
        candidates = []
        if job is not None:
            candidates.append(self.folder / f"{job['job_id']}_0_log.err")
        candidates.append(self.runs_dir / run_id / "train.log")
        for path in candidates:
            if path.exists():
                lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
                if lines:
                    return lines[-1].strip()
        if job is not None and job["executor"] == "slurm" and self.state(run_id, job) == "failed":
            return f"job {job['job_id']} failed without writing its log: {self.root.resolve()} " + NOT_SHARED.format(
                host="the node it ran on"
            )
        return "(no log)"


def submit(
    sweep: Sweep,
    points: list[Point],
    executor: str,
    profile: dict,
    retry_failed: bool = False,
    wait: bool = True,
    log=print,
) -> dict[str, str]:
    """Submit every point that needs it; returns {run_id: submitit job id} of what was submitted."""
    chosen = EXECUTORS.get(executor)
    jobs = sweep.jobs()
    todo, skipped = [], {}
    for p in points:
        read_result(sweep.runs_dir / p.run_id / "result.json", log)  # a torn one is set aside: the run goes again
        state = sweep.state(p.run_id, jobs.get(p.run_id))
        kills = sweep.kills(p.run_id) if state == "interrupted" and not retry_failed else 0
        if kills >= p.cfg["sweep.max_retries"]:
            sweep.give_up(p.run_id, jobs.get(p.run_id), kills)
            log(f"{p.run_id}: failed: {sweep.result(p.run_id)['error']}")
            state = "failed"
        if state in RESUMED or (retry_failed and state in RETRYABLE):
            _clear_for_retry(sweep.runs_dir / p.run_id, state)
            if retry_failed and state != "not_submitted":
                sweep.record_retry(p.run_id)
            todo.append(p)
        else:
            skipped[state] = skipped.get(state, 0) + 1
    if skipped:
        log(
            "not submitted: "
            + ", ".join(f"{n} {s}" for s, n in sorted(skipped.items()))
            + (
                ""
                if retry_failed or not (skipped.keys() & set(RETRYABLE))
                else " (--retry-failed resubmits failed, diverged and timed-out runs)"
            )
        )
    if not todo:
        log("nothing to submit")
        return {}
    threads = int(profile["cpus_per_task"])
    cfgs = [{**p.cfg, "train.threads": threads} for p in todo]
    if any(c["track.mlflow"] for c in cfgs):  # the sweep is one MLflow experiment, by default in <sweep>/mlflow.db
        cfgs = [
            {
                **c,
                "track.uri": c["track.uri"] or tracking.default_uri(sweep.root),
                "track.experiment": c["track.experiment"] or sweep.root.resolve().name,
            }
            for c in cfgs
        ]
        tracking.prepare_stores(cfgs, log)
    args = (str(sweep.runs_dir.resolve()), str(cache_dir()))
    for folder in (sweep.folder, sweep.runs_dir, cache_dir()):  # a job that cannot see these fails at once
        folder.mkdir(parents=True, exist_ok=True)
    return chosen.submit(sweep, todo, cfgs, args, profile, wait, log)


def _clear_for_retry(run_dir: Path, state: str) -> None:
    """A failed or interrupted run resumes from its checkpoint; a diverged one starts again from scratch."""
    if state in RESUMED:
        return
    names = ["result.json"] + (["checkpoint.pt", "metrics.jsonl"] if state == "diverged" else [])
    for name in names:
        (run_dir / name).unlink(missing_ok=True)


def wait_for(sweep: Sweep, run_ids: list[str] | None = None, poll_s: float = 2.0, log=print) -> dict[str, str]:
    """Poll until none of `run_ids` (default: every planned run) is pending or running, showing the sweep's
    progress (harness/sweep/progress.py) meanwhile; returns their states."""
    plan, view = sweep.plan, progress.View(log)
    run_ids = run_ids if run_ids is not None else [r["run_id"] for r in plan["runs"]]
    while True:
        states = sweep.states()
        view.update(progress.snapshot(plan, sweep.runs_dir, states))
        mine = {r: states[r] for r in run_ids}
        if not any(s in progress.WAITING for s in mine.values()):
            view.close()
            return mine
        time.sleep(poll_s)


def status(sweep: Sweep) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    """Counts by state and (run_id, state, last log line) for interrupted, failed, diverged and timed-out runs."""
    jobs = sweep.jobs()
    states = sweep.states()
    counts = {s: sum(1 for v in states.values() if v == s) for s in STATES}
    failing = [
        (r, s, sweep.last_log_line(r, jobs.get(r))) for r, s in states.items() if s in RETRYABLE or s == "interrupted"
    ]
    return {k: v for k, v in counts.items() if v}, failing
