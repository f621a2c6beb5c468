"""Compute-optimal frontier: the envelope of the metric over training FLOPs, IsoFLOP minima (approach 2), and the
closed-form allocation implied by a joint fit (approach 3).

Approach 2 here interpolates rather than needing runs at equal C: for each N, every evaluation of its runs
(WSD cooldown-branch ends, or intermediate evaluations, so each N covers a wide range of C) gives the best y
reached by each C, and log y is interpolated linearly in log C; each FLOP budget that >= 3 N cover gives one
IsoFLOP curve over those N, whose minimum comes from a parabola in log N (the vertex, when it lies inside that
curve's N range). N_opt(C) and T_opt(C) = C / (C/T)(N_opt) (the table's cost per target, analysis/cost.py) are
then fitted as power laws. Intermediate
evaluations of a cosine schedule sit above a run trained to that budget, so on such rows these minima are an
approximation (cooldown-branch ends are runs trained to their budget); approach 3 (closed form) is shown too.
A table whose runs carry an IsoFLOP budget label (`budget`) is grouped by that label: one parabola per budget; a
table with one run per N and no label is grouped into budgets by C (runs within 0.1 decade of each other).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis import cost


def envelope(rows: pd.DataFrame, col: str, lower_is_better: bool) -> pd.DataFrame:
    """Best value reached at or below each FLOP count over all rows (intermediate evaluations included)."""
    s = rows[["flops", col]].dropna().sort_values("flops")
    best = s[col].cummin() if lower_is_better else s[col].cummax()
    return pd.DataFrame({"flops": s["flops"].to_numpy(), col: best.to_numpy()})


def pareto(rows: pd.DataFrame, col: str, lower_is_better: bool) -> pd.DataFrame:
    """The Pareto envelope of (C, metric) over all rows: the rows no other row beats with less or equal compute,
    i.e. where the running best of `envelope` improves. Columns flops and `col`, by increasing C."""
    env = envelope(rows, col, lower_is_better)
    improved = np.r_[True, np.diff(env[col].to_numpy()) != 0]
    return env[improved].drop_duplicates("flops", keep="last").reset_index(drop=True)


def kappa(final: pd.DataFrame) -> float:
    """C / (N T): training FLOPs per parameter per target in this table (6 in the Chinchilla idealisation)."""
    return float(np.median(final["flops"] / (final["n_params"] * final["tokens"])))


def isoflop(rows: pd.DataFrame, y: np.ndarray, n_budgets: int = 8) -> dict:
    """IsoFLOP curves and minima from every evaluation row of one K; `y` is the loss-like target for each row (lower is
    better). Budgets are spread log-uniformly over the C range that at least 3 N cover; each budget's curve uses
    the N whose evaluations span it (its own N range, as Chinchilla's IsoFLOP profiles each have theirs). A table
    with a `budget` column (an IsoFLOP design's label per run) is grouped by it instead (`_by_budget`)."""
    if "budget" in rows.columns and rows["budget"].notna().any():
        return _by_budget(rows, y, "no budget label has runs at >= 3 N")
    df = rows.assign(y=y)
    curves = {}
    for n, g in df.groupby("n_params"):
        g = g.sort_values("flops")
        g = g.assign(y=g["y"].cummin()).drop_duplicates("flops", keep="last")
        if len(g) >= 2:
            curves[n] = g
    if len(curves) < 3:  # one run per N (sizes not shared across budgets): runs at about the same C instead
        return _by_budget(rows.assign(budget=_budgets_by_tolerance(rows)), y,
                          "IsoFLOP minima need >= 3 N at one budget: no N has >= 2 evaluations, and no "
                          f"{BUDGET_TOLERANCE_DEX:g}-decade band of C holds runs at >= 3 N")
    spans = {n: (np.log(g["flops"]).min(), np.log(g["flops"]).max()) for n, g in curves.items()}
    edges = np.sort(np.concatenate([list(v) for v in spans.values()]))
    covered = [c for c in np.linspace(edges[0], edges[-1], 200)
               if sum(lo <= c <= hi for lo, hi in spans.values()) >= 3]
    if not covered:
        return {"skipped": "no FLOP budget lies in the range of >= 3 N values"}
    budgets, minima = np.exp(np.linspace(min(covered), max(covered), n_budgets)), []
    for c in budgets:
        ns = [n for n in sorted(curves) if spans[n][0] <= np.log(c) <= spans[n][1]]
        if len(ns) < 3:
            continue
        log_n = np.log(np.array(ns, float))
        log_y = np.array([np.interp(np.log(c), np.log(curves[n]["flops"]), np.log(curves[n]["y"])) for n in ns])
        minima.append({"flops": float(c), **_vertex(log_n, log_y)})
    return _allocation(rows, minima)


def _allocation(rows: pd.DataFrame, minima: list[dict]) -> dict:
    """N_opt(C) and T_opt(C) = C / (kappa N_opt) as power laws through the interior minima; with >= 3 minima the
    exponents' 95% intervals from the regression's standard error (t distribution, n - 2 degrees of freedom)."""
    found = [m for m in minima if m["n_opt"] is not None]
    out = {"curves": minima}
    if len(found) < 2:
        return {**out, "note": "fewer than 2 budgets have their minimum inside the sampled N range"}
    c = np.array([m["flops"] for m in found])
    n_opt = np.array([m["n_opt"] for m in found])
    t_opt = c / cost.per_target(cost.fit_cost(rows), n_opt, str(rows["negatives"].iloc[0]))
    for name, y in (("n_opt", n_opt), ("t_opt", t_opt)):
        reg = stats.linregress(np.log(c), np.log(y))
        out[f"{name}_exponent"], out[f"{name}_coef"] = float(reg.slope), float(np.exp(reg.intercept))
        if len(found) >= 3:
            half = stats.t.ppf(0.975, len(found) - 2) * reg.stderr
            out[f"{name}_exponent_ci95"] = [float(reg.slope - half), float(reg.slope + half)]
    return out


BUDGET_TOLERANCE_DEX = 0.1  # runs whose final C lie within this many decades of a group's smallest are one budget


def _budgets_by_tolerance(rows: pd.DataFrame) -> pd.Series:
    """A budget label for each run from its final row's C: sorted by C, a group starts at the smallest C not yet
    taken and holds every run within BUDGET_TOLERANCE_DEX of it (anchored, so neighbouring budgets do not chain)."""
    final = rows[rows["final"]].sort_values("flops")
    label, anchor, labels = -1, -np.inf, {}
    for run_id, c in zip(final["run_id"], np.log10(final["flops"].to_numpy(float))):
        if c > anchor + BUDGET_TOLERANCE_DEX:
            label, anchor = label + 1, c
        labels[run_id] = label
    return rows["run_id"].map(labels)


def _by_budget(rows: pd.DataFrame, y: np.ndarray, none_found: str) -> dict:
    """Approach 2 on a table that labels each run's budget (`budget` column): the final rows (runs trained to
    their budget) of each budget with >= 3 distinct N give a parabola in log N (the budget's C is the median of
    its runs' C)."""
    df = rows.assign(y=y).dropna(subset=["budget"])
    df = df[df["final"]]
    minima = []
    for _, g in df.groupby("budget"):
        g = g.groupby("n_params", as_index=False).agg(y=("y", "min"), flops=("flops", "median"))
        if len(g) < 3:
            continue
        log_n, log_y = np.log(g["n_params"].to_numpy(float)), np.log(g["y"].to_numpy(float))
        minima.append({"flops": float(g["flops"].median()), **_vertex(log_n, log_y)})
    if not minima:
        return {"skipped": none_found}
    return _allocation(rows, minima)


def _vertex(log_n: np.ndarray, log_y: np.ndarray) -> dict:
    """A parabola in log N through one IsoFLOP curve; its minimum when it lies inside the curve's N range."""
    a, b, _ = np.polyfit(log_n, log_y, 2)
    inside = a > 0 and log_n.min() <= -b / (2 * a) <= log_n.max()
    return {"log_n": log_n.tolist(), "log_y": log_y.tolist(), "n_opt": float(np.exp(-b / (2 * a))) if inside else None}


def closed_form(params: dict, k: float) -> dict:
    """Minimising E + A/N^alpha + B/T^beta subject to C = k N T: N_opt = G (C/k)^(beta/(alpha+beta)),
    T_opt = (C/k) / N_opt, G = (alpha A / (beta B))^(1/(alpha+beta)). A law with an exponent at 0 (a refit at
    its box's edge) has no finite optimum: G is inf or 0 and both exponents nan when both are 0."""
    a, b = float(params["alpha"]), float(params["beta"])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        g = float(np.float64(a * params["A"]) / np.float64(b * params["B"])) ** (1 / (a + b)) if a + b > 0 else np.nan
        return {"n_opt_exponent": float(np.float64(b) / (a + b)), "t_opt_exponent": float(np.float64(a) / (a + b)),
                "G": g, "kappa": k}

