"""The compute-optimal (N, T, K) of a FLOP budget C from fitted laws, priced by the table's cost model
(analysis/cost.py): approach 3 as fits.json `allocation` (per K) and `optimum` hold it, and what `advise` prints.

For one K, T = C / (C/T)(N, K) and N_opt minimises the law's loss-like target over ln N: on a log grid of GRID
points from the table's smallest N / 10^SPAN to its largest x 10^SPAN, refined by a parabola through the best grid
point and its neighbours; an optimum on the grid's edge is marked `edge` (the law has none inside it). K* is the K
whose optimum has the lowest perplexity target: among the table's K values with a per-K joint law, or, where the
table has the joint law in (N, T, K) (analysis/negatives.py, its selected form), that law over the table's K values
and a geometric grid between its sampled ones. Each bootstrap refit gives its own (N_opt, T_opt, K*) and
predictions; their 2.5-97.5 percentiles are the 95% intervals (K's over K as a number, full = n_items - 1).
Nothing here refits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from analysis import cost as costs
from analysis import fit
from analysis.negatives import FORMS
from harness.errors import UserError

GRID, SPAN = 801, 3.0  # N grid points; decades beyond the table's N range on each side
K_BETWEEN = 6  # grid points per decade of K between sampled values (joint law in K only)
DECISIVE = "ppl"  # the metric whose law chooses N, T and K


@dataclass(frozen=True)
class Law:
    """One metric's law at one K: target(params, n, t) for each parameter set (the fit, then its bootstrap)."""

    negatives: str  # a table label ('64', 'full') or a number between sampled K values
    k: float  # K as a number
    params: list[dict]
    target: Callable[[dict, np.ndarray, np.ndarray], np.ndarray]


def per_k(fits: dict, metric: str, label: str) -> Law | None:
    j = fits.get("metrics", {}).get(metric, {}).get(label, {}).get("joint", {})
    if "params" not in j:
        return None
    k = costs.k_number(label, fits["cost"]["n_items"])
    return Law(label, k, [j["params"], *j.get("bootstrap", [])], lambda p, n, t: fit.predict_joint(p, n, t))


def _in_k(fits: dict, metric: str, label: str, k: float) -> Law | None:
    neg = fits.get("negatives", {}).get(metric)
    if not neg:
        return None
    entry = neg["forms"][neg["selected"]]
    form, k_ref = FORMS[neg["selected"]], neg["k_ref"]

    def target(p, n, t):
        x = np.stack(np.broadcast_arrays(np.asarray(n, float), np.asarray(t, float), np.float64(k)), axis=-1)
        return form.predict(p, x.reshape(-1, 3), k_ref).reshape(np.shape(x)[:-1])
    return Law(label, k, [entry["params"], *entry.get("bootstrap", [])], target)


def candidates(fits: dict, metric: str, negatives: str | None = None, between: bool = True) -> list[Law]:
    """The laws among which K* is chosen (module doc); `negatives` pins one table K (its per-K law, else the joint
    law in K at it); `between` = False keeps the joint law in K to the table's own K values."""
    labels = list(fits["cost"]["per_k"])
    n_items = fits["cost"]["n_items"]
    if negatives is not None:
        if negatives not in labels:
            raise UserError(f"--negatives {negatives}: not a K of the table (its K: {', '.join(labels)})")
        law = per_k(fits, metric, negatives) or _in_k(fits, metric, negatives, costs.k_number(negatives, n_items))
        return [law] if law else []
    if fits.get("negatives", {}).get(metric):
        ks = costs.sampled(fits["cost"])
        grid = np.geomspace(ks[0], ks[-1], max(int(np.log10(ks[-1] / ks[0]) * K_BETWEEN), 1) + 1)[1:-1]
        named = [(label, costs.k_number(label, n_items)) for label in labels]
        extra = [(f"{k:.3g}", float(k)) for k in grid if between and not np.isclose(k, ks).any()]
        return [_in_k(fits, metric, label, k) for label, k in named + extra]
    return [law for label in labels if (law := per_k(fits, metric, label))]


def n_grid(cost: dict) -> np.ndarray:
    """The N searched for optima: GRID points, log-uniform, SPAN decades beyond the table's N on each side."""
    n = [v for e in cost["per_k"].values() for v in e["n_params"]]
    return np.geomspace(min(n) / 10**SPAN, max(n) * 10**SPAN, GRID)


def _priced(law: Law, cost: dict) -> str | float:
    """The K the cost model prices: the table's label, or the number between sampled K values."""
    return law.negatives if law.negatives in cost["per_k"] else law.k


def allocate(law: Law, p: dict, cost: dict, budget: float, ns: np.ndarray) -> tuple[float, float, float, bool]:
    """(N_opt, T_opt, target there, edge) of `law` with parameters p at `budget` FLOPs, N searched over ns."""
    t = budget / costs.per_target(cost, ns, _priced(law, cost))
    y = law.target(p, ns, t)
    y = np.where(np.isfinite(y), y, np.inf)
    i = int(np.argmin(y))
    if i in (0, len(ns) - 1):
        return float(ns[i]), float(t[i]), float(y[i]), True
    x, (a, b, c) = np.log(ns[i - 1:i + 2]), y[i - 1:i + 2]
    curvature = a - 2 * b + c
    step = 0.5 * (a - c) / curvature if curvature > 0 else 0.0
    n = np.array([float(np.exp(x[1] + step * (x[2] - x[1])))])
    t_n = budget / costs.per_target(cost, n, _priced(law, cost))
    return float(n[0]), float(t_n[0]), float(law.target(p, n, t_n)[0]), False


def _interval(values) -> list[float] | None:
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if len(v) > 1 else None


def optimum(fits: dict, budget: float, negatives: str | None = None, between: bool = True) -> dict:
    """The compute-optimal (N, T, K) for `budget` FLOPs (module doc): point values, 95% intervals, the predicted
    metrics there with theirs, the cost per target and the negatives' share of it. `negatives` pins K; `between`
    (candidates) allows K between the table's sampled values."""
    from analysis.laws import from_target

    if not budget > 0:
        raise UserError(f"--budget {budget}: must be a positive number of FLOPs")
    laws = candidates(fits, DECISIVE, negatives, between)
    if not laws:
        raise UserError("the fits have no joint perplexity law to advise from (see their messages)")
    cost, ns = fits["cost"], n_grid(fits["cost"])
    n_boot = min(len(law.params) for law in laws)

    def choose(i: int) -> tuple[Law, tuple]:
        best = [(law, allocate(law, law.params[i], cost, budget, ns)) for law in laws]
        return min(best, key=lambda b: b[1][2])

    law, (n, t, _, edge) = choose(0)
    samples = [choose(i) for i in range(1, n_boot)]
    out = {"budget": budget, "negatives": law.negatives, "negatives_number": law.k,
           "law": (f"the joint law in (N, T, K), {fits['negatives'][DECISIVE]['selected']}"
                   if fits.get("negatives", {}).get(DECISIVE) else "the per-K joint laws"),
           "candidates": [c.negatives for c in laws], "n_params": n, "tokens": t, "edge": edge,
           "n_params_ci95": _interval([s[1][0] for s in samples]), "tokens_ci95": _interval([s[1][1] for s in samples]),
           "negatives_ci95": _interval([s[0].k for s in samples]), "bootstrap": len(samples),
           "flops_per_target": budget / t,
           "negatives_share": costs.negatives_share(cost, n, _priced(law, cost)),
           "predictions": {}}
    for metric in fits.get("metrics", {}):
        match = [c for c in candidates(fits, metric, negatives, between)
                 if c.negatives == law.negatives or np.isclose(c.k, law.k)]
        if not match:
            continue
        m = match[0]
        value = float(from_target(metric, m.target(m.params[0], np.array([n]), np.array([t]))[0]))
        boot = [float(from_target(metric, m.target(p, np.array([s[1][0]]), np.array([s[1][1]]))[0]))
                for p, s in zip(m.params[1:], samples)]
        out["predictions"][metric] = {"value": value, "ci95": _interval(boot)}
    return out


def curve(law: Law, cost: dict, budgets: np.ndarray, ns: np.ndarray) -> dict:
    """Approach 3 for one K (fits.json `allocation` of a per-K entry): N_opt(C) and T_opt(C) at `budgets`, each
    with its bootstrap interval, and the exponent of N_opt in C (a line in ln C through the budgets' N_opt), with
    the percentiles of the refits' exponents."""
    at = np.array([[allocate(law, p, cost, float(c), ns) for c in budgets] for p in law.params])  # (P, C, 4)
    slopes = [float(np.polyfit(np.log(budgets), np.log(a[:, 0]), 1)[0]) for a in at]
    out = {"flops": [float(c) for c in budgets], "n_opt": at[0, :, 0].tolist(), "t_opt": at[0, :, 1].tolist(),
           "n_opt_exponent": slopes[0], "edge": at[0, :, 3].astype(bool).tolist()}
    if len(law.params) > 2:
        out["n_opt_ci95"] = [_interval(at[1:, i, 0]) for i in range(len(budgets))]
        out["t_opt_ci95"] = [_interval(at[1:, i, 1]) for i in range(len(budgets))]
        out["n_opt_exponent_ci95"] = _interval(slopes[1:])
    return out


def over_budgets(fits: dict, budgets: np.ndarray) -> dict:
    """fits.json `optimum`: the joint optimum (K*, N_opt, T_opt, each with its interval, the perplexity predicted
    and the negatives' share of the cost) at each budget."""
    joint = [optimum(fits, float(c)) for c in budgets]
    keys = ("negatives", "negatives_number", "negatives_ci95", "n_params", "n_params_ci95", "tokens", "tokens_ci95",
            "edge", "negatives_share")
    return {"flops": [float(c) for c in budgets], "law": joint[0]["law"], **{k: [j[k] for j in joint] for k in keys},
            "ppl": [j["predictions"].get(DECISIVE, {}).get("value") for j in joint],
            "ppl_ci95": [j["predictions"].get(DECISIVE, {}).get("ci95") for j in joint]}
