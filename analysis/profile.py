"""Profile-likelihood intervals of the joint law's exponents under the noise model: the cross-check of the
bootstrap intervals (fits.json `joint.profile`).

With the noise model's covariance V = point^2 I + run^2 Z Z' (analysis/noise.py) the log residuals are whitened,
w = V^-1/2 r, and for each held value of an exponent the other parameters minimise W = |w|^2 (scipy's
least_squares from the fit, then from the previous held value: a continuation along the profile). The interval is
{a : W(a) - W_min <= F_{1, dof}(0.95) W_min / (n - p)}, the profile-t interval of nonlinear least squares with
its degrees of freedom set by the runs, not the points: dof = the run variance's (Satterthwaite) degrees of
freedom for the parameters of N (alpha) and the point variance's for those of T (beta), at least 1. A profile
that has not crossed the cut-off by the edge of the exponents' box [0, 5] is open on that side (None).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from scipy.optimize import least_squares
from scipy.stats import f as f_dist

from analysis import fit
from analysis.noise import Noise

LEVEL = 0.95
STEPS = 24  # held values on each side of the estimate
DISAGREE = 0.5  # an end further than this fraction of the bootstrap interval's width from the profile's: flagged


def _whitener(nz: Noise, runs: np.ndarray):
    """r (n,) -> V^-1/2 r for V = point^2 I + run^2 Z Z' (Z Z' the same-run indicator), in O(n): on a run of m
    points V is point^2 on deviations from the run's mean and point^2 + m run^2 on the mean, so
    V^-1/2 r = (r - mean) / point + mean / sqrt(point^2 + m run^2), per run."""
    _, inverse, counts = np.unique(runs, return_inverse=True, return_counts=True)
    point2 = max(nz.point, 1e-9) ** 2
    on_mean = (point2 + nz.run**2 * counts)[inverse] ** -0.5

    def white(r: np.ndarray) -> np.ndarray:
        mean = (np.bincount(inverse, weights=r, minlength=len(counts)) / counts)[inverse]
        return (r - mean) / np.sqrt(point2) + mean * on_mean

    return white


def profile(f: fit.Fit, xs: list[np.ndarray], y: np.ndarray, runs: np.ndarray, nz: Noise, method: str = "runs") -> dict:
    """{exponent: {"ci95": [lo or None, hi or None], "dof", "disagrees" (with the bootstrap interval)}}. The
    `points` method takes the points as independent (no run effect, dof = n - p for both exponents)."""
    logs, logy = [np.log(np.asarray(x, float)) for x in xs], np.log(np.asarray(y, float))
    n, p = len(logy), len(f._theta)
    if method == "points":
        nz = replace(nz, point=1.0, run=0.0, run_dof=float(n - p), point_dof=float(n - p), runs=n, points=n)
        runs = np.arange(n)
    white = _whitener(nz, np.asarray(runs))
    lo_box, hi_box = fit._bounds(len(logs))

    def w(theta):
        return white(fit._logsumexp(fit._terms(theta[None], logs))[0] - logy)

    w_min = float(np.sum(w(f._theta) ** 2))
    out = {}
    for index, name, dof in (
        (2, "alpha", nz.run_dof if nz.runs < nz.points else nz.point_dof),
        (4, "beta", nz.point_dof),
    ):
        dof = max(float(dof), 1.0)
        cut = float(f_dist.ppf(LEVEL, 1, dof)) * max(w_min, 1e-30) / max(n - p, 1)
        free = [i for i in range(p) if i != index]
        ends = []
        for direction in (-1, 1):
            theta, end, before = f._theta.copy(), None, (f._theta[index], 0.0)
            span = (f._theta[index] - lo_box[index]) if direction < 0 else (hi_box[index] - f._theta[index])
            for held in f._theta[index] + direction * span * (np.arange(1, STEPS + 1) / STEPS) ** 2:

                def residual(sub, held=held):
                    full = theta.copy()
                    full[free], full[index] = sub, held
                    return w(full)

                res = least_squares(residual, theta[free], bounds=(lo_box[free], hi_box[free]), method="trf")
                theta[free], theta[index] = res.x, held
                excess = 2 * res.cost - w_min
                if excess > cut:  # the crossing, interpolated between the last held value inside and this one
                    end = float(before[0] + (cut - before[1]) / (excess - before[1]) * (held - before[0]))
                    break
                before = (held, excess)
            ends.append(end)
        ci = f.ci.get(name)
        disagrees = None
        if ci:
            width = max(ci[1] - ci[0], 1e-12)
            disagrees = any(e is None or abs(e - c) > DISAGREE * width for e, c in zip(ends, ci))
        out[name] = {"ci95": ends, "dof": dof, "disagrees": disagrees}
    return out


def check(f: fit.Fit, xs: list[np.ndarray], y: np.ndarray, runs: np.ndarray, nz: Noise, method: str) -> dict:
    """The exponents checked by their profile (after the bootstrap): fits.json `intervals.profile`, and
    `profile_disagrees` naming those whose ends differ from the bootstrap's by more than DISAGREE of its width.
    An exponent whose profile stays open on a side (a direction along which the data barely change the fit) is
    not identified: its reported interval becomes the hull of the bootstrap's and the profile's, open sides at
    the box's edge (`profile_widened`), so refits that did not explore that direction cannot leave it narrow.
    A profile that closes is a cross-check only: it assumes Gaussian least squares where the fit is a Huber fit
    (a table with outliers, Chinchilla's, shifts it). Returns {exponent: why} for the open ones."""
    f.intervals["profile"] = prof = profile(f, xs, y, runs, nz, method)
    lo_box, hi_box = fit.BOUNDS["alpha"]
    widened, flags = [], {}
    for name, pr in prof.items():
        lo, hi = pr["ci95"]
        open_at = [side for side, end in (("lower", lo), ("upper", hi)) if end is None]
        if not open_at:
            continue
        ci = f.ci[name]
        f.ci[name] = (min(ci[0], lo_box if lo is None else lo), max(ci[1], hi_box if hi is None else hi))
        widened.append(name)
        flags[name] = (
            f"its profile likelihood does not close on the {' and '.join(open_at)} side within "
            f"[{lo_box:g}, {hi_box:g}] ({pr['dof']:.2g} dof): not identified by these data"
        )
    disagree = [name for name, pr in prof.items() if pr["disagrees"]]
    if disagree:
        f.intervals["profile_disagrees"] = disagree
    if widened:
        f.intervals["profile_widened"] = widened
    return flags
