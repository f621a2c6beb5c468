"""Data throughput: synthetic-world generation (the clusters world, and the spectral world at the quickstart's
settings with its capacity oracle), preparation of a 10^6-interaction source, GenPAS pair sampling,
and the text-embedding cache (miss vs hit).

    python benchmarks/bench_data.py                            # 10^7 synthetic interactions, 10^6 prepared
    python benchmarks/bench_data.py --synthetic 1000000 --prepare 200000
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from common import report

from harness.core import config
from harness.data import spectral
from harness.data.augment import PairSampler
from harness.data.synthetic import generate


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def world(interactions: int, n_items: int, mean_length: int):
    users = max(2, interactions // mean_length)
    return generate(users, n_items, mean_length, 4 * mean_length, 16, 0.3, 0.6, 1.0, seed=0)


def spectral_world(interactions: int, mean_length: int):
    """configs/quickstart.yaml's world (1,000 items, D = 128, nu = 0.8, sharpness 6), with its capacity oracle."""
    users = max(2, interactions // mean_length)
    return spectral.generate(users, 1000, mean_length, 100, 128, 0.3, 6.0, 0.5, 0.8, seed=0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--synthetic", type=int, default=10_000_000, help="interactions to generate")
    p.add_argument("--prepare", type=int, default=1_000_000, help="interactions in the prepared table source")
    p.add_argument("--items", type=int, default=5000)
    p.add_argument("--pairs", type=int, default=1_000_000)
    p.add_argument("--texts", type=int, default=500, help="new texts for the embedding-cache miss")
    a = p.parse_args()
    rows = []
    (inter, items, _), s = timed(lambda: world(a.synthetic, a.items, 30))
    rows.append(
        {
            "what": f"synthetic world ({a.items:,} items)",
            "size": len(inter),
            "seconds": s,
            "rate": len(inter) / s,
            "unit": "interactions/s",
        }
    )
    del inter
    (inter, _, _), s = timed(lambda: spectral_world(a.synthetic, 30))
    rows.append(
        {
            "what": "spectral world (1,000 items, D = 128, with capacity oracle)",
            "size": len(inter),
            "seconds": s,
            "rate": len(inter) / s,
            "unit": "interactions/s",
        }
    )
    del inter

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["SRT_SCALE_CACHE"] = str(Path(tmp) / "cache")
        from harness.data.prepare import prepare  # reads the cache location when called

        inter, items, _ = world(a.prepare, a.items, 30)
        inter.to_csv(Path(tmp) / "inter.csv", index=False)
        items.to_csv(Path(tmp) / "items.csv", index=False)
        cfg = config.resolve(
            {
                "data.name": "table",
                "data.path": str(Path(tmp) / "inter.csv"),
                "data.items_path": str(Path(tmp) / "items.csv"),
                "data.columns": {
                    "user": "user",
                    "item": "item",
                    "timestamp": "timestamp",
                    "title": "title",
                    "brand": "brand",
                    "category": "category",
                },
            }
        )
        (data, _), s = timed(lambda: prepare(cfg))
        rows.append(
            {
                "what": "prepare table source (cold)",
                "size": len(inter),
                "seconds": s,
                "rate": len(inter) / s,
                "unit": "interactions/s",
            }
        )
        _, s = timed(lambda: prepare(cfg))
        rows.append(
            {
                "what": "prepare table source (cache hit)",
                "size": len(inter),
                "seconds": s,
                "rate": len(inter) / s,
                "unit": "interactions/s",
            }
        )

        starts, lengths = data.offsets[:-1], np.diff(data.offsets) - 2
        rng = np.random.default_rng(0)
        for name, args in (("lt", ()), ("mt", ()), ("sw", ()), ("genpas", (1.0, 1.0, 0.0))):
            sampler = PairSampler(starts, lengths, name, *args)
            _, s = timed(lambda: sampler.sample(a.pairs, rng))
            rows.append(
                {"what": f"pairs {name}", "size": a.pairs, "seconds": s, "rate": a.pairs / s, "unit": "pairs/s"}
            )

        from harness.data.text import encode_texts

        texts = [f"benchmark text {i} {time.time_ns()}" for i in range(a.texts)]
        store = Path(tmp) / "emb"
        _, s = timed(lambda: encode_texts(texts, store))
        rows.append(
            {"what": "text embeddings (miss)", "size": a.texts, "seconds": s, "rate": a.texts / s, "unit": "texts/s"}
        )
        _, s = timed(lambda: encode_texts(texts, store))
        rows.append(
            {"what": "text embeddings (hit)", "size": a.texts, "seconds": s, "rate": a.texts / s, "unit": "texts/s"}
        )
    report(
        "bench_data",
        rows,
        [
            ("what", "what", "<34"),
            ("size", "size", ",d"),
            ("seconds", "seconds", ".2f"),
            ("rate", "rate", ",.0f"),
            ("unit", "unit", ""),
        ],
    )


if __name__ == "__main__":
    main()
