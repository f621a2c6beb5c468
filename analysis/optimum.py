"""The compute-optimal (N, T, K) of a FLOP budget C from fitted laws, priced by the table's cost model
(analysis/cost.py): approach 3 as fits.json `allocation` (per K) and `optimum` hold it, and what `advise` prints.

For one K, T = C / (C/T)(N, K) and N_opt minimises the law's loss-like target over ln N: on a log grid of GRID
points from the table's smallest N / 10^SPAN to its largest x 10^SPAN, refined by a parabola through the best grid
point and its neighbours; an optimum on the grid's edge is marked `edge` (the law has none inside it), and one
outside the N or T range of the table's fitting points is marked an `extrapolation` (how many decades beyond);
bootstrap refits whose optimum is on the grid's edge are grid artefacts, left out of the intervals and counted
(`edge_refits`). K* is the K
whose optimum has the lowest perplexity target: among the table's K values with a per-K joint law, or, where the
table has the joint law in (N, T, K) (analysis/negatives.py, its selected form), that law over the table's K values
and a geometric grid between its sampled ones. Each bootstrap refit gives its own (N_opt, T_opt, K*) and
predictions; their 2.5-97.5 percentiles are the 95% intervals (K's over K as a number, full = n_items - 1).
Nothing here refits.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from analysis import cost as costs
from analysis import fit
from analysis.negatives import FORMS
from analysis.table import from_target
from harness.core.errors import UserError

GRID, SPAN = 801, 3.0  # N grid points; decades beyond the table's N range on each side
K_BETWEEN = 6  # grid points per decade of K between sampled values (joint law in K only)
DECISIVE = "ppl"  # the metric whose law chooses N, T and K


@dataclass(frozen=True)
class Law:
    """One metric's law at one K: target(params, n, t) for its parameter sets (the fit, then its bootstrap refits);
    with stacked() parameters, target(stacked(), n (G,), t (G,)) is (P, G)."""

    negatives: str  # a table label ('64', 'full') or a number between sampled K values
    k: float  # K as a number
    params: list[dict]
    target: Callable[[dict, np.ndarray, np.ndarray], np.ndarray]

    def stacked(self, column: bool = True) -> dict:
        """The parameter sets as arrays per name: (P, 1) columns, or (P,) to pair one-to-one with P points."""
        return {
            name: np.array([p[name] for p in self.params], float).reshape((-1, 1) if column else -1)
            for name in self.params[0]
        }


def per_k(fits: dict, metric: str, label: str) -> Law | None:
    j = fits.get("metrics", {}).get(metric, {}).get(label, {}).get("joint", {})
    if "params" not in j:
        return None
    k = costs.k_number(label, fits["cost"]["n_items"])
    return Law(label, k, [j["params"], *j.get("bootstrap", [])], fit.predict_joint)


def _in_k(fits: dict, metric: str, label: str, k: float) -> Law | None:
    neg = fits.get("negatives", {}).get(metric)
    if not neg:
        return None
    entry = neg["forms"][neg["selected"]]
    form, k_ref = FORMS[neg["selected"]], neg["k_ref"]

    def target(p, n, t):
        n, t = np.broadcast_arrays(np.asarray(n, float), np.asarray(t, float))
        return form.predict(p, np.stack([n, t, np.full(n.shape, k)], axis=-1), k_ref)

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


def allocate(law: Law, cost: dict, budget: float, ns: np.ndarray) -> np.ndarray:
    """For each of `law`'s parameter sets at `budget` FLOPs, N searched over ns: (P, 4) rows of N_opt, T_opt, the
    target there and 1 where the optimum lies on the grid's edge."""
    key = _priced(law, cost)
    t = budget / costs.per_target(cost, ns, key)
    y = np.asarray(law.target(law.stacked(), ns, t), float).reshape(len(law.params), len(ns))
    y = np.where(np.isfinite(y), y, np.inf)
    i = np.argmin(y, axis=1)
    edge = (i == 0) | (i == len(ns) - 1)
    j = np.clip(i, 1, len(ns) - 2)
    rows = np.arange(len(y))
    a, b, c = y[rows, j - 1], y[rows, j], y[rows, j + 1]
    curvature = a - 2 * b + c
    with np.errstate(invalid="ignore", divide="ignore"):
        step = np.where(~edge & (curvature > 0) & np.isfinite(curvature), 0.5 * (a - c) / curvature, 0.0)
    log_n = np.log(ns)
    n = np.exp(np.where(edge, log_n[i], log_n[j] + step * (log_n[1] - log_n[0])))
    t_n = budget / costs.per_target(cost, n, key)
    at = np.asarray(law.target(law.stacked(column=False), n, t_n), float).reshape(-1)
    return np.stack([n, t_n, at, edge.astype(float)], axis=1)


def sampled(final) -> dict:
    """fits.json `sampled`: the ranges of N and T the table's fitting points cover, overall and per K label (what
    an optimum outside of is an extrapolation)."""

    def ranges(rows) -> dict:
        return {col: [float(rows[col].min()), float(rows[col].max())] for col in ("n_params", "tokens")}

    return {**ranges(final), "per_k": {str(k): ranges(g) for k, g in final.groupby(final["negatives"].astype(str))}}


def extrapolation(fits: dict, label: str, n: float, t: float) -> dict:
    """How far (N, T) lies outside the N and T ranges K = `label`'s fitting points cover (the table's, for a K
    between sampled ones), in decades: + above the largest, - below the smallest, 0 inside; `extrapolated` when
    either is outside."""
    s = fits.get("sampled")
    if not s:
        return {}
    r = s["per_k"].get(label, s)
    out = {}
    for col, v in (("n_params", n), ("tokens", t)):
        lo, hi = r[col]
        out[col] = float(np.log10(v / hi)) if v > hi else float(np.log10(v / lo)) if v < lo else 0.0
    return {"decades": out, "extrapolated": any(abs(d) > 1e-9 for d in out.values())}


def extrapolation_text(e: dict) -> str:
    """An extrapolation (`extrapolation`) in words; empty when inside the sampled ranges."""
    if not e.get("extrapolated"):
        return ""
    parts = [
        f"{name} {abs(d):.2g} decades {'above' if d > 0 else 'below'} the sampled range"
        for name, d in (("N", e["decades"]["n_params"]), ("T", e["decades"]["tokens"]))
        if d
    ]
    return "extrapolated: " + ", ".join(parts)


def _interval(values) -> list[float] | None:
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if len(v) > 1 else None


def optimum(fits: dict, budget: float, negatives: str | None = None, between: bool = True) -> dict:
    """The compute-optimal (N, T, K) for `budget` FLOPs (module doc): point values, 95% intervals, the predicted
    metrics there with theirs, the cost per target and the negatives' share of it. `negatives` pins K; `between`
    (candidates) allows K between the table's sampled values."""

    if not budget > 0:
        raise UserError(f"--budget {budget}: must be a positive number of FLOPs")
    laws = candidates(fits, DECISIVE, negatives, between)
    if not laws:
        raise UserError("the fits have no joint perplexity law to advise from (see their messages)")
    cost, ns = fits["cost"], n_grid(fits["cost"])
    n_sets = min(len(law.params) for law in laws)  # the fit and its bootstrap refits, paired by index across K
    at = np.stack([allocate(replace(law, params=law.params[:n_sets]), cost, budget, ns) for law in laws])  # (L, P, 4)
    pick = np.argmin(at[:, :, 2], axis=0)  # (P,): each parameter set's K*
    chosen = at[pick, np.arange(n_sets)]  # (P, 4)
    law, (n, t, _, edge) = laws[pick[0]], chosen[0]
    inside = np.flatnonzero(chosen[1:, 3] == 0) + 1  # refits whose optimum is on the N grid's edge are artefacts
    boot_n, boot_t = chosen[inside, 0], chosen[inside, 1]
    out = {
        "budget": budget,
        "negatives": law.negatives,
        "negatives_number": law.k,
        "law": (
            f"the joint law in (N, T, K), {fits['negatives'][DECISIVE]['selected']}"
            if fits.get("negatives", {}).get(DECISIVE)
            else "the per-K joint laws"
        ),
        "candidates": [c.negatives for c in laws],
        "n_params": float(n),
        "tokens": float(t),
        "edge": bool(edge),
        "n_params_ci95": _interval(boot_n),
        "tokens_ci95": _interval(boot_t),
        "negatives_ci95": _interval([laws[i].k for i in pick[inside]]),
        "bootstrap": n_sets - 1,
        "edge_refits": float(1 - len(inside) / (n_sets - 1)) if n_sets > 1 else None,
        "extrapolation": extrapolation(fits, law.negatives, float(n), float(t)),
        "flops_per_target": budget / float(t),
        "negatives_share": costs.negatives_share(cost, float(n), _priced(law, cost)),
        "predictions": {},
    }
    for metric in fits.get("metrics", {}):
        match = [
            c
            for c in candidates(fits, metric, negatives, between)
            if c.negatives == law.negatives or np.isclose(c.k, law.k)
        ]
        if not match:
            continue
        m = match[0]
        value = float(from_target(metric, m.target(m.params[0], np.array([n]), np.array([t]))[0]))
        pairs = inside[inside < len(m.params)]
        paired = replace(m, params=[m.params[i] for i in pairs])
        boot = (
            from_target(metric, paired.target(paired.stacked(column=False), chosen[pairs, 0], chosen[pairs, 1]))
            if paired.params
            else []
        )
        out["predictions"][metric] = {"value": value, "ci95": _interval(np.ravel(boot))}
    return out


def curve(law: Law, cost: dict, budgets: np.ndarray, ns: np.ndarray, fits: dict | None = None) -> dict:
    """Approach 3 for one K (fits.json `allocation` of a per-K entry): N_opt(C) and T_opt(C) at `budgets`, each
    with its bootstrap interval, and the exponent of N_opt in C (a line in ln C through the budgets' N_opt), with
    the percentiles of the refits' exponents; refits whose optimum lies on the N grid's edge are left out of a
    budget's interval (and out of the exponent's, at any budget), their fraction per budget `edge_refits`; with
    `fits`, each budget's extrapolation beyond the sampled N and T."""
    at = np.stack([allocate(law, cost, float(c), ns) for c in budgets], axis=1)  # (P, C, 4)
    slopes = np.polyfit(np.log(budgets), np.log(at[:, :, 0]).T, 1)[0]  # (P,)
    out = {
        "flops": [float(c) for c in budgets],
        "n_opt": at[0, :, 0].tolist(),
        "t_opt": at[0, :, 1].tolist(),
        "n_opt_exponent": float(slopes[0]),
        "edge": at[0, :, 3].astype(bool).tolist(),
    }
    if fits is not None:
        out["extrapolation"] = [extrapolation(fits, law.negatives, n, t) for n, t, *_ in at[0]]
    if len(law.params) > 2:
        boot, edge = at[1:], at[1:, :, 3] == 1  # a refit on the grid's edge at a budget: no optimum there
        out["n_opt_ci95"] = [_interval(boot[~edge[:, i], i, 0]) for i in range(len(budgets))]
        out["t_opt_ci95"] = [_interval(boot[~edge[:, i], i, 1]) for i in range(len(budgets))]
        out["n_opt_exponent_ci95"] = _interval(slopes[1:][~edge.any(axis=1)])
        out["edge_refits"] = edge.mean(axis=0).tolist()
    return out


def over_budgets(fits: dict, budgets: np.ndarray) -> dict:
    """fits.json `optimum`: the joint optimum (K*, N_opt, T_opt, each with its interval, the perplexity predicted
    and the negatives' share of the cost) at each budget."""
    joint = [optimum(fits, float(c)) for c in budgets]
    keys = (
        "negatives",
        "negatives_number",
        "negatives_ci95",
        "n_params",
        "n_params_ci95",
        "tokens",
        "tokens_ci95",
        "edge",
        "edge_refits",
        "extrapolation",
        "negatives_share",
    )
    return {
        "flops": [float(c) for c in budgets],
        "law": joint[0]["law"],
        **{k: [j[k] for j in joint] for k in keys},
        "ppl": [j["predictions"].get(DECISIVE, {}).get("value") for j in joint],
        "ppl_ci95": [j["predictions"].get(DECISIVE, {}).get("ci95") for j in joint],
    }
