"""Scaling-law fits on the results table.

- Single axis: y = E + A x^-alpha (E >= 0), fitted in log space: minimise the Huber loss of
  log y - log(E + A x^-alpha), written as a log-sum-exp of (e, a - alpha log x) with E = e^e, A = e^a.
- Joint: L(N, T) = E + A / N^alpha + B / T^beta, the same way (Chinchilla approach 3 as Besiroglu et al. 2024
  redo it): Huber (delta = 1e-3) on log residuals, L-BFGS from a grid of initialisations, best kept, convergence
  reported; bootstrap over runs for 95% intervals.
- Sigmoid in ln C (the SRT paper's frontier form): y = p / (1 + exp(-k (ln C - c0))) + q.
All fits take arrays; `x` may be N, T or C.
"""

from __future__ import annotations

import itertools
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit, logsumexp

DELTA = 1e-3
# Box for the log-space parameters: E = e^e, A = e^a, and exponents in [0, 5] (a saturating, decreasing law).
BOUNDS = {"e": (-30.0, 10.0), "a": (-30.0, 60.0), "alpha": (0.0, 5.0)}


def huber(r: np.ndarray, delta: float = DELTA) -> np.ndarray:
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r**2, delta * (a - 0.5 * delta))


def _huber_grad(r: np.ndarray, delta: float = DELTA) -> np.ndarray:
    return np.clip(r, -delta, delta)


@dataclass
class Fit:
    """A fitted law: parameter values by name, the objective, whether L-BFGS converged, R^2 of log y."""

    form: str
    params: dict[str, float]
    loss: float
    converged: bool
    r2: float
    n_points: int
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)

    samples: list[dict[str, float]] = field(default_factory=list)
    _theta: np.ndarray | None = field(default=None, repr=False)  # optimum in log space: the bootstrap's start

    def to_dict(self) -> dict:
        out = {"form": self.form, "params": self.params, "ci95": {k: list(v) for k, v in self.ci.items()},
               "loss": self.loss, "converged": self.converged, "r2": self.r2, "n_points": self.n_points}
        if self.samples:
            out["bootstrap"] = [{k: float(f"{v:.6g}") for k, v in s.items()} for s in self.samples]
        return out


def _terms(theta: np.ndarray, logs: list[np.ndarray]) -> np.ndarray:
    """(n_terms, n_points): e, then a_i - alpha_i log x_i for each axis."""
    e, rest = theta[0], theta[1:]
    out = [np.full(len(logs[0]), e)]
    for i, lx in enumerate(logs):
        out.append(rest[2 * i] - rest[2 * i + 1] * lx)
    return np.stack(out)


def _objective(theta: np.ndarray, logs: list[np.ndarray], logy: np.ndarray) -> tuple[float, np.ndarray]:
    terms = _terms(theta, logs)
    pred = logsumexp(terms, axis=0)
    r = pred - logy
    w = np.exp(terms - pred)  # d pred / d term
    g = _huber_grad(r)
    grad = [np.sum(g * w[0])]
    for i, lx in enumerate(logs):
        grad += [np.sum(g * w[i + 1]), np.sum(-g * w[i + 1] * lx)]
    return float(np.sum(huber(r))), np.array(grad)


def _lbfgs(theta0: np.ndarray, logs, logy, maxiter: int = 1000) -> tuple[np.ndarray, float, bool]:
    """L-BFGS on the Huber objective scaled by 1/delta (same minimiser, gradients of order one)."""
    scaled = lambda th: tuple(v / DELTA for v in _objective(th, logs, logy))  # noqa: E731
    bounds = [BOUNDS["e"]] + [BOUNDS["a"], BOUNDS["alpha"]] * len(logs)
    res = minimize(scaled, theta0, jac=True, method="L-BFGS-B", bounds=bounds,
                   options={"maxiter": maxiter, "gtol": 1e-8})
    return res.x, float(res.fun) * DELTA, bool(res.success)


def _r2(logy: np.ndarray, pred: np.ndarray) -> float:
    ss = np.sum((logy - logy.mean()) ** 2)
    return float(1 - np.sum((logy - pred) ** 2) / ss) if ss > 0 else float("nan")


def _fit_sum_of_powers(xs: list[np.ndarray], y: np.ndarray, names: list[str], form: str,
                       init: np.ndarray | None = None, maxiter: int = 1000) -> Fit:
    logs, logy = [np.log(np.asarray(x, float)) for x in xs], np.log(np.asarray(y, float))
    if init is not None:
        starts = [init]
    else:
        grid_e = [-2.0, 0.0, 1.0]
        grid_a = [1.0, 6.0]
        grid_alpha = [0.2, 0.7]
        starts = [np.array([e, *itertools.chain(*pairs)])
                  for e in grid_e for pairs in itertools.product(itertools.product(grid_a, grid_alpha), repeat=len(xs))]
    best = None
    for theta0 in starts:  # a short run from every start, then the best one to convergence
        theta, loss, ok = _lbfgs(theta0, logs, logy, maxiter=60 if len(starts) > 1 else maxiter)
        if best is None or loss < best[1]:
            best = (theta, loss, ok)
    theta, loss, ok = _lbfgs(best[0], logs, logy, maxiter) if len(starts) > 1 else best
    params = {"E": float(np.exp(theta[0]))}
    for i, (a_name, alpha_name) in enumerate(zip(names[0::2], names[1::2])):
        params[a_name] = float(np.exp(theta[1 + 2 * i]))
        params[alpha_name] = float(theta[2 + 2 * i])
    pred = logsumexp(_terms(theta, logs), axis=0)
    return Fit(form, params, loss, ok, _r2(logy, pred), len(y), _theta=theta)


def power_law(x: np.ndarray, y: np.ndarray) -> Fit:
    """y = E + A x^-alpha."""
    return _fit_sum_of_powers([x], y, ["A", "alpha"], "E + A x^-alpha")


def joint(n: np.ndarray, t: np.ndarray, y: np.ndarray) -> Fit:
    """y = E + A / N^alpha + B / T^beta."""
    return _fit_sum_of_powers([n, t], y, ["A", "alpha", "B", "beta"], "E + A/N^alpha + B/T^beta")


def predict_power_law(p: dict, x: np.ndarray) -> np.ndarray:
    return p["E"] + p["A"] * np.asarray(x, float) ** -p["alpha"]


def predict_joint(p: dict, n: np.ndarray, t: np.ndarray) -> np.ndarray:
    return p["E"] + p["A"] * np.asarray(n, float) ** -p["alpha"] + p["B"] * np.asarray(t, float) ** -p["beta"]


def sigmoid(log_c: np.ndarray, y: np.ndarray) -> Fit:
    """y = p / (1 + exp(-k (ln C - c0))) + q, least squares from a grid of starts (k > 0)."""
    log_c, y = np.asarray(log_c, float), np.asarray(y, float)

    def loss(theta):
        p, k, c0, q = theta
        return float(np.sum((p * expit(k * (log_c - c0)) + q - y) ** 2))

    span = max(float(np.ptp(y)), 1e-6)
    best = None
    for k0 in (0.5, 1.0, 3.0):
        for c00 in np.quantile(log_c, [0.25, 0.5, 0.75]):
            res = minimize(loss, np.array([2 * span, k0, c00, float(y.min()) - 0.5 * span]), method="L-BFGS-B",
                           bounds=[(1e-9, None), (1e-6, None), (None, None), (None, None)])
            if best is None or res.fun < best.fun:
                best = res
    p, k, c0, q = best.x
    pred = p * expit(k * (log_c - c0)) + q
    ss = np.sum((y - y.mean()) ** 2)
    r2 = float(1 - np.sum((y - pred) ** 2) / ss) if ss > 0 else float("nan")
    return Fit("p / (1 + exp(-k (ln C - c0))) + q", {"p": float(p), "k": float(k), "c0": float(c0), "q": float(q)},
               float(best.fun),
               bool(best.success), r2, len(y))


def predict_sigmoid(p: dict, log_c: np.ndarray) -> np.ndarray:
    return p["p"] * expit(p["k"] * (np.asarray(log_c, float) - p["c0"])) + p["q"]


def _refit(args) -> list[dict[str, float]]:
    fit_, xs, y, picks = args
    names = [k for k in fit_.params if k != "E"]
    return [_fit_sum_of_powers([x[p] for x in xs], y[p], names, fit_.form, init=fit_._theta, maxiter=200).params
            for p in picks]


def bootstrap(fit: Fit, xs: list[np.ndarray], y: np.ndarray, groups: np.ndarray, n_boot: int = 1000,
              seed: int = 0, workers: int = 2) -> Fit:
    """95% percentile intervals for every parameter of a sum-of-powers fit by resampling groups (runs) with
    replacement; each resample is fitted by L-BFGS warm-started from the full-data optimum. The resamples are
    drawn here from `seed` and fitted in `workers` processes, so the result does not depend on `workers`."""
    rng = np.random.default_rng(seed)
    uniq = np.unique(groups)
    index = {g: np.flatnonzero(groups == g) for g in uniq}
    picks = [np.concatenate([index[g] for g in rng.choice(uniq, len(uniq), replace=True)]) for _ in range(n_boot)]
    chunks = [picks[i::workers] for i in range(workers)]
    if workers > 1 and n_boot >= 100:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            parts = list(pool.map(_refit, [(fit, xs, y, c) for c in chunks]))
    else:
        parts = [_refit((fit, xs, y, c)) for c in chunks]
    samples = [parts[i % workers][i // workers] for i in range(n_boot)]
    fit.ci = {k: (float(np.percentile([s[k] for s in samples], 2.5)),
                  float(np.percentile([s[k] for s in samples], 97.5))) for k in fit.params}
    fit.samples = samples
    return fit
