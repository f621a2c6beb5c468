"""Sequence augmentation as (input, target) pair sampling: GenPAS (Lee et al., arXiv 2509.13648) and the
strategies it generalises.

For the training part s_u[1..n_u] of each user (1-based positions), a pair is drawn in three steps:
1. a user u with probability proportional to (n_u - 1)^alpha (users with n_u >= 2);
2. a target position k in 2..n_u with probability proportional to (k - 1)^beta;
3. an input start j in 1..k-1 with probability proportional to j^gamma;
the input is s_u[j..k-1] (the model keeps its most recent `context` items), the target s_u[k].

Each step is an exact inverse-CDF draw on a log-cumulative table (`_log_cumsum`), so infinite exponents are
their limits (alpha = +inf: only the longest users; beta = +inf: the last target; gamma = -inf: the whole
prefix) and finite large ones never overflow. Named strategies:
- lt (Last-Target): alpha = 0, beta = +inf, gamma = -inf — each user's last training target with its full history;
- mt (Multi-Target): alpha = 1, beta = 0, gamma = -inf — every transition with its full history, uniformly;
- sw (Slide-Window): every contiguous input s_u[j..k-1] with every target, uniformly over all such pairs; that is
  beta = 1, gamma = 0 with users weighted by their number of pairs n_u (n_u - 1) / 2, which GenPAS alpha = 2
  approaches for long sequences (the weights' ratio n_u / (2 (n_u - 1)) tends to a constant).
"""

from __future__ import annotations

import numpy as np

from harness.data.prepare import positions

INF = float("inf")
STRATEGIES = {"lt": (0.0, INF, -INF), "mt": (1.0, 0.0, -INF), "sw": (None, 1.0, 0.0)}  # alpha None: pair counts


def _log_weights(m: np.ndarray, exponent: float, lo, hi) -> np.ndarray:
    """log of m^exponent for m >= 1, with the infinite exponents as limits: only m = hi (+inf) or m = lo (-inf)
    keeps weight (log 0 = -inf elsewhere); lo and hi are scalars or per-row arrays."""
    m = np.asarray(m, float)
    if np.isinf(exponent):
        return np.where(m == (hi if exponent > 0 else lo), 0.0, -INF)
    return exponent * np.log(m)


def _log_cumsum(exponent: float, size: int) -> np.ndarray:
    """L[m] = log sum_{i=1}^{m} i^exponent for m = 0..size (L[0] = -inf); infinite exponents as limits over a
    prefix 1..m (the limit depends on m for +inf: the mass sits on i = m)."""
    out = np.full(size + 1, -INF)
    if size == 0:
        return out
    if exponent == INF or exponent == -INF:
        out[1:] = 0.0  # every prefix has total weight 1 on one element: log 1
        return out
    out[1:] = np.logaddexp.accumulate(exponent * np.log(np.arange(1, size + 1, dtype=float)))
    return out


def _draw(exponent: float, upper: np.ndarray, table: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each row, m in 1..upper with P(m) proportional to m^exponent, from uniforms u in [0, 1)."""
    if exponent == INF:
        return upper.copy()
    if exponent == -INF:
        return np.ones_like(upper)
    goal = np.log(u) + table[upper]  # inverse CDF: first m with L[m] > log(u) + L[upper]
    return np.minimum(np.searchsorted(table, goal, side="right"), upper)


class PairSampler:
    """Samples (first, last) flat-index pairs for the examples of `harness.run.batches.TrainExamples`: the input is
    flat[first .. last - 1] and the target flat[last]. `starts` and `lengths` (per user) describe each training
    part [start, start + length) of the flat item array."""

    def __init__(
        self,
        starts: np.ndarray,
        lengths: np.ndarray,
        strategy: str,
        alpha: float = 1.0,
        beta: float = 0.0,
        gamma: float = -INF,
    ):
        keep = lengths >= 2
        self.starts = np.asarray(starts)[keep].astype(np.int64)
        self.lengths = np.asarray(lengths)[keep].astype(np.int64)
        if strategy in STRATEGIES:
            alpha, beta, gamma = STRATEGIES[strategy]
        self.alpha, self.beta, self.gamma = alpha, beta, gamma
        n = self.lengths.astype(float)
        log_w = np.log(n * (n - 1) / 2) if alpha is None else _log_weights(n - 1, alpha, n.min() - 1, n.max() - 1)
        p = np.exp(log_w - log_w.max())
        self.user_cdf = np.cumsum(p / p.sum())
        longest = int(self.lengths.max()) if len(self.lengths) else 0
        self.k_table, self.j_table = _log_cumsum(beta, longest), _log_cumsum(gamma, longest)

    def sample(self, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """`size` pairs as flat indices: first of the input s_u[j..k-1], last of the target s_u[k]."""
        u = rng.random((3, size))
        user = np.minimum(np.searchsorted(self.user_cdf, u[0], side="right"), len(self.user_cdf) - 1)
        n = self.lengths[user]
        k = 1 + _draw(self.beta, n - 1, self.k_table, u[1])  # k - 1 in 1..n-1
        j = _draw(self.gamma, k - 1, self.j_table, u[2])  # j in 1..k-1
        start = self.starts[user]
        return start + j - 1, start + k - 1

    def target_distribution(self, flat: np.ndarray, n_items: int) -> np.ndarray:
        """Exact probability of each item id 0..n_items being the sampled target, (n_items + 1,): every target
        position k of every user, P(u) (k - 1)^beta / sum_{i <= n_u - 1} i^beta, summed by item."""
        pos, part = positions(self.starts + 1, self.starts + self.lengths)  # s_u[k] sits at flat[start + k - 1]
        m, upper = pos - self.starts[part], self.lengths[part] - 1  # k - 1 in 1..n_u - 1
        with np.errstate(divide="ignore"):  # users that step 1 never draws (alpha = +-inf) have log P(u) = -inf
            log_p = (
                np.log(np.diff(self.user_cdf, prepend=0.0))[part]
                + _log_weights(m, self.beta, 1, upper)
                - self.k_table[upper]
            )
        return np.bincount(flat[pos], weights=np.exp(log_p), minlength=n_items + 1)


def kl_divergence(p_valid: np.ndarray, p_train: np.ndarray, smoothing: float = 1e-3) -> float:
    """KL(p_valid || p_train) in nats, the GenPAS alignment diagnostic; p_train is mixed with the uniform
    distribution over items 1..n (weight `smoothing`) so items never drawn as training targets stay finite."""
    q = (1 - smoothing) * p_train[1:] + smoothing / (len(p_train) - 1)
    p = p_valid[1:]
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))
