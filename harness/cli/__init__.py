"""The `srt-scale` command line: the parser, and a dispatch to one module per command group (data.py, train.py,
sweep.py: plan/sweep/status/collect, analysis.py: fit/plot/report/compare/advise, study.py). User mistakes print
one line and exit 2 (no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys

from harness.core import config
from harness.core.errors import UserError
from harness.core.registry import EXECUTORS
from harness.core.schema import BAD_VALUES, DUPLICATES, FITTING_ROWS, INTERVALS, N_COLUMNS, SPLITS


def _config_keys_help() -> str:
    width = max(len(k.name) for k in config.SCHEMA)
    return "config keys (YAML sections or --set dotted keys):\n" + "\n".join(
        f"  {k.name:<{width}}  {json.dumps(k.default):>10}  {k.doc}" for k in config.SCHEMA
    )


def design_args(sp: argparse.ArgumentParser, study: bool) -> None:
    g = sp.add_argument_group('adaptive design (docs/analysis.md, "Adaptive design")')
    g.add_argument(
        "--spend",
        type=float,
        metavar="C",
        help="FLOPs the proposed runs may use (branches included)"
        + ("; with --adaptive, the whole study's" if study else ""),
    )
    g.add_argument(
        "--target",
        choices=("exponents", "n_opt", "loss"),
        default="exponents",
        help="whose 95%% interval to shrink: alpha and beta jointly, ln N_opt at "
        + ("10x the table's largest run" if study else "--at")
        + ", or the predicted loss there (default exponents)",
    )
    if not study:
        g.add_argument("--next", type=int, metavar="Q", help="propose up to Q new runs (needs --spend)")
        g.add_argument(
            "--at",
            type=float,
            metavar="C*",
            help="the budget of the n_opt and loss targets (default 10x the table's largest run)",
        )
        g.add_argument("--bootstrap", type=int, default=200, help="bootstrap refits of the law (default 200)")
    else:
        g.add_argument(
            "--adaptive",
            action="store_true",
            help="seed design, then rounds of advise --next -> sweep -> collect -> fit",
        )
        g.add_argument("--rounds", type=int, default=4, help="--adaptive: rounds after the seed (default 4)")
        g.add_argument("--width", type=float, help="--adaptive: stop once every interval of the target is this narrow")
        g.add_argument("--next", type=int, default=6, metavar="Q", help="--adaptive: runs per round (default 6)")
        g.add_argument("--negatives", help="--adaptive: the K of the study (default: the grid's last)")
        g.add_argument(
            "--design-bootstrap",
            type=int,
            default=200,
            help="--adaptive: bootstrap refits of each round's fit (default 200)",
        )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="srt-scale",
        description="Scaling-law studies of the Scalable Recommendation "
        "Transformer: prepare datasets, train runs, sweep grids locally or on Slurm, fit scaling laws, draw figures.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = sub.add_parser("data", help="dataset commands", description="Dataset commands.")
    data_sub = data.add_subparsers(dest="data_command", required=True, metavar="COMMAND")
    prep = data_sub.add_parser(
        "prepare",
        help="build (or find cached) a canonical dataset and print its manifest",
        description="Build the canonical dataset (interactions, items, manifest) for a source, or find it in the "
        "cache (keyed by the source's content and the preparation options), and print its manifest.",
        epilog="sources: synthetic, ml-100k, recbole, amazon2018, movielens, table "
        "(file sources need --set data.path=...)",
    )
    prep.add_argument("source", help="a source name, or a config YAML whose data section is used")
    prep.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a data.* key")
    prep.add_argument("--out", help="cache directory (default: $SRT_SCALE_CACHE or ./.srt-cache)")
    prep.set_defaults(func="data:cmd_data_prepare")

    train = sub.add_parser(
        "train",
        help="train one run and print its final metrics",
        description="Train one configuration into OUT/<run_id>/ (config.yaml, metrics.jsonl, result.json, "
        "checkpoint.pt, train.log). A finished run is not trained again; an interrupted one resumes.",
        epilog=_config_keys_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("config", help="run config YAML")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set model.d_model=128 (repeatable)",
    )
    train.add_argument("--out", default="runs", help="directory of run directories (default: ./runs)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="data-parallel processes on this machine (gloo on CPU, NCCL on CUDA); train.batch_size "
        "stays the global batch (default 1)",
    )
    train.add_argument(
        "--init-from",
        metavar="RUN_DIR",
        help="fine-tune from a pretraining run directory (any catalog); the same as --set transfer.init_from=RUN_DIR",
    )
    train.set_defaults(func="train:cmd_train")

    def executor_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--executor",
            choices=EXECUTORS.names(),
            default="local",
            help="debug: in this process; local: parallel processes; slurm: one sbatch job array (default: local)",
        )
        sp.add_argument(
            "--profile",
            help="cluster profile YAML (slurm/*.yaml): resources, array parallelism, "
            "sbatch flags, setup lines; cpus_per_task is each job's thread budget",
        )
        sp.add_argument(
            "--no-calibrate",
            action="store_true",
            help="time nothing: the plan prints no times and the sweep's ETA comes from its first finished runs "
            "(default: local and debug time new shapes on this host; slurm in one calibration job on the "
            "profile's partition, cached per partition and device)",
        )

    plan_p = sub.add_parser(
        "plan",
        help="print every run of a grid with shape, N, T, K, FLOPs, estimated time",
        description="Resolve a grid: every run's shape (solved for its target N), actual N, "
        "T, K, FLOPs and estimated time on the executor. No run trains; shapes not yet timed where the runs "
        "will run are timed first (this host, or one Slurm calibration job).",
    )
    plan_p.add_argument("grid", help="grid YAML")
    executor_args(plan_p)
    plan_p.add_argument("--json", action="store_true", help="print the plan as JSON")
    plan_p.add_argument(
        "--show",
        metavar="RUN",
        help="print one run (its id, or its 0-based index in the plan) resolved: its whole config as a run config "
        "YAML and the executor profile its jobs get; nothing is timed",
    )
    plan_p.set_defaults(func="sweep:cmd_plan")

    sweep_p = sub.add_parser(
        "sweep",
        help="submit a grid's runs (resumable; finished runs are never rerun)",
        description="Plan a grid and submit every run that has no finished result.json and "
        "no job pending or running, through submitit.",
    )

    def submit_args(sp: argparse.ArgumentParser, study: bool = False) -> None:
        sp.add_argument("grid", help="grid YAML")
        executor_args(sp)
        sp.add_argument(
            "--out",
            help="sweep directory (default: sweeps/<grid name>"
            + (", with --adaptive sweeps/<grid name>-adaptive)" if study else ")"),
        )
        sp.add_argument(
            "--max-jobs",
            type=int,
            help="local: jobs at a time (default: CPUs / (cpus_per_task x tasks_per_node))",
        )

    submit_args(sweep_p)
    sweep_p.add_argument(
        "--retry-failed", action="store_true", help="also resubmit failed, diverged and timed-out runs"
    )
    sweep_p.add_argument("--no-wait", action="store_true", help="slurm: return once the array is submitted")
    sweep_p.set_defaults(func="sweep:cmd_sweep")

    status_p = sub.add_parser(
        "status",
        help="count a sweep's runs by state; show why runs failed",
        description="Counts of a sweep's runs by state (done, running, pending, interrupted, "
        "failed, diverged, timed_out, not_submitted), FLOPs done of planned with "
        "the plan's ETA, and each failing run's last log line.",
    )
    status_p.add_argument("sweep_dir")
    status_p.add_argument(
        "--watch",
        action="store_true",
        help="show the sweep's live progress (runs by state, "
        "FLOPs done, ETA from the plan) until no run is pending or running",
    )
    status_p.add_argument("--poll", type=float, default=2.0, help="--watch: seconds between looks (default 2)")
    status_p.set_defaults(func="sweep:cmd_status")

    collect_p = sub.add_parser(
        "collect",
        help="gather a sweep's runs into one results table",
        description="One row per (run, evaluation point) with the results table's columns "
        "(docs/design.md), written as Parquet and CSV.",
    )
    collect_p.add_argument("sweep_dir")
    collect_p.add_argument("--out", help="table path without suffix (default: SWEEP_DIR/results)")
    collect_p.set_defaults(func="sweep:cmd_collect")

    def table_args(sp: argparse.ArgumentParser) -> None:
        g = sp.add_argument_group("reading a table from elsewhere (docs/analysis.md)")
        g.add_argument(
            "--column",
            action="append",
            default=[],
            metavar="NAME=SOURCE",
            help="read the table's column SOURCE as NAME (n_params, tokens, flops, negatives, run_id, "
            "status, final, annealed, budget, test_ppl, test_loss (nats: ppl = e^loss), "
            "test_ndcg@5, and the valid_ ones); repeatable",
        )
        g.add_argument("--split", choices=SPLITS, default="test", help="the split whose metrics are fitted")
        g.add_argument(
            "--rows",
            choices=FITTING_ROWS,
            default="auto",
            help="fitting points: annealed rows if any else final rows (auto), final, annealed, "
            "every evaluation, or envelope (every evaluation at its run's best so far)",
        )
        g.add_argument("--pool-negatives", action="store_true", help="fit all K together")
        g.add_argument("--protocol", default="full catalog", help="the evaluation protocol named in axis labels")
        g.add_argument(
            "--bad-values",
            choices=BAD_VALUES,
            default="error",
            help="a finished run's perplexity <= 0 or not finite, loss not finite, or NDCG@5 outside "
            "[0, 1]: a one-line error (default), or the row excluded and counted in fits.json "
            "and the report",
        )
        g.add_argument(
            "--duplicates",
            choices=DUPLICATES,
            default="error",
            help="a row with the same (run_id, tokens) as an earlier one (without run ids: the same "
            "values in every column): a one-line error naming both lines (default), or the first "
            "kept and the rest counted in fits.json",
        )
        g.add_argument(
            "--n-column",
            choices=N_COLUMNS,
            default="n_params",
            help="N of the laws: n_params (non-embedding, the default) or n_params_total (the id / token "
            "tables included); fits.json states it and the report shows alpha and the N_opt exponent on both",
        )

    def fit_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument(
            "--bootstrap", type=int, default=1000, help="refits for the joint laws' 95%% intervals (default 1000)"
        )
        sp.add_argument(
            "--intervals",
            choices=INTERVALS,
            default="auto",
            help="how the joint laws' intervals are made: runs = parametric bootstrap with a random "
            "effect per run (tables drawn around the law with the noise model estimated from the "
            "residuals by run, each refitted); points = bootstrap over fitting points (right when "
            "each point is its own run); auto (default) = runs where runs give several fitting "
            "points, points where each gives one or the table has no run_id",
        )
        sp.add_argument(
            "--holdout", type=float, default=10.0, help="extrapolation check: fit on C <= C_max / HOLDOUT (default 10)"
        )

    for name, text in (
        ("fit", "fit power laws: fits.json and a summary"),
        ("plot", "fits and paper-style figures (PNG + PDF)"),
        ("report", "fits, figures and report.md"),
    ):
        sp = sub.add_parser(
            name,
            help=text,
            description=f"{text[0].upper()}{text[1:]} from a results table or "
            "a sweep directory (collected first if needed).",
        )
        sp.add_argument("source", help="results table (.parquet/.csv) or sweep directory")
        sp.add_argument("--out", help="output directory (default: the sweep directory or the table's directory)")
        fit_args(sp)
        table_args(sp)
        sp.set_defaults(func="analysis:cmd_analysis")

    compare_p = sub.add_parser(
        "compare",
        help="one study against another: each law's parameter differences and a test of one shared law",
        description="Compare the joint laws of two studies "
        "(tables, sweep directories or fits.json) per metric and K: each parameter's "
        "difference A - B with its 95%% interval, and a test of one shared law against two "
        "(pooled fit against separate ones, by tables drawn from the pooled law with each "
        "study's noise model; needs tables, not fits.json).",
    )
    compare_p.add_argument("a", help="study A: results table, sweep directory or fits.json")
    compare_p.add_argument("b", help="study B: results table, sweep directory or fits.json")
    compare_p.add_argument(
        "--bootstrap", type=int, default=200, help="refits for the intervals and the test (default 200)"
    )
    compare_p.add_argument("--intervals", choices=INTERVALS, default="auto", help="as for fit")
    compare_p.add_argument("--out", help="write compare.json and the figures (compare_<metric>.png/.pdf) here")
    compare_p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare_p.set_defaults(func="analysis:cmd_compare")

    advise_p = sub.add_parser(
        "advise",
        help="the compute-optimal N, T and K for a FLOP budget, with predictions",
        description="From a fitted joint law (fits.json, a directory holding one, or a "
        "results table, fitted first): K*, N_opt and T_opt for the budget, each "
        "run priced by the table's cost per target in (N, K), the "
        "predicted test perplexity and NDCG@5 there, all with 95%% bootstrap "
        "intervals, and the run's time on this machine (the throughput model).",
    )
    advise_p.add_argument("source", help="fits.json, a directory with fits.json, or a results table")
    advise_p.add_argument("--budget", type=float, help="training compute C in FLOPs (not with --next)")
    advise_p.add_argument("--negatives", help="pin K to this table value (default: the compute-optimal K)")
    advise_p.add_argument(
        "--table-k",
        action="store_true",
        help="choose K among the table's own values only (by "
        "default the joint law in K also tries K between its sampled values)",
    )
    advise_p.add_argument("--grid", help="a grid YAML whose base and shape policy give the model's shape")
    advise_p.add_argument("--threads", type=int, default=1, help="threads per job for the time estimate")
    advise_p.add_argument("--json", action="store_true", help="print n_params, tokens, intervals, predictions as JSON")
    table_args(advise_p)
    design_args(advise_p, study=False)
    advise_p.set_defaults(func="analysis:cmd_advise")

    study_p = sub.add_parser(
        "study",
        help="plan -> sweep -> collect -> fit -> figures -> report",
        description="The whole study for a grid: plan, sweep (waiting for every run), collect, "
        "fit, figures and report.md.",
    )
    submit_args(study_p, study=True)
    study_p.add_argument(
        "--report",
        metavar="DIR",
        help="write the results table, fits.json, figures/ and report.md here (default: the sweep directory)",
    )
    fit_args(study_p)
    design_args(study_p, study=True)
    study_p.set_defaults(func="study:cmd_study")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    module, name = args.func.split(":")
    try:  # a command's stage is imported only when it runs, so `--help` and `fit` never load torch
        getattr(importlib.import_module(f"harness.cli.{module}"), name)(args)
    except UserError as e:
        print(f"srt-scale: error: {e}", file=sys.stderr)
        return 2
    return 0


def entry() -> None:
    sys.exit(main())
