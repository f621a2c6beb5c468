"""`srt-scale advise`: the compute-optimal allocation of a FLOP budget from a fitted joint law.

For the budget C and one K, the perplexity law's closed form (frontier.closed_form, C = kappa N T) gives N_opt and
T_opt; every bootstrap refit gives its own pair, so their 2.5-97.5 percentiles are the 95% intervals. At
(N_opt, T_opt) the perplexity and NDCG@5 laws give the predictions, each with the percentiles of its bootstrap
refits' predictions. The CLI adds the run's estimated time from the throughput model (harness/throughput.py).
Nothing here refits: the input is a fits.json (or a table, fitted first).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from analysis import fit, frontier
from analysis.laws import from_target
from analysis.table import label
from harness.errors import UserError


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
    from analysis import laws, table

    return laws.fit_table(table.load(path, spec), n_boot=n_boot)


def _interval(values: list[float]) -> list[float] | None:
    v = np.asarray([x for x in values if np.isfinite(x)], float)
    return [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))] if len(v) else None


def advise(fits: dict, budget: float, negatives: str | None = None) -> dict:
    """N_opt, T_opt and the predicted perplexity and NDCG@5 for `budget` FLOPs at K = `negatives` (default: the
    full softmax if fitted, else the largest K), each with its 95% bootstrap interval."""
    per_k = fits.get("metrics", {}).get("ppl", {})
    fitted = [k for k, e in per_k.items() if "params" in e.get("joint", {})]
    if not fitted:
        raise UserError("the fits have no joint perplexity law to advise from (see their messages)")
    k = negatives if negatives is not None else ("full" if "full" in fitted else fitted[-1])
    if k not in fitted:
        raise UserError(f"--negatives {k}: no joint perplexity law for that K (fitted: {', '.join(fitted)})")
    if not budget > 0:
        raise UserError(f"--budget {budget}: must be a positive number of FLOPs")
    kappa = fits["kappa"]
    law = per_k[k]["joint"]

    def allocation(p: dict) -> tuple[float, float]:
        n = float(frontier.n_opt(frontier.closed_form(p, kappa), np.array([budget]))[0])
        return n, budget / (kappa * n)

    n, t = allocation(law["params"])
    samples = [allocation(p) for p in law.get("bootstrap", [])]
    out = {"budget": budget, "negatives": k, "kappa": kappa, "n_params": n, "tokens": t,
           "n_params_ci95": _interval([s[0] for s in samples]), "tokens_ci95": _interval([s[1] for s in samples]),
           "bootstrap": len(samples), "predictions": {}, "table": fits.get("table")}
    for metric, e in fits["metrics"].items():
        j = e.get(k, {}).get("joint", {})
        if "params" not in j:
            continue
        value = float(from_target(metric, fit.predict_joint(j["params"], n, t)))
        boot = [float(from_target(metric, fit.predict_joint(p, n, t))) for p in j.get("bootstrap", [])]
        out["predictions"][metric] = {"value": value, "ci95": _interval(boot)}
    return out


def format_advice(a: dict) -> str:
    """The advice as text; `est_s` and `time_basis`, where the caller priced the run, as its time."""
    def ci(x):
        return f" (95% CI {x[0]:.3g} – {x[1]:.3g})" if x else " (no bootstrap: no interval)"
    lines = [f"budget C = {a['budget']:.3g} FLOPs, K = {a['negatives']} (C = {a['kappa']:.3g} N T):",
             f"  N_opt = {a['n_params']:.3g} parameters{ci(a['n_params_ci95'])}",
             f"  T_opt = {a['tokens']:.3g} training targets{ci(a['tokens_ci95'])}"]
    for metric, p in a["predictions"].items():
        info = a.get("table") or {}
        lines.append(f"  predicted {label(info, metric, info.get('split', 'test'))} = {p['value']:.4g}{ci(p['ci95'])}")
    if "est_s" in a:
        seconds = a["est_s"]
        shown = f"{seconds / 3600:.3g} h" if seconds >= 3600 else f"{seconds / 60:.3g} min"
        lines.append(f"  estimated time on this machine: {shown} ({a['time_basis']})")
    return "\n".join(lines)
