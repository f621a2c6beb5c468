"""The noise of a table's fitting points: point noise and a random effect per run, on the fitted scale (log y).

A table's fitting points are not independent: the cooldown-branch ends of one WSD run share its init, its data
order and its trunk. The model is
    log y_rk = log f(N_r, T_k; theta) + u_r + e_rk,   u_r ~ N(0, run^2) per run,  e_rk ~ N(0, point^2),
and both variances are estimated by the method of moments from the fit's residuals r, linearised around the fit:
r ~ M (u + e) with M = I - H the residual-maker of the law's Jacobian J (log y w.r.t. the log-space parameters).
Two quadratic forms, the within-run sum of squares r' (I - P) r and the between-run one r' P r (P projects onto
run means), have expectations linear in (point^2, run^2) through traces of M; solving that 2 x 2 system gives
unbiased estimates that account for what the law's parameters absorb (five parameters of which three live
between runs: with 5 runs the between-run residuals have ~2 degrees of freedom, not 25). Replicate runs (same
config, other seed) enter the between-run form with nothing absorbed, so they sharpen the run variance.
Degrees of freedom are Satterthwaite's, 2 E[q]^2 / Var[q] at the estimates: the point variance's of its
estimate, and the run variance's of the between-run form r' P r, which measures what a run mean's error is,
run^2 + point^2 / m (m points a run); a run variance with < MIN_DOF of them is not identified by the table (say:
3 runs for 3 between-run parameters), and intervals built on it say so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

MIN_DOF = 1.0  # a variance with fewer (Satterthwaite) degrees of freedom is not identified
RANK_TOL = 1e-8  # singular values of J below this fraction of the largest are directions the data do not see


@dataclass
class Noise:
    """Noise of log y (sd): per fitting point, and a random effect per run shared by its points; the degrees of
    freedom of each estimate, what they rest on, and whether the run variance is identified."""

    point: float
    run: float
    point_dof: float
    run_dof: float
    runs: int
    points: int
    replicate_runs: int = 0  # runs in cells with >= 2 runs (same config, other seed)
    replicate_run: float | None = None  # the run sd from the replicates alone (pure error), where there are any
    replicate_dof: int = 0

    @property
    def points_per_run(self) -> float:
        return self.points / self.runs

    @property
    def identified(self) -> bool:
        return self.run_dof >= MIN_DOF or self.points == self.runs

    def to_dict(self) -> dict:
        return {**asdict(self), "identified": self.identified}

    @classmethod
    def from_dict(cls, d: dict) -> Noise:
        return cls(**{k: v for k, v in d.items() if k != "identified"})


@dataclass(frozen=True)
class _Op:
    """A symmetric n x n matrix of the algebra the estimate works in (I, P, Z Z', M and their products): c on the
    orthogonal complement of a subspace S (every such matrix maps S into S and is a multiple of I off it) and the
    s x s matrix `on_s` on S's orthonormal basis. So products and traces cost O(s^3), s = runs + law parameters,
    never O(n^3) or n x n memory (a 6,000-point table would need 288 MB per dense matrix)."""

    c: float
    on_s: np.ndarray  # (s, s)
    n: int

    def __matmul__(self, other: _Op) -> _Op:
        return _Op(self.c * other.c, self.on_s @ other.on_s, self.n)

    def __add__(self, other: _Op) -> _Op:
        return _Op(self.c + other.c, self.on_s + other.on_s, self.n)

    def __sub__(self, other: _Op) -> _Op:
        return self + (-1.0) * other

    def __rmul__(self, k: float) -> _Op:
        return _Op(k * self.c, k * self.on_s, self.n)

    def trace(self) -> float:
        return float(self.c * (self.n - len(self.on_s)) + np.trace(self.on_s))


@dataclass(frozen=True)
class _Design:
    """The matrices of the estimate for fitting points in `runs` and a law with Jacobian J (n, p), as _Ops:
    `ident` I, `means` P (the projection onto run means), `same` Z Z' (the same-run indicator) and `resid` M =
    I - J J^+ (the residual-maker: what a least-squares fit with Jacobian J leaves of a disturbance; singular
    values of J below RANK_TOL of the largest are directions the data do not see). S is spanned by the run
    indicators Z and the part of J's column space off them (with one point per run, P = Z Z' = I and S is J's
    column space alone)."""

    ident: _Op
    means: _Op
    same: _Op
    resid: _Op

    @classmethod
    def of(cls, runs: np.ndarray, jac: np.ndarray) -> _Design:
        n = len(runs)
        _, inverse, counts = np.unique(runs, return_inverse=True, return_counts=True)
        u, s, _ = np.linalg.svd(jac, full_matrices=False)
        u = u[:, s > RANK_TOL * s.max()] if s.size and s.max() > 0 else u[:, :0]  # (n, k) orthonormal
        if len(counts) == n:  # P = Z Z' = I: S is the column space of J
            k = u.shape[1]
            ident = _Op(1.0, np.eye(k), n)
            return cls(ident, ident, ident, _Op(1.0, np.zeros((k, k)), n))
        sums = np.zeros((len(counts), u.shape[1]))
        np.add.at(sums, inverse, u)  # Z'U
        off = u - (sums / counts[:, None])[inverse]  # U - P U: J's column space off the run indicators
        q = off[:, :0]
        if off.shape[1]:
            q, sv, _ = np.linalg.svd(off, full_matrices=False)
            q = q[:, sv > 1e-10]
        basis_u = np.vstack([sums / np.sqrt(counts)[:, None], q.T @ u])  # Q' U, Q = [Z D^-1/2, q]
        on_z = np.r_[np.ones(len(counts)), np.zeros(q.shape[1])]
        size = len(on_z)
        return cls(
            _Op(1.0, np.eye(size), n),
            _Op(0.0, np.diag(on_z), n),
            _Op(0.0, np.diag(np.r_[counts, np.zeros(q.shape[1])].astype(float)), n),
            _Op(1.0, np.eye(size) - basis_u @ basis_u.T, n),
        )


def _run_sums_of_squares(resid: np.ndarray, runs: np.ndarray) -> tuple[float, float]:
    """(r' (I - P) r, r' P r): the within-run and between-run sums of squares of the residuals."""
    _, inverse, counts = np.unique(runs, return_inverse=True, return_counts=True)
    between = float(np.sum(np.bincount(inverse, weights=resid) ** 2 / counts))
    return float(resid @ resid) - between, between


def estimate(resid: np.ndarray, runs: np.ndarray, jac: np.ndarray, cells: np.ndarray | None = None) -> Noise:
    """Point and run noise (see the module docstring) from the log residuals (n,), run labels (n,) and the law's
    Jacobian at the fit (n, p); `cells` (n,) labels a run's config without its seed, for the replicates' pure
    error (None: no replicates are named)."""
    resid, runs = np.asarray(resid, float), np.asarray(runs)
    n = len(resid)
    d = _Design.of(runs, jac)
    m_mat, p_mat, z = d.resid, d.means, d.same
    w_mat = d.ident - p_mat
    forms = (w_mat, p_mat)
    # E[r' Q r] = point^2 tr(Q M) + run^2 tr(Q M Z Z' M), with Z Z' the same-run indicator (M symmetric, idempotent)
    mzm = m_mat @ z @ m_mat
    coef = np.array([[(q @ m_mat).trace(), (q @ mzm).trace()] for q in forms])
    q_obs = np.array(_run_sums_of_squares(resid, runs))
    n_runs = len(np.unique(runs))
    if n_runs == n:  # one point per run: only their sum is seen; it is all called point noise
        total = q_obs.sum() / max(coef[:, 0].sum(), 1e-12)
        point_var, run_var = max(total, 0.0), 0.0
        dof_point = _dof([d.ident], [1.0 / max(coef[:, 0].sum(), 1e-12)], m_mat, point_var * d.ident)
        return Noise(float(np.sqrt(point_var)), 0.0, dof_point, 0.0, n_runs, n)
    cov = None
    if coef[1, 1] * n_runs / n >= MIN_DOF:  # the between-run residuals see the run variance (~ dof x m)
        point_var, run_var = np.linalg.solve(coef, q_obs)
        point_var, run_var = max(float(point_var), 0.0), max(float(run_var), 0.0)
        cov = point_var * d.ident + run_var * z
        dof_point = _dof(forms, np.linalg.inv(coef)[0], m_mat, cov)
        dof_run = _dof([p_mat], [1.0], m_mat, cov)
    if cov is None or dof_run < MIN_DOF:  # the law absorbs every between-run residual: the run variance is unseen
        point_var = max(float(q_obs[0] / max(coef[0, 0], 1e-12)), 0.0)
        run_var, dof_run = point_var, 0.0  # assumed equal to the point variance (flagged as not identified)
        dof_point = _dof([w_mat], [1.0 / max(coef[0, 0], 1e-12)], m_mat, point_var * d.ident)
    rep = _replicates(resid, runs, cells, point_var)
    return Noise(float(np.sqrt(point_var)), float(np.sqrt(run_var)), dof_point, dof_run, n_runs, n, *rep)


def _dof(forms: list[_Op], weights, m_mat: _Op, cov: _Op) -> float:
    """Satterthwaite's degrees of freedom of the estimate sum_i w_i r' Q_i r with r = M x, x ~ N(0, cov):
    2 E^2 / Var, E = tr(K cov), Var = 2 tr((K cov)^2), K = M (sum w_i Q_i) M (all symmetric)."""
    combined = sum((float(w) * q for w, q in zip(weights, forms)), 0.0 * forms[0])
    kc = m_mat @ combined @ m_mat @ cov
    mean, var = kc.trace(), 2.0 * (kc @ kc).trace()
    return float(2 * mean**2 / var) if var > 0 else 0.0


def _replicates(
    resid: np.ndarray, runs: np.ndarray, cells: np.ndarray | None, point_var: float
) -> tuple[int, float | None, int]:
    """The run sd from replicate runs alone: the spread of residual run means within cells of >= 2 runs (the law
    cancels within a cell), less what point noise gives a run mean. Returns (replicate runs, sd, dof)."""
    if cells is None:
        return 0, None, 0
    df = pd.DataFrame({"r": resid, "run": runs, "cell": np.asarray(cells)})
    per_run = df.groupby("run").agg(mean=("r", "mean"), size=("r", "size"), cell=("cell", "first"))
    k = per_run.groupby("cell")["mean"].transform("size")
    rep = per_run[k >= 2]
    if rep.empty:
        return 0, None, 0
    dof = int(len(rep) - rep["cell"].nunique())
    ss = float(((rep["mean"] - rep.groupby("cell")["mean"].transform("mean")) ** 2).sum())
    var = ss / dof - point_var * float(np.mean(1.0 / rep["size"]))
    return int(len(rep)), float(np.sqrt(max(var, 0.0))), dof


def cells(s: pd.DataFrame) -> np.ndarray:
    """Each row's replicate cell: its run's config without the seed (every dotted config column but train.seed,
    with N and K), so two runs in one cell differ only in their seed. A table with no config columns (from
    elsewhere) names none: None."""
    keys = [c for c in s.columns if "." in c and c != "train.seed"]
    if not keys or "train.seed" not in s.columns:
        return None
    cols = ["n_params", "negatives", *keys]
    return s[cols].map(str).agg("|".join, axis=1).to_numpy()
