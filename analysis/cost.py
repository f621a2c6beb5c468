"""Training FLOPs per target as a function of parameters N and negatives K: the price approach 3 and `advise` put on
a run, instead of one kappa (C = kappa N T).

For each value of K the table's fitting points give C/T at each of its N. For this harness's tables these are the
accounting's own prices (harness/model/accounting.py) of the shapes the grid's policy chose; for a table from elsewhere,
whatever its `flops` column says. Between a K's N values C/T is interpolated linearly in N, so it is exact at
every N the study ran and for any cost a N + b; beyond them the end segments carry on (at large N the blocks'
~6 N dominate). A K between two of the table's sampled K values costs the linear
interpolation in K of theirs (the scoring and the per-target negatives' embedding are linear in K). A K with a
single N is priced as its median C/(N T) times N.
Stated beside it (fits.json `cost`): the least-squares summary C/T = a N + b_K (one a, one b per K, relative
residuals) and its largest relative error over the table's points, and the negatives' share of the cost, C/T at K
minus C/T extrapolated linearly in K to no negatives from the table's two smallest K values.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import nnls

from analysis.table import k_order


def k_number(label: str, n_items: float | None) -> float:
    """K as a number: full = n_items - 1 (infinite where the table has no n_items); NaN for a label that is not a
    number (a table from elsewhere may name its K 'sampled-64')."""
    if label == "full":
        return float(n_items - 1) if n_items else np.inf
    try:
        return float(label)
    except ValueError:
        return np.nan


def fit_cost(final: pd.DataFrame) -> dict:
    """The cost model of a table's fitting points (columns n_params, tokens, negatives, flops; n_items where K =
    full): per K label, its (N, C/T) points; the linear summary; n_items."""
    df = final.assign(per_target=final["flops"] / final["tokens"], label=final["negatives"].astype(str))
    n_items = float(df["n_items"].median()) if "n_items" in df.columns and df["n_items"].notna().any() else None
    per_k = {}
    for label in k_order(df["label"]):
        g = df[df["label"] == label]
        pts = g.groupby("n_params")["per_target"].median()
        per_k[label] = {"n_params": pts.index.to_numpy(float).tolist(), "flops_per_target": pts.to_numpy().tolist()}
    labels = list(per_k)
    design = np.stack([df["n_params"].to_numpy(float)] + [(df["label"] == k).to_numpy(float) for k in labels], 1)
    y = df["per_target"].to_numpy(float)
    coef, _ = nnls(design / y[:, None], np.ones(len(y)))
    error = float(np.max(np.abs(design @ coef / y - 1)))
    out = {
        "per_k": per_k,
        "n_items": n_items,
        "linear": {"a": float(coef[0]), "b": dict(zip(labels, map(float, coef[1:]))), "max_rel_error": error},
    }
    return out


def _along_n(points: dict, n) -> np.ndarray:
    """C/T of one K at parameters n: piecewise linear in N through its points, the end segments extended beyond
    them (below the smallest N never under C/T proportional to N, so it stays positive)."""
    ns, c = np.asarray(points["n_params"]), np.asarray(points["flops_per_target"])
    x = np.asarray(n, float)
    if len(ns) == 1:
        return c[0] * x / ns[0]
    lo = np.maximum(c[0] + (x - ns[0]) * (c[1] - c[0]) / (ns[1] - ns[0]), c[0] * x / ns[0])
    hi = c[-1] + (x - ns[-1]) * (c[-1] - c[-2]) / (ns[-1] - ns[-2])
    return np.where(x < ns[0], lo, np.where(x > ns[-1], hi, np.interp(x, ns, c)))


def sampled(cost: dict) -> list[float]:
    """The table's sampled K values (numbers, increasing)."""
    return sorted(k for k in (k_number(label, None) for label in cost["per_k"] if label != "full") if np.isfinite(k))


def per_target(cost: dict, n, k: str | float) -> np.ndarray:
    """Training FLOPs per target at parameters n (array) for K = k: a table's label ('full', '64') or a number
    between two of its sampled K values (module doc)."""
    label = str(k) if str(k) in cost["per_k"] else _label(float(k))
    if label in cost["per_k"]:
        return _along_n(cost["per_k"][label], n)
    k, ks = float(k), sampled(cost)
    if not ks or not ks[0] <= k <= ks[-1]:
        raise ValueError(f"K = {k:g} is outside the table's sampled K values")
    i = min(int(np.searchsorted(ks, k, side="right")) - 1, len(ks) - 2)
    lo, hi = (_along_n(cost["per_k"][_label(v)], n) for v in ks[i : i + 2])
    w = (k - ks[i]) / (ks[i + 1] - ks[i])
    return (1 - w) * lo + w * hi


def _label(k: float) -> str:
    """A sampled K as the table labels it ('64', not '64.0')."""
    return str(int(k)) if float(k).is_integer() else f"{k:g}"


def negatives_share(cost: dict, n: float, k: str | float) -> float | None:
    """The fraction of C/T at (n, k) that the negatives cost: C/T minus its linear extrapolation in K to K = 0 from
    the table's two smallest sampled K values; None with fewer than two."""
    ks = sampled(cost)
    if len(ks) < 2:
        return None
    c0, c1 = (float(_along_n(cost["per_k"][_label(v)], np.array([n]))[0]) for v in ks[:2])
    base = c0 - ks[0] * (c1 - c0) / (ks[1] - ks[0])
    total = float(per_target(cost, np.array([n]), k)[0])
    return 1 - base / total
