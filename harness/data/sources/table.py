"""Any CSV/TSV/Parquet: `data.columns` names the user, item and timestamp columns (and title, brand, category in
`data.items_path` or in the interactions file itself); without text columns it is an interaction-only log."""

from __future__ import annotations

from pathlib import Path

from harness.core.errors import UserError
from harness.data.readers import TEXT_FIELDS, interactions_frame, items_frame, read_table_file, require
from harness.data.sources import Source, files_fingerprint


def read_table(path: str | Path, items_path: str | Path | None, columns: dict[str, str]):
    """Generic CSV/TSV/Parquet: `columns` maps user/item/timestamp (and title/brand/category in the items
    file, or in the interactions file when there is no items file) to the file's column names."""
    path = Path(path)
    for key in ("user", "item", "timestamp"):
        if key not in columns:
            raise UserError(f"data.columns: missing {key!r}")
    df = read_table_file(path)
    require(df, [columns[k] for k in ("user", "item", "timestamp")], path)
    inter = interactions_frame(df.rename(columns={columns[k]: k for k in ("user", "item", "timestamp")}), path)
    src, src_path = (read_table_file(Path(items_path)), items_path) if items_path else (df, path)
    text_cols = {columns[f]: f for f in TEXT_FIELDS if f in columns}
    require(src, [columns["item"], *text_cols], src_path)
    items = src.rename(columns={columns["item"]: "item", **text_cols})
    return inter, items_frame(items)


SOURCE = Source(
    read=lambda cfg: (*read_table(cfg["data.path"], cfg["data.items_path"], cfg["data.columns"]), None),
    fingerprint=lambda cfg: files_fingerprint(
        [Path(p) for p in (cfg["data.path"], cfg["data.items_path"]) if p], columns=cfg["data.columns"]
    ),
    needs=("data.path", "data.columns"),
)
