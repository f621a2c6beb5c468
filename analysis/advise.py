"""`srt-scale advise`: the compute-optimal (N, T, K) of a FLOP budget from fitted laws (analysis/optimum.py: the
perplexity law chooses, each run priced by the table's cost per target in (N, K), analysis/cost.py), with 95%
bootstrap intervals and the perplexity and NDCG@5 predicted there. The CLI adds the run's estimated time from the
throughput model (harness/plan/throughput.py). Nothing here refits: the input is a fits.json (or a table, fitted first).
"""

from __future__ import annotations

import json
from pathlib import Path

from analysis import lack_of_fit, laws, table
from analysis.optimum import extrapolation_text, optimum
from analysis.table import label
from harness.core.errors import UserError


def load_fits(source: str | Path, n_boot: int = 1000, spec=None) -> dict:
    """fits.json itself, a directory holding one, or a results table read through `spec` (analysis.table.Spec)
    and fitted here with `n_boot` resamples."""
    path = Path(source)
    if path.is_dir() and (path / "fits.json").exists():
        path = path / "fits.json"
    if path.suffix == ".json":
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"{path}: not a readable fits.json ({e})") from None
    return laws.fit_table(table.load(path, spec), n_boot=n_boot)


def advise(fits: dict, budget: float, negatives: str | None = None, between: bool = True) -> dict:
    """The compute-optimal N, T and K for `budget` FLOPs (analysis/optimum.py), K pinned by `negatives` or kept to
    the table's values (`between` = False), with the predicted perplexity and NDCG@5, each with its 95% bootstrap
    interval."""
    if "cost" not in fits:
        raise UserError("fits.json has no cost model (written by an older srt-scale): refit the table")
    return {**optimum(fits, budget, negatives, between), "table": fits.get("table"), "warnings": warnings(fits)}


def warnings(fits: dict) -> list[str]:
    """What the advice's intervals are conditional on: each joint law its lack-of-fit test rejects, and each
    whose interval method warns (a run variance on few degrees of freedom)."""
    out = []
    for metric, per_k in fits.get("metrics", {}).items():
        for k, entry in per_k.items():
            joint = entry.get("joint", {})
            if (joint.get("lack_of_fit") or {}).get("rejects"):
                out.append(f"{metric}, K={k}: {lack_of_fit.sentence(joint['lack_of_fit'])}")
            if "warning" in joint.get("intervals", {}):
                out.append(f"{metric}, K={k}: {joint['intervals']['warning']}")
    return out


def format_advice(a: dict) -> str:
    """The advice as text; `est_s` and `time_basis`, where the caller priced the run, as its time."""

    def ci(x):
        return f" (95% CI {x[0]:.3g} – {x[1]:.3g})" if x else " (no bootstrap: no interval)"

    chosen = f"chosen among K = {', '.join(a['candidates'])}" if len(a["candidates"]) > 1 else "pinned"
    k_ci = a["negatives_ci95"] if len(a["candidates"]) > 1 else None
    edge = " — on the searched N range's edge: the law has no optimum inside it" if a["edge"] else ""
    share = f", {a['negatives_share']:.0%} of it the negatives" if a["negatives_share"] is not None else ""
    lines = [
        f"budget C = {a['budget']:.3g} FLOPs, by {a['law']}:",
        f"  K* = {a['negatives']} negatives ({chosen}){ci(k_ci) if k_ci else ''}",
        f"  N_opt = {a['n_params']:.3g} parameters{ci(a['n_params_ci95'])}{edge}",
        f"  T_opt = {a['tokens']:.3g} training targets{ci(a['tokens_ci95'])}",
        *(
            [f"  {extrapolation_text(a['extrapolation'])}: a prediction of the law, not a measurement"]
            if extrapolation_text(a.get("extrapolation") or {})
            else []
        ),
        *(
            [
                f"  {a['edge_refits']:.0%} of the bootstrap refits have no optimum inside the searched N grid: "
                "left out of the intervals"
            ]
            if a.get("edge_refits")
            else []
        ),
        f"  cost: {a['flops_per_target']:.3g} FLOPs per target{share}",
    ]
    for metric, p in a["predictions"].items():
        info = a.get("table") or {}
        lines.append(f"  predicted {label(info, metric, info.get('split', 'test'))} = {p['value']:.4g}{ci(p['ci95'])}")
    lines += [f"  warning: {w}" for w in a.get("warnings", [])]
    if "est_s" in a:
        seconds = a["est_s"]
        shown = f"{seconds / 3600:.3g} h" if seconds >= 3600 else f"{seconds / 60:.3g} min"
        lines.append(f"  estimated time on this machine: {shown} ({a['time_basis']})")
    return "\n".join(lines)
