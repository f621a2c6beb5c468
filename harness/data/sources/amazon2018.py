"""Amazon Review Data 2018: ratings CSV or 5-core review JSON lines (`data.path`) and metadata JSON lines
(`data.items_path`), gzipped or plain. Its text quirks (entities, markup, scraped script) are cleaned in
harness/data/clean.py."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from harness.core.errors import UserError
from harness.data.readers import TEXT_FIELDS, interactions_frame, items_frame, joined, json_lines, read_text, require
from harness.data.sources import Source, files_fingerprint


def read_amazon2018(reviews: str | Path, metadata: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Amazon 2018: ratings CSV (no header: item,user,rating,timestamp) or 5-core review JSON lines
    (reviewerID, asin, unixReviewTime); metadata JSON lines (asin, title, brand, category list). .gz or plain."""
    reviews, metadata = Path(reviews), Path(metadata)
    stem = reviews.name.removesuffix(".gz")
    if stem.endswith(".csv"):
        text = read_text(reviews)
        df = pd.read_csv(io.StringIO(text), header=None, dtype=str)
        if df.shape[1] != 4:
            raise UserError(f"{reviews}: expected 4 columns item,user,rating,timestamp, found {df.shape[1]}")
        df.columns = ["item", "user", "rating", "timestamp"]
    else:
        df = pd.DataFrame(json_lines(reviews))
        require(df, ["reviewerID", "asin", "unixReviewTime"], reviews)
        df = df.rename(columns={"reviewerID": "user", "asin": "item", "unixReviewTime": "timestamp"})
    meta = pd.DataFrame(json_lines(metadata))
    require(meta, ["asin"], metadata)
    fields = {"item": meta["asin"]}
    for f in TEXT_FIELDS:
        if f in meta:
            fields[f] = meta[f].map(joined)
    return interactions_frame(df, reviews), items_frame(pd.DataFrame(fields))


SOURCE = Source(
    read=lambda cfg: (*read_amazon2018(cfg["data.path"], cfg["data.items_path"]), None),
    fingerprint=lambda cfg: files_fingerprint([Path(cfg["data.path"]), Path(cfg["data.items_path"])]),
    needs=("data.path", "data.items_path"),
)
