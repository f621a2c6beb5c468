"""The spectral synthetic world (`data.synthetic.world: spectral`): a next-item law whose capacity spectrum is a
planted power law, so the loss of a model that scores items by <h, e_i> (e_i in R^d) keeps falling with its width d,
and the loss of the best rank-d model is known without training.

1. Catalog. A vocabulary of pseudo-words, each with a latent vector phi_w ~ N(0, diag(lambda)) in R^D
   (D = latent_dim), lambda_k = k^-nu (nu = `spectrum`). An item's title is TITLE_WORDS distinct words; its
   latent v_i = the sum of its words' vectors / sqrt(TITLE_WORDS sum(lambda)): a linear function of its text,
   Cov(v) proportional to diag(lambda), E|v|^2 = 1 (so `sharpness` sets the logits' scale whatever nu and D).
   Its brand (in its text) sets a popularity bias b_i = -popularity ln(rank of the brand).
2. Users. After history x_1..x_t the taste is u_t = normalise(sum_j (1 - drift)^(t - j) v_{x_j}), and
   p(next = i | history) = softmax_i(sharpness <u_t, v_i> + b_i); the first item is drawn from softmax(b).
   Every term is a function of the items' text and the observed history, so the exact oracle is also the best any
   model can reach: the floor E of a law in ln(perplexity) is ln(oracle perplexity).
3. Capacity oracle. The logit matrix has rank D with variance lambda_k^2 in factor k; the best rank-d model keeps
   the top d factors of u and v with its best temperature t_d: q_d(i) = softmax_i(t_d <u_{:d}, v_{i,:d}> + b_i). At the
   validation and test positions the generator records, per user, the exact expected cross-entropy H(p, q_d)
   (nats, an expectation over p, not a sample) for each d of CAPACITY_WIDTHS up to D, and the entropy H(p):
   columns `<split>_capacity_<d>_ce` and `<split>_exact_ce`. Predicted: H(p, q_d) - H(p) ~ d^-(2 nu - 1).
Draws are exact (Gumbel-max over the dense logits); the oracle is the existing one (log p of the true item and the
expected ranking metrics of sorting by p).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from harness.data.synthetic import (CATEGORIES, ORACLE_COLUMNS, SYLLABLES, brand_names, frames, record_oracle,
                                    sequences)

VERSION = 1  # in the dataset cache key
TITLE_WORDS = 4
VOCABULARY = 0.6  # words per item in the catalog: each word is in ~TITLE_WORDS / VOCABULARY titles
CAPACITY_WIDTHS = (4, 8, 12, 16, 24, 32, 40, 48, 64, 96, 128, 192, 256, 384, 512)
TEMPERATURE_ROWS = 4000  # rows the best temperature of each width is fitted on


def spectrum(dim: int, nu: float) -> np.ndarray:
    """Factor variances lambda_k = k^-nu, k = 1..dim."""
    return np.arange(1, dim + 1, dtype=float) ** -nu


def _words(rng: np.random.Generator, n: int) -> list[str]:
    """n distinct lower-case pseudo-words of 2-3 syllables."""
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES, size=int(rng.integers(2, 4)))))
    return sorted(words)


def catalog(n_items: int, latent_dim: int, nu: float, popularity: float, rng: np.random.Generator):
    """(items DataFrame[item, title, brand, category], v (n_items, D), bias (n_items,))."""
    n_words = max(4 * TITLE_WORDS, int(VOCABULARY * n_items))
    words = _words(rng, n_words)
    phi = rng.normal(0.0, 1.0, (n_words, latent_dim)) * np.sqrt(spectrum(latent_dim, nu))
    title = np.stack([rng.choice(n_words, TITLE_WORDS, replace=False) for _ in range(n_items)])
    v = phi[title].sum(1) / math.sqrt(TITLE_WORDS * spectrum(latent_dim, nu).sum())  # E |v|^2 = 1
    n_brand = int(np.clip(n_items // 10, 2, 400))
    brands = brand_names(rng, n_brand)
    item_brand = rng.integers(0, n_brand, n_items)
    bias = -popularity * np.log(rng.permutation(n_brand)[item_brand] + 1.0)
    category = rng.integers(0, len(CATEGORIES), n_items)
    items = pd.DataFrame({"item": np.arange(1, n_items + 1),
                          "title": [" ".join(words[w] for w in row) for row in title],
                          "brand": [brands[b] for b in item_brand],
                          "category": [CATEGORIES[c] for c in category]})
    return items, v, bias


def gumbel_draw(logits: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One exact draw per row from softmax(logits) (A, I): argmax of logits + Gumbel noise. Returns (A,) indices."""
    gumbel = -torch.log(-torch.log(torch.rand(logits.shape, generator=gen).clamp(min=1e-12)))
    return torch.argmax(logits + gumbel, dim=1)


def _cross_entropy(p: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """H(p, softmax(logits)) per row, nats."""
    return -(p * torch.log_softmax(logits, dim=1)).sum(1)


def capacity(u: np.ndarray, v: np.ndarray, bias: np.ndarray, sharpness: float,
             widths: tuple[int, ...] = CAPACITY_WIDTHS) -> dict[str, np.ndarray]:
    """Per row of tastes u (R, D): the entropy H(p) ('exact') and, for each width d <= D, the cross-entropy of the
    best rank-d model (top d factors, temperature fitted on the first TEMPERATURE_ROWS rows) ('<d>'), nats."""
    from scipy.optimize import minimize_scalar

    U, V, b = (torch.tensor(x, dtype=torch.float64) for x in (u, v, bias))
    p = torch.softmax(sharpness * U @ V.T + b, dim=1)
    out = {"exact": -(p * torch.log(p.clamp(min=1e-300))).sum(1).numpy()}
    fit_rows = slice(0, min(len(U), TEMPERATURE_ROWS))
    for d in (w for w in widths if w <= V.shape[1]):
        scores = U[:, :d] @ V[:, :d].T

        def mean_ce(t: float, rows=fit_rows) -> float:
            return float(_cross_entropy(p[rows], t * scores[rows] + b).mean())

        t = minimize_scalar(mean_ce, bounds=(0.0, 4 * sharpness), method="bounded",
                            options={"xatol": 1e-4 * sharpness}).x
        out[str(d)] = _cross_entropy(p, t * scores + b).numpy()
    return out


def generate(n_users: int, n_items: int, mean_length: int, max_length: int, latent_dim: int, drift: float,
             sharpness: float, popularity: float, spectrum: float, seed: int, chunk_users: int = 4096):
    """Generate the world. Returns (interactions[user, item, timestamp], items[item, title, brand, category],
    oracle[user, *ORACLE_COLUMNS, <split>_exact_ce, <split>_capacity_<d>_ce]) as DataFrames; ids start at 1."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    items, item_vec, item_bias = catalog(n_items, latent_dim, spectrum, popularity, rng)
    V = torch.tensor(item_vec, dtype=torch.float32)
    bias = torch.tensor(item_bias, dtype=torch.float32)
    lengths = np.minimum(4 + rng.geometric(1.0 / max(mean_length - 4, 1), n_users), max_length)
    oracle = np.zeros((n_users, len(ORACLE_COLUMNS)))
    tastes = {split: np.zeros((n_users, latent_dim)) for split in ("valid", "test")}
    parts = []
    for lo in range(0, n_users, chunk_users):
        hi = min(lo + chunk_users, n_users)
        L = torch.tensor(lengths[lo:hi])
        summary = torch.zeros(hi - lo, latent_dim)  # sum_j (1 - drift)^(t - j) v_{x_j}
        seq = torch.zeros(hi - lo, int(L.max()), dtype=torch.long)
        for t in range(int(L.max())):
            active = torch.nonzero(L > t).squeeze(1)
            s = summary[active]
            u = s / s.norm(dim=1, keepdim=True).clamp(min=1e-12)  # 0 before the first item
            logits = sharpness * u @ V.T + bias
            nxt = gumbel_draw(logits, gen)
            seq[active, t] = nxt
            for split, offset in (("valid", 2), ("test", 1)):
                at = torch.nonzero(L[active] - offset == t).squeeze(1)
                if at.numel():
                    rows = (active[at] + lo).numpy()
                    record_oracle(oracle, rows, logits[at].double(), nxt[at], split)
                    tastes[split][rows] = u[at].numpy()
            summary[active] = (1 - drift) * s + V[nxt]
        parts.append(sequences(seq, L, lo))
    interactions, oracle_df = frames(parts, oracle)
    for split, u in tastes.items():
        for name, ce in capacity(u, item_vec, item_bias, sharpness).items():
            oracle_df[f"{split}_exact_ce" if name == "exact" else f"{split}_capacity_{name}_ce"] = ce
    return interactions, items, oracle_df
