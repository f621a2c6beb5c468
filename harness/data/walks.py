"""Synthetic user histories by second-order biased random walks (node2vec) on the item co-occurrence graph of
the real training split (the user-interaction-history layer of arXiv 2602.07298), as training data.

Graph: an undirected edge between two items for every pair at most `walks.window` positions apart in a user's
training part, weighted by how often that happens. A walk that came from t and stands at v moves to a neighbour
x with probability proportional to w(v, x) * a(t, x): a = 1/p if x = t (return), 1 if x is a neighbour of t,
1/q otherwise (outward). Walks are sampled for all walkers at once: x from w(v, .) by inverse CDF on the CSR
cumulative weights, accepted with probability a / max(a) (exact rejection sampling), rejected walkers redrawn.
Starts follow the training item frequencies and lengths the real training lengths; evaluation never sees walks.
"""

from __future__ import annotations

import numpy as np

from harness.data.prepare import Dataset, positions


class CooccurrenceGraph:
    """CSR adjacency over item ids 1..n_items (0 unused): indptr (n + 2,), indices, weights, and the sorted edge
    keys u * (n + 1) + v for membership tests."""

    def __init__(self, flat: np.ndarray, starts: np.ndarray, stops: np.ndarray, n_items: int, window: int):
        pos, part = positions(starts, stops)
        src, dst = [], []
        for gap in range(1, window + 1):
            same = part[:-gap] == part[gap:]  # consecutive positions of one part: the gap-th next is pos + gap
            a, b = flat[pos[:-gap][same]], flat[pos[gap:][same]]
            keep = a != b
            src += [a[keep], b[keep]]
            dst += [b[keep], a[keep]]
        n = n_items + 1
        keys, counts = np.unique(np.concatenate(src) * n + np.concatenate(dst), return_counts=True)
        self.n, self.keys = n, keys
        self.indices, self.weights = keys % n, counts.astype(float)
        self.indptr = np.concatenate([[0], np.cumsum(np.bincount(keys // n, minlength=n))])
        self.cumulative = np.cumsum(self.weights)

    def degree(self, v: np.ndarray) -> np.ndarray:
        return self.indptr[v + 1] - self.indptr[v]

    def has_edge(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        key = u * self.n + v
        at = np.minimum(np.searchsorted(self.keys, key), len(self.keys) - 1)
        return self.keys[at] == key

    def neighbour(self, v: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One neighbour of each v (all with degree >= 1) with probability proportional to the edge weight."""
        lo = np.where(self.indptr[v] > 0, self.cumulative[self.indptr[v] - 1], 0.0)
        hi = self.cumulative[self.indptr[v + 1] - 1]
        at = np.searchsorted(self.cumulative, lo + rng.random(len(v)) * (hi - lo), side="right")
        return self.indices[np.minimum(at, self.indptr[v + 1] - 1)]


def step(
    graph: CooccurrenceGraph, prev: np.ndarray, cur: np.ndarray, p: float, q: float, rng: np.random.Generator
) -> np.ndarray:
    """The node2vec move of every walker at `cur` that came from `prev` (prev = 0: first move, first order)."""
    top = max(1 / p, 1.0, 1 / q)
    out = np.empty_like(cur)
    todo = np.arange(len(cur))
    while todo.size:
        x = graph.neighbour(cur[todo], rng)
        t = prev[todo]
        a = np.where(t == 0, top, np.where(x == t, 1 / p, np.where(graph.has_edge(t, x), 1.0, 1 / q)))
        ok = rng.random(todo.size) * top < a
        out[todo[ok]] = x[ok]
        todo = todo[~ok]
    return out


def walks(
    graph: CooccurrenceGraph, starts: np.ndarray, lengths: np.ndarray, p: float, q: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Walks from `starts` (item ids) of the given lengths -> (flat item ids, offsets (n_walks + 1,)). A walk
    ends early at an item with no neighbour."""
    n = len(starts)
    seq = np.zeros((n, int(lengths.max()) if n else 0), np.int64)
    seq[:, 0] = starts
    prev = np.zeros(n, np.int64)
    alive = graph.degree(starts) > 0
    length = np.ones(n, np.int64)
    for t in range(1, seq.shape[1]):
        go = np.flatnonzero(alive & (lengths > t))
        if go.size == 0:
            break
        nxt = step(graph, prev[go], seq[go, t - 1], p, q, rng)
        seq[go, t] = nxt
        prev[go] = seq[go, t - 1]
        length[go] = t + 1
    mask = np.arange(seq.shape[1])[None, :] < length[:, None]
    return seq[mask], np.concatenate([[0], np.cumsum(length)])


def training_sequences(dataset: Dataset, cfg: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The flat item array and the training parts [starts, stops) that training draws from under walks.mode:
    none (the real training parts), only (walks alone), add (real parts, then walks). Walks are whole training
    sequences (nothing held out of them)."""
    real_starts, real_stops = dataset.training_parts()
    mode = cfg["walks.mode"]
    if mode == "none":
        return dataset.flat, real_starts, real_stops
    rng = np.random.default_rng(cfg["walks.seed"])
    graph = CooccurrenceGraph(dataset.flat, real_starts, real_stops, dataset.n_items, cfg["walks.window"])
    train_items = dataset.flat[positions(real_starts, real_stops)[0]]
    n_walks = cfg["walks.users"] or dataset.n_users
    first = rng.choice(train_items, n_walks)
    lengths = rng.choice(np.maximum(real_stops - real_starts, 2), n_walks)
    flat_w, offsets_w = walks(graph, first, lengths, cfg["walks.p"], cfg["walks.q"], rng)
    if mode == "only":
        return flat_w, offsets_w[:-1], offsets_w[1:]
    flat = np.concatenate([dataset.flat, flat_w])
    base = len(dataset.flat)
    return (
        flat,
        np.concatenate([real_starts, base + offsets_w[:-1]]),
        np.concatenate([real_stops, base + offsets_w[1:]]),
    )
