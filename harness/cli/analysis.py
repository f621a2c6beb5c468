"""`srt-scale fit`, `plot`, `report`, `compare` and `advise`: what a results table says (analysis/)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from analysis import advise, compare, design, report
from analysis import table as results_table
from analysis.table import Spec
from harness.cli.sweep import cmd_collect
from harness.core import config
from harness.core.errors import UserError
from harness.plan import grid, throughput
from harness.study import adaptive


def _table_spec(args: argparse.Namespace):
    """The --column/--split/--rows/--pool-negatives/--protocol/--bad-values/--duplicates/--n-column options as an
    analysis.table.Spec."""
    return Spec(
        columns=Spec.parse_columns(args.column),
        split=args.split,
        rows=args.rows,
        pool_negatives=args.pool_negatives,
        protocol=args.protocol,
        bad_values=args.bad_values,
        duplicates=args.duplicates,
        n_column=args.n_column,
    )


def _analysis_input(source: str, spec) -> tuple:
    """TABLE (.parquet/.csv) or SWEEP_DIR (collected first when it has no results table yet) -> (table, dir)."""
    path = Path(source)
    if path.is_dir() and (path / "plan.json").exists() and not (path / "results.parquet").exists():
        cmd_collect(argparse.Namespace(sweep_dir=str(path), out=None))
    return results_table.load(path, spec), (path if path.is_dir() else path.parent)


def cmd_analysis(args: argparse.Namespace) -> None:
    analyse(args.source, args.out, args, args.command, _table_spec(args))


def analyse(source: str, out: str | None, args: argparse.Namespace, what: str, spec) -> None:
    """Fit (and draw, and report) a table with the fit options of `args` (--bootstrap, --holdout, --intervals)."""
    table, where = _analysis_input(source, spec)
    out = Path(out) if out else where
    fits = report.write(
        table, out, n_boot=args.bootstrap, holdout_divisor=args.holdout, what=what, intervals=args.intervals
    )
    print(report.summary(fits))
    written = {"fit": "fits.json", "plot": "fits.json and figures/", "report": "fits.json, figures/ and report.md"}
    print(f"wrote {written[what]} under {out}")


def cmd_compare(args: argparse.Namespace) -> None:
    result = compare.compare(args.a, args.b, n_boot=args.bootstrap, intervals=args.intervals)
    figures = compare.write(result, args.out) if args.out else []
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "_studies"}, indent=2))
        return
    print(compare.format_compare(result))
    if args.out:
        print(f"wrote compare.json and {len(figures)} figure(s) under {args.out}")


def cmd_advise(args: argparse.Namespace) -> None:
    if args.next is not None:
        return _advise_next(args)
    if args.budget is None:
        raise UserError("advise needs --budget C (or --next Q --spend C for the next runs of a study)")
    a = advise.advise(
        advise.load_fits(args.source, spec=_table_spec(args)), args.budget, args.negatives, not args.table_k
    )
    if args.grid:  # the run itself: the grid's shape nearest N_opt, trained for T_opt
        shape, cfg = grid.config_for(args.grid, a["n_params"], a["tokens"])
        a["shape"] = {
            "d_model": shape.d_model,
            "n_layers": shape.n_layers,
            "n_heads": shape.n_heads,
            "d_ff": shape.d_ff,
            "n_params": shape.n_params,
        }
        run = throughput.estimate(cfg, grid.flops_per_target(cfg), args.threads)
        a["est_s"] = throughput.job_seconds([run["est_s"]], args.threads)
        a["time_basis"] = f"the run priced by the throughput model (its shape, {args.grid})"
    else:
        cfg = config.resolve(throughput.REFERENCE)
        speed = throughput.estimate(cfg, grid.flops_per_target(cfg), args.threads)["flops_per_s"]
        a["est_s"] = args.budget / speed + throughput.process_seconds(args.threads)
        a["time_basis"] = (
            f"C / {speed / 1e9:.3g} GFLOP/s, the reference shape's measured rate (no --grid: "
            "small shapes train slower per FLOP, pass --grid for the run's own time)"
        )
    if args.json:
        print(json.dumps(a, indent=2))
        return
    print(advise.format_advice(a))
    if "shape" in a:
        s = a["shape"]
        print(
            f"  nearest shape ({args.grid}): d_model={s['d_model']}, n_layers={s['n_layers']}, "
            f"n_heads={s['n_heads']}, d_ff={s['d_ff']} (N = {s['n_params']:,}, "
            f"{s['n_params'] / a['n_params'] - 1:+.0%} from N_opt)"
        )


def _advise_next(args: argparse.Namespace) -> None:
    """`advise --next Q --spend C`: the runs that shrink the target's interval most per FLOP (analysis/design.py)."""
    if args.spend is None:
        raise UserError("--next needs --spend C: the FLOPs the proposed runs may use")
    if Path(args.source).suffix == ".json":
        raise UserError(f"{args.source}: --next needs the runs themselves: a results table or a sweep directory")
    spec = _table_spec(args)
    table, _ = _analysis_input(args.source, spec)
    problem = design.problem(table, spec.split, args.negatives, args.target, args.at, args.bootstrap)
    pool = adaptive.grid_pool(args.grid, problem) if args.grid else design.table_pool(problem)
    proposal = design.propose(problem, pool, args.spend, args.next, adaptive.used_seeds(table))
    print(json.dumps(proposal, indent=2) if args.json else design.format_proposal(proposal))
