"""Shared fixtures: one cache directory per test session (datasets and MiniLM embeddings are built once)."""

from __future__ import annotations

import os

import pytest

from harness.core import config

TINY = {
    "data.synthetic.n_users": 200,
    "data.synthetic.n_items": 120,
    "data.synthetic.mean_length": 15,
    "data.synthetic.max_length": 40,
    "model.d_model": 32,
    "model.n_heads": 2,
    "model.d_ff": 64,
    "model.n_layers": 1,
    "model.context": 20,
    "train.batch_size": 32,
    "train.tokens": 6000,
    "train.threads": 1,
    "eval.points": [0.5, 1.0],
}


@pytest.fixture(scope="session", autouse=True)
def shared_cache(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache")
    old = os.environ.get("SRT_SCALE_CACHE")
    os.environ["SRT_SCALE_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("SRT_SCALE_CACHE", None)
    else:
        os.environ["SRT_SCALE_CACHE"] = old


@pytest.fixture
def tiny():
    """A resolved config for a tiny synthetic run; pass overrides as keyword-free dict updates."""

    def make(**overrides):
        return config.resolve({**TINY, **{k.replace("__", "."): v for k, v in overrides.items()}})

    return make
