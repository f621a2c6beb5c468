"""The embedded synthetic world: a seeded, layered generator with a known next-item distribution.

Layers:
1. Catalog. Each item belongs to a category and a brand (brands live inside one category) and carries 2
   attribute words. Its latent vector (R^latent_dim) = category centroid + brand offset + mean of its attribute
   words' vectors + item noise. Item text (title = attributes + category noun, brand, category) is made of the
   same words, so the text carries signal about the latent vector; the item noise is what text cannot explain.
2. Users. Taste u_0 ~ N(0, I); after consuming item i, u <- (1 - drift) u + drift v_i (taste drifts).
3. Sequences. p(next = i | u) = softmax_i(sharpness <u, v_i> / sqrt(latent_dim) + pop_i), pop_i a Zipf bias.

Because p is known, the generator records per user, at the validation and test positions (second-to-last and
last item), log p(true item) and the expected NDCG@5/@10, HR@10 and MRR of ranking the catalog by p: the oracle
that a model (which never sees u_0) can only approach.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

CATEGORIES = [
    "lamp", "chair", "jacket", "sneaker", "novel", "guitar", "camera", "blender", "tent", "watch", "backpack",
    "headphones", "kettle", "sofa", "bicycle", "perfume", "notebook", "puzzle", "drone", "scarf", "helmet",
    "candle", "speaker", "telescope", "teapot", "skateboard", "umbrella", "wallet", "keyboard", "mirror",
]
ATTRIBUTES = [
    "red", "blue", "green", "black", "white", "golden", "silver", "wooden", "leather", "cotton", "steel",
    "vintage", "modern", "rustic", "elegant", "compact", "portable", "wireless", "classic", "retro", "luxury",
    "budget", "premium", "handmade", "organic", "waterproof", "lightweight", "heavy", "soft", "bright", "quiet",
    "fast", "smart", "folding", "adjustable", "ergonomic", "minimalist", "colorful", "striped", "floral",
    "glass", "ceramic", "bamboo", "wool", "linen", "velvet", "matte", "glossy", "tiny", "large", "slim", "cozy",
    "sporty", "formal", "casual", "outdoor", "indoor", "travel", "kids", "professional",
]
_SYLLABLES = ["ka", "lo", "mi", "zen", "tor", "vex", "ra", "nu", "pi", "sol", "dra", "quo", "bel", "fin", "gar",
              "hex", "jo", "kri", "lum", "mor", "nix", "ost", "pra", "rix", "sta", "tek", "ul", "vor", "wen", "yo"]

ORACLE_COLUMNS = ["valid_logp", "test_logp", "valid_ndcg@5", "valid_ndcg@10", "valid_hr@10", "valid_mrr",
                  "test_ndcg@5", "test_ndcg@10", "test_hr@10", "test_mrr"]


def _brand_names(rng: np.random.Generator, n: int) -> list[str]:
    names: set[str] = set()
    while len(names) < n:
        k = int(rng.integers(2, 4))
        names.add("".join(rng.choice(_SYLLABLES, size=k)).capitalize())
    return sorted(names)


def _expected_metrics(p: torch.Tensor) -> dict[str, torch.Tensor]:
    """Expected ranking metrics of the Bayes ranking (sort by p) for one relevant item drawn from p. p: (B, I)."""
    ps, _ = torch.sort(p, dim=1, descending=True)
    ranks = torch.arange(1, p.shape[1] + 1, dtype=p.dtype)
    disc = 1.0 / torch.log2(ranks + 1)
    return {
        "ndcg@5": (ps[:, :5] * disc[:5]).sum(1),
        "ndcg@10": (ps[:, :10] * disc[:10]).sum(1),
        "hr@10": ps[:, :10].sum(1),
        "mrr": (ps / ranks).sum(1),
    }


def generate(n_users: int, n_items: int, mean_length: int, max_length: int, latent_dim: int, drift: float,
             sharpness: float, popularity: float, seed: int, chunk_users: int = 4096):
    """Generate the world. Returns (interactions[user, item, timestamp], items[item, title, brand, category],
    oracle[user, *ORACLE_COLUMNS]) as DataFrames; ids start at 1."""
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    d = latent_dim
    n_cat = int(np.clip(round(math.sqrt(n_items) / 2), 2, len(CATEGORIES)))
    n_brand = int(np.clip(n_items // 10, n_cat, 400))
    cat_vec = rng.normal(0, 1.0, (n_cat, d))
    brand_cat = np.concatenate([np.arange(n_cat), rng.integers(0, n_cat, n_brand - n_cat)])
    brand_vec = rng.normal(0, 0.5, (n_brand, d))
    attr_vec = rng.normal(0, 0.7, (len(ATTRIBUTES), d))
    brands = _brand_names(rng, n_brand)

    item_brand = rng.integers(0, n_brand, n_items)
    item_cat = brand_cat[item_brand]
    item_attr = np.stack([rng.choice(len(ATTRIBUTES), 2, replace=False) for _ in range(n_items)])
    item_vec = (cat_vec[item_cat] + brand_vec[item_brand] + attr_vec[item_attr].mean(1)
                + rng.normal(0, 0.3, (n_items, d)))
    pop = -popularity * np.log(rng.permutation(n_items) + 1.0)
    items = pd.DataFrame({
        "item": np.arange(1, n_items + 1),
        "title": [f"{ATTRIBUTES[a]} {ATTRIBUTES[b]} {CATEGORIES[c]} {rng.integers(100, 999)}"
                  for (a, b), c in zip(item_attr, item_cat)],
        "brand": [brands[b] for b in item_brand],
        "category": [CATEGORIES[c] for c in item_cat],
    })

    lengths = np.minimum(4 + rng.geometric(1.0 / max(mean_length - 4, 1), n_users), max_length)
    V = torch.tensor(item_vec, dtype=torch.float32)
    bias = torch.tensor(pop, dtype=torch.float32)
    scale = sharpness / math.sqrt(d)
    users, seq_items, steps = [], [], []
    oracle = np.zeros((n_users, len(ORACLE_COLUMNS)))
    for lo in range(0, n_users, chunk_users):
        hi = min(lo + chunk_users, n_users)
        L = torch.tensor(lengths[lo:hi])
        u = torch.tensor(rng.normal(0, 1.0, (hi - lo, d)), dtype=torch.float32)
        seq = torch.zeros(hi - lo, int(L.max()), dtype=torch.long)
        for t in range(int(L.max())):
            active = torch.nonzero(L > t).squeeze(1)
            logits = scale * (u[active] @ V.T) + bias
            w = torch.exp(logits - logits.max(dim=1, keepdim=True).values)
            cdf = torch.cumsum(w, dim=1)
            draw = torch.rand(len(active), 1, generator=gen) * cdf[:, -1:]
            nxt = torch.searchsorted(cdf, draw).squeeze(1).clamp_(max=n_items - 1)
            seq[active, t] = nxt
            for split, offset in (("valid", 2), ("test", 1)):
                at = torch.nonzero(L[active] - offset == t).squeeze(1)
                if at.numel():
                    rows = (active[at] + lo).numpy()
                    logp = torch.log_softmax(logits[at], dim=1).gather(1, nxt[at, None]).squeeze(1)
                    oracle[rows, ORACLE_COLUMNS.index(f"{split}_logp")] = logp.numpy()
                    p = w[at] / cdf[at, -1:]
                    for name, value in _expected_metrics(p).items():
                        oracle[rows, ORACLE_COLUMNS.index(f"{split}_{name}")] = value.numpy()
            u[active] = (1 - drift) * u[active] + drift * V[nxt]
        mask = torch.arange(seq.shape[1])[None, :] < L[:, None]
        users.append((torch.nonzero(mask)[:, 0] + lo + 1).numpy())
        steps.append(torch.nonzero(mask)[:, 1].numpy())
        seq_items.append((seq[mask] + 1).numpy())
    interactions = pd.DataFrame({"user": np.concatenate(users), "item": np.concatenate(seq_items),
                                 "timestamp": np.concatenate(steps)})
    oracle_df = pd.DataFrame(oracle, columns=ORACLE_COLUMNS)
    oracle_df.insert(0, "user", np.arange(1, n_users + 1))
    return interactions, items, oracle_df
