"""Which N and which C a table's laws are fitted on, and how far the exponents move with the choice of N.

srt-scale's N (`n_params`) leaves out the id / token tables and C (`flops`) counts the scoring against the K + 1
candidates or the whole catalog and the adapter over every item row a step embeds, neither of which scales with N.
At small N that mismatch bends fitted exponents (Pearce & Song 2024 show it for non-embedding N in language-model
laws), so fits.json says which N and C were used and refits each joint law's point estimate on the other N
(`n_params_total`, or back on non-embedding N when the fit used the total): `sensitivity`, per metric and K, alpha
and the N_opt exponent beta / (alpha + beta) on both. `fit --n-column n_params_total` fits everything on the total.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import fit, frontier
from analysis.table import METRICS, k_order, to_target

N_MEANS = {
    "n_params": "non-embedding parameters: the transformer, positions and the extractor's adapter, the id / token "
    "tables left out",
    "n_params_total": "every trained parameter, the id / token tables included",
}
C_MEANS = (
    "T x the analytic training FLOPs per target: the transformer's matmuls and attention, the adapter over every "
    "item row a step embeds and the scoring against the K + 1 candidates or the catalog; backward = 2 x forward"
)
BOUND_TOL = 1e-3  # an exponent this close to the box's edge is the box's, not the data's
SPARE = "n_params_nonembedding"  # where `--n-column n_params_total` keeps the table's non-embedding N


def of(info: dict, final: pd.DataFrame, split: str) -> dict:
    """The conventions of a fit of the fitting points `final` read as `info` (analysis.table.describe)."""
    n_column = info.get("n_column", "n_params")
    mapped = info.get("columns", {})
    own = "n_params_tables" in final.columns  # a table srt-scale wrote, not one from elsewhere
    out = {
        "n": n_column,
        "n_means": N_MEANS[n_column] if own else f"the table's column {mapped.get('n_params', 'n_params')!r}",
        "flops_means": C_MEANS if own else f"the table's column {mapped.get('flops', 'flops')!r}",
    }
    other = {"n_params": "n_params_total", "n_params_total": SPARE}[n_column]
    if own and other in final.columns and not final[other].equals(final["n_params"]):
        out["sensitivity"] = {"other_n": other, "laws": sensitivity(final, final[other].astype(float), split)}
    return out


def sensitivity(final: pd.DataFrame, other_n: pd.Series, split: str) -> dict:
    """{metric: {K: {"alpha": [this N, other N], "n_opt_exponent": [this N, other N], "alpha_at_bound": [...],
    "n_decades": [...]}}}: each joint law's point estimate refitted on `other_n` (no intervals: a check of the
    convention, not a second study). `alpha_at_bound`: the fit's alpha sits on the exponent box's edge
    (fit.BOUNDS), so it and the N_opt exponent are set by the box, not the data; `n_decades`: the decades each N
    spans over these points (a constant table count added to N narrows it)."""
    out: dict = {}
    for metric in METRICS:
        col = f"{split}_{metric}"
        if col not in final.columns:
            continue
        for negatives in k_order(final["negatives"]):
            rows = final["negatives"].astype(str) == negatives
            s = final[rows]
            if s["n_params"].nunique() < 3 or s["tokens"].nunique() < 3:
                continue
            y, t = to_target(metric, s[col]), s["tokens"].to_numpy(float)
            fits = [fit.joint(n.to_numpy(float), t, y).params for n in (s["n_params"], other_n[rows])]
            lo, hi = fit.BOUNDS["alpha"]
            out.setdefault(metric, {})[str(negatives)] = {
                "alpha": [p["alpha"] for p in fits],
                "n_opt_exponent": [frontier.closed_form(p, 1.0)["n_opt_exponent"] for p in fits],
                "alpha_at_bound": [bool(min(p["alpha"] - lo, hi - p["alpha"]) < BOUND_TOL) for p in fits],
                "n_decades": [float(np.log10(n.max() / n.min())) for n in (s["n_params"], other_n[rows])],
            }
    return out
