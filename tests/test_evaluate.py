"""Full-catalog metrics against a brute-force reference (sort every item, pessimistic ties)."""

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.model.evaluate import metrics_from_ranks, rank_and_nll


def brute_force(scores: np.ndarray, targets: np.ndarray, history: list | None):
    """scores (U, I) for ids 1..I. Seen items (the target too) score -inf in the ranking, as in RecBole's full
    sort; rank = 1 + #(other items with masked score >= the target's masked score)."""
    ranks, nlls = [], []
    for u, t in enumerate(targets):
        s = scores[u]
        masked = s.astype(np.float64).copy()
        if history is not None:
            masked[np.asarray(history[u], dtype=int) - 1] = -np.inf
        ranks.append(1 + sum(masked[j] >= masked[t - 1] for j in range(len(s)) if j != t - 1))
        nlls.append(np.log(np.exp(s - s.max()).sum()) + s.max() - s[t - 1])
    return np.array(ranks), np.array(nlls)


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6), st.integers(2, 30), st.integers(1, 4), st.integers(1, 9), st.booleans(), st.integers(0, 10_000)
)
def test_matches_brute_force(U, I, d, chunk, exclude, seed):  # noqa: E741 (U users x I items)
    rng = np.random.default_rng(seed)
    items = rng.integers(-2, 3, (I, d)).astype(np.float32)  # small integers: many exact ties
    h = rng.integers(-2, 3, (U, d)).astype(np.float32)
    targets = rng.integers(1, I + 1, U)
    history = [rng.integers(1, I + 1, rng.integers(0, 5)) for _ in range(U)] if exclude else None
    ranks, nll = rank_and_nll(
        torch.from_numpy(h), torch.from_numpy(targets), torch.from_numpy(items), 1.0, chunk, history
    )
    want_ranks, want_nll = brute_force(h @ items.T, targets, history)
    np.testing.assert_array_equal(ranks.numpy(), want_ranks)
    np.testing.assert_allclose(nll.numpy(), want_nll, rtol=1e-5, atol=1e-5)


def test_metric_formulas():
    m = metrics_from_ranks(torch.tensor([1, 2, 6, 11]), torch.tensor([0.0, 1.0, 2.0, 3.0]))
    assert math.isclose(m["ndcg@5"], (1 + 1 / math.log2(3)) / 4)
    assert math.isclose(m["ndcg@10"], (1 + 1 / math.log2(3) + 1 / math.log2(7)) / 4)
    assert m["hr@5"] == 0.5 and m["hr@10"] == 0.75
    assert math.isclose(m["mrr"], (1 + 1 / 2 + 1 / 6 + 1 / 11) / 4)
    assert math.isclose(m["ppl"], math.exp(1.5))


def test_all_tied_scores_rank_last():
    ranks, nll = rank_and_nll(torch.zeros(2, 3), torch.tensor([1, 4]), torch.zeros(5, 3), 1.0, 2)
    assert ranks.tolist() == [5, 5]
    assert torch.allclose(nll, torch.full((2,), math.log(5)))


def test_exclude_seen_masks_a_seen_target_like_every_seen_item():
    """History {1, 2, 3}, target 1 (a repeat), scores 3 > 2 > 1 > 4: the ranking without exclusion puts it 3rd;
    masking the history must not lift it to 1st by sparing the one seen item that is the answer."""
    items = torch.eye(4)
    h = torch.tensor([[2.0, 3.0, 4.0, 1.0]])  # scores of items 1..4
    plain, _ = rank_and_nll(h, torch.tensor([1]), items, 1.0, 4)
    assert plain.tolist() == [3]
    seen, _ = rank_and_nll(h, torch.tensor([1]), items, 1.0, 4, [np.array([1, 2, 3])])
    assert seen.tolist() == [4]  # masked with the rest of the history: last of 4, a miss
    unseen, _ = rank_and_nll(h, torch.tensor([4]), items, 1.0, 4, [np.array([1, 2, 3])])
    assert unseen.tolist() == [1]  # an unseen target competes only with unseen items
