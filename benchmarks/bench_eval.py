"""Full-catalog evaluation: wall time and peak memory of ranking every item for 10^4 users.

Each catalog size runs in a fresh process (peak RSS is per process). Item vectors and hidden states are random
(d_model 64): the ranking kernel (`harness.model.evaluate.rank_and_nll`, users x items chunks, pessimistic ties, full
log-sum-exp for perplexity) is what scales with the catalog; extractor outputs for the catalog are computed once
per evaluation and are a (n_items, d) matrix either way. `--exclude-seen` adds 50 seen items per user.

    python benchmarks/bench_eval.py                      # 1e4, 1e5, 1e6 items x 1e4 users
    python benchmarks/bench_eval.py --items 1000000 --users 10000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
import torch
from common import report


def one(n_items: int, n_users: int, d: int, exclude_seen: bool, batch_users: int, chunk_items: int) -> dict:
    from harness.model.evaluate import metrics_from_ranks, rank_and_nll

    gen = torch.Generator().manual_seed(0)
    items = torch.randn(n_items, d, generator=gen) / d**0.5
    h = torch.randn(n_users, d, generator=gen)
    targets = torch.randint(1, n_items + 1, (n_users,), generator=gen)
    rng = np.random.default_rng(0)
    history = [rng.integers(1, n_items + 1, 50) for _ in range(n_users)] if exclude_seen else None
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    ranks, nlls = [], []
    for lo in range(0, n_users, batch_users):
        r, nll = rank_and_nll(
            h[lo : lo + batch_users],
            targets[lo : lo + batch_users],
            items,
            1.0,
            chunk_items,
            history[lo : lo + batch_users] if history is not None else None,
        )
        ranks.append(r)
        nlls.append(nll)
    metrics_from_ranks(torch.cat(ranks), torch.cat(nlls))
    seconds = time.perf_counter() - start
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "n_items": n_items,
        "n_users": n_users,
        "d_model": d,
        "exclude_seen": exclude_seen,
        "seconds": seconds,
        "scores_per_s": n_items * n_users / seconds,
        "peak_rss_mb": rss / 1024,
        "eval_extra_rss_mb": (rss - rss0) / 1024,
        "inputs_mb": (items.numel() + h.numel()) * 4 / 2**20,
        "batch_users": batch_users,
        "chunk_items": chunk_items,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, nargs="*", default=[10_000, 100_000, 1_000_000])
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--d-model", type=int, default=64)
    p.add_argument("--exclude-seen", action="store_true")
    p.add_argument("--batch-users", type=int, default=256)
    p.add_argument("--chunk-items", type=int, default=4096)
    p.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.one:
        print(json.dumps(one(a.items[0], a.users, a.d_model, a.exclude_seen, a.batch_users, a.chunk_items)))
        return
    rows = []
    for n in a.items:
        cmd = [
            sys.executable,
            __file__,
            "--one",
            "--items",
            str(n),
            "--users",
            str(a.users),
            "--d-model",
            str(a.d_model),
            "--batch-users",
            str(a.batch_users),
            "--chunk-items",
            str(a.chunk_items),
        ]
        out = subprocess.run(
            cmd + (["--exclude-seen"] if a.exclude_seen else []), capture_output=True, text=True, check=True
        ).stdout
        rows.append(json.loads(out.strip().splitlines()[-1]))
    report(
        "bench_eval",
        rows,
        [
            ("n_items", "items", ",d"),
            ("n_users", "users", ",d"),
            ("seconds", "seconds", ".1f"),
            ("scores_per_s", "scores/s", ".3g"),
            ("peak_rss_mb", "peak RSS MB", ".0f"),
            ("eval_extra_rss_mb", "eval +MB", ".0f"),
            ("inputs_mb", "inputs MB", ".0f"),
        ],
    )


if __name__ == "__main__":
    main()
