"""Adaptive design (`advise --next`, analysis/design.py) against fixed designs at equal FLOPs, on simulated studies.

A world is the quickstart's K = full perplexity law (results/quickstart/fits.json) as the truth, priced by the
quickstart's cost per target (fits.json `cost`), with log-normal noise: a point effect (sd --point, per fitting
point) and a run effect (sd --run, shared by a run's branch ends). Runs are WSD runs with cooldown branches, each
costing its trunk plus its branches' cooldowns (decay 0.2, as the quickstart trains). Common random numbers: a
run's noise depends only on the world and the run (N, T, branches, seed), so every design that runs it sees the
same draws. Settings: `well` (the law itself), `coupling` (plus an N x T term COUPLING sqrt(A N^-alpha B T^-beta)),
`bad_smallest` (models under 3,000 parameters BAD_SMALLEST above the law) and `diverged` (5% of runs diverge:
their FLOPs are spent, their points lost).

Designs, each fitted and bootstrapped as `srt-scale fit` does (analysis.fit.joint_many: the same fit and
bootstrap over points, --boot refits; to keep 100 worlds x 4 settings to tens of minutes each refit starts from
every --spread-th start of the grid (4 starts with the default 16; the tool uses 12) and its world's optimum):
- crossed: the quickstart's grid (its 5 N x T = 640K with 6 branches), replicated by seeds (x1, x3, x10);
- isoflop: 3 budgets over a decade x the same 5 N, each run its final point only, scaled to the crossed grid's
  FLOPs at each replication;
- wide, three: fixed alternatives (5 N up to the policy's shape at 1.7x the quickstart's largest; 3 N), replicated the
same way; the best
  fixed grid in hindsight is, per target, the fixed design that needed the fewest FLOPs;
- adaptive: the seed design of `study --adaptive` (3 N x T = 160K, branches 20K..160K), then rounds of
  design.propose (target: the exponents) whose cumulative budget doubles each round.
Printed per setting and target: the median over worlds of the FLOPs to reach a 95% interval width of --goal
Printed per setting and target: the FLOPs for each design's sampling width (the 2.5-97.5 percentile range of its
estimates over the worlds, which share the truth: the design's real precision, whatever its intervals claim) to
reach --goal (log-log interpolation along its steps; outside them width ~ C^-1/2, marked in `extrap` by the
designs' initials), the saving of adaptive over crossed and over the best fixed design with a 95% interval
(bootstrap over worlds), the coverage of each design's bootstrap 95% intervals (all steps; adaptive also at its
last), and the median bootstrap width over the sampling width at the last step (`claimed`: < 1 is an interval
narrower than the design's real spread). Figures under benchmarks/out/NAME/ (sampling widths solid, median
bootstrap widths dashed).

    python benchmarks/bench_design.py [--worlds 100] [--boot 100] [--goal 0.1] [--settings well coupling ...]
"""

from __future__ import annotations

import argparse
import json
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from analysis import cost as costs
from analysis import design, fit, noise, optimum
from benchmarks.common import OUT, report

ROOT = Path(__file__).resolve().parents[1]
FITS = json.loads((ROOT / "results/quickstart/fits.json").read_text())
TRUTH = FITS["metrics"]["ppl"]["full"]["joint"]["params"]
COST = FITS["cost"]
K = "full"
N5 = [1920.0, 8656.0, 24816.0, 55008.0, 103840.0]  # the quickstart's shapes
N_POOL = [*N5, 175920.0]  # and the policy's one shape up to 2x the largest (d = 48)
FRACTIONS = (0.03125, 0.0625, 0.125, 0.25, 0.5, 1.0)
DECAY = 0.2
COUPLING, BAD_SMALLEST, DIVERGE = 0.25, 0.01, 0.05
SETTINGS = ("well", "coupling", "bad_smallest", "diverged")
LEVELS = (1, 3, 10)
C_STAR = 10 * float(COST["per_k"][K]["flops_per_target"][-1]) * 640_000  # 10x the quickstart's largest run
COMPONENTS = ("alpha", "beta", "ln_n_opt")
SPREAD = 16  # every SPREAD-th start of the fit's grid starts a bootstrap refit (module doc)


def per_target(n: float) -> float:
    return float(costs.per_target(COST, np.array([n]), K)[0])


def run(n: float, tokens: int, fractions: tuple, seed: int) -> dict:
    lengths = sorted({round(f * tokens) for f in fractions} | {tokens})
    spent = tokens + sum(DECAY * length for length in lengths[:-1])
    return {
        "n": n,
        "tokens": int(tokens),
        "lengths": lengths,
        "fractions": tuple(fractions),
        "seed": seed,
        "flops": per_target(n) * spent,
    }


def crossed(ns, tokens, copies: int) -> list[dict]:
    return [run(n, tokens, FRACTIONS, s) for s in range(copies) for n in ns]


def isoflop(copies: int) -> list[dict]:
    total = sum(r["flops"] for r in crossed(N5, 640_000, 1))
    shares = np.geomspace(1, 10, 3)
    budgets = shares / shares.sum() * total / len(N5)
    return [run(n, max(round(c / per_target(n)), 1000), (1.0,), s) for s in range(copies) for c in budgets for n in N5]


FIXED = {
    "crossed": lambda m: crossed(N5, 640_000, m),
    "isoflop": isoflop,
    "wide": lambda m: crossed([1920.0, 8656.0, 24816.0, 103840.0, 175920.0], 640_000, m),
    "three": lambda m: crossed([1920.0, 24816.0, 103840.0], 640_000, m),
}


def law(setting: str, n: np.ndarray, t: np.ndarray) -> np.ndarray:
    y = fit.predict_joint(TRUTH, n, t)
    if setting == "coupling":
        y = y + COUPLING * np.sqrt(TRUTH["A"] * n ** -TRUTH["alpha"] * TRUTH["B"] * t ** -TRUTH["beta"])
    if setting == "bad_smallest":
        y = y * np.where(n < 3000, 1 + BAD_SMALLEST, 1.0)
    return y


def observe(world: int, setting: str, runs: list[dict], noise: tuple[float, float]) -> list[dict]:
    """The fitting points of `runs` in world `world`: per run its (n, t, y) rows, or none when it diverged."""
    out = []
    for i, r in enumerate(runs):
        key = zlib.crc32(repr((r["n"], r["tokens"], r["fractions"], r["seed"])).encode())
        rng = np.random.default_rng([world, key])
        effect, diverges = rng.normal(0, noise[1]), rng.random() < DIVERGE
        eps = rng.normal(0, noise[0], len(r["lengths"]))
        if setting == "diverged" and diverges:
            continue
        t = np.array(r["lengths"], float)
        y = law(setting, np.full(len(t), r["n"]), t) * np.exp(effect + eps)
        out += [{"n": r["n"], "t": tt, "y": yy, "run": i} for tt, yy in zip(t, y)]
    return out


def fit_all(observed: list[list[dict]], n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    m = max(len(o) for o in observed)
    arr = {k: np.ones((len(observed), m)) for k in "nty"}
    mask = np.zeros((len(observed), m), bool)
    for i, o in enumerate(observed):
        for k in "nty":
            arr[k][i, : len(o)] = [p[k] for p in o]
        mask[i, : len(o)] = True
    return fit.joint_many(arr["n"], arr["t"], arr["y"], mask, n_boot, seed, SPREAD)


def to_params(theta: np.ndarray) -> dict:
    """fit.joint_many's log-space parameters (e, a, alpha, b, beta) -> the law's."""
    return {
        "E": float(np.exp(theta[0])),
        "A": float(np.exp(theta[1])),
        "alpha": float(theta[2]),
        "B": float(np.exp(theta[3])),
        "beta": float(theta[4]),
    }


def components(theta: np.ndarray) -> np.ndarray:
    """(..., 5) log-space parameters -> (..., 3): alpha, beta, ln N_opt(C*)."""
    flat = theta.reshape(-1, 5)
    law_ = optimum.Law(K, np.inf, [to_params(th) for th in flat], fit.predict_joint)
    ln_n = np.log(optimum.allocate(law_, COST, C_STAR, optimum.n_grid(COST))[:, 0])
    return np.concatenate([flat[:, [2, 4]], ln_n[:, None]], axis=1).reshape(*theta.shape[:-1], 3)


TRUE = components(
    np.array([[np.log(TRUTH["E"]), np.log(TRUTH["A"]), TRUTH["alpha"], np.log(TRUTH["B"]), TRUTH["beta"]]])
)[0]


def summarise(theta: np.ndarray, boot: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per world: bootstrap interval widths (W, 3), whether the truth is inside (W, 3), and the estimates (W, 3)."""
    comp = components(boot)  # (W, B, 3)
    lo, hi = np.percentile(comp, 2.5, axis=1), np.percentile(comp, 97.5, axis=1)
    return hi - lo, (lo <= TRUE) & (TRUE <= hi), components(theta)


def problem_of(points: list[dict], theta: np.ndarray, boot: np.ndarray, target: str) -> design.Problem:
    params = to_params(theta)
    samples = [to_params(b) for b in boot]
    f = fit.Fit("E + A/N^alpha + B/T^beta", params, 0.0, True, float("nan"), len(points), samples=samples)
    f.ci = {
        k: (float(np.percentile([s[k] for s in samples], 2.5)), float(np.percentile([s[k] for s in samples], 97.5)))
        for k in params
    }
    n, t = np.array([p["n"] for p in points]), np.array([p["t"] for p in points])
    y, runs = np.array([p["y"] for p in points]), np.array([p["run"] for p in points])
    fit.identify(f, [n, t])
    resid = np.log(y) - np.log(fit.predict_joint(params, n, t))
    nz = noise.estimate(resid, runs, design.jacobian(design.to_theta(params)[None], n, t)[0])
    return design.Problem(f, n, t, runs, design.noise(nz), COST, K, target, C_STAR)


def pool(t_min: float) -> list[design.Candidate]:
    out = []
    for n in N_POOL:
        for tokens in design.t_values(np.array([t_min, 640_000.0]), 667_000):
            for fractions in {FRACTIONS, (0.25, 0.5, 1.0), (1.0,)}:
                r = run(n, int(tokens), fractions, 0)
                if min(r["lengths"]) >= t_min:
                    out.append(design.Candidate(n, r["tokens"], tuple(r["lengths"]), K, r["flops"], None, fractions))
    return out


def adaptive(setting: str, worlds: int, noise, n_boot: int, rounds: int, per_round: int):
    """Each world's adaptive path: FLOPs (W, rounds + 1), widths and coverage (W, rounds + 1, 3)."""
    runs = [[run(n, 160_000, (0.125, 0.25, 0.5, 1.0), 0) for n in (1920.0, 24816.0, 103840.0)] for _ in range(worlds)]
    seed_cost = sum(r["flops"] for r in runs[0])
    candidates = pool(20_000)
    flops, widths, inside, estimates = [], [], [], []
    for r in range(rounds + 1):
        observed = [observe(w, setting, runs[w], noise) for w in range(worlds)]
        theta, boot = fit_all(observed, n_boot, seed=r)
        wd, ins, est = summarise(theta, boot)
        flops.append([sum(x["flops"] for x in rs) for rs in runs])
        widths.append(wd)
        inside.append(ins)
        estimates.append(est)
        if r == rounds:
            break
        for w in range(worlds):
            pr = problem_of(observed[w], theta[w], boot[w], "exponents")
            spend = seed_cost * 2 ** (r + 1) - flops[-1][w]
            used: dict = {}
            for x in runs[w]:
                used.setdefault((int(x["n"]), x["tokens"], tuple(x["lengths"])), set()).add(x["seed"])
            for p in design.propose(pr, candidates, spend, per_round, used)["runs"]:
                runs[w].append(run(p["n_params"], p["tokens"], tuple(p["fractions"]), p["seed"]))
    return np.array(flops).T, np.stack(widths, 1), np.stack(inside, 1), np.stack(estimates, 1)


def fixed(name: str, setting: str, worlds: int, noise, n_boot: int):
    flops, widths, inside, estimates = [], [], [], []
    for m in LEVELS:
        runs = FIXED[name](m)
        theta, boot = fit_all([observe(w, setting, runs, noise) for w in range(worlds)], n_boot, seed=m)
        wd, ins, est = summarise(theta, boot)
        flops.append(np.full(worlds, sum(r["flops"] for r in runs)))
        widths.append(wd)
        inside.append(ins)
        estimates.append(est)
    return np.array(flops).T, np.stack(widths, 1), np.stack(inside, 1), np.stack(estimates, 1)


def to_reach(flops: np.ndarray, widths: np.ndarray, goal: float) -> tuple[float, bool]:
    """The FLOPs at which a width path (flops (S,), widths (S,)) first reaches `goal`: log-log interpolation between
    its points; before the first or past the last, width ~ C^-1/2 from it (and then marked extrapolated)."""
    hit = np.flatnonzero(widths <= goal)
    if hit.size == 0:
        return float(flops[-1] * (widths[-1] / goal) ** 2), True
    j = hit[0]
    if j == 0:
        return float(flops[0] * (widths[0] / goal) ** 2), True
    x0, x1, y0, y1 = np.log(flops[j - 1]), np.log(flops[j]), np.log(widths[j - 1]), np.log(widths[j])
    return float(np.exp(x0 + (np.log(goal) - y0) * (x1 - x0) / (y1 - y0))), False


def spread(estimates: np.ndarray) -> np.ndarray:
    """The sampling width of each step and component: the 2.5-97.5 percentile range of the estimates over
    worlds (W, S, 3) -> (S, 3). Every world shares the truth, so this is the design's real precision, whatever its
    intervals claim."""
    return np.percentile(estimates, 97.5, axis=0) - np.percentile(estimates, 2.5, axis=0)


def reach(path: dict, k: int, goal: float, rows=None) -> tuple[float, bool]:
    """FLOPs for the design's sampling width of component k to reach `goal` (worlds `rows`, default all)."""
    est, flops = np.array(path["estimates"]), np.array(path["flops"])
    if rows is not None:
        est, flops = est[rows], flops[rows]
    return to_reach(np.median(flops, axis=0), spread(est)[:, k], goal)


def saving(a: dict, b: dict, k: int, goal: float, seed: int = 0) -> tuple[float, float, float]:
    """FLOPs(a) / FLOPs(b) to reach `goal` and its 95% interval by a bootstrap over worlds (the same worlds for
    both: common random numbers)."""
    rng = np.random.default_rng(seed)
    worlds = len(a["flops"])
    ratios = [
        reach(a, k, goal, rows)[0] / reach(b, k, goal, rows)[0] for rows in rng.integers(0, worlds, (1000, worlds))
    ]
    return (
        reach(a, k, goal)[0] / reach(b, k, goal)[0],
        float(np.percentile(ratios, 2.5)),
        float(np.percentile(ratios, 97.5)),
    )


def analyse(results: dict, goal: float) -> list[dict]:
    rows = []
    for setting, paths in results.items():
        for k, comp in enumerate(COMPONENTS):
            fixed_names = [n for n in paths if n != "adaptive"]
            best = min(fixed_names, key=lambda n: reach(paths[n], k, goal)[0])
            vs_crossed = saving(paths["crossed"], paths["adaptive"], k, goal)
            vs_best = saving(paths[best], paths["adaptive"], k, goal)
            cov = {name: float(np.mean(np.array(p["inside"])[:, :, k])) for name, p in paths.items()}
            claimed = {
                name: float(np.median(np.array(p["widths"])[:, -1, k]) / spread(np.array(p["estimates"]))[-1, k])
                for name, p in paths.items()
            }
            rows.append(
                {
                    "setting": setting,
                    "target": comp,
                    "crossed_flops": reach(paths["crossed"], k, goal)[0],
                    "adaptive_flops": reach(paths["adaptive"], k, goal)[0],
                    "extrapolated": "".join(n[0] for n in ("crossed", "adaptive", best) if reach(paths[n], k, goal)[1])
                    or "-",
                    "saving": vs_crossed[0],
                    "saving_lo": vs_crossed[1],
                    "saving_hi": vs_crossed[2],
                    "best_fixed": best,
                    "vs_best": vs_best[0],
                    "vs_best_lo": vs_best[1],
                    "vs_best_hi": vs_best[2],
                    "cov_adaptive": cov["adaptive"],
                    "cov_adaptive_final": float(np.mean(np.array(paths["adaptive"]["inside"])[:, -1, k])),
                    "cov_crossed": cov["crossed"],
                    "cov_isoflop": cov["isoflop"],
                    "claimed_adaptive": claimed["adaptive"],
                    "claimed_crossed": claimed["crossed"],
                }
            )
    return rows


def one_setting(setting: str, args) -> dict:
    design.RESAMPLES = args.resamples
    noise = (args.point, args.run)
    paths = {name: fixed(name, setting, args.worlds, noise, args.boot) for name in FIXED}
    paths["adaptive"] = adaptive(setting, args.worlds, noise, args.boot, args.rounds, args.per_round)
    return {
        name: {"flops": p[0].tolist(), "widths": p[1].tolist(), "inside": p[2].tolist(), "estimates": p[3].tolist()}
        for name, p in paths.items()
    }


def figures(results: dict, goal: float, where: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    where.mkdir(parents=True, exist_ok=True)
    colours = {"crossed": "C0", "isoflop": "C1", "wide": "C2", "three": "C4", "adaptive": "C3"}
    fig, axes = plt.subplots(len(results), 3, figsize=(12, 3 * len(results)), squeeze=False, constrained_layout=True)
    for row, (setting, paths) in zip(axes, results.items()):
        for k, ax in enumerate(row):
            for name, p in paths.items():
                x = np.median(np.array(p["flops"]), axis=0)
                ax.plot(x, spread(np.array(p["estimates"]))[:, k], "o-", color=colours[name], label=name, ms=3)
                ax.plot(x, np.median(np.array(p["widths"])[:, :, k], axis=0), "--", color=colours[name], lw=0.9)
            ax.axhline(goal, color="k", lw=0.7, ls=":")
            ax.set(
                xscale="log",
                yscale="log",
                title=f"{setting}: {COMPONENTS[k]}",
                xlabel="FLOPs spent",
                ylabel="95% width",
            )
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("solid: sampling width (spread of the estimates over worlds); dashed: median bootstrap width")
    fig.savefig(where / "widths.png", dpi=120)
    plt.close(fig)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), constrained_layout=True)
    names = list(next(iter(results.values())))
    for k, ax in enumerate(axes):
        for j, (setting, paths) in enumerate(results.items()):
            cov = [float(np.mean(np.array(paths[n]["inside"])[:, :, k])) for n in names]
            ax.plot(np.arange(len(names)) + 0.12 * (j - 1.5), cov, "o", label=setting)
        ax.axhspan(0.90, 0.97, color="0.85", zorder=0)
        ax.axhline(0.95, color="k", lw=0.7, ls=":")
        ax.set_xticks(range(len(names)), names)
        ax.set(ylim=(0, 1.02), title=f"coverage of the 95% intervals: {COMPONENTS[k]}", ylabel="truth inside")
    axes[0].legend(fontsize=8)
    fig.savefig(where / "coverage.png", dpi=120)
    plt.close(fig)


COLUMNS = [
    ("setting", "setting", ""),
    ("target", "target", ""),
    ("crossed_flops", "crossed C", ".3g"),
    ("adaptive_flops", "adaptive C", ".3g"),
    ("extrapolated", "extrap", ""),
    ("saving", "saving", ".2f"),
    ("saving_lo", "lo", ".2f"),
    ("saving_hi", "hi", ".2f"),
    ("best_fixed", "best fixed", ""),
    ("vs_best", "vs best", ".2f"),
    ("vs_best_lo", "lo", ".2f"),
    ("vs_best_hi", "hi", ".2f"),
    ("cov_adaptive", "cov adapt", ".2f"),
    ("cov_adaptive_final", "cov final", ".2f"),
    ("cov_crossed", "cov cross", ".2f"),
    ("cov_isoflop", "cov iso", ".2f"),
    ("claimed_adaptive", "claim A", ".2f"),
    ("claimed_crossed", "claim X", ".2f"),
]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--worlds", type=int, default=100)
    p.add_argument("--boot", type=int, default=100)
    p.add_argument("--goal", type=float, default=0.1)
    p.add_argument("--point", type=float, default=0.0025, help="point noise, sd of ln L (quickstart: 0.0024)")
    p.add_argument("--run", type=float, default=0.0025, help="run effect, sd of ln L")
    p.add_argument("--rounds", type=int, default=7, help="adaptive rounds after the seed (budget doubling)")
    p.add_argument("--per-round", type=int, default=16, help="runs per adaptive round at most")
    p.add_argument("--resamples", type=int, default=design.RESAMPLES, help="design.RESAMPLES (0: no resampling)")
    p.add_argument("--name", default="design", help="output: benchmarks/out/NAME/ and bench_NAME.json")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS)
    p.add_argument("--jobs", type=int, default=2, help="settings simulated at a time (processes)")
    p.add_argument("--from", dest="source", type=Path, help="re-analyse a saved paths.json instead of simulating")
    args = p.parse_args()
    if args.source:
        saved = json.loads(args.source.read_text())
        results, where = saved["results"], args.source.parent
        figures(results, args.goal, where)
        report(f"bench_{where.name}", analyse(results, args.goal), COLUMNS)
        return
    with ProcessPoolExecutor(args.jobs) as ex:
        results = dict(zip(args.settings, ex.map(one_setting, args.settings, [args] * len(args.settings))))
    where = OUT / args.name
    where.mkdir(parents=True, exist_ok=True)
    (where / "paths.json").write_text(json.dumps({"args": vars(args), "truth": TRUE.tolist(), "results": results}))
    figures(results, args.goal, where)
    report(f"bench_{args.name}", analyse(results, args.goal), COLUMNS)
    print(f"figures: {where / 'widths.png'}, {where / 'coverage.png'}")


if __name__ == "__main__":
    main()
