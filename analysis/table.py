"""The results table as analysis reads it (the contract in harness/schema.py, docs/design.md), and what is
excluded from fits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from harness.errors import UserError
from harness.schema import REQUIRED, STATUSES

METRICS = {"ppl": "perplexity", "ndcg@5": "NDCG@5"}


def load(path: str | Path) -> pd.DataFrame:
    """A results table from .parquet or .csv, or a directory holding results.parquet; checks the columns."""
    path = Path(path)
    if path.is_dir():
        path = path / "results.parquet"
    if not path.exists():
        raise UserError(f"{path}: no results table (run `srt-scale collect` first)")
    try:
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: cannot read the table ({e})") from None
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise UserError(f"{path}: missing column(s) {', '.join(missing)}")
    unknown = sorted(set(table["status"].astype(str)) - set(STATUSES))
    if unknown:
        raise UserError(f"{path}: column status: unknown value {unknown[0]!r} (known: {', '.join(STATUSES)})")
    table["negatives"] = table["negatives"].astype(str)
    table["final"] = table["final"].astype(bool)
    return table


def usable(table: pd.DataFrame, split: str = "test") -> tuple[pd.DataFrame, dict]:
    """Rows of finished runs with finite metrics, and a summary of what was excluded."""
    runs = table.groupby("run_id")["status"].last()
    bad = runs[runs != "done"]
    keep = table[table["run_id"].isin(runs[runs == "done"].index)]
    cols = [f"{split}_{m}" for m in METRICS if f"{split}_{m}" in table.columns]
    final = keep[keep["final"]]
    finite = final[np.isfinite(final[cols].to_numpy(dtype=float)).all(axis=1)] if cols else final
    summary = {"runs": int(runs.size), "done": int((runs == "done").sum()),
               "excluded": {s: int((bad == s).sum()) for s in sorted(bad.unique())},
               "nan_rows": int(len(final) - len(finite)), "rows": int(len(keep))}
    keep = keep[~keep["run_id"].isin(set(final["run_id"]) - set(finite["run_id"]))]
    return keep, summary
