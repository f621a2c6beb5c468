"""`srt-scale study`: plan -> sweep -> collect -> fit -> figures -> report, once or in adaptive rounds
(harness/study/adaptive.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from analysis.table import Spec
from harness.cli.analysis import analyse
from harness.cli.sweep import cmd_collect, cmd_sweep
from harness.core.errors import UserError
from harness.study import adaptive


def _sweep_round(args: argparse.Namespace):
    """A round of an adaptive study: sweep its grid into its directory (waiting for every run) and collect it."""

    def run(grid_yaml: Path, sweep_dir: Path) -> None:
        cmd_sweep(
            argparse.Namespace(
                **{**vars(args), "grid": str(grid_yaml), "out": str(sweep_dir), "retry_failed": False, "no_wait": False}
            )
        )
        cmd_collect(argparse.Namespace(sweep_dir=str(sweep_dir), out=None))

    return run


def cmd_study(args: argparse.Namespace) -> None:
    if args.adaptive:
        return _adaptive_study(args)
    args.out = args.out or str(Path("sweeps") / Path(args.grid).stem)
    args.retry_failed, args.no_wait = False, False
    cmd_sweep(args)
    table = Path(args.report) / "results" if args.report else None
    cmd_collect(argparse.Namespace(sweep_dir=args.out, out=table))
    analyse(f"{table}.parquet" if table else args.out, None, args, "report", Spec())


def _adaptive_study(args: argparse.Namespace) -> None:
    if args.spend is None:
        raise UserError("--adaptive needs --spend C: the FLOPs the whole study may use")
    out = Path(args.out or Path("sweeps") / f"{Path(args.grid).stem}-adaptive")
    adaptive.run(
        args.grid,
        out,
        args.spend,
        args.rounds,
        args.target,
        args.width,
        args.next,
        args.negatives,
        args.design_bootstrap,
        _sweep_round(args),
        log=lambda m: print(m, flush=True),
    )
    analyse(str(out / "results.parquet"), args.report, args, "report", Spec())
    figure = adaptive.record(out, Path(args.report) if args.report else out)
    print(f"wrote the study's record and {figure[0]}")
