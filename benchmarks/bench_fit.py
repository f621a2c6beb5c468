"""`srt-scale fit` at study scale: wall time and peak memory of the whole fit (every law, its 1,000-refit
intervals, the profile and lack-of-fit checks, approaches 2 and 3, the held-out check) of planted tables of 10, 100
and 1,000 runs with 6 cooldown-branch ends each (60 / 600 / 6,000 rows), one process per size.

Tables: y = E + A/N^alpha + B/T^beta on ln(perplexity), (4.0, 17.5, 0.5, 15.8, 0.4) as in bench_intervals.py, N
log-uniform over the quickstart's 1.92e3 - 1.04e5 (one N per run, so as many N values as runs), T at the
quickstart's 6 branch ends 2e4 - 6.4e5, a log-normal run effect (sd 0.003) and point noise (sd 0.002); NDCG@5
planted alongside (1 - NDCG@5 = 0.2 + 3/N^0.3 + 2/T^0.3, the same noise).

    python -m benchmarks.bench_fit [--runs 10 100 1000] [--boot 1000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import report

ROOT = Path(__file__).parent.parent
T6 = np.geomspace(2e4, 6.4e5, 6)


def planted(runs: int, seed: int = 0) -> pd.DataFrame:
    """`runs` runs x 6 branch ends of the planted laws (module docstring)."""
    rng = np.random.default_rng(seed)
    ns = np.exp(rng.uniform(np.log(1.92e3), np.log(1.04e5), runs))
    rows = []
    for i, n in enumerate(ns):
        effect = rng.normal(0, 0.003, 2)
        for t in T6:
            ln_ppl = (4.0 + 17.5 * n**-0.5 + 15.8 * t**-0.4) * np.exp(effect[0] + rng.normal(0, 0.002))
            err = (0.2 + 3 * n**-0.3 + 2 * t**-0.3) * np.exp(effect[1] + rng.normal(0, 0.002))
            rows.append(
                {
                    "run_id": f"r{i}",
                    "status": "done",
                    "final": t == T6[-1],
                    "annealed": True,
                    "n_params": n,
                    "n_params_total": n + 4.5e4,
                    "n_params_tables": 4.5e4,
                    "tokens": t,
                    "flops": 10 * n * t,
                    "negatives": "full",
                    "train.seed": 0,
                    "test_ppl": np.exp(ln_ppl),
                    "test_ndcg@5": 1 - err,
                    "valid_ppl": np.exp(ln_ppl),
                    "valid_ndcg@5": 1 - err,
                }
            )
    return pd.DataFrame(rows)


def _child(path: str, out: str, boot: int) -> None:
    """The fit itself, in its own process so that its peak RSS is its own."""
    from harness.cli import main

    t0 = time.perf_counter()
    main(["fit", path, "--out", out, "--bootstrap", str(boot)])
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"wall_s": wall, "peak_bytes": peak}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, nargs="+", default=[10, 100, 1000])
    ap.add_argument("--boot", type=int, default=1000)
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for runs in args.runs:
            path = Path(tmp) / f"planted-{runs}.csv"
            planted(runs).to_csv(path, index=False)
            proc = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"from benchmarks.bench_fit import _child; _child({str(path)!r}, "
                    f"{str(Path(tmp) / str(runs))!r}, {args.boot})",
                ],
                capture_output=True,
                text=True,
                cwd=ROOT,
            )
            if proc.returncode:
                raise SystemExit(proc.stderr[-2000:])
            m = json.loads(proc.stdout.strip().splitlines()[-1])
            fits = json.loads((Path(tmp) / str(runs) / "fits.json").read_text())
            law = fits["metrics"]["ppl"]["full"]["joint"]
            rows.append(
                {
                    "runs": runs,
                    "rows": 6 * runs,
                    "wall_s": m["wall_s"],
                    "peak_gb": m["peak_bytes"] / 1e9,
                    "alpha": law["params"]["alpha"],
                    "alpha_lo": law["ci95"]["alpha"][0],
                    "alpha_hi": law["ci95"]["alpha"][1],
                }
            )
    report(
        "fit",
        rows,
        [
            ("runs", "runs", "d"),
            ("rows", "rows", "d"),
            ("wall_s", "wall s", ".1f"),
            ("peak_gb", "peak GB", ".2f"),
            ("alpha", "alpha", ".4f"),
            ("alpha_lo", "alpha lo", ".4f"),
            ("alpha_hi", "alpha hi", ".4f"),
        ],
    )


if __name__ == "__main__":
    main()
