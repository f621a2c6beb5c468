"""`srt-scale plan`: every run of a grid with its shape, N, T, K, FLOPs and estimated time; nothing trains.

Time is estimated as C / (training FLOP/s calibrated on this machine at the executor's threads per job) plus a
fixed start-up and evaluation allowance. The calibration (a few seconds of real training steps) is cached per
host, torch version and thread count in <cache>/calibration.json.
"""

from __future__ import annotations

import json
import platform
import time

import torch

from harness import accounting, config
from harness.data.prepare import prepare
from harness.features import train_flops_per_item
from harness.grid import Point
from harness.io import cache_dir, write_json

STARTUP_S = 8.0  # process start, imports, dataset load, text encoder, final evaluation


def calibrate(threads: int) -> float:
    """Achieved training FLOP/s of a reference run (d=64, 2 layers, full softmax) with `threads` threads."""
    path = cache_dir() / "calibration.json"
    key = f"{platform.node()}|{torch.__version__}|{threads}"
    known = json.loads(path.read_text()) if path.exists() else {}
    if key in known:
        return known[key]
    from harness.run import Run

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        cfg = config.resolve({"data.synthetic.n_users": 500, "data.synthetic.n_items": 1000,
                              "data.synthetic.mean_length": 60, "features.kind": "id"})
        run = Run(cfg, cache_dir() / "calibration")
        order = run.examples.epoch_order(0, 0)
        B, n, start, step = cfg["train.batch_size"], 0, None, 0
        while start is None or time.perf_counter() - start < 2.0:
            if step == 2:
                start, n = time.perf_counter(), 0
            inputs, targets = run.examples.batch(order[(step * B) % len(order):][:B])
            n += run.step(inputs, targets, 1e-4)[1]
            step += 1
        flops_per_s = run.flops_per_target * n / (time.perf_counter() - start)
    finally:
        torch.set_num_threads(before)
    write_json(path, {**known, key: flops_per_s})
    return flops_per_s


def plan(points: list[Point], threads: int) -> dict:
    """Rows (one per run) and totals for a grid's points."""
    speed = calibrate(threads)
    n_items: dict[str, int] = {}
    rows = []
    for p in points:
        cfg = p.cfg
        data_key = json.dumps({k: v for k, v in cfg.items() if k.startswith("data.")}, sort_keys=True)
        if data_key not in n_items:
            n_items[data_key] = prepare(cfg)[0].n_items
        flops = cfg["train.tokens"] * accounting.flops_per_target(cfg, n_items[data_key], train_flops_per_item(cfg))
        n = p.shape.n_params if p.shape else None
        rows.append({
            "run_id": p.run_id, "d_model": cfg["model.d_model"], "n_layers": cfg["model.n_layers"],
            "n_heads": cfg["model.n_heads"], "d_ff": cfg["model.d_ff"], "n_params": n,
            "n_params_error": (n / p.n_params_target - 1) if n else None, "tokens": cfg["train.tokens"],
            "negatives": cfg["loss.negatives"], "flops": flops, "est_s": flops / speed + STARTUP_S,
            "values": {k: v for k, v in p.values.items() if k not in ("n_params", "tokens", "negatives")},
            "config": cfg,
        })
    return {"runs": rows, "totals": {"runs": len(rows), "flops": sum(r["flops"] for r in rows),
                                     "est_s": sum(r["est_s"] for r in rows), "calibrated_flops_per_s": speed,
                                     "threads_per_job": threads}}


def format_table(result: dict, parallel: int) -> str:
    head = f"{'run_id':<13}{'d_model':>8}{'layers':>7}{'heads':>6}{'d_ff':>6}{'N':>11}{'N err':>7}{'T':>10}" \
           f"{'K':>6}{'FLOPs':>10}{'est s':>8}  other axes"
    lines = [head, "-" * len(head)]
    for r in result["runs"]:
        n = f"{r['n_params']:,}" if r["n_params"] else "-"
        err = f"{r['n_params_error']:+.0%}" if r["n_params_error"] is not None else "-"
        other = " ".join(f"{k}={v}" for k, v in r["values"].items())
        lines.append(f"{r['run_id']:<13}{r['d_model']:>8}{r['n_layers']:>7}{r['n_heads']:>6}{r['d_ff']:>6}{n:>11}"
                     f"{err:>7}{r['tokens']:>10,}{str(r['negatives']):>6}{r['flops']:>10.3g}{r['est_s']:>8.0f}  {other}")
    t = result["totals"]
    lines.append("-" * len(head))
    lines.append(f"{t['runs']} runs, {t['flops']:.3g} FLOPs, {t['est_s'] / 60:.1f} min of compute; about "
                 f"{t['est_s'] / 60 / max(parallel, 1):.1f} min wall with {parallel} job(s) at a time "
                 f"({t['threads_per_job']} thread(s) each, calibrated {t['calibrated_flops_per_s'] / 1e9:.1f} "
                 f"GFLOP/s per job)")
    return "\n".join(lines)
