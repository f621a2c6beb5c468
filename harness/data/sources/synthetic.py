"""The embedded synthetic worlds (`data.synthetic.world`, registered in WORLDS: harness/data/synthetic.py clusters,
harness/data/spectral.py spectral), identified by their generator parameters and their code's version."""

from __future__ import annotations

from harness.core.registry import WORLDS
from harness.data.sources import Source

PARAMETERS = [
    "n_users",
    "n_items",
    "mean_length",
    "max_length",
    "latent_dim",
    "drift",
    "sharpness",
    "popularity",
    "seed",
]


def _parameters(cfg: dict) -> dict:
    names = PARAMETERS + list(WORLDS.get(cfg["data.synthetic.world"]).parameters)
    return {k: cfg[f"data.synthetic.{k}"] for k in names}


def _fingerprint(cfg: dict) -> dict:
    return {**_parameters(cfg), **WORLDS.get(cfg["data.synthetic.world"]).key}


def _read(cfg: dict):
    inter, items, oracle = WORLDS.get(cfg["data.synthetic.world"]).generate(**_parameters(cfg))
    to_str = lambda s: s.astype(str)  # noqa: E731  the same id type as the file sources
    inter = inter.assign(user=to_str(inter["user"]), item=to_str(inter["item"]))
    return inter, items.assign(item=to_str(items["item"])), oracle.assign(user=to_str(oracle["user"]))


SOURCE = Source(read=_read, fingerprint=_fingerprint)
