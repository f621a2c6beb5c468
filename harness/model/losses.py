"""Training losses over hidden states at target positions.

Shapes: h (M, d) hidden states at the M targets; targets (M,) item ids; pos (M, d) the targets' item vectors;
negatives are ids (K,) shared by the batch or (M, K) per target, with vectors (K, d) or (M, K, d).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from harness.core.registry import LOSSES


class NegativeSampler:
    """Draws negative item ids in 1..n_items, uniformly or in proportion to training popularity, and gives
    log q(id) for the logQ correction."""

    def __init__(self, n_items: int, counts: np.ndarray | None, generator: torch.Generator):
        self.n_items, self.generator = n_items, generator
        if counts is None:
            self.logq_table = torch.full((n_items + 1,), -math.log(n_items))
            self.cdf = None
        else:
            q = torch.as_tensor(counts[1:], dtype=torch.float64) + 1e-12
            q = q / q.sum()
            self.logq_table = torch.cat([torch.zeros(1), q.log().float()])
            self.cdf = torch.cumsum(q, 0)

    def sample(self, shape: tuple[int, ...]) -> torch.Tensor:
        if self.cdf is None:
            return torch.randint(1, self.n_items + 1, shape, generator=self.generator)
        u = torch.rand(shape, generator=self.generator, dtype=torch.float64) * self.cdf[-1]
        return torch.searchsorted(self.cdf, u.reshape(-1)).clamp_(max=self.n_items - 1).reshape(shape) + 1

    def logq(self, ids: torch.Tensor) -> torch.Tensor:
        return self.logq_table.to(ids.device)[ids]


def _negative_scores(h: torch.Tensor, neg: torch.Tensor, tau: float) -> torch.Tensor:
    """(M, K) fp32 scores of each target's hidden state against shared (K, d) or per-target (M, K, d) negatives.
    Computed in fp32 whatever autocast says, as the positive scores are (an elementwise product summed in fp32):
    a bf16 matmul would round the negatives' logits (~3 significant digits) and not the target's."""
    h, neg = h.float(), neg.float()
    with torch.autocast(h.device.type, enabled=False):
        if neg.dim() == 2:
            return h @ neg.T / tau
        return torch.einsum("md,mkd->mk", h, neg) / tau


def _accidental_hits(targets: torch.Tensor, neg_ids: torch.Tensor) -> torch.Tensor:
    """(M, K) True where a negative is the target itself."""
    return neg_ids == targets[:, None] if neg_ids.dim() == 2 else neg_ids[None, :] == targets[:, None]


def full_softmax(h: torch.Tensor, targets: torch.Tensor, items: torch.Tensor, tau: float) -> torch.Tensor:
    """Cross-entropy over the whole catalog; items (n_items + 1, d) with row 0 = padding (excluded)."""
    return F.cross_entropy(h @ items[1:].T / tau, targets - 1)


def sampled_softmax(
    h: torch.Tensor,
    targets: torch.Tensor,
    pos: torch.Tensor,
    neg_ids: torch.Tensor,
    neg: torch.Tensor,
    tau: float,
    sampler: NegativeSampler,
) -> torch.Tensor:
    """Softmax over [target, K negatives] with logQ correction (s - log q) and accidental hits masked."""
    s_pos = (h.float() * pos.float()).sum(-1) / tau - sampler.logq(targets)
    s_neg = _negative_scores(h, neg, tau) - sampler.logq(neg_ids).expand(len(h), -1)
    s_neg = s_neg.masked_fill(_accidental_hits(targets, neg_ids), float("-inf"))
    logits = torch.cat([s_pos[:, None], s_neg], dim=1)
    return -torch.log_softmax(logits, dim=1)[:, 0].mean()


def gbce_beta(n_negatives: int, n_items: int, t: float) -> float:
    """gSASRec's positive-score exponent: beta = alpha (t (1 - 1/alpha) + 1/alpha), alpha = K / (n_items - 1)."""
    alpha = n_negatives / (n_items - 1)
    return alpha * (t * (1 - 1 / alpha) + 1 / alpha)


def binary(
    h: torch.Tensor,
    targets: torch.Tensor,
    pos: torch.Tensor,
    neg_ids: torch.Tensor,
    neg: torch.Tensor,
    tau: float,
    beta: float = 1.0,
) -> torch.Tensor:
    """-beta log sigma(s+) - sum_k log(1 - sigma(s-_k)), accidental hits left out. beta = 1 is SASRec's BCE
    (with K = 1); beta from gbce_beta is gSASRec's gBCE."""
    s_pos = (h.float() * pos.float()).sum(-1) / tau
    s_neg = _negative_scores(h, neg, tau)
    neg_loss = (F.softplus(s_neg) * ~_accidental_hits(targets, neg_ids)).sum(1)
    return (-beta * F.logsigmoid(s_pos) + neg_loss).mean()


def softmax_loss(h, targets, embed, cfg, sampler) -> torch.Tensor:
    """Sampled softmax over [target, K negatives] (logQ-corrected); `embed` maps ids to item vectors."""
    neg_ids = sampler.sample(
        (cfg["loss.negatives"],) if cfg["loss.shared_negatives"] else (len(h), cfg["loss.negatives"])
    ).to(h.device)
    return sampled_softmax(h, targets, embed(targets), neg_ids, embed(neg_ids), cfg["model.tau"], sampler)


def bce_loss(h, targets, embed, cfg, sampler, beta: float = 1.0) -> torch.Tensor:
    """SASRec's BCE with sampled negatives (`beta` weights the positive term)."""
    neg_ids = sampler.sample(
        (cfg["loss.negatives"],) if cfg["loss.shared_negatives"] else (len(h), cfg["loss.negatives"])
    ).to(h.device)
    return binary(h, targets, embed(targets), neg_ids, embed(neg_ids), cfg["model.tau"], beta)


def gbce_loss(h, targets, embed, cfg, sampler) -> torch.Tensor:
    """gSASRec's gBCE: BCE with the positive term raised to gbce_beta."""
    return bce_loss(
        h, targets, embed, cfg, sampler, gbce_beta(cfg["loss.negatives"], sampler.n_items, cfg["loss.gbce_t"])
    )


def training_loss(
    model, h: torch.Tensor, targets: torch.Tensor, items: torch.Tensor | None, cfg: dict, sampler: NegativeSampler
) -> torch.Tensor:
    """The configured loss (`loss.kind`, registered in harness/core/registry.py) for hidden states h (M, d) at
    targets (M,); K = 'full' is the softmax over the catalog. `items` (n_items + 1, d) are the catalog's vectors
    when the step embedded the whole catalog, else None (the extractor embeds directly)."""
    if cfg["loss.negatives"] == "full":
        return full_softmax(h, targets, items, model.tau)
    embed = (lambda ids: items[ids]) if items is not None else model.extractor
    return LOSSES.get(cfg["loss.kind"])(h, targets, embed, cfg, sampler)
