"""How a sweep's runs reach submitit (`--executor`, registered in harness/registry.py).

An executor says how many runs go at a time, submits a batch of runs (each a `sweep.RunJob`), and reads the
state of a submitted run that has no result.json yet. A run with several tasks (profile `tasks_per_node` x
`nodes`) is one data-parallel job: one process per task, joined by submitit's TorchDistributedEnvironment.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import submitit

from harness import progress
from harness.errors import UserError


def _last_line(e: Exception) -> str:
    return str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__


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

    def submit(self, sweep, todo, cfgs, args, profile, wait, log) -> dict[str, str]:
        """Run (at most `parallel` at a time) and wait: debug and local submit one job per run from here."""
        from harness.sweep import RunJob

        ex, max_jobs = self.executor(sweep, profile), self.parallel(profile)
        submitted, running = {}, []
        queue = list(zip(todo, cfgs))
        plan, view = sweep.plan, progress.View(log)
        while queue or running:
            while queue and len(running) < max_jobs:
                p, cfg = queue.pop(0)
                job = ex.submit(RunJob(), cfg, *args)
                sweep.record_job(p.run_id, self.name, job)
                submitted[p.run_id] = str(job.job_id)
                running.append((p, job))
                if self.inline:
                    _finish(p, job, view.write)
                    running.clear()
            for item in [r for r in running if r[1].done()]:
                _finish(*item, view.write)
                running.remove(item)
            view.update(progress.snapshot(plan, sweep.runs_dir, sweep.states()))
            if running:
                time.sleep(0.5)
        view.close()
        return submitted

    def job_state(self, job: dict, folder: Path) -> str:
        """A debug job ran inside a sweep command that died before its run recorded an outcome."""
        return "interrupted"


class Local(Debug):
    """Subprocesses on this machine, at most `max_jobs` (default CPUs / cpus_per_task) at a time."""

    name = "local"
    inline = False

    @staticmethod
    def parallel(profile: dict) -> int:
        return profile["max_jobs"] or max(1, (os.cpu_count() or 1) // int(profile["cpus_per_task"]
                                                                         * profile["tasks_per_node"]))

    def executor(self, sweep, profile: dict):
        if profile["nodes"] > 1:
            raise UserError("--executor local runs on one node: nodes must be 1")
        ex = submitit.LocalExecutor(folder=sweep.folder)
        ex.update_parameters(timeout_min=int(profile["time_min"]), tasks_per_node=int(profile["tasks_per_node"]))
        return ex

    def job_state(self, job: dict, folder: Path) -> str:
        return "running" if _alive(job["job_id"]) else "interrupted"


class Slurm:
    """One sbatch job array with the profile's resources."""

    name = "slurm"

    @staticmethod
    def parallel(profile: dict) -> int:
        return int(profile["array_parallelism"])

    def submit(self, sweep, todo, cfgs, args, profile, wait, log) -> dict[str, str]:
        from harness.sweep import RunJob, wait_for

        ex = submitit.AutoExecutor(folder=sweep.folder, cluster="slurm")
        extra = {k: v for k, v in (("partition", profile["partition"]), ("account", profile["account"]),
                                   ("qos", profile["qos"])) if v}
        ex.update_parameters(timeout_min=int(profile["time_min"]), mem_gb=profile["mem_gb"],
                             cpus_per_task=int(profile["cpus_per_task"]), gpus_per_node=int(profile["gpus_per_node"]),
                             tasks_per_node=int(profile["tasks_per_node"]), nodes=int(profile["nodes"]),
                             slurm_array_parallelism=int(profile["array_parallelism"]), name="srt-scale",
                             slurm_additional_parameters=dict(profile["sbatch"]), slurm_setup=list(profile["setup"]),
                             **{f"slurm_{k}": v for k, v in extra.items()})
        try:
            jobs = ex.map_array(RunJob(), cfgs, [args[0]] * len(cfgs), [args[1]] * len(cfgs))
        except (submitit.core.utils.FailedJobError, FileNotFoundError, OSError) as e:
            raise UserError(f"sbatch failed: {_last_line(e)}") from None
        for p, job in zip(todo, jobs):
            sweep.record_job(p.run_id, self.name, job)
        log(f"submitted {len(jobs)} run(s) as Slurm array {jobs[0].job_id.split('_')[0]}")
        if wait:
            wait_for(sweep, [p.run_id for p in todo], log=log)
        return {p.run_id: str(j.job_id) for p, j in zip(todo, jobs)}

    def job_state(self, job: dict, folder: Path) -> str:
        state = submitit.SlurmJob(folder, job["job_id"]).state.upper()
        if state in ("RUNNING", "COMPLETING"):
            return "running"
        if state == "TIMEOUT":
            return "timed_out"
        if state in ("PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "SUSPENDED",
                     "RESIZING", "UNKNOWN", "PREEMPTED"):
            return "interrupted" if (folder / f"{job['job_id']}_0_result.pkl").exists() else "pending"
        return "interrupted"


def _finish(point, job: submitit.Job, log) -> None:
    try:
        log(f"{point.run_id}: {job.results()[0]}")
    except Exception as e:  # the run failed; its result.json and job log say why
        log(f"{point.run_id}: failed ({_last_line(e)})")


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
