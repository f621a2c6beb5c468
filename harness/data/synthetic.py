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

Draws are exact and cost O(brands), not O(items): with v_i = c_b + r_i (c_b the centre of item i's brand b),
the proposal q(i) ∝ exp(s <u, c_b> + s |u| R_b + pop_i), R_b = max |r_i| over the brand, bounds p(i) ∝
exp(s <u, v_i> + pop_i) from above (Cauchy-Schwarz), so a draw from q (a brand by its mass, then an item of the
brand by its popularity) accepted with probability exp(s (<u, r_i> - |u| R_b)) <= 1 is a draw from p. The oracle
positions are computed densely over the whole catalog.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

GENERATOR_VERSION = 4  # 2: rejection sampling (1: dense softmax draws); 4: candidates in rounds; in the cache key

CATEGORIES = [
    "lamp",
    "chair",
    "jacket",
    "sneaker",
    "novel",
    "guitar",
    "camera",
    "blender",
    "tent",
    "watch",
    "backpack",
    "headphones",
    "kettle",
    "sofa",
    "bicycle",
    "perfume",
    "notebook",
    "puzzle",
    "drone",
    "scarf",
    "helmet",
    "candle",
    "speaker",
    "telescope",
    "teapot",
    "skateboard",
    "umbrella",
    "wallet",
    "keyboard",
    "mirror",
]
ATTRIBUTES = [
    "red",
    "blue",
    "green",
    "black",
    "white",
    "golden",
    "silver",
    "wooden",
    "leather",
    "cotton",
    "steel",
    "vintage",
    "modern",
    "rustic",
    "elegant",
    "compact",
    "portable",
    "wireless",
    "classic",
    "retro",
    "luxury",
    "budget",
    "premium",
    "handmade",
    "organic",
    "waterproof",
    "lightweight",
    "heavy",
    "soft",
    "bright",
    "quiet",
    "fast",
    "smart",
    "folding",
    "adjustable",
    "ergonomic",
    "minimalist",
    "colorful",
    "striped",
    "floral",
    "glass",
    "ceramic",
    "bamboo",
    "wool",
    "linen",
    "velvet",
    "matte",
    "glossy",
    "tiny",
    "large",
    "slim",
    "cozy",
    "sporty",
    "formal",
    "casual",
    "outdoor",
    "indoor",
    "travel",
    "kids",
    "professional",
]
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "zen",
    "tor",
    "vex",
    "ra",
    "nu",
    "pi",
    "sol",
    "dra",
    "quo",
    "bel",
    "fin",
    "gar",
    "hex",
    "jo",
    "kri",
    "lum",
    "mor",
    "nix",
    "ost",
    "pra",
    "rix",
    "sta",
    "tek",
    "ul",
    "vor",
    "wen",
    "yo",
]

ORACLE_COLUMNS = [
    "valid_logp",
    "test_logp",
    "valid_ndcg@5",
    "valid_ndcg@10",
    "valid_hr@10",
    "valid_mrr",
    "test_ndcg@5",
    "test_ndcg@10",
    "test_hr@10",
    "test_mrr",
]


def brand_names(rng: np.random.Generator, n: int) -> list[str]:
    names: set[str] = set()
    while len(names) < n:
        k = int(rng.integers(2, 4))
        names.add("".join(rng.choice(SYLLABLES, size=k)).capitalize())
    return sorted(names)


def _expected_metrics(p: torch.Tensor) -> dict[str, torch.Tensor]:
    """Expected ranking metrics of the Bayes ranking (sort by p) for one relevant item drawn from p. p: (B, I)."""
    ps = torch.from_numpy(np.ascontiguousarray(np.sort(p.numpy(), axis=1)[:, ::-1]))  # numpy sorts ~1.5x faster
    ranks = torch.arange(1, p.shape[1] + 1, dtype=p.dtype)
    disc = 1.0 / torch.log2(ranks + 1)
    return {
        "ndcg@5": (ps[:, :5] * disc[:5]).sum(1),
        "ndcg@10": (ps[:, :10] * disc[:10]).sum(1),
        "hr@10": ps[:, :10].sum(1),
        "mrr": (ps / ranks).sum(1),
    }


def record_oracle(oracle: np.ndarray, rows: np.ndarray, logits: torch.Tensor, drawn: torch.Tensor, split: str) -> None:
    """The oracle at `split`'s position for users `rows` (0-based): log p of the drawn item under softmax(logits)
    (R, I) and the expected ranking metrics of sorting by p, into `oracle` (n_users, ORACLE_COLUMNS)."""
    logp = torch.log_softmax(logits, dim=1)
    oracle[rows, ORACLE_COLUMNS.index(f"{split}_logp")] = logp.gather(1, drawn[:, None]).squeeze(1).numpy()
    for name, value in _expected_metrics(logp.exp()).items():
        oracle[rows, ORACLE_COLUMNS.index(f"{split}_{name}")] = value.numpy()


def sequences(seq: torch.Tensor, lengths: torch.Tensor, first_user: int) -> tuple[np.ndarray, ...]:
    """A chunk's padded sequences (U, max length) of 0-based items -> (user, item, timestamp) arrays, 1-based ids;
    `first_user` is the chunk's first 0-based user."""
    mask = torch.arange(seq.shape[1])[None, :] < lengths[:, None]
    at = torch.nonzero(mask)
    return (at[:, 0] + first_user + 1).numpy(), (seq[mask] + 1).numpy(), at[:, 1].numpy()


def frames(parts: list[tuple[np.ndarray, ...]], oracle: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The chunks' (user, item, timestamp) arrays and the oracle array as the interactions and oracle frames."""
    interactions = pd.DataFrame(
        {name: np.concatenate([part[i] for part in parts]) for i, name in enumerate(("user", "item", "timestamp"))}
    )
    oracle_df = pd.DataFrame(oracle, columns=ORACLE_COLUMNS)
    oracle_df.insert(0, "user", np.arange(1, len(oracle) + 1))
    return interactions, oracle_df


class _Proposal:
    """Exact draws from p(i | u) ∝ exp(scale <u, v_i> + pop_i) by rejection from a per-brand bound (module doc)."""

    def __init__(
        self, item_vec: np.ndarray, pop: np.ndarray, item_brand: np.ndarray, brand_centre: np.ndarray, scale: float
    ):
        order = np.argsort(item_brand, kind="stable")  # items grouped by brand
        self.order = torch.from_numpy(order)
        residual = item_vec - brand_centre[item_brand]
        radius = np.zeros(len(brand_centre))
        np.maximum.at(radius, item_brand, np.linalg.norm(residual, axis=1))
        weight = np.exp(pop[order] - pop.max())  # popularity weights, grouped by brand
        self.cum = torch.from_numpy(np.concatenate([[0.0], np.cumsum(weight)]))
        counts = np.bincount(item_brand, minlength=len(brand_centre))
        self.start = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)[:-1]]))
        self.end = torch.from_numpy(np.cumsum(counts))
        mass = self.cum[self.end] - self.cum[self.start]
        self.log_mass = torch.log(mass.clamp(min=1e-300)).float()  # -inf-like for empty brands
        self.log_mass[torch.from_numpy(counts == 0)] = float("-inf")
        self.centre = torch.tensor(brand_centre, dtype=torch.float32)
        self.radius = torch.tensor(radius, dtype=torch.float32)
        self.residual = torch.tensor(residual, dtype=torch.float32)
        self.scale = scale

    def draw(self, u: torch.Tensor, gen: torch.Generator, tries: tuple[int, int] = (4, 32)) -> torch.Tensor:
        """One item index (0-based) per row of u (A, d). Each round proposes i.i.d. candidates for every
        unfinished row at once (tries[0] in the first round, tries[1] after it: the rows left are the ones whose
        proposals are rarely accepted) and keeps the first accepted one: the same law as one proposal at a time."""
        norm = u.norm(dim=1)
        log_q = self.scale * (u @ self.centre.T + norm[:, None] * self.radius) + self.log_mass  # (A, brands)
        cdf = torch.cumsum(torch.softmax(log_q.double(), dim=1), dim=1)
        out = torch.empty(len(u), dtype=torch.long)
        todo, n = torch.arange(len(u)), tries[0]
        while len(todo):
            k = len(todo)
            brand = torch.searchsorted(cdf[todo], torch.rand(k, n, generator=gen, dtype=torch.float64))
            brand = brand.clamp_(max=cdf.shape[1] - 1)  # (k, n)
            lo, hi = self.cum[self.start[brand]], self.cum[self.end[brand]]
            x = lo + torch.rand(k, n, generator=gen, dtype=torch.float64) * (hi - lo)
            pos = torch.searchsorted(self.cum, x.reshape(-1), right=True).reshape(k, n) - 1
            pos = torch.minimum(torch.maximum(pos, self.start[brand]), self.end[brand] - 1)
            item = self.order[pos]
            accept = self.scale * (
                torch.einsum("kd,ktd->kt", u[todo], self.residual[item]) - norm[todo, None] * self.radius[brand]
            )
            ok = torch.rand(k, n, generator=gen) < torch.exp(accept)
            hit = ok.any(dim=1)
            first = ok.to(torch.int8).argmax(dim=1)
            out[todo[hit]] = item[hit, first[hit]]
            todo, n = todo[~hit], tries[1]
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
    seed: int,
    chunk_users: int = 4096,
):
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
    brands = brand_names(rng, n_brand)

    item_brand = rng.integers(0, n_brand, n_items)
    item_cat = brand_cat[item_brand]
    item_attr = np.stack([rng.choice(len(ATTRIBUTES), 2, replace=False) for _ in range(n_items)])
    item_vec = (
        cat_vec[item_cat] + brand_vec[item_brand] + attr_vec[item_attr].mean(1) + rng.normal(0, 0.3, (n_items, d))
    )
    pop = -popularity * np.log(rng.permutation(n_items) + 1.0)
    items = pd.DataFrame(
        {
            "item": np.arange(1, n_items + 1),
            "title": [
                f"{ATTRIBUTES[a]} {ATTRIBUTES[b]} {CATEGORIES[c]} {rng.integers(100, 999)}"
                for (a, b), c in zip(item_attr, item_cat)
            ],
            "brand": [brands[b] for b in item_brand],
            "category": [CATEGORIES[c] for c in item_cat],
        }
    )

    lengths = np.minimum(4 + rng.geometric(1.0 / max(mean_length - 4, 1), n_users), max_length)
    V = torch.tensor(item_vec, dtype=torch.float32)
    bias = torch.tensor(pop, dtype=torch.float32)
    scale = sharpness / math.sqrt(d)
    proposal = _Proposal(item_vec, pop, item_brand, cat_vec[brand_cat] + brand_vec, scale)
    parts = []
    oracle = np.zeros((n_users, len(ORACLE_COLUMNS)))
    for lo in range(0, n_users, chunk_users):
        hi = min(lo + chunk_users, n_users)
        L = torch.tensor(lengths[lo:hi])
        u = torch.tensor(rng.normal(0, 1.0, (hi - lo, d)), dtype=torch.float32)
        seq = torch.zeros(hi - lo, int(L.max()), dtype=torch.long)
        for t in range(int(L.max())):
            active = torch.nonzero(L > t).squeeze(1)
            nxt = proposal.draw(u[active], gen)
            seq[active, t] = nxt
            for split, offset in (("valid", 2), ("test", 1)):
                at = torch.nonzero(L[active] - offset == t).squeeze(1)
                if at.numel():
                    record_oracle(
                        oracle, (active[at] + lo).numpy(), scale * (u[active[at]] @ V.T) + bias, nxt[at], split
                    )
            u[active] = (1 - drift) * u[active] + drift * V[nxt]
        parts.append(sequences(seq, L, lo))
    interactions, oracle_df = frames(parts, oracle)
    return interactions, items, oracle_df


@dataclass(frozen=True)
class World:
    """A synthetic world (`data.synthetic.world`, registered in WORLDS of harness/core/registry.py):
    generate(**parameters) -> (interactions, items, oracle), the generator parameters it takes besides the shared
    ones (harness/data/sources/synthetic.py PARAMETERS), and what identifies its code in the dataset cache key."""

    generate: Callable[..., tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]]
    key: dict = field(default_factory=dict)
    parameters: tuple[str, ...] = ()


WORLD = World(generate=generate, key={"generator": GENERATOR_VERSION})
