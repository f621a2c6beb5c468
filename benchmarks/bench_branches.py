"""WSD cooldown branches against independent cosine runs: quality gap and compute saved.

For each model size, one WSD run with cooldown branches at the given fractions of T records an annealed row at
every T_i; an independent cosine run is trained at each T_i. Prints, per (N, T_i), the test perplexity and
NDCG@5 of the branch and of the cosine run, and per size the FLOPs the branched run spent against the sum over
the separate runs (what a study of those T_i would cost without branches).

    python benchmarks/bench_branches.py                        # configs/synthetic.yaml, d=32/2 and d=64/4
    python benchmarks/bench_branches.py --tokens 200000 --shapes 32,2 --decay 0.2
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from common import report

from harness.core import config
from harness.run import identity, train

ROOT = Path(__file__).parent.parent
FRACTIONS = [1 / 32, 1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0]


def measure(base: dict, d: int, layers: int, tokens: int, decay: float, warmup: int, out: Path) -> list[dict]:
    shape = {"model.d_model": d, "model.n_layers": layers, "model.n_heads": max(1, d // 16), "model.d_ff": 4 * d}
    wsd = config.resolve(
        {
            **base,
            **shape,
            "train.tokens": tokens,
            "train.schedule": "wsd",
            "train.warmup_tokens": warmup,
            "train.decay": decay,
            "train.branches": FRACTIONS,
            "eval.points": [1.0],
        }
    )
    result = train(wsd, out, progress=False)
    rows = [json.loads(line) for line in (out / identity.run_id(wsd) / "metrics.jsonl").read_text().splitlines()]
    branches = {r["tokens"]: r for r in rows if r["annealed"]}
    out_rows, separate = [], 0.0
    for t, row in sorted(branches.items()):
        cosine = train(
            config.resolve(
                {
                    **base,
                    **shape,
                    "train.tokens": t,
                    "train.schedule": "cosine",
                    "train.warmup": min(0.05, warmup / t),
                    "eval.points": [1.0],
                }
            ),
            out,
            progress=False,
        )
        separate += cosine["flops"]
        out_rows.append(
            {
                "n_params": result["n_params"],
                "tokens": t,
                "branch_ppl": row["test_ppl"],
                "cosine_ppl": cosine["test_ppl"],
                "ppl_gap": row["test_ppl"] / cosine["test_ppl"] - 1,
                "branch_ndcg": row["test_ndcg@5"],
                "cosine_ndcg": cosine["test_ndcg@5"],
                "ndcg_gap": row["test_ndcg@5"] - cosine["test_ndcg@5"],
                "spent": None,
                "separate": None,
            }
        )
    out_rows[-1].update(spent=result["flops_spent"], separate=separate, saved=1 - result["flops_spent"] / separate)
    return out_rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(ROOT / "configs" / "synthetic.yaml"))
    p.add_argument("--shapes", nargs="*", default=["32,2", "64,4"], help="d_model,n_layers per size")
    p.add_argument("--tokens", type=int, default=400_000)
    p.add_argument("--decay", type=float, default=0.2)
    p.add_argument("--warmup", type=int, default=5_000, help="warmup targets (the cosine runs: 5%% or this)")
    a = p.parse_args()
    base = config.flatten(config.load_yaml(a.config))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape in a.shapes:
            d, layers = map(int, shape.split(","))
            rows += measure(base, d, layers, a.tokens, a.decay, a.warmup, Path(tmp))
    report(
        "bench_branches",
        rows,
        [
            ("n_params", "N", ",d"),
            ("tokens", "T_i", ",d"),
            ("branch_ppl", "branch ppl", ".2f"),
            ("cosine_ppl", "cosine ppl", ".2f"),
            ("ppl_gap", "ppl gap", "+.2%"),
            ("branch_ndcg", "br NDCG@5", ".4f"),
            ("cosine_ndcg", "cos NDCG@5", ".4f"),
            ("ndcg_gap", "NDCG gap", "+.4f"),
            ("spent", "FLOPs spent", ".3g"),
            ("separate", "separate", ".3g"),
            ("saved", "saved", ".0%"),
        ],
    )


if __name__ == "__main__":
    main()
