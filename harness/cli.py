"""The `srt-scale` command line. User mistakes print one line and exit 2 (no traceback)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from harness import config
from harness.errors import UserError
from harness.registry import EXECUTORS
from harness.schema import BAD_VALUES, DUPLICATES, FITTING_ROWS, INTERVALS, SPLITS


def _config_keys_help() -> str:
    width = max(len(k.name) for k in config.SCHEMA)
    return "config keys (YAML sections or --set dotted keys):\n" + "\n".join(
        f"  {k.name:<{width}}  {json.dumps(k.default):>10}  {k.doc}" for k in config.SCHEMA)


def _source_config(source: str, sets: list[str]) -> dict:
    """SOURCE is a config YAML (its data section is used) or a source name (data.name)."""
    if source.endswith((".yaml", ".yml")):
        return config.load(source, sets)
    return config.load(None, [f"data.name={source}", *sets])


def cmd_data_prepare(args: argparse.Namespace) -> None:
    from harness.data.prepare import prepare

    if args.out:
        os.environ["SRT_SCALE_CACHE"] = str(Path(args.out).resolve())
    dataset, hit = prepare(_source_config(args.source, args.set))
    print(f"{'cache hit' if hit else 'prepared'}: {dataset.root}")
    print(json.dumps(dataset.manifest, indent=2))


def cmd_train(args: argparse.Namespace) -> None:
    from harness import sweep
    from harness.run import distributed, train

    cfg = config.load(args.config, args.set + ([f"transfer.init_from={args.init_from}"] if args.init_from else []))
    out = Path(args.out)
    if args.nproc < 1:
        raise UserError(f"--nproc {args.nproc}: expected a positive number of processes")
    print(f"run {config.run_id(cfg)} -> {out / config.run_id(cfg)}"
          f"{f' ({args.nproc} processes)' if args.nproc > 1 else ''}", flush=True)
    sweep.pretrain(cfg)
    if args.nproc > 1:
        distributed.launch(args.nproc, train, (cfg, out, None, not args.quiet))
        result = json.loads((out / config.run_id(cfg) / "result.json").read_text())
    else:
        result = train(cfg, out, progress=not args.quiet)
    shown = ["status", "n_params", "tokens", "flops", "epochs", "wall_s", "targets_per_s", "mfu"]
    shown += [k for k in result if k.startswith(("valid_", "test_", "oracle_test_"))]
    width = max(map(len, shown))
    for k in shown:
        v = result[k]
        print(f"  {k:<{width}}  {v:.5g}" if isinstance(v, float) else f"  {k:<{width}}  {v}")


def _threads(profile: dict) -> int:
    return int(profile["cpus_per_task"])


def cmd_plan(args: argparse.Namespace) -> None:
    from harness import grid, plan, sweep

    profile = sweep.load_profile(args.profile)
    result = plan.plan(grid.load(args.grid), _threads(profile))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(plan.format_table(result, sweep.parallel_jobs(args.executor, profile),
                                sweep.job_count(args.executor, len(result["runs"]), profile)))


def cmd_sweep(args: argparse.Namespace) -> None:
    from harness import grid, plan, sweep

    profile = sweep.load_profile(args.profile)
    if args.executor == "local" and args.max_jobs:
        profile["max_jobs"] = args.max_jobs
    points = grid.load(args.grid)
    out = Path(args.out or Path("sweeps") / Path(args.grid).stem)
    planned = plan.plan(points, _threads(profile))
    planned["totals"]["parallel_jobs"] = sweep.parallel_jobs(args.executor, profile)
    print(plan.format_table(planned, planned["totals"]["parallel_jobs"],
                            sweep.job_count(args.executor, len(points), profile)), flush=True)
    s = sweep.Sweep(out)
    s.write_plan(planned, args.grid)
    sweep.submit(s, points, args.executor, profile, retry_failed=args.retry_failed, wait=not args.no_wait,
                 log=lambda m: print(m, flush=True))
    _print_status(s)


def _print_status(s) -> None:
    from harness import sweep

    from harness import progress

    counts, failing = sweep.status(s)
    print(f"{s.root}: {sum(counts.values())} runs: " + ", ".join(f"{n} {k}" for k, n in counts.items()))
    print("  " + progress.describe(progress.snapshot(s.plan, s.runs_dir, s.states())))
    for run_id, state, line in failing:
        print(f"  {run_id} {state}: {line}")


def cmd_status(args: argparse.Namespace) -> None:
    from harness import sweep

    s = sweep.Sweep(args.sweep_dir)
    if args.watch:
        sweep.wait_for(s, poll_s=args.poll, log=lambda m: print(m, flush=True))
    _print_status(s)


def cmd_collect(args: argparse.Namespace) -> None:
    from harness import results, sweep

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


def _table_spec(args: argparse.Namespace):
    """The --column/--split/--rows/--pool-negatives/--protocol/--bad-values/--duplicates options as an
    analysis.table.Spec."""
    from analysis.table import Spec

    return Spec(columns=Spec.parse_columns(args.column), split=args.split, rows=args.rows,
                pool_negatives=args.pool_negatives, protocol=args.protocol, bad_values=args.bad_values,
                duplicates=args.duplicates)


def _analysis_input(source: str, spec) -> tuple:
    """TABLE (.parquet/.csv) or SWEEP_DIR (collected first when it has no results table yet) -> (table, dir)."""
    from analysis import table as results_table

    path = Path(source)
    if path.is_dir() and (path / "plan.json").exists() and not (path / "results.parquet").exists():
        cmd_collect(argparse.Namespace(sweep_dir=str(path), out=None))
    return results_table.load(path, spec), (path if path.is_dir() else path.parent)


def cmd_analysis(args: argparse.Namespace) -> None:
    _analyse(args.source, args.out, args, args.command, _table_spec(args))


def _analyse(source: str, out: str | None, args: argparse.Namespace, what: str, spec) -> None:
    """Fit (and draw, and report) a table with the fit options of `args` (--bootstrap, --holdout, --intervals)."""
    from analysis import report

    table, where = _analysis_input(source, spec)
    out = Path(out) if out else where
    fits = report.write(table, out, n_boot=args.bootstrap, holdout_divisor=args.holdout, what=what,
                        intervals=args.intervals)
    print(report.summary(fits))
    written = {"fit": "fits.json", "plot": "fits.json and figures/", "report": "fits.json, figures/ and report.md"}
    print(f"wrote {written[what]} under {out}")


def cmd_compare(args: argparse.Namespace) -> None:
    from analysis import compare

    result = compare.compare(args.a, args.b, n_boot=args.bootstrap, intervals=args.intervals)
    figures = compare.write(result, args.out) if args.out else []
    if args.json:
        print(json.dumps({k: v for k, v in result.items() if k != "_studies"}, indent=2))
        return
    print(compare.format_compare(result))
    if args.out:
        print(f"wrote compare.json and {len(figures)} figure(s) under {args.out}")


def cmd_advise(args: argparse.Namespace) -> None:
    from analysis import advise
    from harness import grid, throughput

    if args.next is not None:
        return _advise_next(args)
    if args.budget is None:
        raise UserError("advise needs --budget C (or --next Q --spend C for the next runs of a study)")
    a = advise.advise(advise.load_fits(args.source, spec=_table_spec(args)), args.budget, args.negatives,
                      not args.table_k)
    if args.grid:  # the run itself: the grid's shape nearest N_opt, trained for T_opt
        shape, cfg = grid.config_for(args.grid, a["n_params"], a["tokens"])
        a["shape"] = {"d_model": shape.d_model, "n_layers": shape.n_layers, "n_heads": shape.n_heads,
                      "d_ff": shape.d_ff, "n_params": shape.n_params}
        run = throughput.estimate(cfg, grid.flops_per_target(cfg), args.threads)
        a["est_s"] = throughput.job_seconds([run["est_s"]], args.threads)
        a["time_basis"] = f"the run priced by the throughput model (its shape, {args.grid})"
    else:
        cfg = config.resolve(throughput.REFERENCE)
        speed = throughput.estimate(cfg, grid.flops_per_target(cfg), args.threads)["flops_per_s"]
        a["est_s"] = args.budget / speed + throughput.process_seconds(args.threads)
        a["time_basis"] = (f"C / {speed / 1e9:.3g} GFLOP/s, the reference shape's measured rate (no --grid: "
                           "small shapes train slower per FLOP, pass --grid for the run's own time)")
    if args.json:
        print(json.dumps(a, indent=2))
        return
    print(advise.format_advice(a))
    if "shape" in a:
        s = a["shape"]
        print(f"  nearest shape ({args.grid}): d_model={s['d_model']}, n_layers={s['n_layers']}, "
              f"n_heads={s['n_heads']}, d_ff={s['d_ff']} (N = {s['n_params']:,}, "
              f"{s['n_params'] / a['n_params'] - 1:+.0%} from N_opt)")


def _advise_next(args: argparse.Namespace) -> None:
    """`advise --next Q --spend C`: the runs that shrink the target's interval most per FLOP (analysis/design.py)."""
    from analysis import design
    from harness import adaptive

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


def _sweep_round(args: argparse.Namespace):
    """A round of an adaptive study: sweep its grid into its directory (waiting for every run) and collect it."""
    def run(grid_yaml: Path, sweep_dir: Path) -> None:
        cmd_sweep(argparse.Namespace(**{**vars(args), "grid": str(grid_yaml), "out": str(sweep_dir),
                                        "retry_failed": False, "no_wait": False}))
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
    from analysis.table import Spec

    _analyse(f"{table}.parquet" if table else args.out, None, args, "report", Spec())


def _adaptive_study(args: argparse.Namespace) -> None:
    from analysis.table import Spec
    from harness import adaptive

    if args.spend is None:
        raise UserError("--adaptive needs --spend C: the FLOPs the whole study may use")
    out = Path(args.out or Path("sweeps") / f"{Path(args.grid).stem}-adaptive")
    adaptive.run(args.grid, out, args.spend, args.rounds, args.target, args.width, args.next, args.negatives,
                 args.design_bootstrap, _sweep_round(args), log=lambda m: print(m, flush=True))
    _analyse(str(out / "results.parquet"), args.report, args, "report", Spec())
    figure = adaptive.record(out, Path(args.report) if args.report else out)
    print(f"wrote the study's record and {figure[0]}")


def design_args(sp: argparse.ArgumentParser, study: bool) -> None:
    g = sp.add_argument_group("adaptive design (docs/analysis.md, \"Adaptive design\")")
    g.add_argument("--spend", type=float, metavar="C", help="FLOPs the proposed runs may use (branches included)"
                   + ("; with --adaptive, the whole study's" if study else ""))
    g.add_argument("--target", choices=("exponents", "n_opt", "loss"), default="exponents",
                   help="whose 95%% interval to shrink: alpha and beta jointly, ln N_opt at --at, or the predicted "
                        "loss there (default exponents)")
    if not study:
        g.add_argument("--next", type=int, metavar="Q", help="propose up to Q new runs (needs --spend)")
        g.add_argument("--at", type=float, metavar="C*", help="the budget of the n_opt and loss targets "
                                                              "(default 10x the table's largest run)")
        g.add_argument("--bootstrap", type=int, default=200, help="bootstrap refits of the law (default 200)")
    else:
        g.add_argument("--adaptive", action="store_true", help="seed design, then rounds of advise --next -> "
                                                               "sweep -> collect -> fit")
        g.add_argument("--rounds", type=int, default=4, help="--adaptive: rounds after the seed (default 4)")
        g.add_argument("--width", type=float, help="--adaptive: stop once every interval of the target is this "
                                                   "narrow")
        g.add_argument("--next", type=int, default=6, metavar="Q", help="--adaptive: runs per round (default 6)")
        g.add_argument("--negatives", help="--adaptive: the K of the study (default: the grid's last)")
        g.add_argument("--design-bootstrap", type=int, default=200, help="--adaptive: bootstrap refits of each "
                                                                         "round's fit (default 200)")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="srt-scale", description="Scaling-law studies of the Scalable Recommendation "
                                "Transformer: prepare datasets, train runs, sweep grids locally or on Slurm, fit scaling laws, draw figures.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="dataset commands", description="Dataset commands.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    prep = data_sub.add_parser(
        "prepare", help="build (or find cached) a canonical dataset and print its manifest",
        description="Build the canonical dataset (interactions, items, manifest) for a source, or find it in the "
                    "cache (keyed by the source's content and the preparation options), and print its manifest.",
        epilog="sources: synthetic, ml-100k, recbole, amazon2018, movielens, table "
               "(file sources need --set data.path=...)")
    prep.add_argument("source", help="a source name, or a config YAML whose data section is used")
    prep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a data.* key")
    prep.add_argument("--out", help="cache directory (default: $SRT_SCALE_CACHE or ./.srt-cache)")
    prep.set_defaults(func=cmd_data_prepare)

    train = sub.add_parser(
        "train", help="train one run and print its final metrics",
        description="Train one configuration into OUT/<run_id>/ (config.yaml, metrics.jsonl, result.json, "
                    "checkpoint.pt, train.log). A finished run is not trained again; an interrupted one resumes.",
        epilog=_config_keys_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("config", help="run config YAML")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config key, e.g. --set model.d_model=128 (repeatable)")
    train.add_argument("--out", default="runs", help="directory of run directories (default: ./runs)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--nproc", type=int, default=1, metavar="N",
                       help="data-parallel processes on this machine (gloo on CPU, NCCL on CUDA); train.batch_size "
                            "stays the global batch (default 1)")
    train.add_argument("--init-from", metavar="RUN_DIR", help="fine-tune from a pretraining run directory (any "
                                                              "catalog); the same as --set transfer.init_from=RUN_DIR")
    train.set_defaults(func=cmd_train)

    def executor_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--executor", choices=EXECUTORS.names(), default="local",
                        help="debug: in this process; local: parallel processes; slurm: one sbatch job array "
                             "(default: local)")
        sp.add_argument("--profile", help="cluster profile YAML (slurm/*.yaml): resources, array parallelism, "
                                          "sbatch flags, setup lines; cpus_per_task is each job's thread budget")

    plan_p = sub.add_parser("plan", help="print every run of a grid with shape, N, T, K, FLOPs, estimated time",
                            description="Resolve a grid: every run's shape (solved for its target N), actual N, "
                                        "T, K, FLOPs and estimated time on the executor. Nothing trains.")
    plan_p.add_argument("grid", help="grid YAML")
    executor_args(plan_p)
    plan_p.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan_p.set_defaults(func=cmd_plan)

    sweep_p = sub.add_parser("sweep", help="submit a grid's runs (resumable; finished runs are never rerun)",
                             description="Plan a grid and submit every run that has no finished result.json and "
                                         "no job pending or running, through submitit.")
    def submit_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("grid", help="grid YAML")
        executor_args(sp)
        sp.add_argument("--out", help="sweep directory (default: sweeps/<grid name>)")
        sp.add_argument("--max-jobs", type=int, help="local: runs at a time (default: CPUs / cpus_per_task)")

    submit_args(sweep_p)
    sweep_p.add_argument("--retry-failed", action="store_true", help="also resubmit failed, diverged and "
                                                                     "timed-out runs")
    sweep_p.add_argument("--no-wait", action="store_true", help="slurm: return once the array is submitted")
    sweep_p.set_defaults(func=cmd_sweep)

    status_p = sub.add_parser("status", help="count a sweep's runs by state; show why runs failed",
                              description="Counts of a sweep's runs by state (done, running, pending, interrupted, "
                                          "failed, diverged, timed_out, not_submitted), FLOPs done of planned with "
                                          "the plan's ETA, and each failing run's last log line.")
    status_p.add_argument("sweep_dir")
    status_p.add_argument("--watch", action="store_true", help="show the sweep's live progress (runs by state, "
                          "FLOPs done, ETA from the plan) until no run is pending or running")
    status_p.add_argument("--poll", type=float, default=2.0, help="--watch: seconds between looks (default 2)")
    status_p.set_defaults(func=cmd_status)

    collect_p = sub.add_parser("collect", help="gather a sweep's runs into one results table",
                               description="One row per (run, evaluation point) with the results table's columns "
                                           "(docs/design.md), written as Parquet and CSV.")
    collect_p.add_argument("sweep_dir")
    collect_p.add_argument("--out", help="table path without suffix (default: SWEEP_DIR/results)")
    collect_p.set_defaults(func=cmd_collect)

    def table_args(sp: argparse.ArgumentParser) -> None:
        g = sp.add_argument_group("reading a table from elsewhere (docs/analysis.md)")
        g.add_argument("--column", action="append", default=[], metavar="NAME=SOURCE",
                       help="read the table's column SOURCE as NAME (n_params, tokens, flops, negatives, run_id, "
                            "status, final, annealed, budget, test_ppl, test_loss (nats: ppl = e^loss), "
                            "test_ndcg@5, and the valid_ ones); repeatable")
        g.add_argument("--split", choices=SPLITS, default="test", help="the split whose metrics are fitted")
        g.add_argument("--rows", choices=FITTING_ROWS, default="auto",
                       help="fitting points: annealed rows if any else final rows (auto), final, annealed, "
                            "every evaluation, or envelope (every evaluation at its run's best so far)")
        g.add_argument("--pool-negatives", action="store_true", help="fit all K together")
        g.add_argument("--protocol", default="full catalog", help="the evaluation protocol named in axis labels")
        g.add_argument("--bad-values", choices=BAD_VALUES, default="error",
                       help="a finished run's perplexity <= 0 or not finite, loss not finite, or NDCG@5 outside "
                            "[0, 1]: a one-line error (default), or the row excluded and counted in fits.json "
                            "and the report")
        g.add_argument("--duplicates", choices=DUPLICATES, default="error",
                       help="a row with the same (run_id, tokens) as an earlier one (without run ids: the same "
                            "values in every column): a one-line error naming both lines (default), or the first "
                            "kept and the rest counted in fits.json")

    def fit_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--bootstrap", type=int, default=1000, help="refits for the joint laws' 95%% intervals "
                        "(default 1000)")
        sp.add_argument("--intervals", choices=INTERVALS, default="auto",
                        help="how the joint laws' intervals are made: runs = parametric bootstrap with a random "
                             "effect per run (tables drawn around the law with the noise model estimated from the "
                             "residuals by run, each refitted); points = bootstrap over fitting points (right when "
                             "each point is its own run); auto (default) = runs where runs give several fitting "
                             "points, points where each gives one or the table has no run_id")
        sp.add_argument("--holdout", type=float, default=10.0,
                        help="extrapolation check: fit on C <= C_max / HOLDOUT (default 10)")

    for name, text in (("fit", "fit power laws: fits.json and a summary"),
                       ("plot", "fits and paper-style figures (PNG + PDF)"),
                       ("report", "fits, figures and report.md")):
        sp = sub.add_parser(name, help=text, description=f"{text[0].upper()}{text[1:]} from a results table or "
                                                          "a sweep directory (collected first if needed).")
        sp.add_argument("source", help="results table (.parquet/.csv) or sweep directory")
        sp.add_argument("--out", help="output directory (default: the sweep directory or the table's directory)")
        fit_args(sp)
        table_args(sp)
        sp.set_defaults(func=cmd_analysis)

    compare_p = sub.add_parser("compare", help="one study against another: each law's parameter differences and "
                               "a test of one shared law", description="Compare the joint laws of two studies "
                               "(tables, sweep directories or fits.json) per metric and K: each parameter's "
                               "difference A - B with its 95%% interval, and a test of one shared law against two "
                               "(pooled fit against separate ones, by tables drawn from the pooled law with each "
                               "study's noise model; needs tables, not fits.json).")
    compare_p.add_argument("a", help="study A: results table, sweep directory or fits.json")
    compare_p.add_argument("b", help="study B: results table, sweep directory or fits.json")
    compare_p.add_argument("--bootstrap", type=int, default=200, help="refits for the intervals and the test "
                           "(default 200)")
    compare_p.add_argument("--intervals", choices=INTERVALS, default="auto", help="as for fit")
    compare_p.add_argument("--out", help="write compare.json and the figures (compare_<metric>.png/.pdf) here")
    compare_p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare_p.set_defaults(func=cmd_compare)

    advise_p = sub.add_parser("advise", help="the compute-optimal N, T and K for a FLOP budget, with predictions",
                              description="From a fitted joint law (fits.json, a directory holding one, or a "
                                          "results table, fitted first): K*, N_opt and T_opt for the budget, each "
                                          "run priced by the table's cost per target in (N, K), the "
                                          "predicted test perplexity and NDCG@5 there, all with 95%% bootstrap "
                                          "intervals, and the run's time on this machine (the throughput model).")
    advise_p.add_argument("source", help="fits.json, a directory with fits.json, or a results table")
    advise_p.add_argument("--budget", type=float, help="training compute C in FLOPs (not with --next)")
    advise_p.add_argument("--negatives", help="pin K to this table value (default: the compute-optimal K)")
    advise_p.add_argument("--table-k", action="store_true", help="choose K among the table's own values only (by "
                          "default the joint law in K also tries K between its sampled values)")
    advise_p.add_argument("--grid", help="a grid YAML whose base and shape policy give the model's shape")
    advise_p.add_argument("--threads", type=int, default=1, help="threads per job for the time estimate")
    advise_p.add_argument("--json", action="store_true", help="print n_params, tokens, intervals, predictions "
                                                             "as JSON")
    table_args(advise_p)
    design_args(advise_p, study=False)
    advise_p.set_defaults(func=cmd_advise)

    study_p = sub.add_parser("study", help="plan -> sweep -> collect -> fit -> figures -> report",
                             description="The whole study for a grid: plan, sweep (waiting for every run), collect, "
                                         "fit, figures and report.md.")
    submit_args(study_p)
    study_p.add_argument("--report", metavar="DIR", help="write the results table, fits.json, figures/ and "
                                                          "report.md here (default: the sweep directory)")
    fit_args(study_p)
    design_args(study_p, study=True)
    study_p.set_defaults(func=cmd_study)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        args.func(args)
    except UserError as e:
        print(f"srt-scale: error: {e}", file=sys.stderr)
        return 2
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
