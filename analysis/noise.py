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


def _projector(runs: np.ndarray) -> np.ndarray:
    """P (n, n): the projection onto run means."""
    _, inverse, counts = np.unique(runs, return_inverse=True, return_counts=True)
    z = (inverse[:, None] == np.arange(len(counts))[None]).astype(float)
    return z @ (z / counts).T


def residual_maker(jac: np.ndarray) -> np.ndarray:
    """M = I - J J^+ (n, n): what a least-squares fit with Jacobian J (n, p) leaves of a disturbance."""
    u, s, _ = np.linalg.svd(jac, full_matrices=False)
    u = u[:, s > RANK_TOL * s.max()] if s.size and s.max() > 0 else u[:, :0]
    return np.eye(len(jac)) - u @ u.T


def estimate(resid: np.ndarray, runs: np.ndarray, jac: np.ndarray, cells: np.ndarray | None = None) -> Noise:
    """Point and run noise (see the module docstring) from the log residuals (n,), run labels (n,) and the law's
    Jacobian at the fit (n, p); `cells` (n,) labels a run's config without its seed, for the replicates' pure
    error (None: no replicates are named)."""
    resid, runs = np.asarray(resid, float), np.asarray(runs)
    n = len(resid)
    m_mat, p_mat = residual_maker(jac), _projector(runs)
    w_mat = np.eye(n) - p_mat
    z = (p_mat > 0).astype(float)  # same run
    forms = (w_mat, p_mat)
    # E[r' Q r] = point^2 tr(Q M) + run^2 tr(Q M Z Z' M), with Z Z' the same-run indicator (M symmetric, idempotent)
    mzm = m_mat @ z @ m_mat
    coef = np.array([[np.sum(q * m_mat), np.sum(q * mzm)] for q in forms])
    q_obs = np.array([resid @ q @ resid for q in forms])
    n_runs = len(np.unique(runs))
    if n_runs == n:  # one point per run: only their sum is seen; it is all called point noise
        total = q_obs.sum() / max(coef[:, 0].sum(), 1e-12)
        point_var, run_var = max(total, 0.0), 0.0
        dof_point = _dof([np.eye(n)], [1.0 / max(coef[:, 0].sum(), 1e-12)], m_mat, point_var * np.eye(n))
        return Noise(float(np.sqrt(point_var)), 0.0, dof_point, 0.0, n_runs, n)
    cov = None
    if coef[1, 1] * n_runs / n >= MIN_DOF:  # the between-run residuals see the run variance (~ dof x m)
        point_var, run_var = np.linalg.solve(coef, q_obs)
        point_var, run_var = max(float(point_var), 0.0), max(float(run_var), 0.0)
        cov = point_var * np.eye(n) + run_var * z
        dof_point = _dof(forms, np.linalg.inv(coef)[0], m_mat, cov)
        dof_run = _dof([p_mat], [1.0], m_mat, cov)
    if cov is None or dof_run < MIN_DOF:  # the law absorbs every between-run residual: the run variance is unseen
        point_var = max(float(q_obs[0] / max(coef[0, 0], 1e-12)), 0.0)
        run_var, dof_run = point_var, 0.0  # assumed equal to the point variance (flagged as not identified)
        dof_point = _dof([w_mat], [1.0 / max(coef[0, 0], 1e-12)], m_mat, point_var * np.eye(n))
    rep = _replicates(resid, runs, cells, point_var)
    return Noise(float(np.sqrt(point_var)), float(np.sqrt(run_var)), dof_point, dof_run, n_runs, n, *rep)


def _dof(forms, weights, m_mat: np.ndarray, cov: np.ndarray) -> float:
    """Satterthwaite's degrees of freedom of the estimate sum_i w_i r' Q_i r with r = M x, x ~ N(0, cov):
    2 E^2 / Var, E = tr(K cov), Var = 2 tr((K cov)^2), K = M' (sum w_i Q_i) M."""
    k_mat = m_mat.T @ sum(w * q for w, q in zip(weights, forms)) @ m_mat
    kc = k_mat @ cov
    mean, var = float(np.trace(kc)), 2.0 * float(np.sum(kc * kc.T))
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
