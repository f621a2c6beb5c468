"""What a run records (rank 0): its evaluation rows, its result, and its log (columns: harness/core/schema.py)."""

from __future__ import annotations

import functools
import math
import platform
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from harness import __version__
from harness.core.schema import DIVERGED_COLUMNS, METRICS, ROW_COLUMNS, SPLITS
from harness.run.build import Run
from harness.run.checkpoint import State


def log(run: Run, message: str) -> None:
    """A line in the run's train.log (rank 0 only)."""
    if run.group.main:
        with open(run.dir / "train.log", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}\n")


def evaluation(
    run: Run, state: State, peak: float, final: bool, annealed: bool, diverged: str | None = None
) -> str | None:
    """Append one evaluation row (validation metrics; test metrics too when the row is a fitting point: final,
    or annealed at the end of a cooldown branch) to state.rows. Returns why the run diverged (`diverged` as
    given, or non-finite metrics), else None. A diverged row is final, with perplexity inf, the ranking metrics
    NaN (a non-finite model has no ranking) and where it happened. `flops` is the C of a run of `tokens` targets;
    `flops_spent` what this run has spent so far (its cooldown branches included)."""
    tps = state.spent / max(state.train_s, 1e-9)
    values = {
        "final": final,
        "annealed": annealed,
        "tokens": state.tokens,
        "flops": state.tokens * run.flops_per_target,
        "flops_spent": state.spent * run.flops_per_target,
        "epochs": state.tokens / run.examples.targets_per_epoch,
        "wall_s": state.wall_s,
        "train_s": state.train_s,
        "targets_per_s": tps,
        "mfu": run.flops_per_target * tps / peak,
        "train_loss": state.loss_sum / max(state.loss_n, 1),
    }
    row = {**run.static_columns(), **{k: values[k] for k in ROW_COLUMNS}}
    state.loss_sum, state.loss_n = 0.0, 0
    if diverged is None:
        metrics = run.evaluate("valid")
        if final or annealed:
            metrics.update(run.evaluate("test"))
        bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
        if bad:
            diverged = f"non-finite {', '.join(bad)}"
        else:
            row.update(metrics)
    if diverged is not None:
        row.update({f"{split}_{m}": math.inf if m == "ppl" else math.nan for split in SPLITS for m in METRICS})
        row.update(final=True, annealed=False, **dict(zip(DIVERGED_COLUMNS, (state.steps, state.tokens, diverged))))
    state.rows.append(row)
    log(
        run,
        f"eval at {state.tokens} targets: "
        + ", ".join(f"{k}={v:.4g}" for k, v in row.items() if k.startswith(("valid_", "test_", "train_loss", "mfu"))),
    )
    return diverged


@functools.lru_cache(maxsize=1)
def _git_sha() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def environment(run: Run) -> dict:
    """schema.ENVIRONMENT: where and with what the run was trained."""
    return {
        "host": platform.node(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "srt_scale": __version__,
        "git_sha": _git_sha(),
        "threads": torch.get_num_threads(),
        "world_size": run.group.world,
    }


def result(run: Run, state: State, status: str) -> dict:
    """The result row: the last evaluation row, the status, the config, the environment, and the oracle's figures
    on the users this run evaluates (synthetic worlds)."""
    for row in state.rows:
        row["status"] = status
    return {**state.rows[-1], **run.cfg, **environment(run), **{f"oracle_{k}": v for k, v in run.oracle.items()}}
