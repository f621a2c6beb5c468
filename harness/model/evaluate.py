"""Full-catalog evaluation: every item is ranked for every user (never sampled candidates).

Scores are computed in chunks of users x items so memory stays bounded for catalogs of 10^6 items. The rank of
the true item is 1 + the number of other items scoring at least as high (ties broken pessimistically; scores
within float rounding, 1e-6 relative, of the target's count as ties). Perplexity is exp of the mean full-catalog
cross-entropy of the true item (scores / tau, every item included even when seen items are excluded from the
ranking).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from harness.model.srt import SRT


def metrics_from_ranks(ranks: torch.Tensor, nll: torch.Tensor) -> dict[str, float]:
    """ranks (U,) 1-based, nll (U,) cross-entropy of the true item -> mean metrics."""
    r = ranks.double()
    gain = 1.0 / torch.log2(r + 1)
    return {
        "ndcg@5": float(torch.where(r <= 5, gain, 0).mean()),
        "ndcg@10": float(torch.where(r <= 10, gain, 0).mean()),
        "hr@5": float((r <= 5).double().mean()),
        "hr@10": float((r <= 10).double().mean()),
        "mrr": float((1.0 / r).mean()),
        "ppl": perplexity(float(nll.double().mean())),
    }


def perplexity(mean_nll: float) -> float:
    """exp(mean cross-entropy in nats); inf where that overflows a float (a diverged model), NaN stays NaN."""
    try:
        return math.exp(mean_nll)
    except OverflowError:
        return math.inf


@torch.no_grad()
def catalog_vectors(model: SRT, chunk: int) -> torch.Tensor:
    """Extractor output for ids 1..n_items, (n_items, d), computed in chunks."""
    ext = model.extractor
    device = ext.device
    return torch.cat(
        [
            ext(torch.arange(lo, min(lo + chunk, ext.n_items + 1), device=device))
            for lo in range(1, ext.n_items + 1, chunk)
        ]
    )


@torch.no_grad()
def rank_and_nll(
    h: torch.Tensor,
    targets: torch.Tensor,
    items: torch.Tensor,
    tau: float,
    chunk: int,
    history: list[np.ndarray] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """For hidden states h (U, d) and true item ids (U,) over item vectors `items` (n_items, d) for ids
    1..n_items: pessimistic ranks (U,) and cross-entropies (U,). `history` (per user) masks the user's seen
    items in the ranking whatever the target is (RecBole's full-sort evaluation): a target the user has already
    seen is masked with them and ranks last (rank n_items, a miss). The cross-entropy is always over every item."""
    U = len(h)
    h = h / tau  # scores = <h, item> / tau without a pass over every score
    s_true = (h * items[targets - 1]).sum(1)
    tol = 1e-6 * s_true.abs().clamp(min=1.0)
    above = torch.zeros(U, dtype=torch.long, device=h.device)
    lse = torch.full((U,), float("-inf"), device=h.device)
    rows = torch.arange(U, device=h.device)
    if history is not None:
        seen_rows = torch.from_numpy(np.repeat(np.arange(U), [len(x) for x in history])).to(h.device)
        seen_items = torch.from_numpy(np.concatenate(history) if U else np.zeros(0, np.int64)).to(h.device)
        seen_target = torch.zeros(U, dtype=torch.bool, device=h.device)
        seen_target[seen_rows[seen_items == targets[seen_rows]]] = True
    for lo in range(0, len(items), chunk):
        scores = h @ items[lo : lo + chunk].T  # (U, C) for ids lo+1 .. lo+C
        lse = torch.logaddexp(lse, torch.logsumexp(scores, dim=1))
        in_chunk = (targets - 1 >= lo) & (targets - 1 < lo + scores.shape[1])
        scores[rows[in_chunk], targets[in_chunk] - 1 - lo] = float("-inf")
        if history is not None:
            sel = (seen_items - 1 >= lo) & (seen_items - 1 < lo + scores.shape[1])
            scores[seen_rows[sel], seen_items[sel] - 1 - lo] = float("-inf")
        above += (scores >= (s_true - tol)[:, None]).sum(1)
    ranks = above + 1
    if history is not None:
        ranks = torch.where(seen_target, len(items), ranks)
    return ranks, lse - s_true


@torch.no_grad()
def evaluate(
    model: SRT,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    history: list[np.ndarray] | None,
    batch_users: int = 256,
    chunk_items: int = 4096,
) -> dict[str, float]:
    """Full-catalog metrics (harness/core/schema.py METRICS) of `model` in eval mode for left-padded inputs (U, L) and
    targets (U,)."""
    was_training = model.training
    model.eval()
    device = model.extractor.device
    items = catalog_vectors(model, chunk_items)
    ranks, nlls = [], []
    for lo in range(0, len(inputs), batch_users):
        x = inputs[lo : lo + batch_users].to(device)
        h = model.encode(x)[:, -1]
        r, nll = rank_and_nll(
            h.float(),
            targets[lo : lo + batch_users].to(device),
            items.float(),
            model.tau,
            chunk_items,
            history[lo : lo + batch_users] if history is not None else None,
        )
        ranks.append(r.cpu())
        nlls.append(nll.cpu())
    model.train(was_training)
    return metrics_from_ranks(torch.cat(ranks), torch.cat(nlls))
