"""What every benchmark shares: print a table of rows and write them to benchmarks/out/<name>.json."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import torch

OUT = Path(__file__).parent / "out"


def report(name: str, rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
    """columns: (key, header, format spec). Writes {machine, date, rows} JSON."""
    widths = [max(len(h), 10) for _, h, _ in columns]
    print("  ".join(f"{h:>{w}}" for (_, h, _), w in zip(columns, widths)))
    for r in rows:
        print(
            "  ".join(
                f"{format(r[k], f) if r.get(k) is not None else '-':>{w}}" for (k, _, f), w in zip(columns, widths)
            )
        )
    OUT.mkdir(exist_ok=True)
    blob = {
        "machine": platform.node(),
        "processor": platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "rows": rows,
    }
    (OUT / f"{name}.json").write_text(json.dumps(blob, indent=2))
    print(f"-> {OUT / f'{name}.json'}")
