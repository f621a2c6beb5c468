"""Dataset sources (`data.name`), one module each, registered in harness/core/registry.py.

A source says which config keys it needs, what identifies its content (the dataset cache key: file hashes, or a
generator's parameters), and how to read it into raw tables (harness/data/readers.py): interactions, items,
and the oracle figures of a synthetic world (None for real data). Adding a source is one module defining
`SOURCE` plus one line in the registry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from harness.core.errors import UserError
from harness.core.io import file_digest


@dataclass(frozen=True)
class Source:
    read: Callable[[dict], tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]]
    fingerprint: Callable[[dict], dict]
    needs: tuple[str, ...] = ()  # config keys that must be set (data.path, ...)


def files_fingerprint(paths: list[Path], **extra) -> dict:
    """Content identity of a file source: the hash of every file (each must exist), and `extra` options."""
    for p in paths:
        if not p.exists():
            raise UserError(f"{p}: not found (data.path / data.items_path)")
    return {**extra, "files": {p.name: file_digest(p) for p in paths if p.is_file()}}
