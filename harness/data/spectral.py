"""The spectral synthetic world (`data.synthetic.world: spectral`): a next-item law whose capacity spectrum is a
planted power law, so the loss of a model that scores items by <h, e_i> (e_i in R^d) keeps falling with its width d,
and the loss of the best rank-d model is known without training.

1. Catalog. A vocabulary of words, each with a latent vector phi_w ~ N(0, diag(lambda)) in R^D (D = latent_dim),
   lambda_k = k^-nu (nu = `spectrum`). The words and the brand names are whole words of the MiniLM word-piece
   vocabulary (one token each), so the `tokens` extractor's pooled title vector is a free sum over words and can
   represent v_i exactly (multi-piece pseudo-words would tie words sharing a piece). An item's title is TITLE_WORDS
   distinct words; its latent v_i is the sum of its words' vectors, a linear function of its text; the word vectors
   (i.i.d. Gaussian, then one linear map) are such that the catalog's second moment sum_i v_i v_i^T / n_items is
   exactly diag(lambda) / sum(lambda) (not only in expectation: a catalog of 1,000 items in D = 256 dimensions would
   otherwise spread its sample spectrum far from the planted one), E|v|^2 = 1 (so `sharpness` sets the logits' scale
   whatever nu and D).
   Its brand (in its text) sets a popularity bias b_i = -popularity ln(rank of the brand).
2. Users. After history x_1..x_t the taste is u_t = normalise(sum_j (1 - drift)^(t - j) v_{x_j}), and
   p(next = i | history) = softmax_i(sharpness <u_t, v_i> + b_i); the first item is drawn from softmax(b).
   Every term is a function of the items' text and the observed history, so the exact oracle is also the best any
   model can reach: the floor E of a law in ln(perplexity) is ln(oracle perplexity).
3. Capacity oracle. The logit matrix has rank D with variance ~lambda_k^2 in factor k; the best rank-d model keeps
   its top d singular directions with its best temperature t_d (`capacity`). At the
   validation and test positions the generator records, per user, the exact expected cross-entropy H(p, q_d)
   (nats, an expectation over p, not a sample) for each d of CAPACITY_WIDTHS up to D, and the entropy H(p):
   columns `<split>_capacity_<d>_ce` and `<split>_exact_ce`. The planted tail sum_{k>d} lambda_k^2 goes as
   d^-(2 nu - 1); the gap H(p, q_d) - H(p) in nats is measured, not proportional to it (quickstart: d^-1.15).
Draws are exact (the inverse CDF of the dense next-item law, `categorical_draw`); the oracle is the existing one (log p
of the true item and the
expected ranking metrics of sorting by p).
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import torch
from scipy.optimize import minimize_scalar

from harness.core.errors import UserError
from harness.data.synthetic import CATEGORIES, ORACLE_COLUMNS, World, frames, record_oracle, sequences
from harness.data.text import st_model_path

VERSION = 3  # in the dataset cache key
TITLE_WORDS = 4
VOCABULARY = 0.25  # words per item in the catalog: each word is in ~TITLE_WORDS / VOCABULARY = 16 titles, so a
# model learns n_items / 4 word vectors (data-cheaper than one per item); the catalog's rank is min(words, D)
CAPACITY_WIDTHS = (4, 8, 12, 16, 24, 32, 40, 48, 64, 96, 128, 192, 256, 384, 512)
TEMPERATURE_ROWS = 4000  # rows the best temperature of each width is fitted on
CHUNK_ROWS = 8192  # rows of the capacity oracle computed at a time (memory: rows x items doubles)


def spectrum(dim: int, nu: float) -> np.ndarray:
    """Factor variances lambda_k = k^-nu, k = 1..dim."""
    return np.arange(1, dim + 1, dtype=float) ** -nu


def single_token_words() -> list[str]:
    """The whole lower-case words (3-10 letters) of the MiniLM word-piece vocabulary, in vocabulary order."""
    with open(f"{st_model_path()}/vocab.txt", encoding="utf-8") as f:
        return [w for w in f.read().split("\n") if re.fullmatch(r"[a-z]{3,10}", w)]


def _words(rng: np.random.Generator, n_words: int, n_brands: int) -> tuple[list[str], list[str]]:
    """(n_words title words, n_brands brand names), distinct single-token words drawn at random."""
    pool = single_token_words()
    if n_words + n_brands > len(pool):
        raise UserError(
            f"data.synthetic.n_items: the spectral world needs {n_words + n_brands} distinct words "
            f"({VOCABULARY} per item + brands), the MiniLM vocabulary has {len(pool)}"
        )
    chosen = rng.choice(len(pool), n_words + n_brands, replace=False)
    return [pool[i] for i in chosen[:n_words]], [pool[i] for i in chosen[n_words:]]


def catalog(n_items: int, latent_dim: int, nu: float, popularity: float, rng: np.random.Generator):
    """(items DataFrame[item, title, brand, category], v (n_items, D), bias (n_items,))."""
    n_words = max(4 * TITLE_WORDS, int(VOCABULARY * n_items))
    n_brand = int(np.clip(n_items // 10, 2, 400))
    words, brands = _words(rng, n_words, n_brand)
    if min(n_words, n_items // 2) < latent_dim:
        raise UserError(
            f"data.synthetic.latent_dim: the spectral world needs latent_dim <= n_items / 2 and <= its "
            f"{n_words} words (n_items x {VOCABULARY}); got {latent_dim} with n_items = {n_items}"
        )
    phi = rng.normal(0.0, 1.0, (n_words, latent_dim))
    title = np.stack([rng.choice(n_words, TITLE_WORDS, replace=False) for _ in range(n_items)])
    raw = phi[title].sum(1)
    values, vectors = np.linalg.eigh(raw.T @ raw / n_items)
    lam = spectrum(latent_dim, nu)
    # word vectors mapped so that the catalog's second moment is exactly diag(lambda) / sum(lambda): E|v|^2 = 1
    whiten = (vectors / np.sqrt(values)) @ vectors.T * np.sqrt(lam / lam.sum())
    v = raw @ whiten
    item_brand = rng.integers(0, n_brand, n_items)
    bias = -popularity * np.log(rng.permutation(n_brand)[item_brand] + 1.0)
    category = rng.integers(0, len(CATEGORIES), n_items)
    items = pd.DataFrame(
        {
            "item": np.arange(1, n_items + 1),
            "title": [" ".join(words[w] for w in row) for row in title],
            "brand": [brands[b] for b in item_brand],
            "category": [CATEGORIES[c] for c in category],
        }
    )
    return items, v, bias


def categorical_draw(logits: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """One exact draw per row from softmax(logits) (A, I) by inverting its CDF (cumulated in float64): one uniform
    per row, not one per item as Gumbel-max needs (2.7x faster at 1,000 items). Returns (A,) indices."""
    cdf = torch.cumsum(torch.softmax(logits, dim=1).double(), dim=1)
    u = torch.rand(len(logits), 1, generator=gen, dtype=torch.float64) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp(max=logits.shape[1] - 1).squeeze(1)


def _cross_entropy(p: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """H(p, softmax(logits)) per row, nats."""
    return -(p * torch.log_softmax(logits, dim=1)).sum(1)


def capacity(
    u: np.ndarray, v: np.ndarray, bias: np.ndarray, sharpness: float, widths: tuple[int, ...] = CAPACITY_WIDTHS
) -> dict[str, np.ndarray]:
    """Per row of tastes u (R, D): the entropy H(p) ('exact') and, for each width d <= D, the cross-entropy of the
    best rank-d model ('<d>'), nats. The rank-d model keeps the items' mean score, the bias b and the top d principal
    directions (in item space) of the scores U V^T over the rows, V Cov(u) V^T (Eckart-Young: the best rank-d
    approximation of the centred logits in expectation over users; closer than the first d factors when the
    catalog's sample covariance is not exactly diag(lambda)), with its best temperature fitted on the first
    TEMPERATURE_ROWS rows."""
    U, V, b = (torch.tensor(x, dtype=torch.float64) for x in (u, v, bias))
    centred = U - U.mean(0)
    mean = U.mean(0) @ V.T  # the items' mean score over the rows
    factor = torch.linalg.cholesky(centred.T @ centred / len(U) + 1e-12 * torch.eye(V.shape[1], dtype=U.dtype))
    directions = torch.linalg.svd(V @ factor, full_matrices=False).U  # (I, D): eigenvectors of V Cov(u) V^T
    kept_widths = [w for w in widths if w <= V.shape[1]]

    def rank_d(rows: slice, d: int) -> torch.Tensor:
        top = directions[:, :d]
        return mean + centred[rows] @ (V.T @ top) @ top.T

    def law(rows: slice) -> torch.Tensor:
        return torch.softmax(sharpness * U[rows] @ V.T + b, dim=1)

    fit_rows = slice(0, min(len(U), TEMPERATURE_ROWS))
    p_fit, temperature = law(fit_rows), {}
    for d in kept_widths:
        kept = rank_d(fit_rows, d)
        temperature[d] = minimize_scalar(
            lambda t: float(_cross_entropy(p_fit, t * kept + b).mean()),
            bounds=(0.0, 4 * sharpness),
            method="bounded",
            options={"xatol": 1e-4 * sharpness},
        ).x
    out = {name: np.zeros(len(U)) for name in ["exact", *map(str, kept_widths)]}
    for lo in range(0, len(U), CHUNK_ROWS):
        rows = slice(lo, min(lo + CHUNK_ROWS, len(U)))
        p = law(rows)
        out["exact"][rows] = (-(p * torch.log(p.clamp(min=1e-300))).sum(1)).numpy()
        for d in kept_widths:
            out[str(d)][rows] = _cross_entropy(p, temperature[d] * rank_d(rows, d) + b).numpy()
    return out


def generate(
    n_users: int,
    n_items: int,
    mean_length: int,
    max_length: int,
    latent_dim: int,
    drift: float,
    sharpness: float,
    popularity: float,
    spectrum: float,
    seed: int,
    chunk_users: int = 4096,
):
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
            nxt = categorical_draw(logits, gen)
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


WORLD = World(generate=generate, key={"world": "spectral", "generator": VERSION}, parameters=("spectrum",))
