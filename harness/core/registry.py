"""Components chosen by name in a config, each registered once here: the seam between config and code.

A registry maps a name to `module:attribute`; the module is imported only when the component is used, so
`config.py` takes its allowed choices from `names()` without importing torch or pandas. A new component is one
file (its module) plus one line here.
"""

from __future__ import annotations

import importlib
from typing import Any

from harness.core.errors import UserError


class Registry:
    """Components of one kind (`key`: the config key or option that names them)."""

    def __init__(self, key: str, entries: dict[str, str]):
        self.key, self.entries = key, entries

    def names(self) -> tuple[str, ...]:
        return tuple(self.entries)

    def get(self, name: str) -> Any:
        if name not in self.entries:
            raise UserError(f"{self.key} = {name!r}: expected one of {', '.join(self.entries)}")
        module, attribute = self.entries[name].split(":")
        return getattr(importlib.import_module(module), attribute)


SOURCES = Registry(
    "data.name",
    {
        "synthetic": "harness.data.sources.synthetic:SOURCE",
        "ml-100k": "harness.data.sources.ml100k:SOURCE",
        "recbole": "harness.data.sources.recbole:SOURCE",
        "amazon2018": "harness.data.sources.amazon2018:SOURCE",
        "movielens": "harness.data.sources.movielens:SOURCE",
        "table": "harness.data.sources.table:SOURCE",
    },
)
WORLDS = Registry(
    "data.synthetic.world",
    {
        "clusters": "harness.data.synthetic:WORLD",
        "spectral": "harness.data.spectral:WORLD",
    },
)
EXTRACTORS = Registry(
    "features.kind",
    {
        "st": "harness.model.features:SentenceExtractor",
        "tokens": "harness.model.features:TokenExtractor",
        "id": "harness.model.features:IdExtractor",
    },
)
LOSSES = Registry(
    "loss.kind",
    {
        "softmax": "harness.model.losses:softmax_loss",
        "bce": "harness.model.losses:bce_loss",
        "gbce": "harness.model.losses:gbce_loss",
    },
)
SCHEDULES = Registry(
    "train.schedule",
    {
        "cosine": "harness.model.schedules:cosine",
        "onecycle": "harness.model.schedules:onecycle",
        "constant": "harness.model.schedules:constant",
        "wsd": "harness.model.schedules:wsd",
    },
)
EXECUTORS = Registry(
    "--executor",
    {
        "debug": "harness.sweep.executors:DEBUG",
        "local": "harness.sweep.executors:LOCAL",
        "slurm": "harness.sweep.executors:SLURM",
    },
)
