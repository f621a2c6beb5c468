"""GenPAS pair sampling: the named strategies are exactly their enumerations, the three-step law holds for any
exponents (infinite ones as limits), the alignment diagnostic, and a real training run on sampled pairs."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.core.errors import UserError
from harness.data.augment import INF, PairSampler, kl_divergence
from harness.run import Run, train

STARTS, LENGTHS = np.array([0, 10, 30, 40]), np.array([5, 8, 3, 1])  # the last user has no pair


def enumerate_pairs(strategy):
    """(first, last) flat pairs of each named strategy with their probabilities, written out by hand."""
    probs = {}
    users = [(s, n) for s, n in zip(STARTS, LENGTHS) if n >= 2]
    if strategy == "lt":
        for s, n in users:
            probs[(s, s + n - 1)] = 1 / len(users)
    elif strategy == "mt":
        total = sum(n - 1 for _, n in users)
        for s, n in users:
            for k in range(2, n + 1):
                probs[(s, s + k - 1)] = 1 / total
    else:
        total = sum(n * (n - 1) // 2 for _, n in users)
        for s, n in users:
            for k in range(2, n + 1):
                for j in range(1, k):
                    probs[(s + j - 1, s + k - 1)] = 1 / total
    return probs


def law(alpha, beta, gamma):
    """The three-step GenPAS probability of every (first, last) pair, by direct enumeration."""

    def w(m, e, lo, hi):
        if math.isinf(e):
            return float(m == (hi if e > 0 else lo))
        return float(m) ** e

    users = [(s, n) for s, n in zip(STARTS, LENGTHS) if n >= 2]
    lo, hi = min(n for _, n in users) - 1, max(n for _, n in users) - 1
    uw = np.array([w(n - 1, alpha, lo, hi) for _, n in users])
    probs = {}
    for (s, n), pu in zip(users, uw / uw.sum()):
        kw = np.array([w(k - 1, beta, 1, n - 1) for k in range(2, n + 1)])
        for k, pk in zip(range(2, n + 1), kw / kw.sum()):
            jw = np.array([w(j, gamma, 1, k - 1) for j in range(1, k)])
            for j, pj in zip(range(1, k), jw / jw.sum()):
                probs[(s + j - 1, s + k - 1)] = probs.get((s + j - 1, s + k - 1), 0) + pu * pk * pj
    return probs


def empirical(sampler, size=200_000, seed=0):
    first, last = sampler.sample(size, np.random.default_rng(seed))
    pairs, counts = np.unique(np.stack([first, last], 1), axis=0, return_counts=True)
    return {tuple(p): c / size for p, c in zip(pairs.tolist(), counts)}


def assert_matches(got, want, size=200_000):
    assert set(got) <= {p for p, v in want.items() if v > 0}  # nothing outside the support
    for pair, p in want.items():  # every frequency within 5 binomial standard deviations
        assert abs(got.get(pair, 0) - p) < 5 * math.sqrt(p * (1 - p) / size) + 1e-12, (pair, got.get(pair), p)


@pytest.mark.parametrize("strategy", ["lt", "mt", "sw"])
def test_named_strategies_are_their_enumerations(strategy):
    assert_matches(empirical(PairSampler(STARTS, LENGTHS, strategy)), enumerate_pairs(strategy))


def test_genpas_limits_reproduce_lt_and_mt():
    assert_matches(empirical(PairSampler(STARTS, LENGTHS, "genpas", 0.0, INF, -INF)), enumerate_pairs("lt"))
    assert_matches(empirical(PairSampler(STARTS, LENGTHS, "genpas", 1.0, 0.0, -INF)), enumerate_pairs("mt"))


exponent = st.one_of(st.sampled_from([INF, -INF, 0.0]), st.floats(-3, 3))


@settings(max_examples=25, deadline=None)
@given(alpha=exponent, beta=exponent, gamma=exponent)
def test_three_step_law_for_any_exponents(alpha, beta, gamma):
    want = law(alpha, beta, gamma)
    assert_matches(empirical(PairSampler(STARTS, LENGTHS, "genpas", alpha, beta, gamma), 50_000), want, 50_000)


def test_large_exponents_do_not_overflow():
    sampler = PairSampler(np.array([0]), np.array([3000]), "genpas", 1.0, 1e5, -1e5)
    first, last = sampler.sample(1000, np.random.default_rng(0))
    assert (first == 0).all() and (last == 3000 - 1).all()  # m^1e5: (2998/2999)^1e5 = e^-33, all mass on the extremes


def test_target_distribution_and_kl():
    flat = np.array([1, 2, 3, 1, 2, 0, 0, 0, 0, 0, 3, 3, 2, 1, 1, 2, 3, 1], dtype=np.int64)
    starts, lengths = np.array([0, 10]), np.array([5, 8])
    lt = PairSampler(starts, lengths, "lt").target_distribution(flat, 3)
    assert lt.tolist() == pytest.approx([0, 0.5, 0.5, 0])  # the last targets flat[4] = 2 and flat[17] = 1
    mt = PairSampler(starts, lengths, "mt").target_distribution(flat, 3)
    targets = np.concatenate([flat[1:5], flat[11:18]])
    assert mt.tolist() == pytest.approx((np.bincount(targets, minlength=4) / len(targets)).tolist())
    assert kl_divergence(mt, mt, smoothing=0.0) == pytest.approx(0.0)
    assert kl_divergence(np.array([0, 1.0, 0, 0]), mt) == pytest.approx(-math.log(mt[1] * (1 - 1e-3) + 1e-3 / 3))


def test_training_on_genpas_pairs(tiny, tmp_path):
    cfg = tiny(
        augment__strategy="genpas",
        augment__alpha=1.0,
        augment__beta=1.0,
        augment__gamma=0.0,
        loss__supervision="last",
        train__tokens=3000,
    )
    run = Run(cfg, tmp_path)
    run.examples.epoch_order(0, 0)
    inputs, targets = run.examples.batch(torch.arange(64))
    assert (targets[:, :-1] == 0).all() and (targets[:, -1] > 0).all()  # one target per pair, at the end
    assert len(run.examples) == run.examples.targets_per_epoch
    result = train(cfg, tmp_path, progress=False)
    assert result["status"] == "done" and result["tokens"] == 3000 and math.isfinite(result["test_ppl"])
    lt = Run(tiny(augment__strategy="lt", loss__supervision="last"), tmp_path)
    windows = Run(tiny(), tmp_path)  # every transition once per epoch: the Multi-Target distribution
    mt = Run(tiny(augment__strategy="mt", loss__supervision="last"), tmp_path)
    assert windows.target_kl == pytest.approx(mt.target_kl) and 0 < mt.target_kl
    assert result["target_kl"] == pytest.approx(run.target_kl) and lt.target_kl != pytest.approx(mt.target_kl)


def test_augment_needs_last_position_supervision(tiny):
    with pytest.raises(UserError, match="augment.strategy = mt trains one target per pair"):
        tiny(augment__strategy="mt")
