"""The embedded synthetic worlds (harness/data/synthetic.py: clusters; harness/data/spectral.py: spectral),
identified by their generator parameters."""

from __future__ import annotations

from harness.data import spectral, synthetic
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
SPECTRAL = ["spectrum"]  # the spectral world's own parameters


def _parameters(cfg: dict) -> dict:
    names = PARAMETERS + (SPECTRAL if cfg["data.synthetic.world"] == "spectral" else [])
    return {k: cfg[f"data.synthetic.{k}"] for k in names}


def _fingerprint(cfg: dict) -> dict:
    if cfg["data.synthetic.world"] == "spectral":
        return {**_parameters(cfg), "world": "spectral", "generator": spectral.VERSION}
    return {**_parameters(cfg), "generator": synthetic.GENERATOR_VERSION}  # the clusters world's key as before


def _read(cfg: dict):
    world = spectral if cfg["data.synthetic.world"] == "spectral" else synthetic
    inter, items, oracle = world.generate(**_parameters(cfg))
    to_str = lambda s: s.astype(str)  # noqa: E731  the same id type as the file sources
    inter = inter.assign(user=to_str(inter["user"]), item=to_str(inter["item"]))
    return inter, items.assign(item=to_str(items["item"])), oracle.assign(user=to_str(oracle["user"]))


SOURCE = Source(read=_read, fingerprint=_fingerprint)
