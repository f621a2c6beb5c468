"""Sweep progress: one live view of a whole sweep, while it runs here or re-attached (`status --watch`).

It shows runs by state (done / running / pending / failed of the total), FLOPs done of planned, and the ETA from
the plan's calibrated estimates: the estimated seconds still ahead (each unfinished run's `est_s` times the share
of its T not yet trained) spread over the sweep's parallel jobs. A training run reports its targets so far in
`<run>/progress.json` every PROGRESS_EVERY_S seconds. On a terminal the view is a tqdm bar; elsewhere (logs,
pipes) one line each time a run ends.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

from tqdm import tqdm

PROGRESS_FILE = "progress.json"
PROGRESS_EVERY_S = 2.0
ENDED = ("done", "diverged", "failed", "timed_out")  # states that will not move without a new submission
WAITING = ("pending", "running")
WAITING_TO_RUN = ("pending", "not_submitted", "interrupted")


def tokens_so_far(run_dir: Path) -> int:
    """Targets trained so far by a run that has not finished: its progress file, else 0."""
    for name in ("result.json", PROGRESS_FILE):
        try:
            return int(json.loads((run_dir / name).read_text())["tokens"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return 0


def snapshot(plan: dict, runs_dir: Path, states: dict[str, str]) -> dict:
    """Counts by state, FLOPs done and planned, and the plan-based ETA in seconds for a sweep's `states`."""
    parallel = int(plan["totals"].get("parallel_jobs") or 1)
    flops_done = ahead_s = 0.0
    counts: dict[str, int] = {}
    unfinished = 0
    for r in plan["runs"]:
        state = states.get(r["run_id"], "not_submitted")
        counts[state] = counts.get(state, 0) + 1
        share = 1.0 if state == "done" else min(1.0, tokens_so_far(runs_dir / r["run_id"]) / r["tokens"])
        flops_done += share * r["flops_spent"]
        if state not in ENDED:
            unfinished += 1
            ahead_s += (1 - share) * r["est_s"]
    return {"total": len(plan["runs"]), "counts": counts, "flops_done": flops_done,
            "flops": plan["totals"]["flops"], "eta_s": ahead_s / max(1, min(parallel, unfinished))}


def describe(snap: dict) -> str:
    c = snap["counts"]
    failed = sum(c.get(s, 0) for s in ("failed", "timed_out", "interrupted"))
    parts = [f"{c.get('done', 0)}/{snap['total']} done", f"{c.get('running', 0)} running",
             f"{c.get('pending', 0) + c.get('not_submitted', 0)} waiting", f"{failed} failed"]
    if c.get("diverged"):
        parts.append(f"{c['diverged']} diverged")
    share = snap["flops_done"] / snap["flops"] if snap["flops"] else 1.0
    return (f"{', '.join(parts)} | {snap['flops_done']:.3g} of {snap['flops']:.3g} FLOPs ({share:.0%}) | "
            f"ETA {_duration(snap['eta_s'])} (plan)")


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s"


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
                self.bar = tqdm(total=snap["flops"], unit="FLOP", unit_scale=True, dynamic_ncols=True,
                                bar_format="sweep {percentage:3.0f}%|{bar:20}| {desc}")
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

