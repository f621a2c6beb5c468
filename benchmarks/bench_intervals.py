"""Coverage of the joint law's 95% intervals on the designs we run, fitted exactly as `srt-scale fit` does.

Tables are drawn from a law the fitter does not see, y = E + A/N^alpha + B/T^beta on ln(perplexity) with
(E, A, alpha, B, beta) = (4.0, 17.5, 0.5, 15.8, 0.4) over the quickstart's ranges (N 1.92e3 - 1.04e5, T 2e4 -
6.4e5), with log-normal noise: a run effect (sd --run, shared by a run's points) and point noise (sd --point).
Designs: 5 N x 6 cooldown-branch ends (the quickstart's shape), the same with replicate seeds at 2 N, 3 N x 6
branch ends without and with a replicate at every N, an IsoFLOP design (4 budgets x 5 N, one point per run), one
point per run on the 5 x 6 grid, the 5 N design without a run effect, and a misspecified truth (the T term's
scale grows with N, B (N / 1.04e4)^0.15: an N x T interaction the additive law cannot express, on the replicated
5 N design), and two designs near the floor's bound (true E = 0 and 0.2 of y = E + 480/N^0.35 + 2000/T^0.37, 4 N
x 4 T over a decade each, one point per run, 1% noise). Each table is fitted by analysis.laws.joint_law (the default
interval method, its flags and its
lack-of-fit test). Printed per design and parameter (alpha, beta, E, approach 3's N_opt exponent): coverage of
the 95% intervals, median width / sampling width (the 2.5 - 97.5 percentile range of the estimates over tables),
how often the parameter was flagged not identified, and how often the lack-of-fit test rejected the law.
Figure: benchmarks/out/intervals.png.

    python -m benchmarks.bench_intervals [--tables 200] [--boot 200] [--designs ...] [--workers 2]
"""

from __future__ import annotations

import argparse
from multiprocessing import Pool

import numpy as np
import pandas as pd

from analysis import frontier, laws
from benchmarks.common import OUT, report

TRUE = {"E": 4.0, "A": 17.5, "alpha": 0.5, "B": 15.8, "beta": 0.4}
N5 = np.array([1.92e3, 8.66e3, 2.48e4, 5.5e4, 1.04e5])
N3 = N5[[0, 2, 4]]
T6 = np.geomspace(2e4, 6.4e5, 6)
BUDGETS = np.geomspace(4e8 * 10, 6.2e11 / 3, 4)  # C = 10 N T (the quickstart's kappa)
PARAMS = ("alpha", "beta", "E", "n_opt_exponent")


def _crossed(ns, reps: dict[int, int]) -> list[tuple[float, np.ndarray]]:
    """(N, branch ends) per run: every N with all of T6, replicated `reps[i]` extra times at N index i."""
    return [(n, T6) for i, n in enumerate(ns) for _ in range(1 + reps.get(i, 0))]


def _isoflop() -> list[tuple[float, np.ndarray]]:
    out = []
    for c in BUDGETS:
        centre = np.sqrt(c / 10)  # N ~ T at each budget, spread over 1.2 decades
        for n in centre * np.geomspace(10**-0.6, 10**0.6, 5):
            out.append((n, np.array([c / (10 * n)])))
    return out


DESIGNS = {
    "5N x 6 ends": dict(runs=_crossed(N5, {})),
    "5N x 6 ends + 2 replicates": dict(runs=_crossed(N5, {0: 1, 2: 1})),
    "3N x 6 ends": dict(runs=_crossed(N3, {})),
    "3N x 6 ends + 3 replicates": dict(runs=_crossed(N3, {0: 1, 1: 1, 2: 1})),
    "IsoFLOP 4 x 5, one point per run": dict(runs=_isoflop()),
    "5N x 6, one point per run": dict(runs=[(n, np.array([t])) for n in N5 for t in T6]),
    "5N x 6 ends, no run effect": dict(runs=_crossed(N5, {}), run_sd=0.0),
    "misspecified (N x T), 5N + 2 replicates": dict(runs=_crossed(N5, {0: 1, 2: 1}), interaction=0.15),
}
# Near the floor's bound: y = E + 480/N^0.35 + 2000/T^0.37 on 4 N x 4 T over one decade each, one point per run,
# 1% log-normal noise, at true floors E = 0 and 0.2 (E's interval is then the profile's one-sided [0, upper]).
FLOOR_RUNS = [(n, np.array([t])) for n in np.geomspace(1e8, 1e9, 4) for t in np.geomspace(1e9, 1e10, 4)]
for floor in (0.0, 0.2):
    DESIGNS[f"floor E = {floor:g}, 4N x 4T, one point per run"] = dict(
        runs=FLOOR_RUNS,
        run_sd=0.0,
        point_sd=0.01,
        truth={"E": floor, "A": 480.0, "alpha": 0.35, "B": 2000.0, "beta": 0.37},
    )


def table(design: dict, seed: int, run_sd: float, point_sd: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    truth, point_sd = design.get("truth", TRUE), design.get("point_sd", point_sd)
    rows = []
    for r, (n, ts) in enumerate(design["runs"]):
        effect = rng.normal(0, design.get("run_sd", run_sd))
        b = truth["B"] * (n / 1.04e4) ** design.get("interaction", 0.0)
        for t in ts:
            y = truth["E"] + truth["A"] * n ** -truth["alpha"] + b * t ** -truth["beta"]
            rows.append(
                {
                    "run_id": f"r{r}",
                    "n_params": n,
                    "tokens": t,
                    "negatives": "full",
                    "train.seed": r,
                    "model.d_model": f"{n:.0f}",
                    "y": y * np.exp(effect + rng.normal(0, point_sd)),
                }
            )
    return pd.DataFrame(rows)


def one(job) -> dict:
    name, seed, args = job
    s = table(DESIGNS[name], seed, args.run, args.point)
    f = laws.joint_law(s, s["y"].to_numpy(), args.boot, seed)
    exps = [frontier.closed_form(p, 10.0)["n_opt_exponent"] for p in f.samples]
    est = {**f.params, "n_opt_exponent": frontier.closed_form(f.params, 10.0)["n_opt_exponent"]}
    ci = {**f.ci, "n_opt_exponent": tuple(np.nanpercentile(exps, [2.5, 97.5]))}
    law = DESIGNS[name].get("truth", TRUE)
    truth = {**law, "n_opt_exponent": law["beta"] / (law["alpha"] + law["beta"])}
    out = {
        "design": name,
        "seed": seed,
        "rejects": bool(f.lack_of_fit["rejects"]),
        "method": f.intervals["method"],
        "run_dof": f.intervals["noise"]["run_dof"],
    }
    for p in PARAMS:
        lo, hi = ci[p]
        out[f"{p}_est"], out[f"{p}_width"] = est[p], hi - lo
        out[f"{p}_covered"] = bool(lo <= truth[p] <= hi)
        flag_key = "alpha" if p == "n_opt_exponent" else p
        out[f"{p}_flagged"] = flag_key in f.unidentified
    return out


def summarise(rows: pd.DataFrame) -> list[dict]:
    out = []
    for name, g in rows.groupby("design", sort=False):
        for p in PARAMS:
            est = g[f"{p}_est"].to_numpy()
            spread = float(np.percentile(est, 97.5) - np.percentile(est, 2.5))
            out.append(
                {
                    "design": name,
                    "param": p,
                    "tables": len(g),
                    "coverage": float(g[f"{p}_covered"].mean()),
                    "median_width": float(g[f"{p}_width"].median()),
                    "sampling_width": spread,
                    "ratio": float(g[f"{p}_width"].median() / spread) if spread > 0 else None,
                    "flagged": float(g[f"{p}_flagged"].mean()),
                    "lof_rejects": float(g["rejects"].mean()),
                    "run_dof": float(g["run_dof"].median()),
                    "method": g["method"].iloc[0],
                }
            )
    return out


def figure(summary: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.DataFrame(summary)
    designs = list(dict.fromkeys(df["design"]))
    fig, axes = plt.subplots(1, 2, figsize=(12, 0.5 * len(designs) + 2.2), sharey=True, constrained_layout=True)
    y = np.arange(len(designs))
    for i, p in enumerate(PARAMS):
        d = df[df["param"] == p].set_index("design").loc[designs]
        axes[0].plot(d["coverage"], y + (i - 1.5) * 0.15, "o", label=p)
        axes[1].plot(d["ratio"], y + (i - 1.5) * 0.15, "o", label=p)
    axes[0].axvspan(0.92, 0.98, color="C2", alpha=0.15, label="target 0.92 - 0.98")
    axes[0].set(xlabel="coverage of the 95% intervals", yticks=y, yticklabels=designs)
    axes[1].axvline(1.5, color="C3", ls="--", label="target <= 1.5")
    axes[1].axvline(1.0, color="grey", lw=0.8)
    axes[1].set(xlabel="median interval width / sampling width", xscale="log")
    for ax in axes:
        ax.legend(fontsize=7, loc="lower right")
        ax.invert_yaxis() if ax is axes[0] else None
    fig.suptitle("Joint-law intervals on simulated studies (analysis.laws.joint_law, default method)")
    OUT.mkdir(exist_ok=True)
    fig.savefig(OUT / "intervals.png", dpi=130)
    print(f"-> {OUT / 'intervals.png'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=200)
    ap.add_argument("--boot", type=int, default=200)
    ap.add_argument("--run", type=float, default=0.003, help="run effect, sd of ln L")
    ap.add_argument("--point", type=float, default=0.002, help="point noise, sd of ln L")
    ap.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=list(DESIGNS))
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    jobs = [(name, seed, args) for name in args.designs for seed in range(args.tables)]
    with Pool(args.workers) as pool:
        rows = pd.DataFrame(pool.map(one, jobs, chunksize=4))
    summary = summarise(rows)
    report(
        "intervals",
        summary,
        [
            ("design", "design", ""),
            ("param", "param", ""),
            ("tables", "tables", "d"),
            ("coverage", "coverage", ".3f"),
            ("median_width", "med. width", ".3g"),
            ("sampling_width", "sampling", ".3g"),
            ("ratio", "ratio", ".2f"),
            ("flagged", "flagged", ".2f"),
            ("lof_rejects", "LOF rejects", ".2f"),
            ("run_dof", "run dof", ".2g"),
            ("method", "method", ""),
        ],
    )
    figure(summary)


if __name__ == "__main__":
    main()
