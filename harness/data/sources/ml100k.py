"""MovieLens-100K as the `recbole` wheel bundles it (pip install --no-deps recbole): its atomic files are read;
recbole is never imported."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from harness.core.errors import UserError
from harness.data.sources import Source, files_fingerprint
from harness.data.sources.recbole import atomic_files, read_recbole


def ml100k_dir() -> Path:
    spec = importlib.util.find_spec("recbole")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("data.name = ml-100k needs the recbole wheel: pip install --no-deps recbole")
    return Path(list(spec.submodule_search_locations)[0]) / "dataset_example" / "ml-100k"


SOURCE = Source(
    read=lambda cfg: (*read_recbole(ml100k_dir(), "ml-100k"), None),
    fingerprint=lambda cfg: files_fingerprint(atomic_files(ml100k_dir(), "ml-100k")),
)
