"""Adaptive study design (`advise --next`): the next runs that shrink a target's 95% interval most per FLOP.

The law is one K's perplexity law, L(N, T) = E + A / N^alpha + B / T^beta on ln(perplexity), fitted and
bootstrapped as `srt-scale fit` does (analysis/laws.py). Its parameters theta = (E, ln A, alpha, ln B, beta) have,
for a set of runs, the linearised information
    M(theta) = prior + sum over runs J_r^T S_r^-1 J_r,
J_r the gradient of log L at the run's fitting points (its branch ends) and S_r = s_point^2 I + s_run^2 1 1^T:
point noise plus a random effect shared by one run's points (estimated from the fit's residuals, with floors).
M is evaluated at DRAWS parameter sets of the bootstrap ensemble (the point fit first), so a design is judged over
what the law may be, not at one guess.

Targets (each a vector of functions g(theta); the criterion is the mean over draws of sum_k log var g_k):
- `exponents`: alpha and beta;
- `n_opt`: ln N_opt at the budget C* (analysis/optimum.allocate, priced by the table's cost model; its gradient by
  central differences; a draw whose optimum, or either side of a difference, lies on the N grid's edge has no
  gradient and is left out of the criterion, counted as `edge_draws`);
- `loss`: ln of the law's target at the compute-optimal point of C* (its gradient at that point, N and T held:
  the envelope theorem).
Selection is greedy, repeats allowed (a repeat is a new seed): by criterion drop per FLOP, and by criterion drop
alone, among the candidates that still fit the budget; the set with the larger total drop is kept (Leskovec et al.
2007's cost-effective rule: per-FLOP greedy alone spends a budget on many tiny runs when a few large ones do
more). While the fit flags parameters as not identified (fit.identify, a floor consistent with 0 included), their log
variances join the criterion (a D_s-optimal floor), so runs that identify them are preferred.
Predicted widths after the runs are the bootstrap widths before them scaled by sqrt(mean over draws of the
linearised variance ratio).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis import cost as costs
from analysis import fit, optimum
from analysis import noise as noise_model
from analysis.laws import joint_law
from analysis.table import k_order, points, to_target, usable
from harness.core.errors import UserError

TARGETS = ("exponents", "n_opt", "loss")
DRAWS = 24  # parameter sets of the ensemble the information is averaged over (the point fit + bootstrap refits)
RESAMPLES = 16  # Poisson(1) bootstrap weightings of the points the information is averaged over
NOISE_FLOOR = 2e-3  # smallest point and run noise (sd of log L) the design assumes
PRIOR_SD = np.array([10.0, 10.0, 2.0, 10.0, 2.0])  # a weak prior on theta (E in units of the data's median L)
THETA = ("E", "A", "alpha", "B", "beta")  # fit.joint's parameters in theta's order
FD_STEP = 1e-2  # central-difference step in theta for ln N_opt's gradient
NS = 9  # N values of a table's candidate pool


@dataclass(frozen=True)
class Candidate:
    """A run the design may propose: its N, its length T (targets), its fitting lengths (branch ends, T last), K,
    its cost as the harness prices it (branches included) and, from a grid, its shape and train.branches
    (fractions of T)."""

    n_params: float
    tokens: int
    branches: tuple[int, ...]
    negatives: str
    flops_spent: float
    shape: dict | None = None
    fractions: tuple[float, ...] | None = None


@dataclass
class Noise:
    """Noise of log L (sd): per fitting point, and a random effect per run shared by its points."""

    point: float
    run: float
    estimated: dict = field(default_factory=dict)  # the values from the residuals, before the floors


def noise(nz: noise_model.Noise) -> Noise:
    """The design's noise: the table's noise model (analysis/noise.py, what the intervals rest on) with
    NOISE_FLOOR floors (a design that believed a run effect of 0 would never replicate)."""
    return Noise(max(nz.point, NOISE_FLOOR), max(nz.run, NOISE_FLOOR), {"point": nz.point, "run": nz.run})


def to_theta(params: dict) -> np.ndarray:
    """A law's parameters -> theta = (E, ln A, alpha, ln B, beta). E stays on its linear scale: at a floor fitted
    to 0 the data still constrain it (d ln L / dE = 1 / L), where on a log scale they would not."""
    return np.array([params["E"], np.log(params["A"]), params["alpha"], np.log(params["B"]), params["beta"]])


def to_params(theta: np.ndarray) -> dict:
    return {
        "E": float(theta[0]),
        "A": float(np.exp(theta[1])),
        "alpha": float(theta[2]),
        "B": float(np.exp(theta[3])),
        "beta": float(theta[4]),
    }


def jacobian(theta: np.ndarray, n: np.ndarray, t: np.ndarray) -> np.ndarray:
    """d ln L / d theta: theta (D, 5), points n, t (m,) -> (D, m, 5)."""
    ln, lt = np.log(np.asarray(n, float)), np.log(np.asarray(t, float))
    a_term = np.exp(theta[:, 1:2] - theta[:, 2:3] * ln)
    b_term = np.exp(theta[:, 3:4] - theta[:, 4:5] * lt)
    total = theta[:, :1] + a_term + b_term
    return np.stack([1 / total, a_term / total, -a_term * ln / total, b_term / total, -b_term * lt / total], axis=2)


def run_information(jac: np.ndarray, nz: Noise, weights: np.ndarray) -> np.ndarray:
    """J^T S^-1 J of one run's points, each counted `weights` times (a bootstrap resample; 0 for padding), S =
    s_point^2 I + s_run^2 1 1^T over the counted points: jac (..., m, 5), weights (..., m) -> (..., 5, 5)."""
    m = weights.sum(axis=-1)[..., None, None]
    c = nz.run**2 / (nz.point**2 + m * nz.run**2)
    total = np.einsum("...mi,...m->...i", jac, weights)
    return (
        np.einsum("...mi,...m,...mj->...ij", jac, weights, jac) - c * np.einsum("...i,...j->...ij", total, total)
    ) / nz.point**2


@dataclass
class Problem:
    """What the design works on: the fitted law (with its bootstrap), its fitting points (n, t, run), the noise,
    the cost model and the target's definition."""

    law: fit.Fit
    n: np.ndarray
    t: np.ndarray
    runs: np.ndarray
    noise: Noise
    cost: dict
    negatives: str
    target: str
    at: float  # C* (n_opt, loss)

    def draws(self) -> np.ndarray:
        """theta of the point fit and up to DRAWS - 1 bootstrap refits (evenly spaced through the ensemble)."""
        boot = self.law.samples
        pick = np.linspace(0, len(boot) - 1, min(DRAWS - 1, len(boot))).round().astype(int) if boot else []
        return np.stack([to_theta(self.law.params), *(to_theta(boot[i]) for i in pick)])

    def information(self, theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """prior + the table's runs, its points counted `weights` (S, n_points) times: (D, S, 5, 5)."""
        info = np.broadcast_to(np.diag(self.scale() ** -2.0), (len(theta), len(weights), 5, 5)).copy()
        for run in pd.unique(self.runs):
            sel = self.runs == run
            info += run_information(
                jacobian(theta, self.n[sel], self.t[sel])[:, None], self.noise, weights[None, :, sel]
            )
        return info

    def scale(self) -> np.ndarray:
        """The prior's sd per coordinate of theta: PRIOR_SD, E's in units of the data's median L."""
        typical = float(np.median(fit.predict_joint(self.law.params, self.n, self.t)))
        return PRIOR_SD * np.array([typical, 1, 1, 1, 1])

    def _law(self, thetas: np.ndarray) -> optimum.Law:
        return optimum.Law(
            self.negatives,
            costs.k_number(self.negatives, self.cost["n_items"]),
            [to_params(th) for th in thetas],
            fit.predict_joint,
        )

    def _allocate(self, thetas: np.ndarray) -> np.ndarray:
        return optimum.allocate(self._law(thetas), self.cost, self.at, optimum.n_grid(self.cost))

    def gradients(self, theta: np.ndarray) -> np.ndarray:
        """The target's components' gradients in theta at each draw: (D, k, 5)."""
        d = len(theta)
        if self.target == "exponents":
            return np.broadcast_to(np.eye(5)[[2, 4]], (d, 2, 5)).copy()
        if self.target == "loss":
            at = self._allocate(theta)
            g = jacobian(theta, at[:, 0], at[:, 1])[np.arange(d), np.arange(d)][:, None, :]
            return np.where(at[:, 3, None, None] == 1, np.nan, g)
        h = FD_STEP * self.scale() / PRIOR_SD  # E's step in units of L
        steps = np.diag(h)
        shifted = np.concatenate([theta[:, None] + steps, theta[:, None] - steps], axis=1)  # (D, 10, 5)
        at = self._allocate(shifted.reshape(-1, 5))
        log_n = np.log(at[:, 0]).reshape(d, 10)
        edge = (at[:, 3] == 1).reshape(d, 10).any(axis=1)  # a difference across the N grid's edge is not a gradient
        return np.where(edge[:, None, None], np.nan, ((log_n[:, :5] - log_n[:, 5:]) / (2 * h))[:, None, :])

    def samples(self) -> np.ndarray:
        """The target's components over the point fit and every bootstrap refit: (1 + n_boot, k)."""
        thetas = np.stack([to_theta(p) for p in [self.law.params, *self.law.samples]])
        if self.target == "exponents":
            return thetas[:, [2, 4]]
        at = self._allocate(thetas)
        values = np.log(at[:, [0]] if self.target == "n_opt" else at[:, [2]])
        return np.where(at[:, [3]] == 1, np.nan, values)  # an optimum on the grid's edge: no value (widths drops it)

    def names(self) -> list[str]:
        return {
            "exponents": ["alpha", "beta"],
            "n_opt": [f"ln N_opt({self.at:.3g})"],
            "loss": [f"ln L({self.at:.3g})"],
        }[self.target]


def widths(samples: np.ndarray) -> np.ndarray:
    """95% percentile-interval widths of each column (the point fit, row 0, left out)."""
    boot = samples[1:]
    boot = boot[np.isfinite(boot).all(axis=1)]
    if len(boot) < 2:
        return np.full(samples.shape[1], np.nan)
    return np.percentile(boot, 97.5, axis=0) - np.percentile(boot, 2.5, axis=0)


def _variances(cov: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """g^T Cov g per component: cov (D, S, C, 5, 5), grads (D, k, 5) -> (D, S, C, k)."""
    return np.einsum("dki,dscij,dkj->dsck", grads, cov, grads)


def _flagged(law: fit.Fit) -> dict[str, tuple[int, str]]:
    """The parameters identify flags (a floor consistent with 0 among them: at the bound, the fit's refits all sit
    there and the exponents' intervals are conditional on it) -> their theta index."""
    return {name: (THETA.index(name), why) for name, why in law.unidentified.items() if name in THETA}


def _criterion(cov: np.ndarray, grads: np.ndarray, extra: list[int]) -> np.ndarray:
    """Mean over draws of sum_k log (mean over resamples of var g_k), plus the same of theta_j for the flagged
    indices `extra`: cov (D, S, C, 5, 5), grads (D, k, 5) -> (C,)."""
    out = np.log(_variances(cov, grads).mean(axis=1)).sum(axis=-1)
    if extra:
        out = out + np.log(np.diagonal(cov, axis1=-2, axis2=-1)[..., extra].mean(axis=1)).sum(axis=-1)
    return np.nanmean(out, axis=0)  # draws whose target is on the N grid's edge have no gradient (nan): left out


def _weights(rng: np.random.Generator, resamples: int, shape: tuple) -> np.ndarray:
    """Poisson(1) bootstrap counts (resamples, *shape); every count 1 (one 'resample') when resamples is 0."""
    return rng.poisson(1.0, (resamples, *shape)).astype(float) if resamples else np.ones((1, *shape))


class _Pool:
    """The candidates' Jacobians at the draws, padded to one length: jac (D, C, m, 5), mask (C, m)."""

    def __init__(self, theta: np.ndarray, pool: list[Candidate]):
        m = max(len(c.branches) for c in pool)
        n = np.array([[c.n_params] * m for c in pool], float)
        t = np.array([list(c.branches) + [c.branches[-1]] * (m - len(c.branches)) for c in pool], float)
        self.mask = np.arange(m)[None] < np.array([len(c.branches) for c in pool])[:, None]
        self.jac = jacobian(theta, n.ravel(), t.ravel()).reshape(len(theta), len(pool), m, 5)

    def information(self, nz: Noise, rng: np.random.Generator, resamples: int) -> np.ndarray:
        """Each candidate's information under `resamples` Poisson(1) bootstrap weights of its points:
        (D, S, C, 5, 5)."""
        return run_information(self.jac[:, None], nz, _weights(rng, resamples, self.mask.shape) * self.mask)


def _greedy(
    problem: Problem,
    start: tuple[np.ndarray, dict],
    pool: _Pool,
    flops: np.ndarray,
    spend: float,
    count: int,
    grads: np.ndarray,
    extra: list[int],
    per_flop: bool,
) -> tuple[list[int], list[float], float, np.ndarray]:
    """Greedy picks (repeats allowed) of up to `count` candidates within `spend`: each step the largest criterion
    drop per FLOP (`per_flop`) or the largest drop. Every point, the table's and the candidates', is counted with
    Poisson(1) bootstrap weights (RESAMPLES of them; fixed seed, the same for both passes): the fit's intervals
    come from resampling points, and a design whose information rests on one or two points is wide whenever a
    resample leaves them out. `start`: the table's information (D, S, 5, 5) and the generator state after its
    weights (both passes continue from it). Returns the picks, their drops, the total drop and the final
    information."""
    info, state = start
    rng = np.random.default_rng()
    rng.bit_generator.state = state
    picks, drops, left = [], [], float(spend)
    now = _criterion(np.linalg.inv(info)[:, :, None], grads, extra)[0]
    start = now
    for _ in range(count):
        ok = flops <= left
        if not ok.any():
            break
        cand = pool.information(problem.noise, rng, RESAMPLES)
        crit = _criterion(np.linalg.inv(info[:, :, None] + cand), grads, extra)
        score = np.where(ok, (now - crit) / (flops if per_flop else 1.0), -np.inf)
        best = int(np.argmax(score))
        picks.append(best)
        drops.append(float(now - crit[best]))
        info = info + cand[:, :, best]
        left -= flops[best]
        now = crit[best]
    return picks, drops, float(start - now), info


def select(problem: Problem, pool: list[Candidate], spend: float, count: int) -> dict:
    """Up to `count` runs from `pool` (repeats allowed: new seeds) costing at most `spend` FLOPs in all: greedy by
    criterion drop per FLOP, and greedy by criterion drop, the set with the larger total drop kept (the
    cost-effective rule of Leskovec et al. 2007: per-FLOP greedy alone can spend a budget on many tiny runs).
    While the fit flags parameters, their log variances join the criterion, so the runs that identify them are
    preferred. Returns the picks (indices into pool), each one's criterion drop,
    the rule that won, and the target's predicted variance ratios and linearised widths."""
    theta = problem.draws()
    grads = problem.gradients(theta)  # (D, k, 5)
    if np.isnan(grads).all():
        raise UserError(
            f"every draw of the law puts the {problem.target} target at C* = {problem.at:.3g} on the "
            "searched N grid's edge: the law has no optimum there to design for (try another --at)"
        )
    flops = np.array([c.flops_spent for c in pool])
    jac = _Pool(theta, pool)
    flagged = {i for i, _ in _flagged(problem.law).values()}
    extra = sorted(flagged - {2, 4} if problem.target == "exponents" else flagged)
    rng = np.random.default_rng(0)
    before = problem.information(theta, _weights(rng, RESAMPLES, (len(problem.n),)))  # (D, S, 5, 5)
    start = (before, rng.bit_generator.state)
    by_flop = _greedy(problem, start, jac, flops, spend, count, grads, extra, per_flop=True)
    by_gain = _greedy(problem, start, jac, flops, spend, count, grads, extra, per_flop=False)
    picks, drops, _, after = by_flop if by_flop[2] >= by_gain[2] else by_gain
    base_var = _variances(np.linalg.inv(before)[:, :, None], grads)[:, :, 0].mean(axis=1)  # (D, k)
    final_var = _variances(np.linalg.inv(after)[:, :, None], grads)[:, :, 0].mean(axis=1)
    return {
        "picks": picks,
        "drops": drops,
        "rule": "per FLOP" if by_flop[2] >= by_gain[2] else "per run",
        "flagged": [THETA[i] for i in extra],
        "ratio": np.nanmean(final_var / base_var, axis=0),
        "linear_before": 3.92 * np.sqrt(np.nanmean(base_var, axis=0)),
        "linear_after": 3.92 * np.sqrt(np.nanmean(final_var, axis=0)),
        "edge_draws": int(np.isnan(grads).any(axis=(1, 2)).sum()),
    }


def problem(
    table: pd.DataFrame, split: str, negatives: str | None, target: str, at: float | None, n_boot: int, seed: int = 0
) -> Problem:
    """The design problem of a table (its fitting points; analysis.table.usable): the K (default: full, else the
    largest K), its perplexity law with `n_boot` bootstrap refits, the noise from its residuals, the cost model,
    and C* (default: 10 x the table's largest fitting point's C)."""
    if target not in TARGETS:
        raise UserError(f"--target {target}: expected one of {', '.join(TARGETS)}")
    data, _ = usable(table, split)
    final = points(data)
    col = f"{split}_ppl"
    if final.empty or col not in final.columns:
        raise UserError(f"the table has no finished run with {col}: nothing to design from")
    labels = k_order(final["negatives"])
    k = negatives if negatives is not None else labels[-1]
    if k not in labels:
        raise UserError(f"--negatives {k}: not a K of the table (its K: {', '.join(labels)})")
    s = final[final["negatives"].astype(str) == k]
    y = to_target("ppl", s[col])
    law = joint_law(s, y, n_boot, seed)
    if isinstance(law, str):
        raise UserError(f"K={k}: {law}: run a seed design first")
    n, t = s["n_params"].to_numpy(float), s["tokens"].to_numpy(float)
    budget = float(at) if at else 10 * float(final["flops"].max())
    if not budget > 0:
        raise UserError(f"--at {at}: must be a positive number of FLOPs")
    return Problem(
        law,
        n,
        t,
        s["run_id"].to_numpy(),
        noise(noise_model.Noise.from_dict(law.intervals["noise"])),
        costs.fit_cost(final),
        k,
        target,
        budget,
    )


def spent(table: pd.DataFrame) -> float:
    """FLOPs a table's runs spent: per run its largest `flops_spent` (branches included), else its largest C."""
    col = "flops_spent" if "flops_spent" in table.columns and table["flops_spent"].notna().all() else "flops"
    return float(table.groupby("run_id")[col].max().sum())


def table_pool(problem: Problem) -> list[Candidate]:
    """Candidates for a table from elsewhere (no grid): single points (N, T), N over NS log-spaced values from half
    the table's smallest N to twice its largest (and the table's own), T in half-decade steps from a half-decade
    below the table's smallest T to a half-decade above its largest (and the table's own); each costs the
    table's C/T at (N, K) times T."""
    ns = np.unique(np.concatenate([np.geomspace(problem.n.min() / 2, problem.n.max() * 2, NS), problem.n]))
    out = []
    for n in ns:
        per_target = float(costs.per_target(problem.cost, np.array([n]), problem.negatives)[0])
        for t in t_values(problem.t):
            out.append(Candidate(float(n), int(t), (int(t),), problem.negatives, per_target * t))
    return out


def t_values(t: np.ndarray, cap: float = np.inf) -> np.ndarray:
    """Run lengths on half-decade steps from a half-decade below min(t) to a half-decade above max(t), and t's
    own values; none above `cap`, which is itself a length when it falls inside that range (one epoch)."""
    lo, hi = np.log10(t.min()) - 0.5, min(np.log10(t.max()) + 0.5, np.log10(cap))
    grid = 10 ** (np.arange(np.ceil(2 * lo), np.floor(2 * hi) + 1) / 2)
    at_cap = [cap] if np.isfinite(cap) and np.log10(cap) <= hi else []
    return np.unique(np.round(np.concatenate([grid, t[t <= cap], at_cap])).astype(int))


def propose(problem: Problem, pool: list[Candidate], spend: float, count: int, seeds: dict | None = None) -> dict:
    """Up to `count` runs from `pool` costing at most `spend` FLOPs (select), each with its seed (the next unused
    at its N, T and branches; `seeds` maps such a key to the seeds already used), and the target's 95% interval
    widths before (bootstrap) and after (predicted)."""
    if count < 1:
        raise UserError(f"--next {count}: expected a positive number of runs")
    if not spend > 0:
        raise UserError(f"--spend {spend}: must be a positive number of FLOPs")
    if not pool:
        raise UserError("no candidate run: the grid's shapes and lengths leave nothing to propose")
    chosen = select(problem, pool, spend, count)
    used = {k: set(v) for k, v in (seeds or {}).items()}
    runs = []
    for i, gain in zip(chosen["picks"], chosen["drops"]):
        c = pool[i]
        key = (int(round(c.n_params)), c.tokens, c.branches)
        seed = next(s for s in range(len(used.get(key, ())) + 1) if s not in used.get(key, ()))
        used.setdefault(key, set()).add(seed)
        runs.append(
            {
                "n_params": c.n_params,
                "tokens": c.tokens,
                "branches": list(c.branches),
                "negatives": c.negatives,
                "seed": seed,
                "flops_spent": c.flops_spent,
                "criterion_drop": gain,
                **({"shape": c.shape} if c.shape else {}),
                **({"fractions": list(c.fractions)} if c.fractions else {}),
            }
        )
    before = widths(problem.samples())
    after = before * np.sqrt(chosen["ratio"])
    return {
        "target": problem.target,
        "components": problem.names(),
        "negatives": problem.negatives,
        "at": problem.at,
        "spend": spend,
        "flops_spent": float(sum(r["flops_spent"] for r in runs)),
        "runs": runs,
        "rule": chosen["rule"],
        "flagged_in_criterion": chosen["flagged"],
        "widths": {
            name: {"before": float(b), "after": float(a), "linear_before": float(lb), "linear_after": float(la)}
            for name, b, a, lb, la in zip(
                problem.names(), before, after, chosen["linear_before"], chosen["linear_after"]
            )
        },
        "noise": {"point": problem.noise.point, "run": problem.noise.run, "estimated": problem.noise.estimated},
        "unidentified": problem.law.unidentified,
        "law": problem.law.params,
        "fit_points": len(problem.n),
        "candidates": len(pool),
        "edge_draws": chosen["edge_draws"],
        "draws": len(problem.draws()),
    }


def format_proposal(p: dict) -> str:
    """The proposal as text: a table of the runs and the target's widths before and after."""
    lines = [
        f"{len(p['runs'])} runs for the {p['target']} target of the K={p['negatives']} perplexity law "
        f"({p['fit_points']} fitting points, {p['candidates']} candidates), "
        f"{p['flops_spent']:.3g} of {p['spend']:.3g} FLOPs:",
        f"  {'N':>10} {'T':>10} {'K':>6} {'seed':>4} {'FLOPs':>10} {'drop':>7}  fitting T",
    ]
    for r in p["runs"]:
        lines.append(
            f"  {r['n_params']:>10,.0f} {r['tokens']:>10,} {r['negatives']:>6} {r['seed']:>4} "
            f"{r['flops_spent']:>10.3g} {r['criterion_drop']:>7.3f}  {', '.join(f'{b:,}' for b in r['branches'])}"
        )
    lines.append("  95% interval widths (bootstrap now -> predicted after these runs):")
    for name, w in p["widths"].items():
        lines.append(
            f"    {name}: {w['before']:.3g} -> {w['after']:.3g} ({1 - w['after'] / w['before']:.0%} narrower)"
            if w["before"] > 0
            else f"    {name}: n/a"
        )
    nz = p["noise"]
    lines.append(
        f"  noise of ln L: {nz['point']:.3g} per point, {nz['run']:.3g} per run (from the residuals: "
        f"{nz['estimated']['point']:.3g}, {nz['estimated']['run']:.3g}; floors {NOISE_FLOOR:g})"
    )
    if p.get("edge_draws"):
        lines.append(
            f"  {p['edge_draws']} of {p['draws']} draws of the law put the target at C* on the searched N "
            "grid's edge (no optimum there): left out of the criterion"
        )
    lines.append(
        f"  chosen {p['rule']} (greedy by criterion drop per FLOP vs per run, the larger total kept)"
        + (f"; flagged {', '.join(p['flagged_in_criterion'])} join the criterion" if p["flagged_in_criterion"] else "")
    )
    for name, why in p["unidentified"].items():
        lines.append(f"  flagged {name}: {why}")
    return "\n".join(lines)
