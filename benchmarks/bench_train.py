"""Training throughput and MFU for a ladder of model shapes on the synthetic world.

Prints targets/s, achieved model FLOP/s and MFU against the matmul peak measured in this process (fp32; bf16 too
on a CUDA device), and writes benchmarks/out/bench_train.json. A case is
`d_model,n_layers,context,batch,K[,kind[,supervision]]` (K an integer or 'full'; kind st/tokens/id; supervision
all/last: 'last' trains one target per sequence, as RecBole and the SRT code do).

    python benchmarks/bench_train.py                       # the ladder (LADDER below)
    python benchmarks/bench_train.py 256,4,50,256,256      # the reference shape only
    python benchmarks/bench_train.py 512,8,50,128,256,st,all --device cuda --precision bf16
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch
from common import report

from harness.core import config
from harness.model import accounting
from harness.run import Loop, Run

LADDER = [
    "64,1,50,256,256",
    "128,2,50,256,256",
    "256,4,50,256,256",
    "512,8,50,64,256",  # width and depth
    "256,4,200,64,256",  # context 200
    "256,4,50,256,1",
    "256,4,50,256,4096",
    "256,4,50,256,full",  # negatives K
    "256,4,50,256,256,tokens",
    "256,4,50,256,256,id",  # extractors
    "256,4,50,256,256,st,last",  # last-position supervision
]


def measure(case: str, steps: int, warmup: int, n_items: int, device: str, precision: str) -> dict:
    d, layers, context, batch, k, *rest = case.split(",")
    kind = rest[0] if rest else "st"
    supervision = rest[1] if len(rest) > 1 else "all"
    cfg = config.resolve(
        {
            "data.synthetic.n_users": 1500,
            "data.synthetic.n_items": n_items,
            "data.synthetic.mean_length": 300,
            "data.synthetic.max_length": 600,
            "features.kind": kind,
            "model.d_model": int(d),
            "model.n_layers": int(layers),
            "model.n_heads": max(1, int(d) // 64),
            "model.d_ff": 4 * int(d),
            "model.context": int(context),
            "train.batch_size": int(batch),
            "loss.negatives": k if k == "full" else int(k),
            "loss.supervision": supervision,
            "train.device": device,
            "train.precision": precision,
            "train.tokens": 10**12,
        }
    )  # a budget no measurement reaches: no evaluation point inside the timing
    with tempfile.TemporaryDirectory() as out:
        run = Run(cfg, out)
        loop = Loop(run)  # the training loop itself: batch assembly, schedule and hooks are part of the cost
        for _ in range(warmup):
            loop.step()
        n0, start = loop.state.tokens, time.perf_counter()
        for _ in range(steps):
            loop.step()
        if run.device.type == "cuda":
            torch.cuda.synchronize()
        seconds, n_targets = time.perf_counter() - start, loop.state.tokens - n0
    peak = accounting.matmul_peak(run.device.type, torch.bfloat16 if precision == "bf16" else torch.float32)
    tps = n_targets / seconds
    flops = run.flops_per_target  # C per target for full windows; padded positions are not counted as work
    return {
        "shape": case,
        "kind": kind,
        "supervision": supervision,
        "precision": precision,
        "device": run.device.type,
        "n_params": run.params["n_params"],
        "padding": 1
        - n_targets / (steps * cfg["train.batch_size"] * (cfg["model.context"] if supervision == "all" else 1)),
        "targets_per_s": tps,
        "flops_per_target": flops,
        "model_flops_per_s": flops * tps,
        "peak_flops_per_s": peak,
        "mfu": flops * tps / peak,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cases", nargs="*", default=LADDER)
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--n-items", type=int, default=5000)
    args = p.parse_args()
    rows = [measure(c, args.steps, args.warmup, args.n_items, args.device, args.precision) for c in args.cases]
    report(
        "bench_train",
        rows,
        [
            ("shape", "case", "<24"),
            ("n_params", "N", ",d"),
            ("padding", "pad", ".1%"),
            ("targets_per_s", "targets/s", ",.0f"),
            ("model_flops_per_s", "FLOP/s", ".3g"),
            ("peak_flops_per_s", "peak", ".3g"),
            ("mfu", "MFU", ".1%"),
        ],
    )


if __name__ == "__main__":
    main()
