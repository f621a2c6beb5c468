"""Scaling-law fits on the results table.

- Single axis: y = E + A x^-alpha (E >= 0), fitted in log space: minimise the Huber loss of
  log y - log(E + A x^-alpha), written as a log-sum-exp of (e, a - alpha log x) with E = e^e, A = e^a.
- Joint: L(N, T) = E + A / N^alpha + B / T^beta, the same way (Chinchilla approach 3 as Besiroglu et al. 2024
  redo it): Huber (delta = 1e-3) on log residuals, L-BFGS from a grid of initialisations, best kept, convergence
  reported; 95% intervals by a parametric bootstrap on the table's noise model (`parametric_bootstrap`, the runs
  method) or a bootstrap over fitting points (`bootstrap`, the points method); analysis.laws picks.
- Sigmoid in ln C (the SRT paper's frontier form): y = p / (1 + exp(-k (ln C - c0))) + q.
All fits take arrays; `x` may be N, T or C.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np
from scipy import sparse
from scipy.optimize import minimize
from scipy.special import expit

from analysis.noise import MIN_DOF

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
    """A fitted law: parameter values by name, the objective, whether L-BFGS converged, R^2 of log y and, for the
    sum-of-powers laws, the rms of the log residuals (`rms_log`: the typical relative error of the law, the figure
    to set beside the noise model's sds; R^2 of log y is ~1 for any law through data spanning decades)."""

    form: str
    params: dict[str, float]
    loss: float
    converged: bool
    r2: float
    n_points: int
    ci: dict[str, tuple[float, float]] = field(default_factory=dict)
    rms_log: float | None = None

    samples: list[dict[str, float]] = field(default_factory=list)
    boot_converged: float | None = None  # fraction of bootstrap refits that met the stopping test
    unidentified: dict[str, str] = field(default_factory=dict)  # parameter -> why the data do not pin it down
    floor_profile: dict | None = None  # profile_floor's test of E = 0 (set with the bootstrap)
    intervals: dict = field(default_factory=dict)  # how the intervals were made: method, why, the noise model
    lack_of_fit: dict | None = None  # analysis.lack_of_fit.test of the law on its own points
    _theta: np.ndarray | None = field(default=None, repr=False)  # optimum in log space: the bootstrap's start

    def to_dict(self) -> dict:
        out = {
            "form": self.form,
            "params": self.params,
            "ci95": {k: list(v) for k, v in self.ci.items()},
            "loss": self.loss,
            "converged": self.converged,
            "r2": self.r2,
            "n_points": self.n_points,
        }
        if self.rms_log is not None:
            out["rms_log"] = self.rms_log
        if self.samples:
            out["bootstrap"] = [{k: float(f"{v:.6g}") for k, v in s.items()} for s in self.samples]
            out["bootstrap_converged"] = self.boot_converged
        if self.floor_profile:
            out["floor_profile"] = self.floor_profile
        if self.unidentified:
            out["unidentified"] = self.unidentified
        if self.intervals:
            out["intervals"] = self.intervals
        if self.lack_of_fit:
            out["lack_of_fit"] = self.lack_of_fit
        return out


def _terms(theta: np.ndarray, logs: list[np.ndarray]) -> np.ndarray:
    """Log-space terms of B laws at the data: theta (B, P) -> (B, n_terms, n_points): e, then a_i - alpha_i log x_i.
    The log x_i are (n_points,), shared, or (B, n_points), one data set per law."""
    out = [np.broadcast_to(theta[:, :1], (len(theta), logs[0].shape[-1]))]
    out += [theta[:, 1 + 2 * i, None] - theta[:, 2 + 2 * i, None] * lx for i, lx in enumerate(logs)]
    return np.stack(out, axis=1)


def log_jacobian(fit: Fit, xs: list[np.ndarray]) -> np.ndarray:
    """d log f / d theta at the fit's optimum and the points xs: (n_points, P), theta in log space (e, then a_i,
    alpha_i per axis)."""
    logs = [np.log(np.asarray(x, float)) for x in xs]
    terms = _terms(fit._theta[None], logs)[0]  # (n_terms, n)
    share = np.exp(terms - _logsumexp(terms[None])[0][None])
    cols = [share[0]]
    for i, lx in enumerate(logs):
        cols += [share[i + 1], -share[i + 1] * lx]
    return np.stack(cols, axis=1)


def residuals(fit: Fit, xs: list[np.ndarray], y: np.ndarray) -> np.ndarray:
    """log y - log f at the fit (n_points,)."""
    logs = [np.log(np.asarray(x, float)) for x in xs]
    return np.log(np.asarray(y, float)) - _logsumexp(_terms(fit._theta[None], logs))[0]


def _r2(logy: np.ndarray, pred: np.ndarray) -> float:
    ss = np.sum((logy - logy.mean()) ** 2)
    return float(1 - np.sum((logy - pred) ** 2) / ss) if ss > 0 else float("nan")


def _params(theta: np.ndarray, names: list[str]) -> dict[str, float]:
    """Log-space optimum -> named parameters: E = e^e, then (A = e^a, alpha) per axis."""
    params = {"E": float(np.exp(theta[0]))}
    for i, (a_name, alpha_name) in enumerate(zip(names[0::2], names[1::2])):
        params[a_name], params[alpha_name] = float(np.exp(theta[1 + 2 * i])), float(theta[2 + 2 * i])
    return params


def _starts(n_axes: int) -> np.ndarray:
    """The grid of log-space starting points: e in {-2, 0, 1}, a in {1, 6}, alpha in {0.2, 0.7} per axis."""
    return np.array(
        [
            [e, *itertools.chain(*pairs)]
            for e in (-2.0, 0.0, 1.0)
            for pairs in itertools.product(itertools.product((1.0, 6.0), (0.2, 0.7)), repeat=n_axes)
        ]
    )


SCOUT_POINTS = 250  # a data set with more points scouts its starts on a fixed subset of this many


def scout_subset(n_points: int) -> np.ndarray | None:
    """The points a scout uses: all (None) up to SCOUT_POINTS, else a fixed random subset of that many, sorted.
    Choosing among starts needs the law's shape, not every point of a 6,000-point table; the chosen start then
    converges on all of them, so only which basin is searched can differ, and tables up to SCOUT_POINTS points
    are fitted exactly as without it."""
    if n_points <= SCOUT_POINTS:
        return None
    return np.sort(np.random.default_rng(0).choice(n_points, SCOUT_POINTS, replace=False))


def _multistart(
    objective,
    n_problems: int,
    starts: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    maxiter: int = 2000,
    scout: int = 100,
    scout_objective=None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`n_problems` problems, each from every start: starts (S, P) shared, or (n_problems, S, P) each its own.
    objective(theta (b, P), problems (b,)) -> (f (b,), grad (b, P)). `scout` L-BFGS iterations from all
    n_problems x S of `scout_objective` (the same problems on a subset of their points, `scout_subset`; None: the
    objective itself), then the best start of each problem to convergence on `objective`. Returns theta (B, P),
    objective (B,), converged (B,)."""
    starts = np.broadcast_to(starts, (n_problems, *starts.shape[-2:]))
    n_starts = starts.shape[1]  # problem i of the scout = (problem i // S, start i % S)
    scouted = objective if scout_objective is None else scout_objective
    theta, loss, _ = lbfgs_batch(
        lambda th, rows: scouted(th, rows // n_starts), starts.reshape(-1, starts.shape[-1]), lo, hi, maxiter=scout
    )
    best = theta.reshape(n_problems, n_starts, -1)[
        np.arange(n_problems), np.argmin(loss.reshape(n_problems, n_starts), axis=1)
    ]
    return lbfgs_batch(objective, best, lo, hi, maxiter=maxiter)


def _huber_multistart(
    logs: list[np.ndarray], logy: np.ndarray, weights: np.ndarray | None, maxiter: int = 2000, scout: int = 40
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The Huber fit of B problems at the same points (`shared_objective`): logy (n,) or (B, n), weights None or
    (B, n) (bootstrap counts), at least one of them (B, n). Each problem from its own starts (`own_starts`); the
    starts and the scout use `scout_subset` of the points."""
    b = len(logy) if weights is None else len(weights)
    sub = scout_subset(len(logs[0]))
    pick = slice(None) if sub is None else sub
    few_logs, few_logy = [lx[pick] for lx in logs], logy[..., pick]
    few_weights = None if weights is None else weights[..., pick]
    return _multistart(
        shared_objective(logs, logy, weights),
        b,
        own_starts(few_logs, np.broadcast_to(few_logy, (b, few_logy.shape[-1])), few_weights),
        *_bounds(len(logs)),
        maxiter=maxiter,
        scout=scout,
        scout_objective=None if sub is None else shared_objective(few_logs, few_logy, few_weights),
    )


PROJECTION_GRID = np.linspace(0.02, 2.0, 34)  # exponents tried by variable projection


def _nnls_batch(design: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative least squares of G small problems at once, exactly: design (G, n, k), rhs (G, n) ->
    coefficients (G, k) >= 0 and residual norms (G,) (`nnls_gram` on the normal equations)."""
    return nnls_gram(
        np.einsum("gni,gnj->gij", design, design),
        np.einsum("gni,gn->gi", design, rhs),
        np.einsum("gn,gn->g", rhs, rhs),
    )


def nnls_gram(gram: np.ndarray, proj: np.ndarray, total: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative least squares of G small problems from their normal equations: gram (G, k, k) = X'X, proj
    (G, k) = X'y, total (G,) = y'y -> coefficients (G, k) >= 0 and residual norms (G,). The optimum is the
    unconstrained solution on its own support, so every support (2^k of them; k <= 4 here) is solved (a 1e-12
    relative ridge keeps collinear columns solvable) and the best feasible one kept."""
    k = gram.shape[2]
    best, best_res = np.zeros((len(gram), k)), total.copy()  # the empty support (squared norms from here on)
    for support in itertools.chain.from_iterable(itertools.combinations(range(k), r) for r in range(1, k + 1)):
        sub = gram[np.ix_(range(len(gram)), support, support)]
        ridge = 1e-12 * np.trace(sub, axis1=1, axis2=2)[:, None, None] * np.eye(len(support))
        coef = np.linalg.solve(sub + ridge, proj[:, support, None])[..., 0]
        res = np.maximum(
            total - 2 * np.einsum("gi,gi->g", coef, proj[:, support]) + np.einsum("gi,gij,gj->g", coef, sub, coef), 0.0
        )
        better = np.all(coef >= 0, axis=1) & (res < best_res)
        best[better] = 0.0
        best[np.ix_(better, support)] = coef[better]
        best_res = np.where(better, res, best_res)
    return best, np.sqrt(best_res)


CHUNK = 2**21  # matrix entries per batch of variable-projection problems (bounds the memory, ~50 MB)
EVAL_CHUNK = 2**18  # (problem, point) entries per block of an objective's evaluation: ~2 MB arrays stay in
# cache, where 16 MB ones cost a page fault per page each time (a 6,000-point bootstrap ran 2x slower)


def _moments(logs: list[np.ndarray], u: np.ndarray, v: np.ndarray, floors: bool) -> tuple[np.ndarray, np.ndarray]:
    """The normal equations of the projection at every grid point, from weighted sums over the points: u, v
    (B, n) -> gram (B, G, k, k) and proj (B, G, k), columns [1 (unless the floor is held), x_i^-alpha_i ...] at
    the grid's exponents. Each entry is a sum over points of u (or v) times a product of at most two columns, so
    one matrix product per axis (and one per pair of axes) gives all of them: O(B n grid) multiply-adds, never a
    (B, G, n) array."""
    powers = [np.exp(-PROJECTION_GRID[:, None] * lx[None]) for lx in logs]  # (m, n) per axis
    m, B = len(PROJECTION_GRID), len(u)
    cols: list[tuple] = ([("one",)] if not floors else []) + [("axis", i) for i in range(len(logs))]
    grid = list(itertools.product(range(m), repeat=len(logs)))  # exponent indices per grid point
    idx = np.array(grid)  # (G, n_axes)
    single = {i: u @ p.T for i, p in enumerate(powers)}  # sum u x_i^-a
    square = {i: u @ (p**2).T for i, p in enumerate(powers)}  # sum u x_i^-2a
    pair = {
        (i, j): np.matmul(u[:, None, :] * powers[i][None], powers[j].T)  # (B, m, m): sum u x_i^-a x_j^-b
        for i in range(len(logs))
        for j in range(i + 1, len(logs))
    }
    k = len(cols)
    gram = np.empty((B, len(grid), k, k))
    for a, ca in enumerate(cols):
        for b, cb in enumerate(cols[a:], start=a):
            if ca[0] == "one" and cb[0] == "one":
                entry = np.broadcast_to(u.sum(axis=1)[:, None], (B, len(grid)))
            elif ca[0] == "one":
                entry = single[cb[1]][:, idx[:, cb[1]]]
            elif ca[1] == cb[1]:
                entry = square[ca[1]][:, idx[:, ca[1]]]
            else:
                entry = pair[(ca[1], cb[1])][:, idx[:, ca[1]], idx[:, cb[1]]]
            gram[:, :, a, b] = gram[:, :, b, a] = entry
    proj = np.stack(
        [
            np.broadcast_to(v.sum(axis=1)[:, None], (B, len(grid)))
            if c[0] == "one"
            else (v @ powers[c[1]].T)[:, idx[:, c[1]]]
            for c in cols
        ],
        axis=2,
    )
    return gram, proj


def _project(logs: list[np.ndarray], y: np.ndarray, weights: np.ndarray, floors: np.ndarray | None) -> np.ndarray:
    """Variable projection of B weighted data sets at the same points: y, weights (B, n) (bootstrap counts; 0
    drops a point); floors (B,) holds E at a value (no e coordinate then) or None. For each point of a grid of
    exponents the law is linear in its scales (E, A_i), solved exactly with E, A_i >= 0 by non-negative least
    squares on relative residuals (pred - y) / y, close to the log residuals the fit minimises (`_moments` gives
    the normal equations, `nnls_gram` solves them); the best grid point per data set, in log space with a zero
    scale at the box's lower edge. Returns theta (B, P) (P without e when floors are given)."""
    grid = np.array(list(itertools.product(PROJECTION_GRID, repeat=len(logs))))  # (G, n_axes)
    target = 1.0 if floors is None else 1 - floors[:, None] / y  # the relative residual's constant part
    u, v = weights / y**2, weights * target / y
    total = np.sum(weights * np.broadcast_to(target, y.shape) ** 2, axis=1)
    out = []
    per = max(1, CHUNK // (len(grid) * (len(logs) + 1) ** 2 + y.shape[1] * len(PROJECTION_GRID)))
    for lo in range(0, len(y), per):
        sl = slice(lo, lo + per)
        gram, proj = _moments(logs, u[sl], v[sl], floors is not None)
        b, k = gram.shape[0], gram.shape[2]
        scales, res = nnls_gram(gram.reshape(-1, k, k), proj.reshape(-1, k), np.repeat(total[sl], len(grid)))
        best = np.argmin(res.reshape(b, len(grid)), axis=1)
        sc = scales.reshape(b, len(grid), -1)[np.arange(b), best]
        log_scales = np.log(np.maximum(sc, 1e-300))
        free = log_scales if floors is None else np.concatenate([np.zeros((b, 1)), log_scales], axis=1)
        pairs = [np.stack([free[:, 1 + i], grid[best, i]], axis=1) for i in range(len(logs))]
        theta = np.clip(np.concatenate([free[:, :1], *pairs], axis=1), *_bounds(len(logs)))
        out.append(theta if floors is None else theta[:, 1:])
    return np.concatenate(out)


def _projected_starts(data: list[tuple[list[np.ndarray], np.ndarray]]) -> np.ndarray:
    """Each data set's variable-projection start (`_project`: no guess of the scales needed, and a boundary
    solution, E = 0, when the data have no floor), for data sets (xs per axis, y) -> (D, P): one `_project` per
    set of points the data sets share (the slices of a designed grid share theirs)."""
    groups: dict[bytes, list[int]] = {}
    for i, (xs, _) in enumerate(data):
        groups.setdefault(b"|".join(x.tobytes() for x in xs), []).append(i)
    out = np.empty((len(data), 1 + 2 * len(data[0][0])))
    for rows in groups.values():
        xs = data[rows[0]][0]
        y = np.stack([data[i][1] for i in rows])
        out[rows] = _project([np.log(x) for x in xs], y, np.ones_like(y), None)
    return out


def own_starts(
    logs: list[np.ndarray], logy: np.ndarray, weights: np.ndarray | None = None, spread: int = 4
) -> np.ndarray:
    """The starts of B refits (bootstrap resamples, simulated tables, held-out folds): every `spread`-th point of the
    start grid and each data set's own variable-projection start, never the full-data optimum
    (a refit started there stays in a flat direction where the full data put it). logy (B, n), weights (B, n)
    -> (B, S, P)."""
    y = np.exp(np.atleast_2d(logy))
    w = np.ones_like(y) if weights is None else np.broadcast_to(weights, y.shape)
    own = _project(logs, y, w, None)
    grid = _starts(len(logs))[::spread]
    return np.concatenate([np.broadcast_to(grid, (len(y), *grid.shape)), own[:, None]], axis=1)


def _padded(data: list[tuple[list[np.ndarray], np.ndarray]]) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Data sets (xs per axis, y) of different lengths as arrays of one width: log x per axis and log y (D, width)
    and weights (D, width), 1 on a data set's points and 0 on its padding."""
    width = max(len(y) for _, y in data)
    logs = [np.zeros((len(data), width)) for _ in data[0][0]]
    logy, weights = np.zeros((len(data), width)), np.zeros((len(data), width))
    for i, (xs, y) in enumerate(data):
        for lx, x in zip(logs, xs):
            lx[i, : len(y)] = np.log(np.asarray(x, float))
        logy[i, : len(y)], weights[i, : len(y)] = np.log(np.asarray(y, float)), 1.0
    return logs, logy, weights


def _padded_objective(data: list[tuple[list[np.ndarray], np.ndarray]]):
    """objective(theta (b, P), problems (b,)) -> (f, grad) of the Huber objective of data set `problems[i]` at
    theta[i] (`_batch_objective` on `_padded` arrays, in chunks of EVAL_CHUNK entries)."""
    logs, logy, weights = _padded(data)
    return _in_chunks(
        lambda th, r: _batch_objective(th, [lx[r] for lx in logs], logy[r], weights[r]),
        max(1, EVAL_CHUNK // (logy.shape[1] * (len(logs) + 1))),
    )


def _in_chunks(block, per: int):
    """objective(theta (b, P), problems (b,)) -> (f (b,), grad (b, P)) from `block`, the same on at most `per`
    rows at a time (cache-sized temporaries, bounded memory however many problems are in flight)."""

    def objective(theta: np.ndarray, problems: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f, grad = np.empty(len(theta)), np.empty_like(theta)
        for lo in range(0, len(theta), per):
            sl = slice(lo, lo + per)
            f[sl], grad[sl] = block(theta[sl], problems[sl])
        return f, grad

    return objective


def _fit_sum_of_powers(data: list[tuple[list[np.ndarray], np.ndarray]], names: list[str], form: str) -> list[Fit]:
    """The law fitted to each of several data sets (xs per axis, y), all at once: each from every start of a grid
    and its own variable-projection start (both on `scout_subset` of its points), one batched L-BFGS
    (`lbfgs_batch`) over the data sets, the lowest objective of each kept."""
    data = [([np.asarray(x, float) for x in xs], np.asarray(y, float)) for xs, y in data]
    scouted = []
    for xs, y in data:
        sub = scout_subset(len(y))
        scouted.append((xs, y) if sub is None else ([x[sub] for x in xs], y[sub]))
    starts = np.stack([np.vstack([_starts(len(data[0][0])), own]) for own in _projected_starts(scouted)])
    theta, loss, converged = _multistart(
        _padded_objective(data),
        len(data),
        starts,
        *_bounds(len(data[0][0])),
        scout_objective=_padded_objective(scouted),
    )
    fits = []
    for i, (xs, y) in enumerate(data):
        logy = np.log(y)
        pred = _logsumexp(_terms(theta[i : i + 1], [np.log(x) for x in xs]))[0]
        fits.append(
            Fit(
                form,
                _params(theta[i], names),
                float(loss[i]) * DELTA,
                bool(converged[i]),
                _r2(logy, pred),
                len(y),
                rms_log=float(np.sqrt(np.mean((logy - pred) ** 2))),
                _theta=theta[i],
            )
        )
    return fits


def _bounds(n_axes: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = np.array([BOUNDS["e"]] + [BOUNDS["a"], BOUNDS["alpha"]] * n_axes).T
    return lo, hi


def power_laws(data: list[tuple[np.ndarray, np.ndarray]]) -> list[Fit]:
    """y = E + A x^-alpha for each (x, y) of `data`, fitted together (`_fit_sum_of_powers`)."""
    return _fit_sum_of_powers([([x], y) for x, y in data], ["A", "alpha"], "E + A x^-alpha")


def power_law(x: np.ndarray, y: np.ndarray) -> Fit:
    """y = E + A x^-alpha."""
    return power_laws([(x, y)])[0]


def joint(n: np.ndarray, t: np.ndarray, y: np.ndarray) -> Fit:
    """y = E + A / N^alpha + B / T^beta."""
    return _fit_sum_of_powers([([n, t], y)], ["A", "alpha", "B", "beta"], "E + A/N^alpha + B/T^beta")[0]


def relative_error(pred, obs) -> float:
    """Mean |pred - obs| / |obs|: the held-out error of a law's predictions, in the metric's own units."""
    obs = np.asarray(obs, float)
    return float(np.mean(np.abs(np.asarray(pred, float) - obs) / np.abs(obs)))


def predict_power_law(p: dict, x: np.ndarray) -> np.ndarray:
    return p["E"] + p["A"] * np.asarray(x, float) ** -p["alpha"]


def predict_joint(p: dict, n: np.ndarray, t: np.ndarray) -> np.ndarray:
    return p["E"] + p["A"] * np.asarray(n, float) ** -p["alpha"] + p["B"] * np.asarray(t, float) ** -p["beta"]


def sigmoid(log_c: np.ndarray, y: np.ndarray, asymptote: float | None = None) -> Fit:
    """y = p / (1 + exp(-k (ln C - c0))) + q, least squares from a grid of starts (k > 0); with `asymptote`,
    p + q is held at it (q = asymptote - p)."""
    log_c, y = np.asarray(log_c, float), np.asarray(y, float)

    def full(theta):
        return theta if asymptote is None else np.array([*theta, asymptote - theta[0]])

    def loss(theta):
        """Sum of squares and its gradient in theta (analytic: p, k, c0, and q or, held, q = asymptote - p)."""
        p, k, c0, q = full(theta)
        s = expit(k * (log_c - c0))
        r2 = 2 * (p * s + q - y)
        slope = r2 * p * s * (1 - s)
        grad = [np.sum(r2 * s), np.sum(slope * (log_c - c0)), -k * np.sum(slope), np.sum(r2)]
        if asymptote is not None:
            grad = [grad[0] - grad[3], *grad[1:3]]
        return float(np.sum((r2 / 2) ** 2)), np.array(grad)

    span = max(float(np.ptp(y)), 1e-6)
    best = None
    for k0 in (0.5, 1.0, 3.0):
        for c00 in np.quantile(log_c, [0.25, 0.5, 0.75]):
            start = [2 * span, k0, c00, float(y.min()) - 0.5 * span]
            bounds = [(1e-9, None), (1e-6, None), (None, None), (None, None)]
            if asymptote is not None:
                start, bounds = [max(asymptote - start[3], 1e-3), *start[1:3]], bounds[:3]
            res = minimize(loss, np.array(start), jac=True, method="L-BFGS-B", bounds=bounds)
            if best is None or res.fun < best.fun:
                best = res
    p, k, c0, q = full(best.x)
    pred = p * expit(k * (log_c - c0)) + q
    ss = np.sum((y - y.mean()) ** 2)
    r2 = float(1 - np.sum((y - pred) ** 2) / ss) if ss > 0 else float("nan")
    return Fit(
        "p / (1 + exp(-k (ln C - c0))) + q",
        {"p": float(p), "k": float(k), "c0": float(c0), "q": float(q)},
        float(best.fun),
        bool(best.success),
        r2,
        len(y),
    )


def sigmoid_asymptote(log_c: np.ndarray, y: np.ndarray, sg: Fit, bound: float = 1.0, level: float = 0.95) -> dict:
    """Whether the data bound the sigmoid's asymptote p + q below `bound` (NDCG@5's ceiling, 1): the F test of
    the fit with p + q held at `bound` against the free fit, F = (SSE_held - SSE) / (SSE / (n - 4)) on (1, n - 4)
    dof. Not bounded: the asymptote is a number the data do not pin down (any value up to `bound` fits)."""
    from scipy.stats import f as f_dist

    dof = len(y) - 4
    value = sg.params["p"] + sg.params["q"]
    if dof < 1:
        return {"value": value, "bounded": False, "why": f"{len(y)} points for 4 parameters"}
    held = sigmoid(log_c, y, asymptote=bound)
    stat = max(held.loss - sg.loss, 0.0) / max(sg.loss / dof, 1e-300)
    p = float(f_dist.sf(stat, 1, dof))
    return {"value": value, "bound": bound, "f": float(stat), "p": p, "bounded": bool(p < 1 - level)}


def predict_sigmoid(p: dict, log_c: np.ndarray) -> np.ndarray:
    return p["p"] * expit(p["k"] * (np.asarray(log_c, float) - p["c0"])) + p["q"]


def _logsumexp(terms: np.ndarray) -> np.ndarray:
    """log sum exp over axis 1 of (B, n_terms, n_points) (finite inputs: the box keeps them finite)."""
    m = terms.max(axis=1)
    return m + np.log(np.exp(terms - m[:, None]).sum(axis=1))


def _batch_objective(
    theta: np.ndarray, logs: list[np.ndarray], logy: np.ndarray, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted Huber objective of B independent problems scaled by 1/delta: theta (B, P), weights (B, n_points)
    (bootstrap counts) -> objectives (B,) and gradients (B, P)."""
    terms = _terms(theta, logs)
    pred = _logsumexp(terms)
    r = pred - logy
    share = np.exp(terms - pred[:, None])
    g = _huber_grad(r) * weights
    grad = [np.sum(g * share[:, 0], axis=1)]
    for i, lx in enumerate(logs):
        grad += [np.sum(g * share[:, i + 1], axis=1), -np.sum(g * share[:, i + 1] * lx, axis=1)]
    return np.sum(huber(r) * weights, axis=1) / DELTA, np.stack(grad, axis=1) / DELTA


@dataclass(frozen=True)
class _Axes:
    """The fitting points' log x per axis, by distinct value: `values` (m_i,), each point's `index` into them
    (n,), and `members` (n, m_i), the sparse one-hot matrix of each point's value, for per-value sums. A study's
    table has few distinct values per axis (one N per run, a handful of branch ends), so the law's terms are
    computed once per value rather than once per point."""

    values: list[np.ndarray]
    index: list[np.ndarray]
    members: list[sparse.csr_array]

    @classmethod
    def of(cls, logs: list[np.ndarray]) -> _Axes:
        parts = [np.unique(lx, return_inverse=True) for lx in logs]
        return cls(
            [u for u, _ in parts],
            [inv for _, inv in parts],
            [sparse.csr_array((np.ones(len(inv)), (np.arange(len(inv)), inv)), (len(inv), len(u))) for u, inv in parts],
        )


def _shared_objective(
    theta: np.ndarray, axes: _Axes, logy: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """`_batch_objective` for B problems at the same points (`axes`): log(E + sum_i A_i x_i^-alpha_i) with each
    term per distinct x (the box keeps E > 0 and every term finite, so no log-sum-exp shift is needed), and the
    gradient's sums over points taken per distinct value. logy, weights (B, n) (weights None: all 1)."""
    e = np.exp(theta[:, 0])
    powers = [
        np.exp(theta[:, 1 + 2 * i, None] - theta[:, 2 + 2 * i, None] * u) for i, u in enumerate(axes.values)
    ]  # (B, m_i)
    total = np.take(powers[0], axes.index[0], axis=1)
    for p, index in zip(powers[1:], axes.index[1:]):
        total += np.take(p, index, axis=1)
    total += e[:, None]
    r = np.log(total)
    r -= logy
    g = _huber_grad(r)
    r -= 0.5 * g
    r *= g  # the Huber loss g (r - g / 2): 0.5 r^2 inside delta, delta (|r| - delta / 2) outside
    if weights is not None:
        g *= weights
        r *= weights
    g /= total  # d objective / d total
    grad = [e * g.sum(axis=1)]
    for u, p, members in zip(axes.values, powers, axes.members):
        pq = p * (g @ members)  # (B, m_i): each value's share of the gradient
        grad += [pq.sum(axis=1), -(pq * u).sum(axis=1)]
    return r.sum(axis=1) / DELTA, np.stack(grad, axis=1) / DELTA


def shared_objective(logs: list[np.ndarray], logy: np.ndarray, weights: np.ndarray | None = None):
    """objective(theta (b, P), problems (b,)) -> (f, grad) of the weighted Huber objective (scaled by 1/delta) of
    problems that share their points `logs` (each (n,)): logy (n,) shared or (B, n) one row per problem, weights
    None (all 1), (n,) or (B, n). Rows are evaluated in chunks of EVAL_CHUNK values, so memory stays bounded however
    many problems (resamples x starts) are in flight."""
    axes, n = _Axes.of(logs), len(logs[0])

    def block(theta: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ly = np.broadcast_to(logy, (len(rows), n)) if logy.ndim == 1 else logy[rows]
        w = None if weights is None else weights[None] if weights.ndim == 1 else weights[rows]
        return _shared_objective(theta, axes, ly, w)

    return _in_chunks(block, max(1, EVAL_CHUNK // n))


STUCK_GTOL = 1e-4  # a failed line search with a projected gradient at least this large is not convergence


def lbfgs_batch(
    fun,
    x0: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    maxiter: int = 2000,
    memory: int = 10,
    gtol: float = 1e-7,
    ftol: float = 1e-11,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Projected L-BFGS on B independent problems at once, each with its own memory, step and stopping test.

    fun(x (b, P), rows (b,)) -> (f (b,), grad (b, P)) for the problems `rows`; box lo <= x <= hi (P,). Per
    problem: two-loop direction (components that would leave the box at an active bound dropped, steepest descent
    when it is not a descent direction; the first step moves at most 1), backtracking Armijo line search on the
    projected path (each trial from a safeguarded quadratic fit to the last); only unfinished
    problems are evaluated. A problem stops when its projected gradient is below `gtol` or an iteration lowers f
    by at most ftol x max(|f|, 1) (scipy L-BFGS-B's default, 2.2e-9, stopped a nearly-L1 Huber fit of 6,000
    points 6% of alpha's interval width short of its optimum; 1e-11 reaches it for ~20% more evaluations), or
    when no step of the line search lowers f;
    the last counts as converged only where the projected gradient is below STUCK_GTOL (a search that fails
    far from a stationary point is not convergence). Returns x (B, P), f (B,), converged (B,)."""
    x = np.clip(x0, lo, hi).astype(float)
    n, p = x.shape
    f, g = fun(x, np.arange(n))
    s_hist, y_hist, rho = np.zeros((n, memory, p)), np.zeros((n, memory, p)), np.zeros((n, memory))
    gamma = 1.0 / np.maximum(np.linalg.norm(g, axis=1), 1.0)  # the first step moves at most 1 (as L-BFGS-B)
    done, it, stuck = np.zeros(n, bool), 0, np.zeros(n, bool)
    for _ in range(maxiter):
        free = ~(((x <= lo) & (g > 0)) | ((x >= hi) & (g < 0)))
        done |= np.max(np.abs(g * free), axis=1) < gtol
        rows = np.flatnonzero(~done)
        if rows.size == 0:
            break
        xr, fr, gr, fre = x[rows], f[rows], g[rows] * free[rows], free[rows]
        q, alphas = gr.copy(), []
        for k in range(min(it, memory)):  # newest first: slot (it - 1 - k) mod memory (unwritten slots add 0)
            slot = (it - 1 - k) % memory
            sk, yk, rk = s_hist[rows, slot], y_hist[rows, slot], rho[rows, slot]
            a = rk * np.sum(sk * q, axis=1)
            q -= a[:, None] * yk
            alphas.append((sk, yk, rk, a))
        d = gamma[rows, None] * q
        for sk, yk, rk, a in reversed(alphas):
            d += sk * (a - rk * np.sum(yk * d, axis=1))[:, None]
        d = -d * fre
        steep = np.sum(d * gr, axis=1) >= 0
        d[steep] = -gr[steep] / np.maximum(np.abs(gr[steep]).max(axis=1, keepdims=True), 1.0)
        step = np.ones(rows.size)
        x_new, f_new, g_new = xr.copy(), fr.copy(), g[rows].copy()
        pending = np.arange(rows.size)
        for _ in range(40):
            trial = np.clip(xr[pending] + step[pending, None] * d[pending], lo, hi)
            ft, gt = fun(trial, rows[pending])
            slope = np.sum(gr[pending] * (trial - xr[pending]), axis=1)  # f's first-order change to the trial
            ok = (ft <= fr[pending] + 1e-4 * slope) & (slope < 0)  # a step too small to predict a gain is none
            hit = pending[ok]
            x_new[hit], f_new[hit], g_new[hit] = trial[ok], ft[ok], gt[ok]
            # the next trial: the minimum of the quadratic through f, its slope and the failed trial's f, kept
            # within [0.1, 0.5] of this step (Nocedal & Wright's safeguarded backtracking)
            curve = ft[~ok] - fr[pending[~ok]] - slope[~ok]
            with np.errstate(divide="ignore", invalid="ignore"):
                shrink = np.nan_to_num(-slope[~ok] / (2 * curve), nan=0.5)
            pending = pending[~ok]
            if pending.size == 0:
                break
            step[pending] *= np.clip(shrink, 0.1, 0.5)
        moved = np.ones(rows.size, bool)
        moved[pending] = False
        stalled = ~moved | (fr - f_new <= ftol * np.maximum(np.abs(fr), 1.0))
        stuck[rows] = ~moved & (np.max(np.abs(gr), axis=1) >= STUCK_GTOL)
        sv, yv = x_new - xr, g_new - g[rows]
        sy = np.sum(sv * yv, axis=1)
        keep = moved & (sy > 1e-12)
        slot = it % memory
        s_hist[rows[keep], slot], y_hist[rows[keep], slot] = sv[keep], yv[keep]
        rho[rows, slot] = np.where(keep, 1.0 / np.where(keep, sy, 1.0), 0.0)
        gamma[rows[keep]] = sy[keep] / np.sum(yv[keep] ** 2, axis=1)
        x[rows], f[rows], g[rows] = x_new, f_new, g_new
        it += 1  # every unfinished problem has taken every iteration so far
        done[rows[stalled]] = True
    return x, f, done & ~stuck


def _floor_objective(
    phi: np.ndarray, logs: list[np.ndarray], logy: np.ndarray, floors: np.ndarray, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    """Sum of squared log residuals / scale of B laws with the floor held: phi (B, 2 n_axes) = (a_i, alpha_i) per
    axis, floors (B,) = E on its linear scale (0 allowed): log(E + sum_i e^(a_i - alpha_i log x_i)) - log y."""
    terms = np.stack([phi[:, 2 * i, None] - phi[:, 2 * i + 1, None] * lx for i, lx in enumerate(logs)], axis=1)
    m = terms.max(axis=1)
    total = np.exp(terms - m[:, None]).sum(axis=1) + floors[:, None] * np.exp(-m)
    r = m + np.log(total) - logy
    share = np.exp(terms - m[:, None]) / total[:, None]  # d pred / d a_i
    grad = []
    for i, lx in enumerate(logs):
        grad += [2 * np.sum(r * share[:, i], axis=1), -2 * np.sum(r * share[:, i] * lx, axis=1)]
    return np.sum(r**2, axis=1) / scale, np.stack(grad, axis=1) / scale


def _floor_profile(fit: Fit, logs: list[np.ndarray], logy: np.ndarray, floors: np.ndarray, scale: float) -> np.ndarray:
    """The profile of the floor: for each E in `floors` the least sum of squared log residuals / scale over the
    other parameters, from the variable-projection start with E held, the full fit's optimum and the start grid
    (the projection and the scout on `scout_subset` of the points)."""
    sub = scout_subset(len(logy))
    pick = slice(None) if sub is None else sub
    few_logs, few_logy = [lx[pick] for lx in logs], logy[pick]
    y = np.broadcast_to(np.exp(few_logy), (len(floors), len(few_logy)))
    grid = np.unique(_starts(len(logs))[:, 1:], axis=0)
    own = _project(few_logs, y, np.ones_like(y), floors)
    starts = np.concatenate(
        [
            own[:, None],
            np.broadcast_to(fit._theta[1:], (len(floors), 1, own.shape[1])),
            np.broadcast_to(grid, (len(floors), *grid.shape)),
        ],
        axis=1,
    )
    lo, hi = _bounds(len(logs))
    _, f, _ = _multistart(
        lambda th, rows: _floor_objective(th, logs, logy, floors[rows], scale),
        len(floors),
        starts,
        lo[1:],
        hi[1:],
        scout=40,
        scout_objective=None
        if sub is None
        else lambda th, rows: _floor_objective(th, few_logs, few_logy, floors[rows], scale),
    )
    return f


def profile_floor(fit: Fit, xs: list[np.ndarray], y: np.ndarray, level: float = 0.95) -> dict | None:
    """Whether the data reject E = 0, by the profile likelihood of the floor on its linear scale (where 0 is a
    reachable point), and when they do not, the upper end of E's one-sided interval [0, upper].

    The log residuals are taken as Gaussian: F(E) = (RSS(E) - RSS_min) / (RSS_min / (n - p)), with RSS(E) the
    least sum of squared log residuals with E held (a well-posed fit for every E, so nothing depends on where an
    optimiser stops in a flat direction) and RSS_min its minimum over E >= 0; E = 0 is rejected when F(0) exceeds
    F_{1, n-p}(level), and otherwise the interval is {E >= 0 : F(E) <= that value} = [0, upper] (at least the
    fitted E). At the bound this is conservative (the statistic there is half chi-square_0, half chi-square_1).
    Returns {"f_at_zero", "p_at_zero", "critical", "rejects_zero", "upper" (when not rejected)}, or None when
    n <= p."""
    from scipy.stats import f as f_dist

    logs, logy = [np.log(np.asarray(x, float)) for x in xs], np.log(np.asarray(y, float))
    dof = len(logy) - len(fit._theta)
    if dof < 1:
        return None
    resid = _logsumexp(_terms(fit._theta[None], logs))[0] - logy
    scale = max(float(np.sum(resid**2)) / dof, 1e-30)  # keeps the objective O(n) for L-BFGS's stopping test
    cap = float(np.exp(logy).min())  # a floor above the smallest observation cannot fit it
    floors = np.unique(np.concatenate([cap * np.linspace(0.0, 1.0, 33)[:-1], [min(fit.params["E"], cap)]]))
    rss = _floor_profile(fit, logs, logy, floors, scale)
    for _ in range(2):  # refine the minimum: a finer grid between the neighbours of the best floor
        k = int(np.argmin(rss))
        fine = np.linspace(floors[max(k - 1, 0)], floors[min(k + 1, len(floors) - 1)], 9)
        floors = np.concatenate([floors, fine])
        rss = np.concatenate([rss, _floor_profile(fit, logs, logy, fine, scale)])
        order = np.argsort(floors)
        floors, rss = floors[order], rss[order]
    rss_min, crit = float(rss.min()), float(f_dist.ppf(level, 1, dof))

    def rejected(r: np.ndarray) -> np.ndarray:
        return (r - rss_min) / (rss_min / dof) > crit

    f_zero = float((rss[0] - rss_min) / (rss_min / dof))
    out = {
        "f_at_zero": f_zero,
        "p_at_zero": float(f_dist.sf(f_zero, 1, dof)),
        "critical": crit,
        "rejects_zero": bool(f_zero > crit),
    }
    if out["rejects_zero"]:
        return out
    out_of = np.flatnonzero(rejected(rss) & (floors > floors[int(np.argmin(rss))]))
    if out_of.size == 0:
        out["upper"] = cap
        return out
    inside, outside = floors[out_of[0] - 1], floors[out_of[0]]
    for _ in range(3):  # the crossing, to 1/512 of the grid step: 3 rounds of 7 floors
        trial = np.linspace(inside, outside, 9)
        j = int(
            np.argmax(np.concatenate([[False], rejected(_floor_profile(fit, logs, logy, trial[1:-1], scale)), [True]]))
        )
        inside, outside = trial[j - 1], trial[j]
    out["upper"] = max(float(inside), fit.params["E"])
    return out


NEGLIGIBLE = 1e-3  # a term below this fraction of every fitted value contributes nothing the data can see
WIDE_DECADES = 1.0  # a scale (E, A, B) whose 95% interval spans more than this many decades is not pinned down


def identify(fit: Fit, xs: list[np.ndarray]) -> Fit:
    """Name the parameters of a sum-of-powers fit that the data do not identify (`fit.unidentified`):
    a floor whose profile likelihood does not reject E = 0 (its interval is then one-sided, see profile_floor);
    an exponent at the edge of its box; a term (E, or A x^-alpha) below NEGLIGIBLE of every fitted value (it could
    be 0, or move, without changing the fit: its interval means nothing); and, with a bootstrap, E's or a term's
    95% interval spanning more than WIDE_DECADES decades (a scale A is judged by its term A x^-alpha at the
    geometric mean of the data's x: A itself is the term at x = 1, decades outside the data, whose width is
    ~ln x times alpha's), or an exponent whose interval is wider than its value."""
    p, flags = fit.params, {}
    names = [k for k in p if k != "E"]
    terms = {"E": np.full(len(xs[0]), p["E"])}
    for (a_name, alpha_name), x in zip(zip(names[0::2], names[1::2]), xs):
        terms[a_name] = p[a_name] * np.asarray(x, float) ** -p[alpha_name]
        lo, hi = BOUNDS["alpha"]
        if min(p[alpha_name] - lo, hi - p[alpha_name]) < 1e-3:
            flags[alpha_name] = f"at the edge of [{lo:g}, {hi:g}]: this term's exponent is not identified"
    fp = fit.floor_profile
    if fp and not fp["rejects_zero"]:
        flags["E"] = (
            f"consistent with 0: the data do not reject E = 0 (profile likelihood, "
            f"p = {fp['p_at_zero']:.2g}); its 95% interval is one-sided, [0, {fp['upper']:.3g}]"
        )
    total = sum(terms.values())
    for name, term in terms.items():
        if np.max(term / total) < NEGLIGIBLE:
            what = "E" if name == "E" else f"the term {name} x^-{names[names.index(name) + 1]}"
            flags.setdefault(
                name,
                f"{what} is below {NEGLIGIBLE:.1%} of every fitted value: consistent with 0, "
                "not identified by these data",
            )
    centre = {a_name: float(np.exp(np.mean(np.log(np.asarray(x, float))))) for a_name, x in zip(names[0::2], xs)}
    for name, (lo, hi) in fit.ci.items():
        if name in flags:
            continue
        if name in centre and fit.samples:  # the term at the data's centre: A alone is an extrapolation to N = 1
            exponent = names[names.index(name) + 1]
            at = [s[name] * centre[name] ** -s[exponent] for s in fit.samples]
            lo_at, hi_at = np.percentile(at, [2.5, 97.5])
            if lo_at > 0 and np.log10(hi_at / lo_at) > WIDE_DECADES:
                flags[name] = (
                    f"the 95% interval of its term at the data's centre ({centre[name]:.3g}) spans "
                    f"{np.log10(hi_at / lo_at):.1f} decades"
                )
        elif name == "E" and lo > 0 and np.log10(hi / lo) > WIDE_DECADES:
            flags[name] = f"the 95% interval spans {np.log10(hi / lo):.1f} decades"
        elif name in names[1::2] and hi - lo > p[name]:
            flags[name] = f"the 95% interval ({hi - lo:.3g} wide) is wider than the estimate"
    fit.unidentified = flags
    return fit


def joint_many(
    n: np.ndarray, t: np.ndarray, y: np.ndarray, mask: np.ndarray, n_boot: int, seed: int = 0, spread: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """The joint fit and its bootstrap over points of W data sets at once (simulation studies): n, t, y, mask
    (W, m), a data set's points where mask is True (the rest is padding). Each fit starts from the start grid and
    its variable-projection start, as `joint` does; each refit from every `spread`-th start of the grid and its
    own variable projection, as `bootstrap` does with spread 4 (without profile_floor: only E's interval uses it).
    Returns theta (W, 5) and
    the refits' theta (W, n_boot, 5), in log space (e, a, alpha, b, beta)."""
    logs, logy = [np.log(np.where(mask, n, 1.0)), np.log(np.where(mask, t, 1.0))], np.log(np.where(mask, y, 1.0))
    w_count, m = mask.shape

    def objective(weights, of):  # problem i: data set of[i], weights[i]
        return lambda th, rows: _batch_objective(th, [lx[of[rows]] for lx in logs], logy[of[rows]], weights[rows])

    starts = np.stack(
        [
            np.vstack([_starts(2), _projected_starts([([n[i, mask[i]], t[i, mask[i]]], y[i, mask[i]])])[0]])
            for i in range(w_count)
        ]
    )
    theta, _, _ = _multistart(objective(mask.astype(float), np.arange(w_count)), w_count, starts, *_bounds(2))
    rng = np.random.default_rng(seed)
    weights = np.zeros((w_count, n_boot, m))
    for i in range(w_count):
        k = int(mask[i].sum())
        weights[i][:, mask[i]] = rng.multinomial(k, np.full(k, 1 / k), size=n_boot)
    boot_starts = np.concatenate(
        [
            own_starts([lx[i] for lx in logs], np.broadcast_to(logy[i], (n_boot, m)), weights[i], spread)
            for i in range(w_count)
        ]
    )
    boot, _, _ = _multistart(
        objective(weights.reshape(-1, m), np.repeat(np.arange(w_count), n_boot)),
        w_count * n_boot,
        boot_starts,
        *_bounds(2),
        scout=40,
    )
    return theta, boot.reshape(w_count, n_boot, 5)


def _set_intervals(fit: Fit, theta: np.ndarray, converged: np.ndarray, xs: list[np.ndarray], y: np.ndarray) -> Fit:
    """Percentile intervals of every parameter from refits theta (B, P), the refits kept as samples, and the
    floor's profile-likelihood test (profile_floor): when the data do not reject E = 0, E's interval is one-sided,
    from 0 to the larger of the profile's and the refits' upper ends."""
    names = [k for k in fit.params if k != "E"]
    samples = [_params(th, names) for th in theta]
    fit.ci = {
        k: (float(np.percentile([s[k] for s in samples], 2.5)), float(np.percentile([s[k] for s in samples], 97.5)))
        for k in fit.params
    }
    fit.samples = samples
    fit.boot_converged = float(np.mean(converged))
    fit.floor_profile = profile_floor(fit, xs, y)
    if fit.floor_profile and not fit.floor_profile["rejects_zero"]:
        fit.ci["E"] = (0.0, max(fit.floor_profile["upper"], fit.ci["E"][1]))
    return fit


def bootstrap(
    fit: Fit,
    xs: list[np.ndarray],
    y: np.ndarray,
    groups: np.ndarray,
    n_boot: int = 1000,
    seed: int = 0,
    maxiter: int = 2000,
) -> Fit:
    """95% percentile intervals for every parameter of a sum-of-powers fit by resampling groups (fitting points,
    or runs) with replacement: the `points` method, right where every point is its own run (a table from
    elsewhere, Chinchilla's). A resample is a vector of counts per group, i.e. weights on the rows, so all
    resamples are fitted at once. Each refit starts from a spread of the start grid and its own variable
    projection (`own_starts`), never the full-data optimum; `fit.boot_converged` is the fraction that met a
    stopping test (lbfgs_batch). The percentile interval of a
    parameter at its bound is not honest (refits pile up wherever the optimiser stops in the flat direction, and
    it under-covers near the bound), so the floor is also tested by its profile likelihood (_set_intervals)."""
    rng = np.random.default_rng(seed)
    uniq, row_group = np.unique(groups, return_inverse=True)
    counts = rng.multinomial(len(uniq), np.full(len(uniq), 1 / len(uniq)), size=n_boot)  # (n_boot, n_groups)
    weights = counts[:, row_group].astype(float)
    logs, logy = [np.log(np.asarray(x, float)) for x in xs], np.log(np.asarray(y, float))
    theta, _, converged = _huber_multistart(logs, logy, weights, maxiter=maxiter)
    return _set_intervals(fit, theta, converged, xs, y)


def simulate(fit: Fit, xs: list[np.ndarray], runs: np.ndarray, nz, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """`n_boot` tables of log y (n_boot, n) drawn around the fitted law with the noise model `nz`
    (analysis.noise.Noise): a new effect per run and new point noise. Each table's variances are themselves drawn
    from their estimates' sampling distributions, var * dof / chi2(dof) with Satterthwaite's dof: the point
    variance, and a run mean's error variance run^2 + point^2 / m (the run variance is what is left of it after
    the drawn point noise, >= 0). So the refits' spread carries the uncertainty of a variance estimated from few
    runs, as a t interval does for one mean; a run variance with under noise.MIN_DOF dof is widened as if it had
    noise.MIN_DOF (and flagged by the caller)."""
    logs = [np.log(np.asarray(x, float)) for x in xs]
    pred = _logsumexp(_terms(fit._theta[None], logs))[0]
    _, run_index = np.unique(runs, return_inverse=True)

    def drawn(var: float, dof: float) -> np.ndarray:
        return var * (
            dof / np.maximum(rng.chisquare(dof, n_boot), 1e-12) if np.isfinite(dof) and dof > 0 else np.ones(n_boot)
        )

    point_var = drawn(nz.point**2, nz.point_dof)
    m = nz.points_per_run
    run_var = np.zeros(n_boot)
    if nz.runs < nz.points:
        between = drawn(nz.run**2 + nz.point**2 / m, max(nz.run_dof, MIN_DOF))
        run_var = np.maximum(between - point_var / m, 0.0)
    effects = rng.standard_normal((n_boot, run_index.max() + 1)) * np.sqrt(run_var)[:, None]
    return pred + effects[:, run_index] + rng.standard_normal((n_boot, len(pred))) * np.sqrt(point_var)[:, None]


def refit(xs: list[np.ndarray], logy: np.ndarray, maxiter: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """The Huber fit of each of B tables of log y (B, n) at the same points, each from its own starts
    (`own_starts`: a spread of the grid and its own variable projection, not the law it was drawn from).
    Returns theta (B, P) in log space and converged (B,)."""
    logs = [np.log(np.asarray(x, float)) for x in xs]
    theta, _, converged = _huber_multistart(logs, logy, None, maxiter=maxiter)
    return theta, converged


def parametric_bootstrap(
    fit: Fit, xs: list[np.ndarray], y: np.ndarray, runs: np.ndarray, nz, n_boot: int = 1000, seed: int = 0
) -> np.ndarray:
    """95% percentile intervals from refits of tables simulated around the fit with the noise model (`simulate`):
    the `runs` method, for tables whose runs give several fitting points each. Sets the fit's intervals and
    returns each simulated table's log residuals from its own refit (n_boot, n), the reference distribution of
    the lack-of-fit tests."""
    logy = simulate(fit, xs, runs, nz, n_boot, np.random.default_rng(seed))
    theta, converged = refit(xs, logy)
    _set_intervals(fit, theta, converged, xs, y)
    logs = [np.log(np.asarray(x, float)) for x in xs]
    return logy - _logsumexp(_terms(theta, logs))
