"""`train`: a resolved config -> its run directory, through the one step loop.

`<out>/<run_id>/` holds config.yaml, metrics.jsonl (one row per evaluation point), result.json (the final row,
written atomically last), checkpoint.pt, progress.json and train.log (docs/design.md, "The run"). The budget is
T = train.tokens supervised targets: training stops after exactly T (the last batch is trimmed), however many
epochs that is. A restarted run resumes from its checkpoint and ends with the same metrics as an uninterrupted
one. Distributed runs (harness/run/distributed.py) take the same path; rank 0 writes every file.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Callable

import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from harness import accounting, config
from harness.io import write_json, write_text
from harness.progress import PROGRESS_EVERY_S, PROGRESS_FILE
from harness.run import checkpoint, distributed, record
from harness.run.build import Run
from harness.run.checkpoint import State
from harness.schedules import lr_factor
from harness.schema import FINISHED
from harness.tracking import Tracker


def trim_to_budget(targets: torch.Tensor, room: int) -> torch.Tensor:
    """Keep only the first `room` targets (row-major) so the run stops at exactly T."""
    mask = targets != 0
    over = mask.flatten().cumsum(0).view_as(mask) > room
    return targets.masked_fill(over, 0)


def train(cfg: dict, out: str | Path = "runs", should_stop: Callable[[], bool] | None = None,
          progress: bool = True) -> dict | None:
    """Train (or resume, or just read) the run for `cfg` under `out`. Returns the final row (result.json),
    or None when `should_stop()` returned True on any rank (a checkpoint was saved; calling again resumes)."""
    out = Path(out)
    result_path = out / config.run_id(cfg) / "result.json"
    if result_path.exists():
        result = json.loads(result_path.read_text())
        if result["status"] in FINISHED:
            return result
    group = distributed.from_environment()
    run = Run(cfg, out, group)
    joined = distributed.init(group, run.device)
    try:
        return _train(run, result_path, should_stop, progress and group.main)
    finally:
        if joined:
            dist.destroy_process_group()


def _train(run: Run, result_path: Path, should_stop, progress: bool) -> dict | None:
    if run.group.main:
        run.dir.mkdir(parents=True, exist_ok=True)
        write_text(run.dir / "config.yaml", yaml.safe_dump(config.unflatten(run.cfg), sort_keys=False))
    run.group.barrier()
    state, tracker = State(), None
    try:  # from here on, a run that raises records why (status failed); one whose process dies records nothing
        state = checkpoint.read(run)
        record.log(run, f"{'resume at ' + str(state.tokens) if state.tokens else 'start'}: {run.static_columns()} "
                        f"dataset {run.data.root.name} C/target {run.flops_per_target:.4g} "
                        f"processes {run.group.world}")
        tracker = Tracker(run.cfg if run.group.main else {**run.cfg, "track.mlflow": False}, result_path.parent.parent,
                          run.id, lambda message: record.log(run, message))
        result = _loop(run, state, should_stop, progress, tracker)
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        record.log(run, f"failed: {error}")
        if run.group.main:
            write_json(result_path, {**run.static_columns(), "status": "failed", "final": True, "error": error,
                                     "tokens": state.tokens})
        if tracker is not None:
            tracker.finish("failed", error)
        raise
    run.group.barrier()
    if result is not None and not run.group.main:
        return json.loads(result_path.read_text())
    return result


def _loop(run: Run, state: State, should_stop: Callable[[], bool] | None, progress: bool,
          tracker: Tracker) -> dict | None:
    cfg, model, group = run.cfg, run.model, run.group
    T, B = cfg["train.tokens"], cfg["train.batch_size"]
    points = [p for p in cfg["eval.points"] if p * T > state.tokens]
    bf16 = cfg["train.precision"] == "bf16"
    peak = accounting.matmul_peak(run.device.type, torch.bfloat16 if bf16 else torch.float32)
    bar = tqdm(total=T, initial=state.tokens, unit="tgt", unit_scale=True, disable=not progress,
               desc=run.id, dynamic_ncols=True)
    model.train()
    start = last_ckpt = last_progress = time.perf_counter()
    wall0, diverged = state.wall_s, None

    def clock() -> None:
        state.wall_s = wall0 + time.perf_counter() - start

    def save() -> None:
        nonlocal last_ckpt
        clock()
        checkpoint.write(run, state)
        last_ckpt = time.perf_counter()

    while state.tokens < T and not diverged:
        order = run.examples.epoch_order(cfg["train.seed"], state.epoch)
        while state.position < len(order) and state.tokens < T:
            t0 = time.perf_counter()
            inputs, targets = run.examples.batch(order[state.position: state.position + B])
            targets = trim_to_budget(targets, T - state.tokens)
            if run.progressive is not None:
                run.progressive.apply(state.tokens / T)
            loss, n = run.step(inputs, targets, cfg["train.lr"] * lr_factor(state.tokens / T, cfg))
            if not math.isfinite(loss):
                diverged = f"training loss {loss} at step {state.steps + 1}"
                break
            state.steps += 1
            state.tokens += n
            state.position += B
            state.loss_sum += loss * n
            state.loss_n += n
            state.train_s += time.perf_counter() - t0
            bar.update(n)
            while points and state.tokens >= points[0] * T:
                points.pop(0)
                clock()
                if group.main:
                    diverged = record.evaluation(run, state, peak, final=state.tokens >= T)  # restores train mode
                    tracker.row(state.rows[-1])
                diverged = group.from_main(diverged)
                if diverged:
                    break
                save()
            if diverged:
                break
            stop, due = group.any(should_stop is not None and should_stop(),
                                  time.perf_counter() - last_ckpt > cfg["train.checkpoint_every_s"])
            if stop:
                save()
                record.log(run, f"stopped at {state.tokens} targets; checkpoint saved")
                tracker.stopped()
                bar.close()
                return None
            if due:
                save()
            if group.main and time.perf_counter() - last_progress > PROGRESS_EVERY_S:
                write_json(run.dir / PROGRESS_FILE, {"tokens": state.tokens, "T": T, "steps": state.steps})
                last_progress = time.perf_counter()
        if state.position >= len(order):
            state.epoch, state.position = state.epoch + 1, 0
    bar.close()
    if diverged:
        clock()
        record.log(run, f"diverged at step {state.steps}, {state.tokens} targets: {diverged}")
        if group.main and (not state.rows or "diverged_reason" not in state.rows[-1]):
            record.evaluation(run, state, peak, final=True, diverged=diverged)
            tracker.row(state.rows[-1])
    status = "diverged" if diverged else "done"
    save()
    if not group.main:
        return {}
    result = record.result(run, state, status)
    write_json(run.dir / "result.json", result)
    tracker.finish(status)
    record.log(run, f"{status}: " + ", ".join(f"{k}={v:.4g}" for k, v in result.items()
                                              if k.startswith("test_") and isinstance(v, float)))
    return result
