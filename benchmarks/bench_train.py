"""Training throughput and MFU for model shapes on the synthetic world.

Prints targets/s, achieved model FLOP/s and MFU against the matmul peak measured in this process, and writes
benchmarks/out/bench_train.json. Each shape is `d_model,n_layers,context,batch,K` (K an integer or 'full').

    python benchmarks/bench_train.py                       # the reference shape: 256,4,50,256,256
    python benchmarks/bench_train.py 64,2,50,128,full 256,4,50,256,256 --kind id
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from harness import accounting, config
from harness.train import Run


def measure(shape: str, kind: str, steps: int, warmup: int, n_items: int) -> dict:
    d, layers, context, batch, k = shape.split(",")
    cfg = config.resolve({
        "data.synthetic.n_users": 1500, "data.synthetic.n_items": n_items, "data.synthetic.mean_length": 300,
        "data.synthetic.max_length": 600, "features.kind": kind, "model.d_model": int(d),
        "model.n_layers": int(layers), "model.n_heads": max(1, int(d) // 64), "model.d_ff": 4 * int(d),
        "model.context": int(context), "train.batch_size": int(batch),
        "loss.negatives": k if k == "full" else int(k)})
    run = Run(cfg, "unused")
    order = torch.from_numpy(np.random.default_rng(0).permutation(len(run.examples)))
    batches = [run.examples.batch(order[i * run.cfg["train.batch_size"]:(i + 1) * run.cfg["train.batch_size"]])
               for i in range(warmup + steps)]
    for inputs, targets in batches[:warmup]:
        run.step(inputs, targets, 1e-4)
    n_targets, start = 0, time.perf_counter()
    for inputs, targets in batches[warmup:]:
        n_targets += run.step(inputs, targets, 1e-4)[1]
    seconds = time.perf_counter() - start
    flops = run.flops_per_target  # C per target for full windows; padded positions are not counted as work
    peak = accounting.matmul_peak("cpu", torch.float32)
    tps = n_targets / seconds
    return {"shape": shape, "kind": kind, "n_params": run.params["n_params"],
            "padding": 1 - n_targets / (steps * cfg["train.batch_size"] * cfg["model.context"]),
            "targets_per_s": tps, "flops_per_target": flops, "model_flops_per_s": flops * tps, "peak_flops_per_s": peak,
            "mfu": flops * tps / peak, "threads": torch.get_num_threads()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shapes", nargs="*", default=["256,4,50,256,256"])
    p.add_argument("--kind", default="st", choices=["st", "tokens", "id"])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--n-items", type=int, default=5000)
    args = p.parse_args()
    rows = [measure(s, args.kind, args.steps, args.warmup, args.n_items) for s in args.shapes]
    print(f"{'shape d,L,ctx,B,K':<22}{'kind':<7}{'N':>10}{'pad':>6}{'targets/s':>12}{'GFLOP/s':>10}{'peak':>8}"
          f"{'MFU':>7}")
    for r in rows:
        print(f"{r['shape']:<22}{r['kind']:<7}{r['n_params']:>10,}{r['padding']:>6.1%}{r['targets_per_s']:>12,.0f}"
              f"{r['model_flops_per_s'] / 1e9:>10.1f}{r['peak_flops_per_s'] / 1e9:>8.1f}{r['mfu']:>7.1%}")
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_train.json").write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
