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
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import yaml
from tqdm import tqdm

from harness.core import config
from harness.core.io import read_result, write_json, write_text
from harness.core.schema import FINISHED, PROGRESS_EVERY_S, PROGRESS_FILE
from harness.model import accounting, schedules
from harness.run import checkpoint, distributed, identity, record
from harness.run.build import Run
from harness.run.checkpoint import State
from harness.run.tracking import Tracker


def trim_to_budget(targets: torch.Tensor, room: int) -> torch.Tensor:
    """Keep only the first `room` targets (row-major) so the run stops at exactly T."""
    mask = targets != 0
    over = mask.flatten().cumsum(0).view_as(mask) > room
    return targets.masked_fill(over, 0)


def train(
    cfg: dict, out: str | Path = "runs", should_stop: Callable[[], bool] | None = None, progress: bool = True
) -> dict | None:
    """Train (or resume, or just read) the run for `cfg` under `out`. Returns the final row (result.json),
    or None when `should_stop()` returned True on any rank (a checkpoint was saved; calling again resumes)."""
    out = Path(out)
    result_path = out / identity.run_id(cfg) / "result.json"
    result = read_result(result_path, lambda message: print(message, file=sys.stderr))
    if result is not None and result["status"] in FINISHED:
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
        state, trunk = checkpoint.read(run)
        record.log(
            run,
            f"{'resume at ' + str(state.tokens) if state.tokens else 'start'}: {run.static_columns()} "
            f"dataset {run.data.root.name} C/target {run.flops_per_target:.4g} "
            f"processes {run.group.world}",
        )
        if state.device not in (None, run.device.type):
            record.log(
                run,
                f"resumed on {run.device.type} from a checkpoint written on {state.device}: its {state.device} random "
                "streams are not restored, so the rows after this point are not those of an uninterrupted run",
            )
        tracker = Tracker(
            run.cfg if run.group.main else {**run.cfg, "track.mlflow": False},
            result_path.parent.parent,
            run.id,
            lambda message: record.log(run, message),
        )
        result = _loop(run, state, trunk, should_stop, progress, tracker)
    except Exception as e:
        error = f"{type(e).__name__}: {e}"
        record.log(run, f"failed: {error}")
        if run.group.main:
            write_json(
                result_path,
                {**run.static_columns(), "status": "failed", "final": True, "error": error, "tokens": state.tokens},
            )
        if tracker is not None:
            tracker.finish("failed", error)
        raise
    run.group.barrier()
    if result is not None and not run.group.main:
        return json.loads(result_path.read_text())
    return result


class Loop:
    """The one step loop of a run: trunk segments, cooldown branches, and the hooks every step passes through
    (evaluation points, divergence, the stop request, timed checkpoints, the progress file). `train` drives it
    through `run_all`; the throughput model (harness/plan/throughput.py) and the benchmarks drive `advance` directly,
    so every measurement of training is a measurement of this loop."""

    def __init__(
        self,
        run: Run,
        state: State | None = None,
        should_stop: Callable[[], bool] | None = None,
        progress: bool = False,
        tracker: Tracker | None = None,
        trunk: dict | None = None,
    ):
        """`trunk`: the trunk's snapshot when resuming inside a cooldown branch (its progress, not the branch's,
        says which evaluation points the trunk has still to pass)."""
        state = state or State()
        self.run, self.state, self.should_stop, self.trunk = run, state, should_stop, trunk
        self.tracker = tracker or Tracker({**run.cfg, "track.mlflow": False}, run.dir.parent, run.id, print)
        if run.group.main:
            run.dir.mkdir(parents=True, exist_ok=True)  # the progress file lives there
        cfg = run.cfg
        self.T = cfg["train.tokens"]
        done = trunk["state"]["tokens"] if trunk is not None else state.tokens
        self.points = [p * self.T for p in cfg["eval.points"] if p * self.T > done]
        bf16 = cfg["train.precision"] == "bf16"
        self.peak = accounting.matmul_peak(run.device.type, torch.bfloat16 if bf16 else torch.float32)
        self.bar = tqdm(
            total=self.T,
            initial=done,
            unit="tgt",
            unit_scale=True,
            disable=not progress,
            desc=run.id,
            dynamic_ncols=True,
        )
        self.start = self.last_ckpt = self.last_progress = time.perf_counter()
        self.wall0 = state.wall_s

    def clock(self) -> None:
        self.state.wall_s = self.wall0 + time.perf_counter() - self.start

    def save(self, trunk: dict | None = None) -> None:
        self.clock()
        checkpoint.write(self.run, self.state, trunk)
        self.last_ckpt = time.perf_counter()

    def record(self, final: bool, annealed: bool) -> str | None:
        """An evaluation row on rank 0; every rank learns whether it diverged."""
        self.clock()
        diverged = None
        if self.run.group.main:
            diverged = record.evaluation(self.run, self.state, self.peak, final, annealed)  # restores train mode
            self.tracker.row(self.state.rows[-1])
        return self.run.group.from_main(diverged)

    def step(self) -> str | None:
        """One optimizer step of the trunk (what the throughput model and the benchmarks time)."""
        return self.advance(self.state.tokens + 1, self.T)

    def advance(self, stop_at: int, length: int, trunk: dict | None = None) -> str | None:
        """Train while fewer than `stop_at` targets are done, on the schedule of a run of `length` targets (the
        last batch trimmed at `length`). Returns None, 'stopped' (a checkpoint was saved), or why it diverged."""
        run, state, cfg, group = self.run, self.state, self.run.cfg, self.run.group
        B = cfg["train.batch_size"]
        schedule = cfg if length == self.T else {**cfg, "train.tokens": length}
        order = run.examples.epoch_order(cfg["train.seed"], state.epoch)
        while state.tokens < stop_at:
            if state.position >= len(order):
                state.epoch, state.position = state.epoch + 1, 0
                order = run.examples.epoch_order(cfg["train.seed"], state.epoch)
            t0 = time.perf_counter()
            inputs, targets = run.examples.batch(order[state.position : state.position + B])
            targets = trim_to_budget(targets, length - state.tokens)
            if run.progressive is not None:
                run.progressive.apply(state.tokens / length)
            loss, n = run.step(inputs, targets, cfg["train.lr"] * schedules.lr_factor(state.tokens / length, schedule))
            if not math.isfinite(loss):
                return f"training loss {loss} at step {state.steps + 1}"
            state.steps += 1
            state.tokens += n
            state.spent += n
            state.position += B
            state.loss_sum += loss * n
            state.loss_n += n
            state.train_s += time.perf_counter() - t0
            if trunk is None:
                self.bar.update(n)
            while trunk is None and self.points and state.tokens >= self.points[0]:
                self.points.pop(0)
                final = state.tokens >= self.T
                diverged = self.record(final, annealed=final)
                if diverged:
                    return diverged
                self.save()
            stop, due = group.any(
                self.should_stop is not None and self.should_stop(),
                time.perf_counter() - self.last_ckpt > cfg["train.checkpoint_every_s"],
            )
            if stop:
                self.save(trunk)
                record.log(run, f"stopped at {state.tokens} targets{' in a branch' if trunk else ''}; checkpoint saved")
                self.tracker.stopped()
                return "stopped"
            if due:
                self.save(trunk)
            if group.main and time.perf_counter() - self.last_progress > PROGRESS_EVERY_S:
                write_json(
                    run.dir / PROGRESS_FILE,
                    {
                        "tokens": state.tokens,
                        "T": self.T,
                        "steps": state.steps,
                        "branch": state.branch,
                        "spent": state.spent,
                    },
                )
                self.last_progress = time.perf_counter()
        return None

    def branch(self, length: int, trunk: dict) -> str | None:
        """The cooldown branch that ends at `length` targets, from the trunk's snapshot: train it, record its
        end (annealed), and give the trunk back. Returns None, 'stopped' or why it diverged."""
        self.state.branch = length
        outcome = self.advance(length, length, trunk)
        if outcome is None:
            outcome = self.record(final=False, annealed=True)
        if outcome is not None:
            return outcome
        record.log(self.run, f"branch at {length} targets recorded; back to the trunk at {trunk['state']['tokens']}")
        checkpoint.restore(self.run, self.state, trunk)
        self.state.branches_done.append(length)
        self.save()
        return None

    def run_all(self) -> str | None:
        """Trunk and branches to T, first finishing the branch that was in flight when resumed (`self.trunk`)."""
        cfg, state = self.run.cfg, self.state
        ends = schedules.lengths(cfg)[:-1]
        if self.trunk is not None:
            outcome = self.branch(state.branch, self.trunk)
            if outcome is not None:
                return outcome
        while state.tokens < self.T:
            pending = [e for e in ends if e not in state.branches_done]
            fork = schedules.fork(cfg, pending[0]) if pending else self.T
            if state.tokens < fork:
                outcome = self.advance(fork, self.T)
                if outcome is not None:
                    return outcome
            if pending and state.tokens >= fork:
                outcome = self.branch(pending[0], checkpoint.snapshot(self.run, state))
                if outcome is not None:
                    return outcome
        return None


def _loop(
    run: Run, state: State, trunk: dict | None, should_stop: Callable[[], bool] | None, progress: bool, tracker: Tracker
) -> dict | None:
    loop = Loop(run, state, should_stop, progress, tracker, trunk)
    diverged = loop.run_all()
    loop.bar.close()
    if diverged == "stopped":
        return None
    if diverged:
        loop.clock()
        record.log(run, f"diverged at step {state.steps}, {state.tokens} targets: {diverged}")
        if run.group.main and (not state.rows or "diverged_reason" not in state.rows[-1]):
            record.evaluation(run, state, loop.peak, final=True, annealed=False, diverged=diverged)
            tracker.row(state.rows[-1])
    status = "diverged" if diverged else "done"
    loop.save()
    if not run.group.main:
        return {}
    result = record.result(run, state, status)
    write_json(run.dir / "result.json", result)
    tracker.finish(status)
    record.log(
        run,
        f"{status}: "
        + ", ".join(f"{k}={v:.4g}" for k, v in result.items() if k.startswith("test_") and isinstance(v, float)),
    )
    return result
