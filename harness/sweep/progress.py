"""Sweep progress: one live view of a whole sweep, while it runs here or re-attached (`status --watch`).

It shows runs by state (done / running / pending / failed of the total), FLOPs done of planned, and the ETA. A
training run reports the targets it has trained so far, cooldown branches included (`spent`), in
`<run>/progress.json` every PROGRESS_EVERY_S seconds, so a run's share done is spent / its planned targets_spent.
The ETA starts from the plan's estimates (harness/plan/throughput.py) and corrects them by what the finished runs
actually took: every estimate still ahead is scaled by (their measured training seconds / their estimated ones),
then spread over the sweep's parallel jobs, and is never less than the longest single run still ahead. On a
terminal the view is a tqdm bar; elsewhere (logs, pipes) one line each time a run ends.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

from tqdm import tqdm

from harness.core.schema import PROGRESS_FILE
from harness.plan.throughput import FLOPS

ENDED = ("done", "diverged", "failed", "timed_out")  # states that will not move without a new submission
WAITING = ("pending", "running")
WAITING_TO_RUN = ("pending", "not_submitted", "interrupted")


def _read(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def tokens_so_far(run_dir: Path) -> int:
    """The trunk's targets so far of a run: its result, else its progress file, else 0."""
    for name in ("result.json", PROGRESS_FILE):
        blob = _read(run_dir / name)
        if isinstance(blob, dict) and isinstance(blob.get("tokens"), (int, float)):
            return int(blob["tokens"])
    return 0


def _share(run_dir: Path, planned: dict, state: str) -> float:
    """How much of a run's planned training (its targets_spent, branches included) is done."""
    if state == "done":
        return 1.0
    blob = _read(run_dir / PROGRESS_FILE) or {}
    spent = blob.get("spent", 0)
    return min(1.0, spent / planned["targets_spent"]) if isinstance(spent, (int, float)) else 0.0


def snapshot(plan: dict, runs_dir: Path, states: dict[str, str]) -> dict:
    """Counts by state, FLOPs done and planned, the measured/estimated time ratio of the finished runs, and the
    ETA in seconds for a sweep's `states`."""
    parallel = int(plan["totals"].get("parallel_jobs") or 1)
    flops_done, counts, measured, estimated = 0.0, {}, 0.0, 0.0
    ahead = []
    for r in plan["runs"]:
        state = states.get(r["run_id"], "not_submitted")
        counts[state] = counts.get(state, 0) + 1
        share = _share(runs_dir / r["run_id"], r, state)
        flops_done += share * r["flops_spent"]
        if state == "done":
            result = _read(runs_dir / r["run_id"] / "result.json") or {}
            if isinstance(result.get("wall_s"), (int, float)):
                measured += result["wall_s"]
                estimated += r["est_s"] - r["est_setup_s"]
        elif state not in ENDED:
            ahead.append((r, share))
    ratio = measured / estimated if estimated > 0 else 1.0
    left = [
        (r["est_setup_s"] if share == 0 else 0.0) + (1 - share) * (r["est_s"] - r["est_setup_s"]) * ratio
        for r, share in ahead
    ]
    eta = max(sum(left) / max(1, min(parallel, len(left))), max(left, default=0.0))
    return {
        "total": len(plan["runs"]),
        "counts": counts,
        "flops_done": flops_done,
        "flops": plan["totals"]["flops"],
        "eta_s": eta,
        "time_ratio": ratio,
        "untimed": plan["totals"].get("timed_on") == FLOPS and estimated == 0,  # no figures and no finished run
    }


def describe(snap: dict) -> str:
    c = snap["counts"]
    failed = sum(c.get(s, 0) for s in ("failed", "timed_out", "interrupted"))
    parts = [
        f"{c.get('done', 0)}/{snap['total']} done",
        f"{c.get('running', 0)} running",
        f"{c.get('pending', 0) + c.get('not_submitted', 0)} waiting",
        f"{failed} failed",
    ]
    if c.get("diverged"):
        parts.append(f"{c['diverged']} diverged")
    share = snap["flops_done"] / snap["flops"] if snap["flops"] else 1.0
    ratio = snap.get("time_ratio", 1.0)
    basis = "plan" if ratio == 1.0 else f"plan x {ratio:.2f}, as the finished runs took"
    eta = "ETA after the first finished run" if snap.get("untimed") else f"ETA {_duration(snap['eta_s'])} ({basis})"
    return f"{', '.join(parts)} | {snap['flops_done']:.3g} of {snap['flops']:.3g} FLOPs ({share:.0%}) | {eta}"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return (
        f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else f"{seconds // 60}m{seconds % 60:02d}s"
    )


class View:
    """The live view: a tqdm bar over FLOPs on a terminal, otherwise a line through `log` when a run ends."""

    def __init__(self, log: Callable[[str], None] = print, live: bool | None = None):
        self.log = log
        self.live = sys.stderr.isatty() if live is None else live
        self.bar: tqdm | None = None
        self.last: tuple | None = None

    def update(self, snap: dict) -> None:
        if self.live:
            if self.bar is None:
                self.bar = tqdm(
                    total=snap["flops"],
                    unit="FLOP",
                    unit_scale=True,
                    dynamic_ncols=True,
                    bar_format="sweep {percentage:3.0f}%|{bar:20}| {desc}",
                )
            self.bar.n = snap["flops_done"]
            self.bar.set_description_str(describe(snap), refresh=True)
            return
        key = tuple(sorted((k, v) for k, v in snap["counts"].items() if k not in ("running", *WAITING_TO_RUN)))
        if key != self.last:  # a line when a run ends (not when the next one starts)
            self.last = key
            self.log(describe(snap))

    def write(self, message: str) -> None:
        """A line above the bar (or through `log`)."""
        if self.bar is not None:
            self.bar.write(message)
        else:
            self.log(message)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
