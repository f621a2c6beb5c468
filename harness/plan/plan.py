"""`srt-scale plan`: every run of a grid with its shape, N, T, K, FLOPs and estimated time; nothing trains.

Each run's time comes from the throughput model (harness/plan/throughput.py: its own shape's step time, evaluations and
set-up, measured on this machine at the executor's threads per job, cached per host); the sweep's wall time from
its runs balanced into jobs (groups, below), each job paying its process start once.
"""

from __future__ import annotations

import math

from harness.data.prepare import dataset_summary
from harness.model import schedules
from harness.plan import shapes, throughput
from harness.plan.grid import Point, flops_per_target

MIN_DECADES = 1.5  # an axis spanning less pins its exponent down poorly


def plan(points: list[Point], threads: int, target: str | None = None) -> dict:
    """Rows (one per run), totals, and the design's diagnostics for a grid's points, timed on `target`
    (throughput.py: None for this host, a calibrated cluster target, or FLOPS for no figures)."""
    rows = []
    for p in points:
        cfg = p.cfg
        per_target = flops_per_target(cfg)
        flops = cfg["train.tokens"] * per_target
        spent = schedules.targets_spent(cfg) * per_target
        n = p.shape.n_params if p.shape else None
        rows.append(
            {
                "run_id": p.run_id,
                "d_model": cfg["model.d_model"],
                "n_layers": cfg["model.n_layers"],
                "n_heads": cfg["model.n_heads"],
                "d_ff": cfg["model.d_ff"],
                "n_params": n,
                "n_params_error": (n / p.n_params_target - 1) if n else None,
                "tokens": cfg["train.tokens"],
                "negatives": cfg["loss.negatives"],
                "flops": flops,
                "flops_spent": spent,
                "lengths": schedules.lengths(cfg),
                "targets_spent": schedules.targets_spent(cfg),
                **throughput.estimate(cfg, per_target, threads, target),
                "epochs": cfg["train.tokens"] / dataset_summary(cfg)["targets_per_epoch"],
                "budget": p.budget,
                "n_params_actual": point_n_params(p),
                "values": {k: v for k, v in p.values.items() if k not in ("n_params", "tokens", "negatives", "flops")},
                "config": cfg,
            }
        )
    return {
        "runs": rows,
        "totals": {
            "runs": len(rows),
            "flops": sum(r["flops_spent"] for r in rows),
            "est_s": sum(r["est_s"] for r in rows),
            "process_s": throughput.process_seconds(threads, target),
            "threads_per_job": threads,
            "timed_on": target or "this host",
        },
        "diagnostics": diagnostics(rows),
    }


def point_n_params(point: Point) -> int:
    """N of a point: the solved shape's, else counted from the config's shape (shapes.n_params)."""
    cfg = point.cfg
    return (
        point.shape.n_params
        if point.shape
        else shapes.n_params(cfg, cfg["model.d_model"], cfg["model.n_layers"], cfg["model.d_ff"])
    )


def _decades(values: list[float]) -> float:
    return math.log10(max(values) / min(values)) if values else 0.0


def diagnostics(rows: list[dict]) -> dict:
    """Per K: decades spanned by N, T and C over every fitting point (cooldown branches included), the largest
    run's epochs (data repetition), the N range of each IsoFLOP budget; and one-line warnings: an axis that varies
    but spans < MIN_DECADES, a run that repeats data."""
    out: dict = {"per_k": {}, "warnings": []}
    for k in sorted({str(r["negatives"]) for r in rows}):
        mine = [r for r in rows if str(r["negatives"]) == k]
        largest = max(mine, key=lambda r: r["flops"])
        points = {
            "N": [r["n_params_actual"] for r in mine],
            "T": [t for r in mine for t in r["lengths"]],
            "C": [r["flops"] * t / r["tokens"] for r in mine for t in r["lengths"]],
        }  # every fitting point
        d = {
            "decades": {axis: _decades(values) for axis, values in points.items()},
            "max_epochs": max(r["epochs"] for r in mine),
            "largest_run_epochs": largest["epochs"],
        }
        budgets = sorted({r["budget"] for r in mine if r["budget"]})
        if budgets:
            d["budgets"] = [
                {
                    "flops": c,
                    "n_params": [
                        min(r["n_params_actual"] for r in mine if r["budget"] == c),
                        max(r["n_params_actual"] for r in mine if r["budget"] == c),
                    ],
                    "runs": sum(r["budget"] == c for r in mine),
                }
                for c in budgets
            ]
        out["per_k"][k] = d
        for axis, span in d["decades"].items():
            if len(set(points[axis])) > 1 and span < MIN_DECADES:
                out["warnings"].append(
                    f"K={k}: {axis} spans {span:.2f} decades (< {MIN_DECADES}): its exponent will be poorly identified"
                )
        if d["max_epochs"] > 1:
            out["warnings"].append(
                f"K={k}: a run repeats its training data {d['max_epochs']:.1f} times "
                "(epochs > 1): data-constrained, not the scaling regime a law assumes"
            )
    return out


def format_table(result: dict, parallel: int, jobs: int | None = None) -> str:
    """The plan as text; its wall time with `jobs` jobs (default one per parallel slot), `parallel` at a time."""
    head = (
        f"{'run_id':<13}{'d_model':>8}{'layers':>7}{'heads':>6}{'d_ff':>6}{'N':>11}{'N err':>7}{'T':>10}"
        f"{'K':>6}{'FLOPs':>10}{'est s':>8}  other axes"
    )
    lines = [head, "-" * len(head)]
    t = result["totals"]
    untimed = t.get("timed_on") == throughput.FLOPS
    for r in result["runs"]:
        n = f"{r['n_params']:,}" if r["n_params"] else "-"
        err = f"{r['n_params_error']:+.0%}" if r["n_params_error"] is not None else "-"
        other = " ".join(f"{k}={v}" for k, v in r["values"].items())
        est = "-" if untimed else f"{r['est_s']:.0f}"
        lines.append(
            f"{r['run_id']:<13}{r['d_model']:>8}{r['n_layers']:>7}{r['n_heads']:>6}{r['d_ff']:>6}{n:>11}"
            f"{err:>7}{r['tokens']:>10,}{str(r['negatives']):>6}{r['flops']:>10.3g}{est:>8}  {other}"
        )
    lines.append("-" * len(head))
    for k, d in result["diagnostics"]["per_k"].items():
        spans = ", ".join(f"{axis} {span:.2f}" for axis, span in d["decades"].items())
        lines.append(
            f"K={k}: decades spanned {spans}; largest run {d['largest_run_epochs']:.2f} epochs "
            f"(max {d['max_epochs']:.2f})"
        )
        for b in d.get("budgets", []):
            lines.append(
                f"  budget {b['flops']:.3g} FLOPs: {b['runs']} runs, N {b['n_params'][0]:,} .. {b['n_params'][1]:,}"
            )
    lines += [f"warning: {w}" for w in result["diagnostics"]["warnings"]]
    if untimed:
        lines.append(
            f"{t['runs']} runs, {t['flops']:.3g} FLOPs; not timed (no calibration): the sweep's ETA comes from its "
            f"first finished runs; {parallel} job(s) at a time"
        )
        return "\n".join(lines)
    rates = [r["flops_per_s"] for r in result["runs"]]
    lines.append(
        f"{t['runs']} runs, {t['flops']:.3g} FLOPs, {t['est_s'] / 60:.1f} min of compute; about "
        f"{wall_seconds(result, parallel, jobs) / 60:.1f} min wall with {parallel} job(s) at a time "
        f"({t['threads_per_job']} thread(s) each; measured {min(rates) / 1e9:.2g}-{max(rates) / 1e9:.2g} "
        f"GFLOP/s by shape on {t.get('timed_on', 'this host')})"
    )
    return "\n".join(lines)


def wall_seconds(result: dict, parallel: int, jobs: int | None = None) -> float:
    """The plan's wall time: its runs balanced into `jobs` jobs as the sweep does (groups; default one per
    parallel slot), each job its runs plus one process start, the jobs `parallel` at a time (longest first)."""
    est = [r["est_s"] for r in result["runs"]]
    per_job = [
        result["totals"]["process_s"] + sum(est[i] for i in g) for g in groups(est, est, max(jobs or parallel, 1))
    ]
    return max(sum(per_job[i] for i in slot) for slot in groups(per_job, per_job, max(parallel, 1)))


def groups(runs: list, est_s: list[float], n: int) -> list[list[int]]:
    """Indices of `runs` in at most `n` groups of about equal estimated time (longest first, each to the group
    with the least time so far), each group longest first."""
    bins: list[list[int]] = [[] for _ in range(min(n, len(runs)))]
    load = [0.0] * len(bins)
    for i in sorted(range(len(runs)), key=lambda i: -est_s[i]):
        b = load.index(min(load))
        bins[b].append(i)
        load[b] += est_s[i]
    return [g for g in bins if g]
