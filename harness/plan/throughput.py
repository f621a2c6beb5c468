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
<cache>/throughput.json under where they were made and one entry per timing key: the config without the keys that
cannot change a step's or an evaluation's time (`UNTIMED`). Where: this host, torch version, threads and device
(measured here on a miss: the local and debug executors), or a cluster target (`slurm|...`, made by a calibration
job on the target's nodes: harness/sweep/executors.py; read only here). With no figures at all (`FLOPS`), a run's
time is its FLOPs at a nominal rate that the sweep's ETA replaces by what its finished runs took.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time

import torch

from harness.core.io import cache_dir, write_json
from harness.data.prepare import prepare
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


FLOPS = "flops"  # no timing figures: est_s is FLOPs / NOMINAL_FLOPS_PER_S until finished runs give the rate
NOMINAL_FLOPS_PER_S = 1e9


def _known() -> dict:
    path = cache_dir() / "throughput.json"
    return json.loads(path.read_text()) if path.exists() else {}


def _store(where: str, entries: dict) -> None:
    """Add `entries` under `where` in the cache (re-read first: another process may have added some)."""
    known = _known()
    known.setdefault(where, {}).update(entries)
    write_json(cache_dir() / "throughput.json", known)


def target_key(target: str, threads: int) -> str:
    """Where the figures of a cluster target (a partition and its resources, made by its calibration job) live."""
    return f"{target}|threads={threads}"


def missing(cfgs: list[dict], threads: int, target: str) -> list[dict]:
    """One config per timing key of `cfgs` that `target` has no figures for yet (process_s included: a target
    without it misses its first config)."""
    have = _known().get(target_key(target, threads), {})
    todo = {timing_key(c): c for c in cfgs if timing_key(c) not in have}
    if "process_s" not in have and cfgs:
        todo.setdefault(timing_key(cfgs[0]), cfgs[0])
    return list(todo.values())


def record(target: str, threads: int, measured: dict) -> None:
    """Store a calibration job's figures ({timing key: figures, "process_s": s}) under `target`."""
    _store(target_key(target, threads), measured)


def measure(cfg: dict, threads: int, target: str | None = None) -> dict:
    """step_s, targets_per_step, valid_eval_s, fitting_eval_s and setup_s of `cfg` with `threads` threads: a
    cluster `target`'s calibrated figures, else this host's (cached; measured by real training steps and
    evaluations of the run's Loop when new)."""
    key = timing_key(cfg)
    if target is not None:
        return _known()[target_key(target, threads)][key]  # the executor's calibration job made it (timed_on)
    device = (
        "cuda"
        if cfg["train.device"] == "cuda" or (cfg["train.device"] == "auto" and torch.cuda.is_available())
        else "cpu"
    )
    host = _host_key(threads, device)
    figures = _known().get(host, {}).get(key)
    if figures is None:
        figures = time_shape(cfg, threads)
        _store(host, {key: figures})
    return figures


def time_shape(cfg: dict, threads: int) -> dict:
    """Measure `cfg`'s shape here, now: real Loop steps at lr 0 and one evaluation of each kind (no cache)."""
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
        prepare(probe)  # a dataset is made once per sweep, not per run: its first making is not set-up time
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
    return figures


def _step(loop) -> None:
    outcome = loop.step()
    if outcome is not None:  # a non-finite loss at lr 0: the model itself is broken, not the timing
        raise RuntimeError(f"timing run {loop.run.id}: {outcome}")


def estimate(cfg: dict, flops_per_target: float, threads: int, target: str | None = None) -> dict:
    """One run of `cfg` inside a job whose process has started (see the module docstring): est_s, its set-up part
    est_setup_s, and the training FLOP/s its shape achieves (C per target x targets per step / step time) on
    `target` (None: this host; FLOPS: no figures, FLOP/s None)."""
    if target == FLOPS:
        return {
            "est_s": schedules.targets_spent(cfg) * flops_per_target / NOMINAL_FLOPS_PER_S,
            "est_setup_s": 0.0,
            "flops_per_s": None,
        }
    m = measure(cfg, threads, target)
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


def process_seconds(threads: int, target: str | None = None) -> float:
    """A job process's own start: interpreter, imports and the matmul peak its first run measures; on `target`
    its calibration job's figure (FLOPS: 0), else this host's (a child process timed once, cached)."""
    if target == FLOPS:
        return 0.0
    if target is not None:
        return _known()[target_key(target, threads)]["process_s"]
    host = _host_key(threads, "cpu")
    seconds = _known().get(host, {}).get("process_s")
    if seconds is None:
        seconds = time_process(threads)
        _store(host, {"process_s": seconds})
    return seconds


def time_process(threads: int) -> float:
    """Seconds a fresh job process takes to start here: interpreter, imports and the matmul peak (no cache)."""
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
    return time.perf_counter() - start


def job_seconds(run_seconds_each: list[float], threads: int) -> float:
    """A job that trains these runs one after another in one process."""
    return process_seconds(threads) + sum(run_seconds_each)
