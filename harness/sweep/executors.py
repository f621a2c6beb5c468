"""How a sweep's runs reach submitit (`--executor`, registered in harness/core/registry.py).

An executor says how many runs go at a time, where its runs are timed for the plan (`timed_on`: this host, or a
calibration job on the cluster's nodes), submits a batch of runs (each a `sweep.RunJob`), and reads the state of a
submitted run that has no result.json yet. A run with several tasks (profile `tasks_per_node` x
`nodes`) is one data-parallel job: one process per task, joined by submitit's TorchDistributedEnvironment.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path

import submitit

from harness.core.errors import UserError, last_line
from harness.core.io import cache_dir
from harness.plan import throughput
from harness.plan.plan import groups
from harness.sweep import progress
from harness.sweep.sweep import RunJob, check_visible, wait_for


def _grouped(sweep, todo: list, n: int) -> list[list[int]]:
    """`todo`'s indices in `n` job groups balanced by the plan's time estimates."""
    est = {r["run_id"]: r["est_s"] for r in sweep.plan["runs"]}
    return groups(todo, [est.get(p.run_id, 1.0) for p in todo], n)


def _record(sweep, executor: str, todo: list, group: list[int], job, submitted: dict) -> None:
    for i in group:
        sweep.record_job(todo[i].run_id, executor, job)
        submitted[todo[i].run_id] = str(job.job_id)


class Debug:
    """One run after another inside the sweep command (no parallelism, one task)."""

    name = "debug"
    inline = True  # the job runs when its result is asked for, in this process

    @staticmethod
    def parallel(profile: dict) -> int:
        return 1

    def executor(self, sweep, profile: dict):
        if profile["tasks_per_node"] * profile["nodes"] > 1:
            raise UserError("--executor debug runs one process: use local or slurm for tasks_per_node/nodes > 1")
        return submitit.AutoExecutor(folder=sweep.folder, cluster="debug")

    def n_groups(self, n_runs: int, profile: dict) -> int:
        """How many jobs share `n_runs` runs: debug one per run."""
        return n_runs

    def timed_on(self, cfgs: list[dict], profile: dict, log) -> str | None:
        """Where the plan times these runs: None, this host (the throughput model measures what it lacks)."""
        return None

    def submit(self, sweep, todo, cfgs, args, profile, wait, log) -> dict[str, str]:
        """Run groups of runs as jobs (at most `parallel` at a time) and wait."""
        ex, max_jobs = self.executor(sweep, profile), self.parallel(profile)
        plan, view = sweep.plan, progress.View(log)
        queue = _grouped(sweep, todo, self.n_groups(len(todo), profile))
        submitted, running = {}, []
        while queue or running:
            while queue and len(running) < max_jobs:
                group = queue.pop(0)
                job = ex.submit(RunJob(), [cfgs[i] for i in group], *args)
                _record(sweep, self.name, todo, group, job, submitted)
                running.append(job)
                if self.inline:
                    _finish(job, view.write)
                    running.clear()
            for job in [j for j in running if j.done()]:
                _finish(job, view.write)
                running.remove(job)
            view.update(progress.snapshot(plan, sweep.runs_dir, sweep.states()))
            if running:
                time.sleep(0.5)
        view.close()
        return submitted

    def job_state(self, job: dict, folder: Path, run_dir: Path) -> str:
        """A debug job ran inside a sweep command that died before its run recorded an outcome."""
        return "interrupted"


class Local(Debug):
    """Subprocesses on this machine, at most `max_jobs` (default CPUs / cpus_per_task) at a time."""

    name = "local"
    inline = False

    @staticmethod
    def parallel(profile: dict) -> int:
        return profile["max_jobs"] or max(
            1, (os.cpu_count() or 1) // int(profile["cpus_per_task"] * profile["tasks_per_node"])
        )

    def executor(self, sweep, profile: dict):
        if profile["nodes"] > 1:
            raise UserError("--executor local runs on one node: nodes must be 1")
        ex = submitit.LocalExecutor(folder=sweep.folder)
        ex.update_parameters(timeout_min=int(profile["time_min"]), tasks_per_node=int(profile["tasks_per_node"]))
        return ex

    def n_groups(self, n_runs: int, profile: dict) -> int:
        """One job per parallel slot unless the profile sets runs_per_job: a process starts once per group."""
        per = profile["runs_per_job"]
        return self.parallel(profile) if per is None else math.ceil(n_runs / per)

    def job_state(self, job: dict, folder: Path, run_dir: Path) -> str:
        if not _alive(job["job_id"]):
            return "interrupted"
        return "running" if (run_dir / "train.log").exists() else "pending"  # its group may not have reached it


class Slurm:
    """One sbatch job array with the profile's resources."""

    name = "slurm"

    @staticmethod
    def parallel(profile: dict) -> int:
        return int(profile["array_parallelism"])

    def n_groups(self, n_runs: int, profile: dict) -> int:
        """One array task per `runs_per_job` runs (default 1)."""
        return math.ceil(n_runs / (profile["runs_per_job"] or 1))

    @staticmethod
    def executor(folder: Path, profile: dict, name: str = "srt-scale", tasks: bool = True):
        """A submitit Slurm executor with the profile's resources (`tasks` False: one task on one node)."""
        ex = submitit.AutoExecutor(folder=folder, cluster="slurm")
        extra = {
            k: v
            for k, v in (("partition", profile["partition"]), ("account", profile["account"]), ("qos", profile["qos"]))
            if v
        }
        ex.update_parameters(
            timeout_min=int(profile["time_min"]),
            mem_gb=profile["mem_gb"],
            cpus_per_task=int(profile["cpus_per_task"]),
            gpus_per_node=int(profile["gpus_per_node"]),
            tasks_per_node=int(profile["tasks_per_node"]) if tasks else 1,
            nodes=int(profile["nodes"]) if tasks else 1,
            slurm_array_parallelism=int(profile["array_parallelism"]),
            name=name,
            slurm_additional_parameters=dict(profile["sbatch"]),
            slurm_setup=list(profile["setup"]),
            **{f"slurm_{k}": v for k, v in extra.items()},
        )
        return ex

    @staticmethod
    def target(profile: dict) -> str:
        """The nodes a profile's jobs run on, as the throughput cache names them."""
        constraint = profile["sbatch"].get("constraint")
        return f"slurm|partition={profile['partition'] or '(default)'}|gpus={profile['gpus_per_node']}" + (
            f"|constraint={constraint}" if constraint else ""
        )

    def timed_on(self, cfgs: list[dict], profile: dict, log) -> str:
        """The cluster target; shapes it has no figures for are timed first by one calibration job there (real
        Loop steps and evaluations at lr 0 on a node of the partition, and a job process's start), cached in
        <cache>/throughput.json per target. Nothing is timed on this (the submitting) host."""
        target, threads = self.target(profile), int(profile["cpus_per_task"])
        todo = throughput.missing(cfgs, threads, target)
        if todo:
            ex = self.executor(cache_dir() / "calibration" / "submitit", profile, "srt-scale-calibrate", tasks=False)
            try:
                job = ex.submit(CalibrationJob(), todo, threads, str(cache_dir()))
            except (submitit.core.utils.FailedJobError, FileNotFoundError, OSError) as e:
                raise UserError(f"sbatch failed: {last_line(e)}") from None
            log(f"timing {len(todo)} new shape(s) on {target} in calibration job {job.job_id} ...")
            try:
                measured = job.result()
            except Exception as e:
                raise UserError(
                    f"calibration job {job.job_id} failed: {last_line(e)} (its log: {job.paths.stderr})"
                ) from None
            throughput.record(target, threads, measured)
        return target

    def submit(self, sweep, todo, cfgs, args, profile, wait, log) -> dict[str, str]:
        ex = self.executor(sweep.folder, profile)
        grouped = _grouped(sweep, todo, self.n_groups(len(todo), profile))
        try:
            jobs = ex.map_array(
                RunJob(), [[cfgs[i] for i in g] for g in grouped], [args[0]] * len(grouped), [args[1]] * len(grouped)
            )
        except (submitit.core.utils.FailedJobError, FileNotFoundError, OSError) as e:
            raise UserError(f"sbatch failed: {last_line(e)}") from None
        submitted: dict[str, str] = {}
        for group, job in zip(grouped, jobs):
            _record(sweep, self.name, todo, group, job, submitted)
        log(f"submitted {len(todo)} run(s) in {len(jobs)} job(s) as Slurm array {jobs[0].job_id.split('_')[0]}")
        if wait:
            wait_for(sweep, [p.run_id for p in todo], log=log)
        return submitted

    def job_state(self, job: dict, folder: Path, run_dir: Path) -> str:
        state = submitit.SlurmJob(folder, job["job_id"]).state.upper()
        if state in ("RUNNING", "COMPLETING"):
            return "running" if (run_dir / "train.log").exists() else "pending"
        if state == "TIMEOUT":
            return "timed_out"
        if state in (
            "PENDING",
            "REQUEUED",
            "REQUEUE_HOLD",
            "REQUEUE_FED",
            "CONFIGURING",
            "SUSPENDED",
            "RESIZING",
            "UNKNOWN",
            "PREEMPTED",
        ):
            return "interrupted" if (folder / f"{job['job_id']}_0_result.pkl").exists() else "pending"
        if state == "FAILED" and not any(folder.glob(f"{job['job_id']}_0_log.*")):
            return "failed"  # it could not open its log: the sweep directory is not on the node (last_log_line)
        return "interrupted"


class CalibrationJob:
    """Runs on a cluster node: each config's shape timed (throughput.time_shape) and a job process's start."""

    def __call__(self, cfgs: list[dict], threads: int, cache: str) -> dict:
        check_visible([], cache, cache)  # a node without the cache would time a dataset it makes for itself
        os.environ["SRT_SCALE_CACHE"] = cache
        measured = {throughput.timing_key(c): throughput.time_shape(c, threads) for c in cfgs}
        return {**measured, "process_s": throughput.time_process(threads)}


def _finish(job: submitit.Job, log) -> None:
    """Each run's outcome line from a finished job (`run_id: status`)."""
    try:
        for line in job.results()[0].splitlines():
            log(line)
    except Exception as e:  # the job itself failed (not one of its runs); the job log says why
        log(f"job {job.job_id}: failed ({last_line(e)})")


def _alive(pid: str) -> bool:
    """Whether process `pid` exists and is not a zombie (a killed job whose parent has not reaped it yet)."""
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


DEBUG, LOCAL, SLURM = Debug(), Local(), Slurm()
