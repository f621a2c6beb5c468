"""`srt-scale plan`, `sweep`, `status` and `collect`: a grid planned into runs, submitted, watched and
collected into the results table (harness/plan/, harness/sweep/)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from harness.core import config
from harness.core.errors import UserError
from harness.core.registry import EXECUTORS
from harness.plan import grid, plan, throughput
from harness.sweep import progress, results, sweep


def _threads(profile: dict) -> int:
    return int(profile["cpus_per_task"])


def _planned(args: argparse.Namespace, points: list, profile: dict) -> dict:
    """The plan of a grid's points timed where the executor runs them (or not at all with --no-calibrate), its
    warnings naming any key the grid gives in two places (grid.shadowed)."""
    target = (
        throughput.FLOPS
        if args.no_calibrate
        else EXECUTORS.get(args.executor).timed_on(
            [p.cfg for p in points], profile, lambda m: print(m, file=sys.stderr)
        )
    )
    result = plan.plan(points, _threads(profile), target)
    result["diagnostics"]["warnings"] += grid.shadowed(args.grid)
    return result


def _show(points: list, which: str, profile: dict) -> str:
    """Run `which` (a run id, or its 0-based index in the plan) of a grid, resolved: its config as a run config
    YAML (`srt-scale train` reads it back) and the profile its jobs get, every key with its value."""
    chosen = [p for i, p in enumerate(points) if which in (p.run_id, str(i))]
    if not chosen:
        raise UserError(f"--show {which}: no run of this grid has that id or index (0 .. {len(points) - 1})")
    p = chosen[0]
    head = f"# run {p.run_id} (index {points.index(p)} of {len(points)}): " + (
        ", ".join(f"{k}={v}" for k, v in p.values.items()) or "the base config"
    )
    return (
        f"{head}\n# the resolved run config: base < set < axes < zip < scale, then every default\n"
        + yaml.safe_dump(config.unflatten(p.cfg), sort_keys=False)
        + "# the resolved executor profile (docs/config.md, 'Cluster profile')\n"
        + yaml.safe_dump({"profile": profile}, sort_keys=False)
    )


def cmd_plan(args: argparse.Namespace) -> None:
    profile = sweep.load_profile(args.profile)
    if args.show is not None:
        print(_show(grid.load(args.grid), args.show, profile), end="")
        return
    result = _planned(args, grid.load(args.grid), profile)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(
            plan.format_table(
                result,
                sweep.parallel_jobs(args.executor, profile),
                sweep.job_count(args.executor, len(result["runs"]), profile),
            )
        )


def cmd_sweep(args: argparse.Namespace) -> None:
    profile = sweep.load_profile(args.profile)
    if args.executor == "local" and args.max_jobs:
        profile["max_jobs"] = args.max_jobs
    points = grid.load(args.grid)
    out = Path(args.out or Path("sweeps") / Path(args.grid).stem)
    planned = _planned(args, points, profile)
    planned["totals"]["parallel_jobs"] = sweep.parallel_jobs(args.executor, profile)
    print(
        plan.format_table(
            planned, planned["totals"]["parallel_jobs"], sweep.job_count(args.executor, len(points), profile)
        ),
        flush=True,
    )
    s = sweep.Sweep(out)
    s.write_plan(planned, args.grid)
    sweep.submit(
        s,
        points,
        args.executor,
        profile,
        retry_failed=args.retry_failed,
        wait=not args.no_wait,
        log=lambda m: print(m, flush=True),
    )
    _print_status(s)


def _print_status(s) -> None:
    counts, failing = sweep.status(s)
    print(f"{s.root}: {sum(counts.values())} runs: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    print("  " + progress.describe(progress.snapshot(s.plan, s.runs_dir, s.states())))
    for run_id, state, line in failing:
        print(f"  {run_id} {state}: {line}")


def cmd_status(args: argparse.Namespace) -> None:
    s = sweep.Sweep(args.sweep_dir)
    if args.watch:
        sweep.wait_for(s, poll_s=args.poll, log=lambda m: print(m, flush=True))
    _print_status(s)


def cmd_collect(args: argparse.Namespace) -> None:
    s = sweep.Sweep(args.sweep_dir)
    table, problems = results.collect(s.runs_dir, s.states())
    for p in problems:
        print(f"  {p}")
    if table.empty:
        raise UserError(f"{args.sweep_dir}: no run has written an evaluation yet")
    budgets = {r["run_id"]: r["budget"] for r in s.plan["runs"] if r.get("budget")}
    if budgets:  # an IsoFLOP design: each run's budget label, which approach 2 groups by
        table["budget"] = table["run_id"].map(budgets)
    parquet, csv = results.write_table(table, args.out or s.root / "results")
    finals = table[table["final"]]
    print(f"{len(table)} rows ({len(finals)} final, {table['run_id'].nunique()} runs) -> {parquet} and {csv}")
