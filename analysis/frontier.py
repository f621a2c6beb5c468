"""Compute-optimal frontier: the envelope of the metric over training FLOPs, IsoFLOP minima (approach 2), and the
closed-form allocation implied by a joint fit (approach 3).

Approach 2 here interpolates rather than needing runs at equal C: for each run, every evaluation (WSD
cooldown-branch ends, or intermediate evaluations, so each N covers a wide range of C) gives the best y reached
by each C, and log y is interpolated linearly in log C; an N's value at a budget is its best config's mean over
replicate seeds; each FLOP budget that >= 3 N cover gives one IsoFLOP curve over those N, whose minimum comes
from a parabola in log N (the vertex, when it lies inside that curve's N range). N_opt(C) and T_opt(C) =
C / (C/T)(N_opt) (the table's cost per target, analysis/cost.py) are then fitted as power laws; their exponents'
intervals come from resampling runs through the whole pipeline (the budgets share their runs, so they are not
independent points; a t interval over them narrows as 1/sqrt(budgets) with no new data). Intermediate
evaluations of a cosine schedule sit above a run trained to that budget, so on such rows these minima are an
approximation (cooldown-branch ends are runs trained to their budget); approach 3 (closed form) is shown too.
A table whose runs carry an IsoFLOP budget label (`budget`) is grouped by that label: one parabola per budget; a
table with one run per N and no label is grouped into budgets by C (runs within 0.1 decade of each other).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis import cost, noise


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


ISO_BOOT = 200  # resamples of runs through the whole IsoFLOP pipeline (approach 2's intervals)
MIN_WITH_SLOPE = 0.5  # below this fraction of resamples giving a slope, approach 2 gives no interval


@dataclass
class _Runs:
    """Approach 2's data, one row per run: its N, replicate cell (noise.cells: runs differing only in their seed)
    and log y at each budget (NaN where the run does not reach it); `flops` (budgets,) the budgets' C."""

    n: np.ndarray  # (R,)
    cell: np.ndarray  # (R,) int
    log_y: np.ndarray  # (R, budgets)
    flops: np.ndarray  # (budgets,)


def _run_cells(rows: pd.DataFrame) -> pd.Series:
    """Each run's replicate cell index (runs that differ only in train.seed share one; a table with no config
    columns: each run its own)."""
    first = rows.drop_duplicates("run_id")
    c = noise.cells(first)
    labels = first["run_id"].to_numpy() if c is None else c
    return pd.Series(pd.factorize(labels)[0], index=first["run_id"].to_numpy())


def isoflop(rows: pd.DataFrame, y: np.ndarray, n_budgets: int = 8, n_boot: int = ISO_BOOT, seed: int = 0) -> dict:
    """IsoFLOP curves and minima from every evaluation row of one K; `y` is the loss-like target for each row (lower
    is better). Each run's running best (its cummin over its evaluations by C, held flat after its last one) is
    interpolated in log C; at a budget, an N's value is the best over its configs of the mean log y over that
    config's replicate seeds (a min over seeds would favour the N with more of them). Budgets are spread
    log-uniformly over the C range that at least 3 N cover; each budget's curve uses the N whose evaluations span
    it. A table with a `budget` column (an IsoFLOP design's label per run) is grouped by it instead. The exponents'
    95% intervals come from `n_boot` resamples of runs, each taken through the whole pipeline (`_resampled`)."""
    if "budget" in rows.columns and rows["budget"].notna().any():
        data = _by_budget(rows, y)
        none_found = "no budget label has runs at >= 3 N"
    else:
        data = _interpolated(rows, y, n_budgets)
        none_found = "no FLOP budget lies in the range of >= 3 N values"
        if data is None:  # one run per N (sizes not shared across budgets): runs at about the same C instead
            data = _by_budget(rows.assign(budget=_budgets_by_tolerance(rows)), y)
            none_found = (
                "IsoFLOP minima need >= 3 N at one budget: no N has >= 2 evaluations, and no "
                f"{BUDGET_TOLERANCE_DEX:g}-decade band of C holds runs at >= 3 N"
            )
    minima = _minima(data, np.ones(len(data.n))) if data is not None else []
    if not minima:
        return {"skipped": none_found}
    per_target = _per_target(rows)
    out = _allocation(minima, per_target)
    if "n_opt_exponent" in out and n_boot:
        out.update(_resampled(data, per_target, n_boot, seed))
    return out


def _interpolated(rows: pd.DataFrame, y: np.ndarray, n_budgets: int) -> _Runs | None:
    """Each run's running best at n_budgets budgets over the C range >= 3 N cover; None when < 3 N have curves."""
    df = rows.assign(y=y).sort_values("flops")
    cells, order = _run_cells(rows), pd.unique(df["run_id"])
    df = df.assign(y=df.groupby("run_id", sort=False)["y"].cummin()).drop_duplicates(["run_id", "flops"], keep="last")
    at = df.groupby("run_id", sort=False).indices
    n, log_c, log_best = df["n_params"].to_numpy(float), np.log(df["flops"].to_numpy(float)), np.log(df["y"].to_numpy())
    curves = {run: (float(n[at[run][0]]), log_c[at[run]], log_best[at[run]]) for run in order}
    spans = {}
    for n, lc, _ in curves.values():
        lo, hi = spans.get(n, (np.inf, -np.inf))
        spans[n] = (min(lo, lc[0]), max(hi, lc[-1]))
    spans = {n: span for n, span in spans.items() if span[1] > span[0]}
    if len(spans) < 3:
        return None
    edges = np.sort(np.concatenate([list(v) for v in spans.values()]))
    covered = [c for c in np.linspace(edges[0], edges[-1], 200) if sum(lo <= c <= hi for lo, hi in spans.values()) >= 3]
    if not covered:
        return _Runs(np.zeros(0), np.zeros(0, int), np.zeros((0, 0)), np.zeros(0))
    log_c = np.linspace(min(covered), max(covered), n_budgets)
    runs = [r for r in curves if curves[r][0] in spans]
    log_y = np.full((len(runs), n_budgets), np.nan)
    for i, r in enumerate(runs):
        n, lc, ly = curves[r]
        reach = (log_c >= lc[0]) & (log_c <= spans[n][1])  # from its first evaluation to its N's last
        log_y[i, reach] = np.interp(log_c[reach], lc, ly)
    return _Runs(np.array([curves[r][0] for r in runs]), cells[runs].to_numpy(), log_y, np.exp(log_c))


def _by_budget(rows: pd.DataFrame, y: np.ndarray) -> _Runs | None:
    """Approach 2's data from a table that labels each run's budget (`budget` column): each run's final row (a
    run trained to its budget) at its own label; a budget's C is the median of its runs' C."""
    df = rows.assign(y=y).dropna(subset=["budget"])
    df = df[df["final"]].drop_duplicates("run_id", keep="last")
    if df.empty:
        return None
    labels, index = np.unique(df["budget"].astype(str), return_inverse=True)
    log_y = np.full((len(df), len(labels)), np.nan)
    log_y[np.arange(len(df)), index] = np.log(df["y"].to_numpy(float))
    flops = np.array([np.median(df["flops"].to_numpy(float)[index == j]) for j in range(len(labels))])
    order = np.argsort(flops)
    return _Runs(
        df["n_params"].to_numpy(float), _run_cells(rows)[df["run_id"]].to_numpy(), log_y[:, order], flops[order]
    )


def _minima(data: _Runs, weights: np.ndarray) -> list[dict]:
    """The IsoFLOP curve and its vertex at each budget with >= 3 N, the runs counted `weights` (R,) times (a
    resample of runs; 0 leaves a run out): per N the best config's weighted mean log y over its seeds."""
    ns, n_index = np.unique(data.n, return_inverse=True)
    groups, group = np.unique(np.stack([n_index, data.cell]), axis=1, return_inverse=True)  # (N, config) pairs
    group = group.ravel()
    out = []
    for j, c in enumerate(data.flops):
        v = data.log_y[:, j]
        w = np.where(np.isfinite(v) & (weights > 0), weights, 0.0)
        total = np.bincount(group, weights=w, minlength=groups.shape[1])
        sums = np.bincount(group, weights=w * np.nan_to_num(v), minlength=groups.shape[1])
        mean = sums / np.where(total > 0, total, 1)
        best = np.full(len(ns), np.inf)
        np.minimum.at(best, groups[0][total > 0], mean[total > 0])
        found = np.isfinite(best)
        if found.sum() >= 3:
            out.append({"flops": float(c), **_vertex(np.log(ns[found].astype(float)), best[found])})
    return out


def _per_target(rows: pd.DataFrame):
    """C / T at N for this K (the table's cost model): T_opt = C / (C/T)(N_opt)."""
    model, k = cost.fit_cost(rows), str(rows["negatives"].iloc[0])
    return lambda n: cost.per_target(model, n, k)


def _slopes(minima: list[dict], per_target) -> dict | None:
    """N_opt(C) and T_opt(C) as power laws (least squares in log-log) through the interior minima; None with < 2."""
    found = [m for m in minima if m["n_opt"] is not None]
    if len(found) < 2:
        return None
    c = np.array([m["flops"] for m in found])
    n_opt = np.array([m["n_opt"] for m in found])
    out = {}
    for name, v in (("n_opt", n_opt), ("t_opt", c / per_target(n_opt))):
        slope, intercept = np.polyfit(np.log(c), np.log(v), 1)
        out[f"{name}_exponent"], out[f"{name}_coef"] = float(slope), float(np.exp(intercept))
    return out


def _allocation(minima: list[dict], per_target) -> dict:
    """The curves and, with >= 2 interior minima, N_opt(C) and T_opt(C) = C / (C/T)(N_opt) as power laws."""
    slopes = _slopes(minima, per_target)
    if slopes is None:
        return {"curves": minima, "note": "fewer than 2 budgets have their minimum inside the sampled N range"}
    return {"curves": minima, **slopes}


def _resampled(data: _Runs, per_target, n_boot: int, seed: int) -> dict:
    """95% percentile intervals of the exponents from `n_boot` resamples of runs with replacement, each through
    the whole pipeline (curves, every budget's vertex, the slope): budgets interpolated from the same runs are
    not independent points, and a vertex's own uncertainty enters through its runs. A resample in which < 2
    budgets keep an interior minimum gives no slope; with fewer than MIN_WITH_SLOPE of them giving one, there is
    no interval (the design does not pin the slope down)."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(len(data.n), np.full(len(data.n), 1 / len(data.n)), size=n_boot).astype(float)
    slopes = [s for w in counts if (s := _slopes(_minima(data, w), per_target))]
    out = {
        "bootstrap": {
            "resamples": n_boot,
            "with_slope": len(slopes),
            "method": "runs resampled with replacement through the whole pipeline",
        }
    }
    if len(slopes) < MIN_WITH_SLOPE * n_boot:
        out["interval_note"] = (
            f"only {len(slopes)} of {n_boot} resamples of runs give a slope: the exponent is "
            "not pinned down by these runs (no interval)"
        )
        return out
    for name in ("n_opt", "t_opt"):
        v = [s[f"{name}_exponent"] for s in slopes]
        out[f"{name}_exponent_ci95"] = [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]
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
        # numpy's power: a ratio whose root overflows a float is inf (Python's ** would raise OverflowError)
        g = (
            float(np.power(np.float64(a * params["A"]) / np.float64(b * params["B"]), 1 / (a + b)))
            if a + b > 0
            else np.nan
        )
        return {
            "n_opt_exponent": float(np.float64(b) / (a + b)),
            "t_opt_exponent": float(np.float64(a) / (a + b)),
            "G": g,
            "kappa": k,
        }
