"""How long a run takes on this machine: a throughput model measured per run shape, read by `plan`, the sweep's
grouping of runs into jobs and its ETA, and `advise`.

A run's time is est_s = setup_s + steps x step_s + valid_evals x valid_eval_s + fitting_rows x fitting_eval_s:
- step_s and targets_per_step: seconds and supervised targets per optimizer step of the real Loop on the run's own
  dataset, shape, batch, K, extractor and precision, after warm-up (small widths and batches run far below the
  matmul peak, and a step pays a fixed overhead, so FLOPs / one machine-wide rate mis-prices them);
- valid_eval_s: an evaluation point of the trunk (validation users, full catalog) with its checkpoint;
  fitting_eval_s: a fitting-point row (a cooldown-branch end or the final row: validation and test) with its
  checkpoint;
- setup_s: building the run (dataset from the cache, model, evaluation sets); a job also pays process_s once: its
  interpreter start, imports and the in-process matmul peak (`job_seconds`).
steps = targets_spent / targets_per_step (cooldown branches included). Measurements are cached in
<cache>/throughput.json under the host, torch version, threads and device, and one entry per timing key: the
config without the keys that cannot change a step's or an evaluation's time (`UNTIMED`).
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time

import torch

from harness.core.io import cache_dir, write_json
from harness.model import schedules
from harness.run import Loop, Run

UNTIMED = (
    "train.tokens",
    "train.branches",
    "train.lr",
    "train.seed",
    "train.schedule",
    "train.warmup",
    "train.warmup_tokens",
    "train.decay",
    "train.decay_shape",
    "train.min_lr_ratio",
    "train.weight_decay",
    "train.grad_clip",
    "train.checkpoint_every_s",
    "eval.points",
    "sweep.max_retries",
    "track.mlflow",
    "track.uri",
    "track.experiment",
    "transfer.init_from",
)
MEASURE_S = 1.0  # seconds of timed steps per shape (at least MIN_STEPS)
MIN_STEPS = 5


def _host_key(threads: int, device: str) -> str:
    return f"{platform.node()}|{torch.__version__}|threads={threads}|{device}"


def timing_key(cfg: dict) -> str:
    """The config's fields that decide how long a step and an evaluation take."""
    return json.dumps({k: v for k, v in sorted(cfg.items()) if k not in UNTIMED}, sort_keys=True, default=str)


def measure(cfg: dict, threads: int) -> dict:
    """step_s, targets_per_step, valid_eval_s, fitting_eval_s and setup_s of `cfg` with `threads` threads
    (cached per host; measured by real training steps and evaluations of the run's Loop when new)."""
    device = (
        "cuda"
        if cfg["train.device"] == "cuda" or (cfg["train.device"] == "auto" and torch.cuda.is_available())
        else "cpu"
    )
    path = cache_dir() / "throughput.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    host, key = _host_key(threads, device), timing_key(cfg)
    if key in known.get(host, {}):
        return known[host][key]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        # lr 0: the same work per step, and a config that diverges (lr 1000) still times its steps; no transfer:
        # the same shape from its own init (a pretraining run need not exist when the sweep is planned)
        probe = {
            **cfg,
            "train.tokens": 10**12,
            "train.lr": 0.0,
            "train.threads": threads,
            "track.mlflow": False,
            "transfer.init_from": None,
        }
        start = time.perf_counter()
        run = Run(probe, cache_dir() / "calibration")
        setup_s = time.perf_counter() - start
        loop = Loop(run)
        for _ in range(3):  # warm-up
            _step(loop)
        start, n0, s0 = time.perf_counter(), loop.state.tokens, loop.state.steps
        while time.perf_counter() - start < MEASURE_S or loop.state.steps - s0 < MIN_STEPS:
            _step(loop)
        elapsed, steps = time.perf_counter() - start, loop.state.steps - s0
        figures = {"step_s": elapsed / steps, "targets_per_step": (loop.state.tokens - n0) / steps, "setup_s": setup_s}
        for name, annealed in (("valid_eval_s", False), ("fitting_eval_s", True)):
            start = time.perf_counter()
            loop.record(final=False, annealed=annealed)
            loop.save()
            figures[name] = time.perf_counter() - start
    finally:
        torch.set_num_threads(before)
    known = json.loads(path.read_text()) if path.exists() else {}  # another process may have added entries
    known.setdefault(host, {})[key] = figures
    write_json(path, known)
    return figures


def _step(loop) -> None:
    outcome = loop.step()
    if outcome is not None:  # a non-finite loss at lr 0: the model itself is broken, not the timing
        raise RuntimeError(f"timing run {loop.run.id}: {outcome}")


def estimate(cfg: dict, flops_per_target: float, threads: int) -> dict:
    """One run of `cfg` inside a job whose process has started (see the module docstring): est_s, its set-up part
    est_setup_s, and the training FLOP/s its shape achieves here (C per target x targets per step / step time)."""
    m = measure(cfg, threads)
    fitting_rows = len(schedules.lengths(cfg))  # the branch ends and the final row
    valid_points = sum(1 for p in cfg["eval.points"] if p * cfg["train.tokens"] < cfg["train.tokens"])
    seconds = (
        m["setup_s"]
        + schedules.targets_spent(cfg) / m["targets_per_step"] * m["step_s"]
        + valid_points * m["valid_eval_s"]
        + fitting_rows * m["fitting_eval_s"]
    )
    return {
        "est_s": seconds,
        "est_setup_s": m["setup_s"],
        "flops_per_s": flops_per_target * m["targets_per_step"] / m["step_s"],
    }


# The shape priced when no grid gives one (advise without --grid): d = 64, 2 layers, full softmax, id features.
REFERENCE = {
    "data.synthetic.n_users": 500,
    "data.synthetic.n_items": 1000,
    "data.synthetic.mean_length": 60,
    "features.kind": "id",
}


def process_seconds(threads: int) -> float:
    """A job process's own start on this host: interpreter, imports and the matmul peak its first run measures
    (a child process timed once, cached)."""
    path = cache_dir() / "throughput.json"
    known = json.loads(path.read_text()) if path.exists() else {}
    host = _host_key(threads, "cpu")
    if "process_s" not in known.get(host, {}):
        start = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-c",
                f"import torch; torch.set_num_threads({threads}); import submitit; "
                "from harness.run import Loop; from harness.model import accounting; accounting.matmul_peak()",
            ],
            check=True,
            capture_output=True,
        )
        known = json.loads(path.read_text()) if path.exists() else {}
        known.setdefault(host, {})["process_s"] = time.perf_counter() - start
        write_json(path, known)
    return known[host]["process_s"]


def job_seconds(run_seconds_each: list[float], threads: int) -> float:
    """A job that trains these runs one after another in one process."""
    return process_seconds(threads) + sum(run_seconds_each)
