"""RecBole atomic files: `<dir>/<dir>.inter` (user_id, item_id, timestamp) and `<dir>/<dir>.item` (text fields;
without it the source is interaction-only)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from harness.core.errors import UserError
from harness.data.readers import interactions_frame, items_frame, read_text, require
from harness.data.sources import Source, files_fingerprint

_RECBOLE_TEXT = {
    "title": ["title", "movie_title", "name", "item_name"],
    "brand": ["brand", "release_year"],
    "category": ["categories", "category", "class", "genre"],
}


def _read_atomic(path: Path) -> pd.DataFrame:
    text = read_text(path)
    df = pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False, quoting=3)
    df.columns = [c.split(":")[0] for c in df.columns]
    return df


def read_recbole(directory: str | Path, name: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """RecBole atomic files `<name>.inter` (user_id, item_id, timestamp) and `<name>.item` (text fields; without
    it the source is interaction-only)."""
    directory = Path(directory)
    name = name or directory.name
    inter_path, item_path = directory / f"{name}.inter", directory / f"{name}.item"
    if not inter_path.exists():
        raise UserError(f"{inter_path}: RecBole atomic file not found")
    inter = _read_atomic(inter_path)
    require(inter, ["user_id", "item_id", "timestamp"], inter_path)
    if not item_path.exists():
        return interactions_frame(
            inter.rename(columns={"user_id": "user", "item_id": "item"}), inter_path
        ), items_frame(pd.DataFrame({"item": inter["item_id"]}))
    items = _read_atomic(item_path)
    require(items, ["item_id"], item_path)
    fields = {"item": items["item_id"]}
    for field, candidates in _RECBOLE_TEXT.items():
        found = [c for c in candidates if c in items.columns]
        if found:
            fields[field] = items[found[0]]
    interactions = interactions_frame(inter.rename(columns={"user_id": "user", "item_id": "item"}), inter_path)
    return interactions, items_frame(pd.DataFrame(fields))


def atomic_files(directory: Path, name: str | None = None) -> list[Path]:
    """The .inter file and, when present, the .item file."""
    name = name or directory.name
    item = directory / f"{name}.item"
    return [directory / f"{name}.inter"] + ([item] if item.exists() else [])


SOURCE = Source(
    read=lambda cfg: (*read_recbole(cfg["data.path"]), None),
    fingerprint=lambda cfg: files_fingerprint(atomic_files(Path(cfg["data.path"]))),
    needs=("data.path",),
)
