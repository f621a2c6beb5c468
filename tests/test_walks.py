"""node2vec walks on the co-occurrence graph: the graph, the exact second-order transition law, walks that only
use edges, and training on walks with evaluation on the real split."""

import math

import numpy as np
import pytest

from harness.data.walks import CooccurrenceGraph, step, walks
from harness.run import Run, train

# two users' training parts: 1 2 3 1 4 | 2 3 5 (items 1..6; 6 never appears)
FLAT = np.array([1, 2, 3, 1, 4, 9, 9, 2, 3, 5, 9, 9])
STARTS, STOPS = np.array([0, 7]), np.array([5, 10])


def edges(g):
    return {(int(k // g.n), int(k % g.n)): float(w) for k, w in zip(g.keys, g.weights)}


def test_graph_counts_cooccurrences_within_the_window():
    g = CooccurrenceGraph(FLAT, STARTS, STOPS, 6, window=1)
    e = edges(g)
    assert e[(2, 3)] == 2 and e[(3, 2)] == 2 and e[(1, 2)] == 1 and e[(3, 1)] == 1 and e[(1, 4)] == 1
    assert e[(3, 5)] == 1 and (9, 2) not in e and (4, 2) not in e  # nothing crosses users or held-out items
    assert g.degree(np.array([6]))[0] == 0
    wide = edges(CooccurrenceGraph(FLAT, STARTS, STOPS, 6, window=2))
    assert wide[(1, 3)] == 2 and wide[(2, 1)] == 2 and wide[(2, 5)] == 1 and (1, 1) not in wide


@pytest.mark.parametrize("p,q", [(1.0, 1.0), (0.25, 4.0), (4.0, 0.25)])
def test_one_step_follows_the_node2vec_law(p, q):
    g = CooccurrenceGraph(FLAT, STARTS, STOPS, 6, window=1)
    e = edges(g)
    prev, cur, size = 2, 3, 200_000  # from 2 to 3; neighbours of 3: 2 (return), 1 (a neighbour of 2), 5 (outward)
    x = step(g, np.full(size, prev), np.full(size, cur), p, q, np.random.default_rng(0))
    weight = {n: e[(cur, n)] * (1 / p if n == prev else 1.0 if (prev, n) in e else 1 / q) for (a, n) in e if a == cur}
    total = sum(weight.values())
    for n, w in weight.items():
        want = w / total
        assert abs(np.mean(x == n) - want) < 5 * math.sqrt(want * (1 - want) / size), (n, np.mean(x == n), want)


def test_walks_only_use_edges_and_stop_at_dead_ends():
    g = CooccurrenceGraph(FLAT, STARTS, STOPS, 6, window=1)
    flat, offsets = walks(g, np.array([1, 2, 6, 5]), np.array([30, 7, 5, 12]), 0.5, 2.0, np.random.default_rng(1))
    lengths = np.diff(offsets)
    assert lengths.tolist() == [30, 7, 1, 12]  # item 6 has no neighbour: its walk is just the start
    e = edges(g)
    for a, b in zip(offsets[:-1], offsets[1:]):
        walk = flat[a:b]
        assert all((int(u), int(v)) in e for u, v in zip(walk[:-1], walk[1:]))


@pytest.mark.parametrize("mode", ["only", "add"])
def test_training_on_walks_evaluates_on_the_real_split(tiny, tmp_path, mode):
    real = Run(tiny(), tmp_path)
    run = Run(tiny(walks__mode=mode, walks__p=0.5, walks__q=2.0), tmp_path)
    n_real = len(real.examples.starts)
    assert len(run.examples.starts) == (n_real if mode == "only" else 2 * n_real)
    walk_items = run.examples.flat[int(run.examples.starts[-n_real]) :].numpy()
    assert (walk_items > 0).all() and (walk_items <= run.data.n_items).all()  # walks hold real item ids only
    assert all(
        np.array_equal(x.numpy(), y.numpy()) for x, y in zip(run.eval_sets["test"][:2], real.eval_sets["test"][:2])
    )
    result = train(tiny(walks__mode=mode, train__tokens=3000), tmp_path, progress=False)
    assert result["status"] == "done" and math.isfinite(result["test_ndcg@10"])
