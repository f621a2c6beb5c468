"""The embedded synthetic world (harness/data/synthetic.py), identified by its generator parameters."""

from __future__ import annotations

from harness.data import synthetic
from harness.data.sources import Source

PARAMETERS = ["n_users", "n_items", "mean_length", "max_length", "latent_dim", "drift", "sharpness", "popularity",
              "seed"]


def _parameters(cfg: dict) -> dict:
    return {k: cfg[f"data.synthetic.{k}"] for k in PARAMETERS}


def _read(cfg: dict):
    inter, items, oracle = synthetic.generate(**_parameters(cfg))
    to_str = lambda s: s.astype(str)  # noqa: E731  the same id type as the file sources
    inter = inter.assign(user=to_str(inter["user"]), item=to_str(inter["item"]))
    return inter, items.assign(item=to_str(items["item"])), oracle.assign(user=to_str(oracle["user"]))


SOURCE = Source(read=_read, fingerprint=lambda cfg: {**_parameters(cfg), "generator": synthetic.GENERATOR_VERSION})
