"""`srt-scale collect`: run directories -> one results table (Parquet and CSV), one row per run and eval point.

Columns are harness/core/schema.py's (docs/design.md describes them): the metrics rows of each run's metrics.jsonl,
the run's status (from result.json, or the sweep's job state while it has none), the config keys as dotted
columns, and the environment and the dataset's oracle figures (synthetic world) from result.json. A run directory that
is still
being written (no metrics yet, or a torn file) is skipped and reported, never half-read.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import yaml

from harness.core import config
from harness.core.io import atomic_path
from harness.core.schema import ENVIRONMENT, ORDER


def _rows(run_dir: Path, status: str | None) -> list[dict]:
    cfg = config.flatten(yaml.safe_load((run_dir / "config.yaml").read_text()))
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    result_path = run_dir / "result.json"
    result = json.loads(result_path.read_text()) if result_path.exists() else {}
    env = {k: result.get(k) for k in ENVIRONMENT}
    env.update({k: v for k, v in result.items() if k.startswith("oracle_")})  # the dataset's ceiling, if known
    final_status = result.get("status") or status or "running"
    out = []
    for row in rows:
        row = {**row, "status": final_status, **env, **cfg}
        row["negatives"] = str(row["negatives"])
        row["loss.negatives"] = str(row["loss.negatives"])
        out.append(row)
    return out


def collect(runs_dir: str | Path, states: dict[str, str] | None = None) -> tuple[pd.DataFrame, list[str]]:
    """All rows under `runs_dir`; `states` (run_id -> sweep state) labels runs without result.json.
    Returns (table, problems) where problems name the run directories that were skipped and why."""
    rows, problems = [], []
    for run_dir in sorted(p for p in Path(runs_dir).glob("*") if p.is_dir()):
        if not (run_dir / "metrics.jsonl").exists() or not (run_dir / "config.yaml").exists():
            problems.append(f"{run_dir.name}: no evaluation written yet (skipped)")
            continue
        try:
            rows.extend(_rows(run_dir, (states or {}).get(run_dir.name)))
        except (json.JSONDecodeError, yaml.YAMLError, OSError, KeyError) as e:
            problems.append(f"{run_dir.name}: unreadable ({type(e).__name__}: {e}) (skipped)")
    table = pd.DataFrame(rows)
    if not table.empty:
        first = list(ORDER)
        metrics = sorted(c for c in table.columns if c.startswith(("valid_", "test_", "oracle_")))
        rest = [c for c in table.columns if c not in first and c not in metrics]
        table = table[[c for c in first if c in table.columns] + metrics + rest]
        table = table.sort_values(["run_id", "tokens"], kind="stable").reset_index(drop=True)
    return table, problems


def write_table(table: pd.DataFrame, path: str | Path) -> tuple[Path, Path]:
    """Write `path`.parquet and `path`.csv atomically; returns both paths."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".parquet", ".csv") else path
    parquet, csv = stem.with_suffix(".parquet"), stem.with_suffix(".csv")
    with atomic_path(parquet) as tmp:
        table.to_parquet(tmp, index=False)
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)
    return parquet, csv
