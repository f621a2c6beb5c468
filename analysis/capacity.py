"""The capacity oracle beside the trained models, for synthetic worlds that record it (harness/data/spectral.py).

A table whose runs carry `oracle_<split>_capacity_<d>_ppl` (the best rank-d model's perplexity on the users the
runs evaluate) and `oracle_<split>_exact_ppl` (the exact next-item law's) gets, for each width d its runs have:
the planted L*(d) = ln(capacity perplexity) and, per K, the trained runs' best ln(perplexity) over their fitting
points; and the exponent of the planted gap L*(d) - E against N over those widths (E = ln exact perplexity, the
floor), to set beside the joint law's fitted alpha (and against d, the planted 2 nu - 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def capacity(final: pd.DataFrame, split: str) -> dict | None:
    """The capacity oracle's curve and the trained runs beside it (module doc); None when the table has none."""
    exact = f"oracle_{split}_exact_ppl"
    if exact not in final.columns or final[exact].isna().all():
        return None
    widths = []
    for (d, n), g in final.groupby(["d_model", "n_params"]):
        column = f"oracle_{split}_capacity_{int(d)}_ppl"
        if column not in g.columns or g[column].isna().all():
            continue
        trained = {str(k): float(np.log(h[f"{split}_ppl"].min())) for k, h in g.groupby("negatives")}
        widths.append(
            {"d_model": int(d), "n_params": float(n), "planted": float(np.log(g[column].mean())), "trained": trained}
        )
    if not widths:
        return None
    floor = float(np.log(final[exact].mean()))
    out = {"split": split, "floor": floor, "widths": sorted(widths, key=lambda w: w["n_params"])}
    gaps = np.array([w["planted"] - floor for w in out["widths"]])
    if len(widths) >= 2 and (gaps > 0).all():
        for axis, key in (("n_params", "gap_exponent_vs_n"), ("d_model", "gap_exponent_vs_d")):
            x = np.log([w[axis] for w in out["widths"]])
            out[key] = float(-np.polyfit(x, np.log(gaps), 1)[0])
    return out
