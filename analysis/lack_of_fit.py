"""Lack of fit: whether a table's fitting points reject the law fitted to them.

Two statistics of the log residuals r (n,) of a fit:
- `trend`: the residuals against a flexible model of the same points, a regression on centred
  (ln N)^2, (ln T)^2, ln N ln T, (ln N)^3, (ln T)^3 (the curvature and the N x T interaction an additive sum of
  powers cannot express): F = (SS explained / k) / (SS left / (n - k - 1));
- `pure_error` (where replicate runs share a cell, same config and T, other seed): the classical lack-of-fit F,
  F = (SS_LOF / (m - p)) / (SS_PE / (n - m)), SS_PE the spread of points around their cell's mean, m cells.
Their reference distributions come from the tables the parametric bootstrap drew around the law with the noise
model and refitted (analysis.fit.parametric_bootstrap): the same statistic on each simulated table's residuals
from its own refit, so shared run effects and what the fit absorbs are accounted for; p = (1 + #{F* >= F}) /
(1 + B). Without simulated tables (the points method: independent points), p is read from the F distribution.
With both statistics the law is rejected when either p is below LEVEL / 2 (Bonferroni).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import f as f_dist

LEVEL = 0.05


def _basis(xs: list[np.ndarray]) -> np.ndarray:
    ln, lt = (np.log(np.asarray(x, float)) for x in xs)
    ln, lt = (ln - ln.mean()) / max(ln.std(), 1e-12), (lt - lt.mean()) / max(lt.std(), 1e-12)
    cols = [ln**2, lt**2, ln * lt, ln**3, lt**3]
    out = np.stack([c - c.mean() for c in cols], axis=1)
    keep = np.linalg.svd(out, compute_uv=False) > 1e-8 * max(np.abs(out).max(), 1e-12)  # a design of 2 T values
    return out[:, : int(keep.sum())]


def trend_f(resid: np.ndarray, xs: list[np.ndarray]) -> tuple[np.ndarray, int, int]:
    """F of the trend statistic for residuals (B, n) -> (B,), with its (k, n - k - 1)."""
    resid = np.atleast_2d(resid)
    basis = _basis(xs)
    k = basis.shape[1]
    dof = resid.shape[1] - k - 1
    if k == 0 or dof < 1:
        return np.full(len(resid), np.nan), k, dof
    centred = resid - resid.mean(axis=1, keepdims=True)
    coef, *_ = np.linalg.lstsq(basis, centred.T, rcond=None)
    explained = np.sum((basis @ coef).T ** 2, axis=1)
    left = np.sum(centred**2, axis=1) - explained
    return (explained / k) / np.maximum(left / dof, 1e-300), k, dof


def pure_error_f(resid: np.ndarray, point_cells: np.ndarray, n_params: int) -> tuple[np.ndarray, int, int] | None:
    """The pure-error F for residuals (B, n) -> (B,) with (m - p, n - m); None without replicated cells."""
    resid = np.atleast_2d(resid)
    _, idx, counts = np.unique(point_cells, return_inverse=True, return_counts=True)
    m, n = len(counts), resid.shape[1]
    if m == n or m - n_params < 1:
        return None
    means = np.stack([np.bincount(idx, weights=r, minlength=m) / counts for r in resid])
    ss_pe = np.sum((resid - means[:, idx]) ** 2, axis=1)
    ss_lof = np.sum(counts * means**2, axis=1)
    dof_lof, dof_pe = m - n_params, n - m
    return (ss_lof / dof_lof) / np.maximum(ss_pe / dof_pe, 1e-300), dof_lof, dof_pe


def test(
    resid: np.ndarray,
    xs: list[np.ndarray],
    n_params: int,
    point_cells: np.ndarray | None = None,
    sim_resid: np.ndarray | None = None,
) -> dict:
    """The lack-of-fit tests of one fit (module docstring): residuals (n,), points xs, the law's parameter count,
    each point's replicate cell (None: no replicates named) and the simulated tables' residuals (B, n) or None.
    Returns {"tests": {name: {"f", "dof", "p"}}, "rejects": bool, "level", "reference"}."""
    stats = {"trend": lambda r: trend_f(r, xs)}
    observed = {"trend": trend_f(resid, xs)}
    pure = pure_error_f(resid, point_cells, n_params) if point_cells is not None else None
    if pure is not None:
        stats["pure_error"], observed["pure_error"] = (lambda r: pure_error_f(r, point_cells, n_params)), pure
    out = {}
    for name, stat in stats.items():
        value, d1, d2 = observed[name]
        if not np.isfinite(value[0]):
            continue
        if sim_resid is not None:
            sim = stat(sim_resid)[0]
            p = float((1 + np.sum(sim >= value[0])) / (1 + np.sum(np.isfinite(sim))))
        else:
            p = float(f_dist.sf(value[0], d1, d2))
        out[name] = {"f": float(value[0]), "dof": [int(d1), int(d2)], "p": p}
    level = LEVEL / max(len(out), 1)
    return {
        "tests": out,
        "rejects": any(t["p"] < level for t in out.values()),
        "level": LEVEL,
        "reference": "parametric bootstrap" if sim_resid is not None else "F distribution",
    }


def sentence(lof: dict) -> str:
    """One line for reports and advise: which test rejects the law, with its p."""
    worst = min(lof["tests"].items(), key=lambda kv: kv[1]["p"])
    names = {"trend": "residual trends in ln N, ln T", "pure_error": "pure error of replicate runs"}
    return (
        f"the law is rejected by its lack-of-fit test ({names[worst[0]]}: F = {worst[1]['f']:.3g}, "
        f"p = {worst[1]['p']:.2g}); its intervals are conditional on a law the data reject"
    )
