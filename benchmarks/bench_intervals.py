"""Coverage of the joint fit's 95% intervals near the floor's bound (E = 0 and small E > 0).

For each true floor, `--tables` noisy tables of y = E + 480/N^0.35 + 2000/T^0.37 (4 N x 4 T over one decade each,
the floorless test's design, log-normal noise `--noise`) are fitted and bootstrapped as `srt-scale fit` does
(analysis.fit: Huber fit, bootstrap by fitting point, the profile-likelihood test of E = 0). Printed per floor:
how often E's interval contains the truth (coverage), how often E = 0 was not rejected (one-sided interval), the
median upper end, and alpha's and beta's coverage. Timings are not the point; it takes ~1 s a table.

    python benchmarks/bench_intervals.py [--tables 50] [--floors 0 0.02 0.05 0.2] [--boot 200]
"""

from __future__ import annotations

import argparse

import numpy as np

from analysis import fit
from benchmarks.common import report

TRUE = {"alpha": 0.35, "beta": 0.37}


def one(floor: float, seed: int, noise: float, n_boot: int) -> dict:
    rng = np.random.default_rng(seed)
    n, t = (a.ravel() for a in np.meshgrid(np.geomspace(1e8, 1e9, 4), np.geomspace(1e9, 1e10, 4)))
    y = (floor + 480 / n ** TRUE["alpha"] + 2000 / t ** TRUE["beta"]) * np.exp(rng.normal(0, noise, len(n)))
    f = fit.bootstrap(fit.joint(n, t, y), [n, t], y, np.arange(len(y)), n_boot=n_boot, seed=seed)
    inside = {k: f.ci[k][0] <= v <= f.ci[k][1] for k, v in {"E": floor, **TRUE}.items()}
    return {**inside, "one_sided": not f.floor_profile["rejects_zero"], "upper": f.ci["E"][1],
            "width": f.ci["E"][1] - f.ci["E"][0]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=50)
    ap.add_argument("--floors", type=float, nargs="+", default=[0.0, 0.02, 0.05, 0.2])
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--boot", type=int, default=200)
    args = ap.parse_args()
    rows = []
    for floor in args.floors:
        runs = [one(floor, seed, args.noise, args.boot) for seed in range(args.tables)]
        rows.append({"floor": floor, "tables": len(runs), "coverage_E": np.mean([r["E"] for r in runs]),
                     "one_sided": np.mean([r["one_sided"] for r in runs]),
                     "median_upper": float(np.median([r["upper"] for r in runs])),
                     "median_width": float(np.median([r["width"] for r in runs])),
                     "coverage_alpha": np.mean([r["alpha"] for r in runs]),
                     "coverage_beta": np.mean([r["beta"] for r in runs])})
    report("intervals", rows, [("floor", "true E", ".3g"), ("tables", "tables", "d"),
                               ("coverage_E", "E covered", ".2f"), ("one_sided", "one-sided", ".2f"),
                               ("median_upper", "med. upper", ".3g"), ("median_width", "med. width", ".3g"),
                               ("coverage_alpha", "alpha cov.", ".2f"), ("coverage_beta", "beta cov.", ".2f")])


if __name__ == "__main__":
    main()
