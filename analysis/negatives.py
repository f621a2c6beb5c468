"""Negatives as an axis: joint laws in (N, T, K) fitted over every K value of a table, the form chosen by held-out
error; `fit_table` writes them to fits.json `negatives` (per metric) when a table has >= 3 values of K.

K is the number of sampled negatives per target; `full` (the whole catalog) is K = n_items - 1 and needs the
table's `n_items` column. Without full rows the reference K_ref is the largest sampled K. Forms (the targets of
analysis/laws.py: ln(perplexity), 1 - NDCG@5), each a registered entry of FORMS:
- additive: L = E + A/N^alpha + B/T^beta + D (K^-gamma - K_ref^-gamma)
- effective_data: L = E + A/N^alpha + B/(T g(K))^beta, g(K) = h(K)/h(K_ref), h(K) = 1/(1 + (K0/K)^gamma): K buys
  statistical efficiency, as if each target were worth g(K) of one trained with the reference's negatives.
- effective_capacity (the interaction): L = E + A/(N g(K)^zeta)^alpha + B/(T g(K))^beta, zeta in [-2, 5]: fewer
  negatives also cost effective parameters, so the gap to the full softmax grows with N (zeta > 0); zeta = 0 is
  effective_data.
A fit is as the per-K laws': Huber (delta = 1e-3) on log residuals, from variable-projection starts (for each point
of a grid of exponents (and K0) the law is linear in its scales, solved by exact non-negative least squares), the
best few polished by scipy's least_squares (each row's Huber loss times its bootstrap weight); 95% intervals by
a bootstrap of runs within each K (a run's branch ends together), every resample refitted from its own
variable-projection starts. Held-out error (mean relative error of the prediction in the metric's units): leave
one K value out (with >= 4 K values: a fold with 2 K values left cannot pin the K part's two parameters, and its
error measures an arbitrary extrapolation), and leave one run out, each fold refitted from scratch on its
training rows; the form
with the lowest mean of the two is selected, unless one with fewer parameters is within SELECT_MARGIN of it (so
a nesting form, effective_capacity near zeta = 0, does not win by fitting noise). Flags, as analysis.fit.identify's:
a scale whose interval spans more than a decade, an exponent whose interval is wider than its value, and for the
forms with a knee, K0 outside the sampled K range (then the slope of the law in ln K over the sampled range is given,
and the side of the bound).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from analysis.fit import DELTA, WIDE_DECADES, _nnls_batch, relative_error
from harness.core.errors import UserError

EXPONENTS = np.linspace(0.05, 1.5, 12)  # the variable-projection grid of alpha, beta, gamma
POLISHED = 4  # best grid points polished by least_squares
REFIT_STEP, REFIT_POLISHED = 2, 2  # a refit's (held out, bootstrap) coarser grid, and the grid points it polishes
MIN_K_FOLDS = 4  # leave one K out needs >= 4 K values: each fold keeps the reference and >= 2 others
SELECT_MARGIN = 0.05  # a form with more parameters wins only if its held-out error is > 5% (relative) lower


@dataclass(frozen=True)
class Form:
    """A joint law in (N, T, K): `scales` solved linearly for fixed `shape` parameters (grid), `predict`."""

    name: str
    formula: str
    shape: list[str]  # nonlinear parameters, in the order of the grid's columns
    scales: list[str]  # linear, >= 0
    grid: Callable[..., np.ndarray]  # (sampled K values, step) -> (G, len(shape)) grid of shape parameters
    columns: Callable[[np.ndarray, dict, float], list[np.ndarray]]  # (X (n, 3), shape, k_ref) -> a column per scale

    def predict(self, p: dict, x: np.ndarray, k_ref: float) -> np.ndarray:
        cols = self.columns(x, p, k_ref)
        return sum(p[s] * c for s, c in zip(self.scales, cols))


def _additive_columns(x: np.ndarray, p: dict, k_ref: float) -> list[np.ndarray]:
    n, t, k = x.T
    return [np.ones(len(x)), n ** -p["alpha"], t ** -p["beta"], k ** -p["gamma"] - k_ref ** -p["gamma"]]


def _gain(k: np.ndarray, k0: float, gamma: float) -> np.ndarray:
    return 1.0 / (1.0 + (k0 / k) ** gamma)


def _effective_columns(x: np.ndarray, p: dict, k_ref: float) -> list[np.ndarray]:
    n, t, k = x.T
    g = _gain(k, p["K0"], p["gamma"]) / _gain(np.float64(k_ref), p["K0"], p["gamma"])
    return [np.ones(len(x)), n ** -p["alpha"], (t * g) ** -p["beta"]]


def _capacity_columns(x: np.ndarray, p: dict, k_ref: float) -> list[np.ndarray]:
    n, t, k = x.T
    g = _gain(k, p["K0"], p["gamma"]) / _gain(np.float64(k_ref), p["K0"], p["gamma"])
    return [np.ones(len(x)), (n * g ** p["zeta"]) ** -p["alpha"], (t * g) ** -p["beta"]]


def _exponent_grid(
    k: np.ndarray, with_knee: bool, zetas: tuple = (), exponents: np.ndarray = EXPONENTS, step: int = 1
) -> np.ndarray:
    """The variable-projection grid of the shape parameters; `step` keeps every step-th exponent and knee (the
    coarser grid of refits)."""
    axes = [exponents[::step]] * 3
    if with_knee:
        axes.append(np.geomspace(max(k.min() / 10, 0.1), k.max() * 10, 9)[::step])
    if zetas:
        axes.append(np.array(zetas))
    return np.array(list(itertools.product(*axes)))


FORMS = {
    "additive": Form(
        "additive",
        "E + A/N^alpha + B/T^beta + D (K^-gamma - K_ref^-gamma)",
        ["alpha", "beta", "gamma"],
        ["E", "A", "B", "D"],
        lambda k, step=1: _exponent_grid(k, False, step=step),
        _additive_columns,
    ),
    "effective_data": Form(
        "effective_data",
        "E + A/N^alpha + B/(T g(K))^beta, g = h(K)/h(K_ref), h = 1/(1 + (K0/K)^gamma)",
        ["alpha", "beta", "gamma", "K0"],
        ["E", "A", "B"],
        lambda k, step=1: _exponent_grid(k, True, step=step),
        _effective_columns,
    ),
    "effective_capacity": Form(
        "effective_capacity",
        "E + A/(N g(K)^zeta)^alpha + B/(T g(K))^beta, g as in effective_data",
        ["alpha", "beta", "gamma", "K0", "zeta"],
        ["E", "A", "B"],
        lambda k, step=1: _exponent_grid(k, True, (0.0, 0.5, 1.0, 2.0), np.linspace(0.05, 1.5, 8), step),
        _capacity_columns,
    ),
}


def negatives_axis(rows: pd.DataFrame) -> tuple[np.ndarray, float, str]:
    """K per row as a number (full = n_items - 1), the reference K_ref and a sentence saying what it is."""
    full = rows["negatives"].astype(str) == "full"
    if full.any():
        if "n_items" not in rows.columns or rows.loc[full, "n_items"].isna().any():
            raise UserError("column n_items: rows with negatives = full need it (K = n_items - 1)")
        k = np.where(
            full, rows["n_items"].astype(float) - 1, pd.to_numeric(rows["negatives"].where(~full), errors="coerce")
        )
        k_ref = float(np.median(rows.loc[full, "n_items"].astype(float) - 1))
        return k.astype(float), k_ref, f"the full softmax, K = n_items - 1 = {k_ref:g}"
    k = pd.to_numeric(rows["negatives"], errors="coerce").to_numpy(float)
    return k, float(np.nanmax(k)), f"the largest sampled K = {np.nanmax(k):g} (no full-softmax rows)"


def _scales_at(form: Form, x: np.ndarray, y: np.ndarray, shapes: np.ndarray, k_ref: float):
    """For each row of `shapes`: the non-negative scales minimising relative residuals, and the residual norm."""
    p = {name: shapes[:, i, None] for i, name in enumerate(form.shape)}  # (G, 1): every grid point at once
    design = np.stack(np.broadcast_arrays(*form.columns(x, p, k_ref)), axis=2)  # (G, n, scales)
    return _nnls_batch(design / y[None, :, None], np.ones((len(shapes), len(y))))


def _pack(form: Form, shape: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """Least-squares vector: exponents as they are, K0 and the scales in log (a zero scale at e^-30)."""
    free = [np.log(v) if name == "K0" else v for name, v in zip(form.shape, shape)]
    return np.concatenate([free, np.log(np.maximum(scales, 1e-13))])


def _unpack(form: Form, theta: np.ndarray) -> dict:
    p = {name: np.exp(v) if name == "K0" else v for name, v in zip(form.shape, theta)}
    p.update(zip(form.scales, np.exp(theta[len(form.shape) :])))
    return {k: float(v) for k, v in p.items()}


def fit_form(
    form: Form,
    x: np.ndarray,
    y: np.ndarray,
    k_ref: float,
    weights: np.ndarray | None = None,
    starts: np.ndarray | None = None,
    refit: bool = False,
) -> tuple[dict, float]:
    """The law `form` through (x = (N, T, K) rows, y > 0): its parameters and Huber loss. `weights` (per row, a
    bootstrap's counts) weight each row's loss; `starts` (packed vectors) replace the variable-projection ones
    on these rows (every refit takes its own: a start from a fit on other rows is a head start); a `refit`
    projects on the coarser grid (REFIT_STEP) and polishes REFIT_POLISHED starts."""
    w = np.ones(len(y)) if weights is None else weights
    keep = w > 0
    if starts is None:
        grid = form.grid(x[:, 2], REFIT_STEP if refit else 1)
        scales, res = _scales_at(form, x[keep], y[keep], grid, k_ref)
        best = np.argsort(res)[: REFIT_POLISHED if refit else POLISHED]
        starts = np.array([_pack(form, grid[i], scales[i]) for i in best])
    lo = np.array(
        [-5.0 if name == "K0" else -2.0 if name == "zeta" else 0.0 for name in form.shape] + [-30.0] * len(form.scales)
    )
    hi = np.array([25.0 if name == "K0" else 5.0 for name in form.shape] + [30.0] * len(form.scales))
    x, logy, w = x[keep], np.log(y[keep]), w[keep]

    def residuals(theta: np.ndarray) -> np.ndarray:
        pred = form.predict(_unpack(form, theta), x, k_ref)
        return np.log(np.maximum(pred, 1e-300)) - logy

    def weighted_huber(z: np.ndarray) -> np.ndarray:
        """scipy's Huber rho(z) of z = r^2 (in f_scale units) and its two derivatives, each point's times its
        weight: a point drawn w times counts w times (scaling the residual by sqrt(w) instead would count it
        sqrt(w) times where the loss is linear)."""
        rho = np.empty((3, z.size))
        inside = z <= 1
        rho[0] = np.where(inside, z, 2 * np.sqrt(z) - 1)
        rho[1] = np.where(inside, 1.0, 1 / np.sqrt(np.maximum(z, 1e-300)))
        rho[2] = np.where(inside, 0.0, -0.5 * np.maximum(z, 1e-300) ** -1.5)
        return rho * w

    best_theta, best_loss = None, np.inf
    for s in starts:
        r = least_squares(
            residuals, np.clip(s, lo, hi), bounds=(lo, hi), loss=weighted_huber, f_scale=DELTA, max_nfev=400
        )
        if r.cost < best_loss:
            best_theta, best_loss = r.x, float(r.cost)
    return _unpack(form, best_theta), best_loss


def _heldout(
    form: Form, x: np.ndarray, y: np.ndarray, y_metric: np.ndarray, groups: np.ndarray, k_ref: float, back
) -> dict:
    """Leave one K value out (with >= MIN_K_FOLDS K values) and leave one run (group: all its branch ends) out:
    mean relative error of the held-out predictions, each refit from scratch on its training rows (its own
    variable-projection starts); `mean` is the mean over the splits made."""
    out, folds = {}, {}
    splits, n_k = [("leave_one_run_out", groups)], len(np.unique(x[:, 2]))
    if n_k >= MIN_K_FOLDS:
        splits.insert(0, ("leave_one_k_out", x[:, 2]))
    else:
        out["leave_one_k_out_skipped"] = (
            f"{n_k} K values: a fold would keep {n_k - 1}, which cannot pin down the "
            f"K part's 2 parameters (>= {MIN_K_FOLDS} K values needed)"
        )
    for name, labels in splits:
        errors = {}
        for value in np.unique(labels):
            test = labels == value
            p, _ = fit_form(form, x[~test], y[~test], k_ref, refit=True)
            errors[str(value)] = relative_error(back(form.predict(p, x[test], k_ref)), y_metric[test])
        out[name], folds[name] = float(np.mean(list(errors.values()))), errors
    out["folds"] = folds
    out["mean"] = float(np.mean([out[name] for name, _ in splits]))
    return out


def _run_weights(groups: np.ndarray, k: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap weights per row (n_boot, rows): runs resampled with replacement within each K value (a run's
    branch ends share its noise, so they go together; every K keeps its runs' count)."""
    out = np.zeros((n_boot, len(groups)))
    for value in np.unique(k):
        at = k == value
        runs, index = np.unique(groups[at], return_inverse=True)
        counts = rng.multinomial(len(runs), np.full(len(runs), 1 / len(runs)), size=n_boot)
        out[:, at] = counts[:, index]
    return out


def _flags(form: Form, p: dict, ci: dict, k: np.ndarray, k_ref: float) -> dict[str, str]:
    flags = {}
    for name, (lo, hi) in ci.items():
        if name in form.scales or name == "K0":
            if lo > 0 and np.log10(hi / lo) > WIDE_DECADES:
                flags[name] = f"the 95% interval spans {np.log10(hi / lo):.1f} decades"
        elif hi - lo > abs(p[name]):
            flags[name] = f"the 95% interval ({hi - lo:.3g} wide) is wider than the estimate"
    if "K0" in p:
        sampled = k[k < k_ref] if (k < k_ref).any() else k
        lo_k, hi_k = float(sampled.min()), float(sampled.max())
        if not lo_k <= p["K0"] <= hi_k:
            side = f"K0 < {lo_k:g}" if p["K0"] < lo_k else f"K0 > {hi_k:g}"
            ks = np.geomspace(lo_k, hi_k, 2)
            g = _gain(ks, p["K0"], p["gamma"])
            slope = float(np.diff(np.log(g))[0] / np.diff(np.log(ks))[0])
            flags["K0"] = (
                f"the knee lies outside the sampled K range [{lo_k:g}, {hi_k:g}] ({side}): not "
                f"identified; there d ln g / d ln K = {slope:.3g}"
            )
    return flags


def fit_negatives(
    rows: pd.DataFrame, y: np.ndarray, y_metric: np.ndarray, back, n_boot: int = 200, seed: int = 0
) -> dict:
    """Every form of FORMS through the fitting points `rows` (all K values), their held-out errors, the selected
    form and, per form, bootstrap intervals and flags (module doc). y: the loss-like target; y_metric: the metric
    itself (held-out errors are in its units); back: target -> metric."""
    k, k_ref, reference = negatives_axis(rows)
    x = np.stack([rows["n_params"].to_numpy(float), rows["tokens"].to_numpy(float), k], axis=1)
    groups = rows["run_id"].to_numpy() if "run_id" in rows.columns else np.arange(len(rows))
    out = {"k_ref": k_ref, "reference": reference, "k_values": sorted(set(k.tolist())), "forms": {}}
    rng = np.random.default_rng(seed)
    for name, form in FORMS.items():
        p, loss = fit_form(form, x, y, k_ref)
        pred = form.predict(p, x, k_ref)
        r2 = 1 - np.sum((np.log(pred) - np.log(y)) ** 2) / np.sum((np.log(y) - np.log(y).mean()) ** 2)
        rms = float(np.sqrt(np.mean((np.log(pred) - np.log(y)) ** 2)))
        entry = {
            "formula": form.formula,
            "params": p,
            "loss": loss,
            "r2": float(r2),
            "rms_log": rms,
            "heldout": _heldout(form, x, y, y_metric, groups, k_ref, back),
        }
        if n_boot:
            samples = [
                fit_form(form, x, y, k_ref, weights=w, refit=True)[0] for w in _run_weights(groups, k, n_boot, rng)
            ]
            entry["ci95"] = {
                s: [
                    float(np.percentile([b[s] for b in samples], 2.5)),
                    float(np.percentile([b[s] for b in samples], 97.5)),
                ]
                for s in p
            }
            entry["unidentified"] = _flags(form, p, entry["ci95"], k, k_ref)
            entry["bootstrap"] = samples
        out["forms"][name] = entry
    errors = {name: f["heldout"]["mean"] for name, f in out["forms"].items()}
    close = [name for name in errors if errors[name] <= min(errors.values()) * (1 + SELECT_MARGIN)]
    out["selected"] = min(close, key=lambda f: (len(FORMS[f].shape) + len(FORMS[f].scales), errors[f]))
    return out
